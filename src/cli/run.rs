//! `mcpwatch run` (SPEC §7): the daemon. Resolves directories and the
//! metrics address, then hands over to [`crate::pipeline::run`].

use std::path::{Path, PathBuf};

use clap::Args;

use super::{CommonArgs, EXIT_FAILURE, EXIT_OK, EXIT_USAGE};
use crate::pipeline::{RunError, RunOptions};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The audit log directory to watch [default: .elevenlabs/audit]
    #[arg(long, value_name = "D")]
    pub dir: Option<PathBuf>,
    /// Where checkpoints, detector state and the outbox live [default: <dir>/../mcpwatch]
    #[arg(long, value_name = "D")]
    pub state_dir: Option<PathBuf>,
    /// Address for /metrics and /healthz ("off" disables; port 0 picks one) [default: 127.0.0.1:9464]
    #[arg(long, value_name = "A")]
    pub metrics_addr: Option<String>,
}

pub fn run(common: &CommonArgs, args: RunArgs) -> anyhow::Result<u8> {
    let config = match super::load_config(common, args.dir.as_deref()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    super::init_logging(config.settings.log_format == crate::config::LogFormat::Json);
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| config.settings.input.dir.clone());
    let state_dir = args
        .state_dir
        .clone()
        .or_else(|| config.settings.state_dir.clone())
        .unwrap_or_else(|| default_state_dir(&dir));
    let metrics_addr = match args.metrics_addr.as_deref() {
        None => config.settings.metrics_addr,
        Some(s) => match crate::config::parse_addr(s) {
            Ok(a) => a,
            Err(msg) => {
                eprintln!("mcpwatch run: --metrics-addr: {msg}");
                return Ok(EXIT_USAGE);
            }
        },
    };
    let opts = RunOptions {
        config,
        dir,
        state_dir,
        metrics_addr,
    };
    match crate::pipeline::run(opts) {
        Ok(()) => Ok(EXIT_OK),
        Err(e @ RunError::Locked(_)) => {
            eprintln!("mcpwatch run: {e}");
            Ok(EXIT_USAGE)
        }
        Err(e) => {
            eprintln!("mcpwatch run: {e}");
            Ok(EXIT_FAILURE)
        }
    }
}

/// `<dir>/../mcpwatch` (SPEC §2): beside the audit directory.
pub fn default_state_dir(dir: &Path) -> PathBuf {
    match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join("mcpwatch"),
        _ => PathBuf::from("mcpwatch"),
    }
}
