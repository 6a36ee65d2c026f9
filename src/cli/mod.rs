//! The commands of SPEC §7. `main.rs` calls [`main`]; each command lives in
//! its own file and returns the process exit code (0 success, 1 runtime
//! failure, 2 bad usage or configuration, 3 `scan --fail-on` hit).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub mod check;
pub mod report;
pub mod rotate;
pub mod run;
pub mod scan;
pub mod test_alert;

/// Exit codes of SPEC §7.
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_FOUND: u8 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "mcpwatch",
    version,
    about = "Watch MCP tool audit logs, detect anomalies, deliver alerts",
    long_about = "mcpwatch tails the audit logs in .elevenlabs/audit/ (tool-usage.log, \
approvals.log, errors.log), runs event-time detectors driven by the approval policy in \
security-config.json, delivers alerts by email and signed webhooks, and keeps the log \
directory compressed and pruned. No configuration file is required."
)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Args, Debug, Clone, Default)]
pub struct CommonArgs {
    /// The approval policy (security-config.json) [default: ./security-config.json when it exists]
    #[arg(long, global = true, value_name = "F")]
    pub config: Option<PathBuf>,
    /// Directory of rules/<rule>.toml overriding the built-in rules [default: ./rules/ when it exists]
    #[arg(long, global = true, value_name = "D")]
    pub rules: Option<PathBuf>,
    /// The daemon's own settings (mcpwatch.toml) [default: ./mcpwatch.toml when it exists]
    #[arg(long, global = true, value_name = "F")]
    pub settings: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The daemon: tail, detect, route, rotate, serve /metrics and /healthz
    Run(run::RunArgs),
    /// Run the detectors over files, directories and .zst archives
    Scan(scan::ScanArgs),
    /// Audit report over logs and archives
    Report(report::ReportArgs),
    /// Validate all configuration; with --tool, classify tools
    Check(check::CheckArgs),
    /// One rotation and pruning pass
    Rotate(rotate::RotateArgs),
    /// Send a test alert through the configured channels
    TestAlert(test_alert::TestAlertArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(a) => run::run(&cli.common, a),
        Command::Scan(a) => {
            raise_open_files_limit();
            scan::run(&cli.common, a)
        }
        Command::Report(a) => {
            raise_open_files_limit();
            report::run(&cli.common, a)
        }
        Command::Check(a) => check::run(&cli.common, a),
        Command::Rotate(a) => rotate::run(&cli.common, a),
        Command::TestAlert(a) => test_alert::run(&cli.common, a),
    };
    match code {
        Ok(c) => ExitCode::from(c),
        Err(e) => {
            eprintln!("mcpwatch: error: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// `scan` and `report` merge every file they read at once, so each holds
/// one descriptor per file: months of size-rotated archives can be more
/// than the usual soft limit of 1,024. Lifts the soft limit to the hard one
/// (as Go programs do at start); a failure leaves the limit as it was.
fn raise_open_files_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read or write only the struct they
    // are given, which lives for the call.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Logging to stderr for commands; `RUST_LOG` overrides the level.
pub fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Loads the configuration for a command; on errors prints them all to
/// stderr and returns the exit code (2).
pub fn load_config(
    common: &CommonArgs,
    dir: Option<&std::path::Path>,
) -> Result<crate::config::Config, u8> {
    let sources = crate::config::Sources {
        config: common.config.clone(),
        rules: common.rules.clone(),
        settings: common.settings.clone(),
        dir: dir.map(std::path::Path::to_path_buf),
    };
    match crate::config::load(&sources) {
        Ok(c) => Ok(c),
        Err(errors) => {
            eprintln!("{errors}");
            Err(EXIT_USAGE)
        }
    }
}

/// Parses `--since`/`--until`: a duration back from `now` (`24h`, `7d`)
/// or an RFC 3339 time.
pub fn parse_time_arg(s: &str, now: crate::event::Millis) -> Result<crate::event::Millis, String> {
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(d.timestamp_millis());
    }
    match crate::config::parse_duration(s) {
        Ok(d) => Ok(now - d),
        Err(_) => Err(format!(
            "invalid time {s:?}; expected a duration back from now (e.g. 24h, 7d) or RFC 3339 (e.g. 2026-11-23T00:00:00Z)"
        )),
    }
}

/// The selection of `--since` and `--until`.
pub fn time_range(
    since: Option<&str>,
    until: Option<&str>,
    now: crate::event::Millis,
) -> Result<crate::ingest::merge::TimeRange, String> {
    Ok(crate::ingest::merge::TimeRange {
        since: since.map(|s| parse_time_arg(s, now)).transpose()?,
        until: until.map(|s| parse_time_arg(s, now)).transpose()?,
    })
}

/// Text from log lines made safe for a terminal: control characters and
/// bidi overrides are shown escaped so a line cannot move the cursor,
/// reorder the display or fake output. See [`crate::text::escape`].
pub fn printable(s: &str) -> String {
    crate::text::escape(s).into_owned()
}
