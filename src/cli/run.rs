//! `mcpwatch run` (SPEC §7): the daemon. Resolves directories and the
//! metrics address, then hands over to [`mcpwatch::pipeline::run`].

use std::path::PathBuf;

use clap::Args;

use super::{CommonArgs, EXIT_FAILURE, EXIT_OK, EXIT_USAGE};
use mcpwatch::pipeline::{RunError, RunOptions};

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// The audit log directory to watch [default: .elevenlabs/audit]
    #[arg(long, value_name = "D")]
    pub(crate) dir: Option<PathBuf>,
    /// Where checkpoints, detector state and the outbox live [default: <dir>/../mcpwatch]
    #[arg(long, value_name = "D")]
    pub(crate) state_dir: Option<PathBuf>,
    /// Address for /metrics and /healthz ("off" disables; port 0 picks one) [default: 127.0.0.1:9464]
    #[arg(long, value_name = "A")]
    pub(crate) metrics_addr: Option<String>,
    /// How often the daemon's rotation and pruning pass runs (SPEC §6)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_interval)]
    pub(crate) rotate_every: std::time::Duration,
    /// Most bytes read from one file in one cycle: bounds the memory a large
    /// backlog takes (the file is the buffer; the next cycle reads on)
    #[arg(long, value_name = "BYTES", default_value_t = mcpwatch::pipeline::READ_LIMIT_PER_FILE)]
    pub read_limit: u64,
    /// Read the audit lines from NATS JetStream instead of --dir (nats://host:4222,…; SPEC §10)
    #[arg(
        long,
        value_name = "URL",
        env = "MCPWATCH_INPUT",
        hide_env_values = true
    )]
    pub(crate) input: Option<String>,
    /// The JetStream stream to read (with --input)
    #[arg(
        long,
        value_name = "NAME",
        default_value = "MCPWATCH_AUDIT",
        requires = "input"
    )]
    pub(crate) stream: String,
    /// The durable consumer's name (with --input)
    #[arg(
        long,
        value_name = "NAME",
        default_value = "mcpwatch",
        requires = "input"
    )]
    pub(crate) consumer: String,
    /// How long events are held to put many hosts' lines in ts order (with --input)
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_lateness, requires = "input")]
    pub(crate) allowed_lateness: std::time::Duration,
    /// High availability (with --input): instances of one group elect one that detects, the others stand by (docs/nats.md)
    #[arg(long, value_name = "NAME", requires = "input")]
    pub(crate) group: Option<String>,
    /// Copies of the group's key-value buckets, object store and MCPWATCH_ALERTS when run creates them (with --group)
    #[arg(long, value_name = "N", default_value_t = 1, requires = "group")]
    pub(crate) replicas: usize,
    /// How long an unreachable NATS is retried at start before giving up (exit 1)
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_interval, requires = "input")]
    pub(crate) connect_timeout: std::time::Duration,
}

fn parse_lateness(s: &str) -> Result<std::time::Duration, String> {
    let ms = mcpwatch::config::parse_duration(s)?;
    if ms < 0 {
        return Err("must not be negative".into());
    }
    Ok(std::time::Duration::from_millis(ms as u64))
}

/// `--input`: NATS URLs (`nats://`, `tls://`), comma-separated.
fn check_input(s: &str) -> Result<(), String> {
    for u in s.split(',').map(str::trim) {
        if !(u.starts_with("nats://") || u.starts_with("tls://")) {
            return Err(format!(
                "{:?}: expected a NATS URL (nats://host:4222, comma-separated for a cluster); the audit directory is --dir",
                mcpwatch::text::escape(u)
            ));
        }
    }
    Ok(())
}

pub(crate) fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let ms = mcpwatch::config::parse_duration(s)?;
    if ms <= 0 {
        return Err("must be more than 0".into());
    }
    Ok(std::time::Duration::from_millis(ms as u64))
}

pub(crate) fn run(common: &CommonArgs, args: RunArgs) -> anyhow::Result<u8> {
    let config = match super::load_config(common, args.dir.as_deref()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    super::init_logging(config.settings.log_format == mcpwatch::config::LogFormat::Json);
    let (dir, state_dir) = config.dirs(args.dir.as_deref(), args.state_dir.as_deref());
    let metrics_flag = match args.metrics_addr.as_deref() {
        None => None,
        Some(s) => match mcpwatch::config::parse_addr(s) {
            Ok(a) => Some(a),
            Err(msg) => {
                eprintln!("mcpwatch run: --metrics-addr: {msg}");
                return Ok(EXIT_USAGE);
            }
        },
    };
    let metrics_addr = metrics_flag.unwrap_or(config.settings.metrics_addr);
    if let Some(Err(msg)) = args.input.as_deref().map(check_input) {
        eprintln!("mcpwatch run: --input: {msg}");
        return Ok(EXIT_USAGE);
    }
    let nats = args
        .input
        .clone()
        .map(|url| mcpwatch::pipeline::NatsOptions {
            url,
            stream: args.stream.clone(),
            replicas: args.replicas,
            connect_timeout: args.connect_timeout,
            host: String::new(),
            duplicate_window: std::time::Duration::ZERO,
            allowed_lateness: args.allowed_lateness,
            consumer: args.consumer.clone(),
            forward: false,
            group: args.group.clone(),
        });
    let opts = RunOptions {
        config,
        dir,
        state_dir,
        metrics_addr,
        rotate_every: args.rotate_every,
        read_limit: args.read_limit.max(1),
        sources: Some(super::sources(common, args.dir.as_deref())),
        state_dir_flag: args.state_dir.clone(),
        metrics_addr_flag: metrics_flag,
        nats,
    };
    match mcpwatch::pipeline::run(opts) {
        Ok(()) => Ok(EXIT_OK),
        Err(e @ (RunError::Locked(_) | RunError::Usage(_))) => {
            eprintln!("mcpwatch run: {e}");
            Ok(EXIT_USAGE)
        }
        Err(e) => {
            eprintln!("mcpwatch run: {e}");
            Ok(EXIT_FAILURE)
        }
    }
}
