//! The `mcpwatch` binary: the commands of SPEC §7 ([`cli`]) over the
//! `mcpwatch` library. Argument parsing, logging setup and exit codes live
//! here; everything else lives in the library.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
