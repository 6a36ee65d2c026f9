//! `mcpwatch forward` (SPEC §10): tails the audit logs as `run` does and
//! publishes each accepted line to NATS JetStream; no detection. Resolves
//! directories, the host name and the NATS options, then hands over to
//! [`mcpwatch::pipeline::forward`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::run::parse_interval;
use super::{CommonArgs, EXIT_FAILURE, EXIT_OK, EXIT_USAGE};
use mcpwatch::pipeline::{NatsOptions, RunError, RunOptions};

#[derive(Args, Debug)]
pub(crate) struct ForwardArgs {
    /// NATS server URLs, comma-separated (nats://host:4222,nats://host2:4222)
    #[arg(
        long,
        value_name = "URL",
        env = "MCPWATCH_NATS_URL",
        hide_env_values = true
    )]
    pub(crate) nats: String,
    /// The JetStream stream (created when missing)
    #[arg(long, value_name = "NAME", default_value = "MCPWATCH_AUDIT")]
    pub(crate) stream: String,
    /// Copies of the stream when it is created (1, 3 or 5 in a cluster)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub(crate) replicas: u8,
    /// The stream's duplicate window when it is created
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_interval)]
    pub(crate) duplicate_window: Duration,
    /// This host's name in Mcpwatch-Host and Nats-Msg-Id [default: the system's host name]
    #[arg(long, value_name = "NAME", env = "MCPWATCH_HOST")]
    pub(crate) host: Option<String>,
    /// How long an unreachable NATS is retried at start before giving up (exit 1)
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_interval)]
    pub(crate) connect_timeout: Duration,
    /// The audit log directory to tail [default: .elevenlabs/audit]
    #[arg(long, value_name = "D")]
    pub(crate) dir: Option<PathBuf>,
    /// Where the checkpoint lives [default: <dir>/../mcpwatch]
    #[arg(long, value_name = "D")]
    pub(crate) state_dir: Option<PathBuf>,
    /// Address for /metrics and /healthz (port 0 picks one) [default: off]
    #[arg(long, value_name = "A")]
    pub(crate) metrics_addr: Option<String>,
    /// Most bytes read from one file in one cycle
    #[arg(long, value_name = "BYTES", default_value_t = mcpwatch::pipeline::READ_LIMIT_PER_FILE)]
    pub(crate) read_limit: u64,
}

/// A host name that fits a header and `Nats-Msg-Id`'s first part: not
/// empty, no `/`, no whitespace or control characters.
fn check_host(h: &str) -> Result<(), String> {
    if h.is_empty() || h.len() > 255 {
        return Err("must be 1 to 255 characters".into());
    }
    if h.chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "{:?} may not contain '/', ':', spaces or control characters",
            super::printable(h)
        ));
    }
    Ok(())
}

pub(crate) fn run(common: &CommonArgs, args: ForwardArgs) -> anyhow::Result<u8> {
    let config = match super::load_config(common, args.dir.as_deref()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    super::init_logging(config.settings.log_format == mcpwatch::config::LogFormat::Json);
    // Empty: the library asks the system (and makes the name fit).
    let host = args.host.clone().unwrap_or_default();
    if args.host.is_some()
        && let Err(msg) = check_host(&host)
    {
        eprintln!("mcpwatch forward: --host: {msg}");
        return Ok(EXIT_USAGE);
    }
    let metrics_addr = match args.metrics_addr.as_deref() {
        None => None,
        Some(s) => match mcpwatch::config::parse_addr(s) {
            Ok(a) => a,
            Err(msg) => {
                eprintln!("mcpwatch forward: --metrics-addr: {msg}");
                return Ok(EXIT_USAGE);
            }
        },
    };
    let (dir, state_dir) = config.dirs(args.dir.as_deref(), args.state_dir.as_deref());
    let opts = RunOptions {
        config,
        dir,
        state_dir,
        metrics_addr,
        rotate_every: Duration::from_secs(60),
        read_limit: args.read_limit.max(1),
        sources: None,
        state_dir_flag: args.state_dir.clone(),
        metrics_addr_flag: None,
        nats: Some(NatsOptions {
            url: args.nats,
            stream: args.stream,
            replicas: args.replicas as usize,
            connect_timeout: args.connect_timeout,
            host,
            duplicate_window: args.duplicate_window,
            allowed_lateness: Duration::ZERO,
            consumer: String::new(),
            forward: true,
            group: None,
        }),
    };
    match mcpwatch::pipeline::run(opts) {
        Ok(()) => Ok(EXIT_OK),
        Err(e @ RunError::Locked(_)) => {
            eprintln!("mcpwatch forward: {e}");
            Ok(EXIT_USAGE)
        }
        Err(e) => {
            eprintln!("mcpwatch forward: {e}");
            Ok(EXIT_FAILURE)
        }
    }
}
