//! `mcpwatch outbox [retry [--dead] [ID...]]` (SPEC §7, §9): the pending
//! deliveries and dead letters per channel, each with its last error; and
//! putting dead letters back (or making pending ones due now).
//!
//! Listing only reads the state directory, so it works beside a running
//! `mcpwatch run` without disturbing it. `retry` applies the change itself
//! when no daemon holds the state directory, else hands it to the daemon
//! (see [`mcpwatch::alert::outbox::retry`]).
//!
//! Exit codes: 0 done; 1 the state directory cannot be read or written;
//! 2 configuration errors, or a retry refused (an unknown id, or a
//! channel no longer configured): then nothing was changed.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::{CommonArgs, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, printable};
use mcpwatch::alert::outbox::{self, Entry, OutboxError};
use mcpwatch::alert::router::DeliveryConfig;
use mcpwatch::event::Millis;

#[derive(Args, Debug)]
pub(crate) struct OutboxArgs {
    /// The audit log directory [default: .elevenlabs/audit]
    #[arg(long, value_name = "D", global = true)]
    pub(crate) dir: Option<PathBuf>,
    /// The daemon's state directory [default: <dir>/../mcpwatch]
    #[arg(long, value_name = "D", global = true)]
    pub(crate) state_dir: Option<PathBuf>,
    /// Output of the listing
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: Format,
    #[command(subcommand)]
    pub(crate) action: Option<OutboxAction>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub(crate) enum OutboxAction {
    /// Make pending deliveries due now, or with --dead put dead letters back
    /// for another try (a fresh max_age); all, or those whose group or
    /// alert id is given
    Retry {
        /// Dead letters instead of pending deliveries
        #[arg(long)]
        dead: bool,
        /// Group or alert ids [default: all]
        #[arg(value_name = "ID")]
        ids: Vec<String>,
    },
}

pub(crate) fn run(common: &CommonArgs, args: OutboxArgs) -> anyhow::Result<u8> {
    let config = match super::load_config(common, args.dir.as_deref()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    super::init_logging(false);
    let (_, state_dir) = config.dirs(args.dir.as_deref(), args.state_dir.as_deref());
    let cfg = DeliveryConfig::from(&config);
    let now = chrono::Utc::now().timestamp_millis();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    match args.action {
        None => match outbox::inspect(&state_dir) {
            Ok(entries) => {
                match args.format {
                    Format::Json => {
                        serde_json::to_writer_pretty(&mut out, &entries)?;
                        writeln!(out)?;
                    }
                    Format::Table => table(&entries, now, &mut out)?,
                }
                Ok(EXIT_OK)
            }
            Err(e) => failed(e, &mut err),
        },
        Some(OutboxAction::Retry { dead, ids }) => {
            match outbox::retry(&state_dir, &cfg, dead, &ids, now) {
                Ok((entries, by)) => {
                    retried(&entries, dead, by, &state_dir, &mut out)?;
                    Ok(EXIT_OK)
                }
                Err(e) => failed(e, &mut err),
            }
        }
    }
}

fn failed(e: OutboxError, err: &mut dyn Write) -> anyhow::Result<u8> {
    writeln!(err, "mcpwatch outbox: {e}")?;
    Ok(match e {
        OutboxError::Refused(_) => EXIT_USAGE,
        _ => EXIT_FAILURE,
    })
}

/// What `retry` did, one line per entry.
fn retried(
    entries: &[Entry],
    dead: bool,
    by: Option<bool>,
    state_dir: &std::path::Path,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if entries.is_empty() {
        return writeln!(
            out,
            "nothing to retry: no {}",
            if dead {
                "dead letters"
            } else {
                "pending deliveries"
            }
        );
    }
    let verb = if dead { "requeued" } else { "due now" };
    for e in entries {
        writeln!(
            out,
            "{verb}: {} {} ({} alert{}, {} {})",
            printable(&e.channel),
            e.group,
            e.alerts.len(),
            if e.alerts.len() == 1 { "" } else { "s" },
            printable(&e.rule),
            e.severity
        )?;
    }
    match by {
        None => Ok(()),
        Some(true) => writeln!(out, "applied by the running daemon"),
        Some(false) => writeln!(
            out,
            "the state directory {} is locked (by `mcpwatch run` or `mcpwatch rotate`) and the \
             request was not taken yet: it waits in outbox/requests/ for the daemon",
            state_dir.display()
        ),
    }
}

/// `5s`, `3m`, `2h`, `4d`: how long ago, roughly.
fn age(from: &str, now: Millis) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(from) else {
        return "?".to_string();
    };
    let s = (now - t.timestamp_millis()).max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// One row per entry, by channel; columns aligned, the last error last
/// (escaped: it quotes a receiver's answer).
fn table(entries: &[Entry], now: Millis, out: &mut dyn Write) -> std::io::Result<()> {
    if entries.is_empty() {
        return writeln!(out, "nothing pending, no dead letters");
    }
    let head = [
        "CHANNEL",
        "STATE",
        "GROUP",
        "ALERTS",
        "RULE",
        "SEVERITY",
        "ATTEMPTS",
        "AGE",
        "NEXT/DIED",
        "LAST ERROR",
    ];
    let rows: Vec<[String; 10]> = entries
        .iter()
        .map(|e| {
            let state = match &e.reason {
                Some(r) => format!("dead ({r})"),
                None => e.state.to_string(),
            };
            [
                printable(&e.channel),
                state,
                e.group.clone(),
                e.alerts.len().to_string(),
                printable(&e.rule),
                e.severity.clone(),
                e.attempts.to_string(),
                age(&e.entered, now),
                e.died
                    .clone()
                    .or_else(|| e.next_attempt.clone())
                    .unwrap_or_default(),
                e.last_error.as_deref().map(printable).unwrap_or_default(),
            ]
        })
        .collect();
    let mut width = head.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(&head))?;
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        writeln!(out, "{}", line(&cells))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-23T12:00:00Z.
    const NOW: Millis = 1_795_435_200_000;

    fn dead() -> Entry {
        Entry {
            channel: "siem".into(),
            state: "dead",
            group: "g1".into(),
            alerts: vec!["g1".into(), "a2".into()],
            rule: "rapid_tool_usage".into(),
            severity: "medium".into(),
            attempts: 1,
            entered: "2026-11-23T11:59:00.000Z".into(),
            next_attempt: None,
            died: Some("2026-11-23T11:59:30.000Z".into()),
            reason: Some("permanent".into()),
            last_error: Some("HTTP 400 Bad Request: no\u{1b}[31m".into()),
        }
    }

    #[test]
    fn the_table_lists_each_entry_with_its_last_error_escaped() {
        let mut out = Vec::new();
        table(&[dead()], NOW, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "CHANNEL  STATE             GROUP  ALERTS  RULE              SEVERITY  ATTEMPTS  AGE  NEXT/DIED                 LAST ERROR\n\
             siem     dead (permanent)  g1     2       rapid_tool_usage  medium    1         1m   2026-11-23T11:59:30.000Z  HTTP 400 Bad Request: no\\u{1b}[31m\n"
        );
        let mut out = Vec::new();
        table(&[], NOW, &mut out).unwrap();
        assert_eq!(out, b"nothing pending, no dead letters\n");
    }

    #[test]
    fn ages_are_rounded_down_to_their_unit() {
        assert_eq!(age("2026-11-23T11:59:59.500Z", NOW), "0s");
        assert_eq!(age("2026-11-23T11:59:00.000Z", NOW), "1m");
        assert_eq!(age("2026-11-23T11:00:00.001Z", NOW), "59m");
        assert_eq!(age("2026-11-22T12:00:00.000Z", NOW), "1d");
        assert_eq!(age("garbage", NOW), "?");
    }
}
