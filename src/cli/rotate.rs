//! `mcpwatch rotate` (SPEC §7).

use std::path::PathBuf;

use clap::Args;

use super::CommonArgs;

#[derive(Args, Debug)]
pub struct RotateArgs {
    /// The audit log directory [default: .elevenlabs/audit]
    #[arg(long, value_name = "D")]
    pub dir: Option<PathBuf>,
    /// The daemon's state directory [default: <dir>/../mcpwatch]
    #[arg(long, value_name = "D")]
    pub state_dir: Option<PathBuf>,
    /// Print every planned action and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(_common: &CommonArgs, _args: RotateArgs) -> anyhow::Result<u8> {
    super::not_yet("rotate")
}
