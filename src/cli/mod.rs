//! The commands of SPEC §7. `main.rs` calls [`main`]; each command lives in
//! its own file and returns the process exit code (0 success, 1 runtime
//! failure, 2 bad usage or configuration, 3 `scan --fail-on` hit).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub(crate) mod check;
pub(crate) mod completions;
pub(crate) mod forward;
pub(crate) mod outbox;
pub(crate) mod report;
pub(crate) mod rotate;
pub(crate) mod run;
pub(crate) mod scan;
pub(crate) mod test_alert;

/// Exit codes of SPEC §7.
pub(crate) const EXIT_OK: u8 = 0;
pub(crate) const EXIT_FAILURE: u8 = 1;
pub(crate) const EXIT_USAGE: u8 = 2;
pub(crate) const EXIT_FOUND: u8 = 3;

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
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) common: CommonArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct CommonArgs {
    /// The approval policy (security-config.json) [default: ./security-config.json when it exists]
    #[arg(long, global = true, value_name = "F")]
    pub(crate) config: Option<PathBuf>,
    /// Directory of rules/<rule>.toml overriding the built-in rules [default: ./rules/ when it exists]
    #[arg(long, global = true, value_name = "D")]
    pub(crate) rules: Option<PathBuf>,
    /// The daemon's own settings (mcpwatch.toml) [default: ./mcpwatch.toml when it exists]
    #[arg(long, global = true, value_name = "F")]
    pub(crate) settings: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// The daemon: tail, detect, route, rotate, serve /metrics and /healthz
    Run(run::RunArgs),
    /// Tail the audit logs and publish each line to NATS JetStream (SPEC §10)
    Forward(forward::ForwardArgs),
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
    /// Pending deliveries and dead letters per channel; `retry` puts them back
    Outbox(outbox::OutboxArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(completions::CompletionsArgs),
    /// Print the manual page (or write every command's page with --dir)
    Man(completions::ManArgs),
}

/// Entry point of the binary.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(a) => run::run(&cli.common, a),
        Command::Forward(a) => forward::run(&cli.common, a),
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
        Command::Outbox(a) => outbox::run(&cli.common, a),
        Command::Completions(a) => completions::completions(a),
        Command::Man(a) => completions::man(a),
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
pub(crate) fn init_logging(json: bool) {
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

/// Where a command's configuration comes from: the common flags and the
/// audit directory (whose `config.json` holds retention).
pub(crate) fn sources(
    common: &CommonArgs,
    dir: Option<&std::path::Path>,
) -> mcpwatch::config::Sources {
    mcpwatch::config::Sources {
        config: common.config.clone(),
        rules: common.rules.clone(),
        settings: common.settings.clone(),
        dir: dir.map(std::path::Path::to_path_buf),
    }
}

/// Loads the configuration for a command; on errors prints them all to
/// stderr and returns the exit code (2).
pub(crate) fn load_config(
    common: &CommonArgs,
    dir: Option<&std::path::Path>,
) -> Result<mcpwatch::config::Config, u8> {
    match mcpwatch::config::load(&sources(common, dir)) {
        Ok(c) => Ok(c),
        Err(errors) => {
            eprintln!("{errors}");
            Err(EXIT_USAGE)
        }
    }
}

/// Earliest and latest instants `--since`/`--until` may name: RFC 3339's
/// years 0000 to 9999, the times an alert or a report can print. A
/// duration reaching back further (`99999999999h`) is a mistake, not "since
/// forever": it is refused instead of silently selecting everything.
const TIME_ARG_MIN: mcpwatch::event::Millis = -62_167_219_200_000; // 0000-01-01T00:00:00Z
const TIME_ARG_MAX: mcpwatch::event::Millis = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

/// Parses `--since`/`--until`: a duration back from `now` (`24h`, `7d`)
/// or an RFC 3339 time. A duration too large for a representable time is
/// an error.
pub(crate) fn parse_time_arg(
    s: &str,
    now: mcpwatch::event::Millis,
) -> Result<mcpwatch::event::Millis, String> {
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(d.timestamp_millis());
    }
    match mcpwatch::config::parse_duration(s) {
        Ok(d) => now
            .checked_sub(d)
            .filter(|t| (TIME_ARG_MIN..=TIME_ARG_MAX).contains(t))
            .ok_or_else(|| {
                format!(
                    "duration {s:?} is too large: it reaches back before the year 0000; \
                     expected a duration back from now (e.g. 24h, 7d) or RFC 3339 (e.g. 2026-11-23T00:00:00Z)"
                )
            }),
        Err(_) => Err(format!(
            "invalid time {s:?}; expected a duration back from now (e.g. 24h, 7d) or RFC 3339 (e.g. 2026-11-23T00:00:00Z)"
        )),
    }
}

/// The selection of `--since` and `--until`. Each error names its flag;
/// `--since` later than `--until` is an error naming both (it would select
/// nothing and look like a clean result).
pub(crate) fn time_range(
    since: Option<&str>,
    until: Option<&str>,
    now: mcpwatch::event::Millis,
) -> Result<mcpwatch::ingest::merge::TimeRange, String> {
    let parse = |flag: &str, v: Option<&str>| {
        v.map(|s| parse_time_arg(s, now).map_err(|e| format!("--{flag}: {e}")))
            .transpose()
    };
    let range = mcpwatch::ingest::merge::TimeRange {
        since: parse("since", since)?,
        until: parse("until", until)?,
    };
    if let (Some(s), Some(u), Some(s_arg), Some(u_arg)) = (range.since, range.until, since, until)
        && s > u
    {
        return Err(format!(
            "--since {s_arg} ({}) is later than --until {u_arg} ({}): nothing could be selected; \
             expected --since before --until",
            mcpwatch::alert::format_ts(s),
            mcpwatch::alert::format_ts(u)
        ));
    }
    Ok(range)
}

/// Text from log lines made safe for a terminal: control characters and
/// bidi overrides are shown escaped so a line cannot move the cursor,
/// reorder the display or fake output. See [`mcpwatch::text::escape`].
pub(crate) fn printable(s: &str) -> String {
    mcpwatch::text::escape(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-23T12:00:00Z.
    const NOW: mcpwatch::event::Millis = 1_795_435_200_000;

    #[test]
    fn since_later_than_until_is_an_error_naming_both() {
        let e = time_range(Some("2026-11-22T00:00:00Z"), Some("48h"), NOW).unwrap_err();
        assert_eq!(
            e,
            "--since 2026-11-22T00:00:00Z (2026-11-22T00:00:00.000Z) is later than \
             --until 48h (2026-11-21T12:00:00.000Z): nothing could be selected; \
             expected --since before --until"
        );
        assert!(time_range(Some("1h"), Some("2h"), NOW).is_err());
        // Equal bounds and the right order stay accepted.
        assert!(time_range(Some("48h"), Some("2026-11-22T00:00:00Z"), NOW).is_ok());
        assert!(time_range(Some("1h"), Some("1h"), NOW).is_ok());
        assert!(time_range(Some("1h"), None, NOW).is_ok());
    }

    #[test]
    fn a_duration_too_large_for_a_time_is_an_error_not_unbounded() {
        let e = time_range(Some("99999999999h"), None, NOW).unwrap_err();
        assert!(
            e.starts_with("--since: duration \"99999999999h\" is too large"),
            "{e}"
        );
        let e = time_range(None, Some("9999999999999999d"), NOW).unwrap_err();
        assert!(e.starts_with("--until: "), "{e}");
        // Back to the year 0000 still works; a day further does not.
        let to_year_0 = (NOW - TIME_ARG_MIN) / 86_400_000;
        assert!(parse_time_arg(&format!("{to_year_0}d"), NOW).is_ok());
        assert!(parse_time_arg(&format!("{}d", to_year_0 + 1), NOW).is_err());
        assert_eq!(parse_time_arg("24h", NOW), Ok(NOW - 86_400_000));
    }
}
