//! `mcpwatch scan` (SPEC §7): the detectors over files, directories and
//! `.zst` archives, merged in ts order; alerts to stdout, a summary to
//! stderr. Reads and writes no daemon state.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Args;

use super::{CommonArgs, EXIT_FOUND, EXIT_OK, EXIT_USAGE};
use mcpwatch::alert::Alert;
use mcpwatch::detect::Engine;
use mcpwatch::event::{Kind, Severity};
use mcpwatch::ingest::input::discover;
use mcpwatch::ingest::merge::{ReadStats, Reading, merge_files_auto};
use mcpwatch::ingest::parse::Parser;

#[derive(Args, Debug)]
pub(crate) struct ScanArgs {
    /// Files, directories and .zst archives [default: .elevenlabs/audit/]
    #[arg(value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
    /// Only events at or after T ("24h" back from now, or RFC 3339)
    #[arg(long, value_name = "T")]
    pub(crate) since: Option<String>,
    /// Only events before T ("24h" back from now, or RFC 3339)
    #[arg(long, value_name = "T")]
    pub(crate) until: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = ScanFormat::Ndjson)]
    pub(crate) format: ScanFormat,
    /// Exit 3 when an alert at or above this severity was found
    #[arg(long, value_name = "SEV", value_parser = ["low", "medium", "high", "critical"])]
    pub(crate) fail_on: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScanFormat {
    Ndjson,
    Json,
    Table,
}

/// Inputs larger than this get a progress bar when stderr is a terminal.
const PROGRESS_MIN_BYTES: u64 = 100 * 1024 * 1024;

/// Rejected lines reported one by one per file before they are only counted.
const REJECTS_SHOWN_PER_FILE: u64 = 10;

pub(crate) fn run(common: &CommonArgs, args: ScanArgs) -> anyhow::Result<u8> {
    super::init_logging(false);
    let config = match super::load_config(common, None) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let now = chrono::Utc::now().timestamp_millis();
    let range = match super::time_range(args.since.as_deref(), args.until.as_deref(), now) {
        Ok(r) => r,
        Err(msg) => {
            eprintln!("mcpwatch scan: {msg}");
            return Ok(EXIT_USAGE);
        }
    };
    let files = match discover(&args.paths, &config.settings.input.dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("mcpwatch scan: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    if config.policy.is_none() {
        eprintln!(
            "mcpwatch scan: no security-config.json: the policy is unknown, disabled_tool and approval_bypass are off"
        );
    }
    let fail_on = args.fail_on.as_deref().and_then(Severity::parse);
    let parser = Parser {
        max_line_bytes: config.settings.input.max_line_bytes,
        now_ms: now,
    };
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(&f.path).ok())
        .map(|m| m.len())
        .sum();
    let counter = Arc::new(AtomicU64::new(0));
    let bar = (total >= PROGRESS_MIN_BYTES && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} scan [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });

    let mut engine = Engine::new(&config);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut sink = AlertSink::new(args.format);
    let mut rejects_by_file: BTreeMap<String, u64> = BTreeMap::new();
    let mut batch = Vec::new();
    let mut write_err: Option<std::io::Error> = None;
    let mut tick = 0u32;
    let mut on_reject = |r: mcpwatch::ingest::merge::Rejected<'_>| {
        let n = rejects_by_file.entry(r.file.to_string()).or_default();
        *n += 1;
        if *n <= REJECTS_SHOWN_PER_FILE {
            eprintln!(
                "warning: {}:{}: line rejected ({})",
                r.file,
                r.line,
                r.reason.as_str()
            );
        } else if *n == REJECTS_SHOWN_PER_FILE + 1 {
            eprintln!(
                "warning: {}: more rejected lines; only counted from here on",
                r.file
            );
        }
    };
    let mut on_event = |ev: &mcpwatch::event::Event, line: mcpwatch::event::LineRef<'_>| {
        engine.process(ev, line, &mut batch);
        for a in batch.drain(..) {
            if let Err(e) = sink.push(&mut out, a)
                && write_err.is_none()
            {
                write_err = Some(e);
            }
        }
        if let Some(b) = &bar {
            tick = tick.wrapping_add(1);
            if tick.is_multiple_of(4096) {
                b.set_position(counter.load(Ordering::Relaxed));
            }
        }
    };
    let bytes_read = bar.as_ref().map(|_| counter.clone());
    // With two cores, reading and parsing overlap detection (and parsing
    // is shared by both).
    let read = Reading {
        files: &files,
        parser: &parser,
        range,
        bytes_read,
    };
    let stats = merge_files_auto(read, &mut on_reject, &mut on_event);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let stats = match stats {
        Ok(s) => s,
        Err(e) => anyhow::bail!("{e}"),
    };
    sink.finish(&mut out)?;
    out.flush()?;
    if let Some(e) = write_err {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Ok(EXIT_OK);
        }
        return Err(e.into());
    }
    eprintln!("{}", summary(files.len(), &stats, &sink.by_rule));
    Ok(match (fail_on, sink.max_severity) {
        (Some(f), Some(m)) if m >= f => EXIT_FOUND,
        _ => EXIT_OK,
    })
}

