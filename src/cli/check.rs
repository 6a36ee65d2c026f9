//! `mcpwatch check` (SPEC §7).

use std::path::PathBuf;

use clap::Args;

use super::CommonArgs;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The audit log directory (for its config.json) [default: .elevenlabs/audit]
    #[arg(long, value_name = "D")]
    pub dir: Option<PathBuf>,
    /// Print this tool's policy class and the rule that decided it (repeatable)
    #[arg(long = "tool", value_name = "NAME")]
    pub tools: Vec<String>,
}

pub fn run(_common: &CommonArgs, _args: CheckArgs) -> anyhow::Result<u8> {
    super::not_yet("check")
}
