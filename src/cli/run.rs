//! `mcpwatch run` (SPEC §7).

use std::path::PathBuf;

use clap::Args;

use super::CommonArgs;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The audit log directory to watch
    #[arg(long, value_name = "D")]
    pub dir: Option<PathBuf>,
    /// Where checkpoints, detector state and the outbox live [default: <dir>/../mcpwatch]
    #[arg(long, value_name = "D")]
    pub state_dir: Option<PathBuf>,
    /// Address for /metrics and /healthz ("off" disables; port 0 picks one) [default: 127.0.0.1:9464]
    #[arg(long, value_name = "A")]
    pub metrics_addr: Option<String>,
}

pub fn run(_common: &CommonArgs, _args: RunArgs) -> anyhow::Result<u8> {
    super::not_yet("run")
}