/// Streams alerts in the chosen format (ndjson and json without holding
/// them; table collects to align columns).
struct AlertSink {
    format: ScanFormat,
    count: u64,
    by_rule: BTreeMap<String, u64>,
    max_severity: Option<Severity>,
    table: Vec<Alert>,
}

impl AlertSink {
    fn new(format: ScanFormat) -> Self {
        AlertSink {
            format,
            count: 0,
            by_rule: BTreeMap::new(),
            max_severity: None,
            table: Vec::new(),
        }
    }

    fn push(&mut self, out: &mut impl Write, a: Alert) -> std::io::Result<()> {
        *self.by_rule.entry(a.rule.clone()).or_default() += 1;
        self.max_severity = self.max_severity.max(Some(a.severity));
        self.count += 1;
        match self.format {
            ScanFormat::Ndjson => {
                serde_json::to_writer(&mut *out, &a)?;
                out.write_all(b"\n")
            }
            ScanFormat::Json => {
                out.write_all(if self.count == 1 { b"[\n  " } else { b",\n  " })?;
                serde_json::to_writer(&mut *out, &a)?;
                Ok(())
            }
            ScanFormat::Table => {
                self.table.push(a);
                Ok(())
            }
        }
    }

    fn finish(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        match self.format {
            ScanFormat::Ndjson => Ok(()),
            ScanFormat::Json => out.write_all(if self.count == 0 { b"[]\n" } else { b"\n]\n" }),
            ScanFormat::Table => write_table(out, &self.table),
        }
    }
}

fn write_table(out: &mut impl Write, alerts: &[Alert]) -> std::io::Result<()> {
    let header = [
        "TS", "SEVERITY", "RULE", "KEY", "VALUE", "EVIDENCE", "MESSAGE",
    ];
    let rows: Vec<[String; 7]> = alerts
        .iter()
        .map(|a| {
            let key: Vec<String> = a.key.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let ev = a
                .evidence
                .first()
                .map(|e| format!("{}:{}", super::printable(&e.file), e.line))
                .unwrap_or_default();
            [
                a.ts.clone(),
                a.severity.as_str().to_string(),
                super::printable(&a.rule),
                super::printable(&key.join(" ")),
                a.value.map(|v| v.to_string()).unwrap_or_default(),
                ev,
                super::printable(&a.message),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &[&str]| -> std::io::Result<()> {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                // Padded by hand: `format!`'s width stops at 65,535, and a
                // key field may be a 1 MiB token id.
                s.push_str(c);
                let pad = widths[i].saturating_sub(c.chars().count()) + 2;
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(out, &header)?;
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(out, &cells)?;
    }
    Ok(())
}

fn summary(files: usize, stats: &ReadStats, by_rule: &BTreeMap<String, u64>) -> String {
    let events: u64 = stats.events.values().sum();
    let kinds: Vec<String> = Kind::ALL
        .iter()
        .map(|k| format!("{} {}", k.as_str(), stats.events.get(k).unwrap_or(&0)))
        .collect();
    let rejected: u64 = stats.rejected.values().sum();
    let reasons: Vec<String> = stats
        .rejected
        .iter()
        .map(|(r, n)| format!("{} {n}", r.as_str()))
        .collect();
    let alerts: u64 = by_rule.values().sum();
    let rules: Vec<String> = by_rule.iter().map(|(r, n)| format!("{r} {n}")).collect();
    let mut s = format!(
        "scan: {files} files, {events} events ({}), {rejected} rejected",
        kinds.join(", ")
    );
    if !reasons.is_empty() {
        s.push_str(&format!(" ({})", reasons.join(", ")));
    }
    if stats.filtered > 0 {
        s.push_str(&format!(", {} outside --since/--until", stats.filtered));
    }
    s.push_str(&format!(", {alerts} alerts"));
    if !rules.is_empty() {
        s.push_str(&format!(" ({})", rules.join(", ")));
    }
    s
}
