//! The `mcpwatch` binary: argument parsing, logging setup and exit codes.
//! Everything else lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    mcpwatch::cli::main()
}
