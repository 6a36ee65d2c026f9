//! `mcpwatch test-alert` (SPEC §7): sends one clearly marked test alert
//! (rule `test_alert`, severity low) through each configured channel, or
//! only `--channel NAME`, straight to the channel (not through the outbox),
//! and prints `<name>: ok` or `<name>: <error>` per channel. An incident
//! action (SPEC §5) runs only when `--channel` names it.
//!
//! Exit codes: 0 all ok; 1 any channel failed; 2 configuration errors, no
//! channel configured, or an unknown `--channel` (the message lists the
//! names). Errors never hold a secret: the channels build them without
//! one and redact any value of `password_env` / `secret_env` a server
//! might echo.

use std::io::Write;

use clap::Args;

use super::{CommonArgs, EXIT_FAILURE, EXIT_OK, EXIT_USAGE};
use mcpwatch::alert::delivery::send_test;
use mcpwatch::alert::router::DeliveryConfig;

#[derive(Args, Debug)]
pub(crate) struct TestAlertArgs {
    /// Only this channel (by its name in mcpwatch.toml)
    #[arg(long, value_name = "NAME")]
    pub(crate) channel: Option<String>,
}

pub(crate) fn run(common: &CommonArgs, args: TestAlertArgs) -> anyhow::Result<u8> {
    super::init_logging(false);
    let config = match super::load_config(common, None) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    for w in &config.warnings {
        eprintln!("mcpwatch test-alert: warning: {w}");
    }
    let cfg = DeliveryConfig::from(&config);
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_with(
        &cfg,
        args.channel.as_deref(),
        &mut stdout.lock(),
        &mut stderr.lock(),
    )
}

/// The command without configuration loading: sends and reports to `out`
/// (results) and `err` (usage problems); returns the exit code.
pub(crate) fn run_with(
    cfg: &DeliveryConfig,
    channel: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = match rt.block_on(send_test(cfg, channel)) {
        Ok(r) => r,
        Err(e) => {
            writeln!(err, "mcpwatch test-alert: {e}")?;
            return Ok(EXIT_USAGE);
        }
    };
    if results.is_empty() {
        writeln!(
            err,
            "mcpwatch test-alert: no channel configured; add [[channels.email]] or \
             [[channels.webhook]] to mcpwatch.toml{}",
            if cfg.actions.is_empty() {
                ""
            } else {
                " (an action runs only when named: --channel NAME)"
            }
        )?;
        return Ok(EXIT_USAGE);
    }
    Ok(report(&results, out)?)
}

/// Prints one line per channel (a failure as its error shows itself); 1 if
/// any failed.
pub(crate) fn report<E: std::fmt::Display>(
    results: &[(String, Result<(), E>)],
    out: &mut dyn Write,
) -> std::io::Result<u8> {
    let mut code = EXIT_OK;
    for (name, r) in results {
        match r {
            Ok(()) => writeln!(out, "{name}: ok")?,
            Err(e) => {
                code = EXIT_FAILURE;
                writeln!(out, "{name}: {e}")?;
            }
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests;
