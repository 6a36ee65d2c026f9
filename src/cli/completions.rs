//! `mcpwatch completions SHELL` (SPEC §7) and `mcpwatch man`: a shell
//! completion script and the manual pages, generated from the same clap
//! definitions as the commands themselves, so they never drift.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, CommandFactory};

use super::{Cli, EXIT_FAILURE, EXIT_OK};

#[derive(Args, Debug)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub(crate) struct ManArgs {
    /// Write mcpwatch.1 and one page per command (mcpwatch-run.1, …) into
    /// this directory instead of printing mcpwatch.1
    #[arg(long, value_name = "D")]
    pub(crate) dir: Option<PathBuf>,
}

pub(crate) fn completions(args: CompletionsArgs) -> anyhow::Result<u8> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "mcpwatch", &mut out);
    out.flush()?;
    Ok(EXIT_OK)
}

pub(crate) fn man(args: ManArgs) -> anyhow::Result<u8> {
    let cmd = Cli::command();
    match args.dir {
        Some(dir) => {
            if let Err(e) = clap_mangen::generate_to(cmd, &dir) {
                eprintln!("mcpwatch man: {}: {e}", dir.display());
                return Ok(EXIT_FAILURE);
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            out.flush()?;
        }
    }
    Ok(EXIT_OK)
}
