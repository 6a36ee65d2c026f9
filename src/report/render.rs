//! The four formats of a [`Report`]: `text` for a terminal, `json` (the
//! complete report), `csv` (one row per server × tool, RFC 4180) and
//! `compliance` (what an auditor asks for); `html` is in [`super::html`].
//!
//! Every value taken from logs is escaped by [`crate::text::escape`] in the
//! text formats and in CSV cells alike (control characters, bidi overrides),
//! so a crafted tool name cannot move the cursor, retitle the terminal of
//! someone who runs `cat week.csv`, reorder a line or fake one; CSV also
//! quotes as RFC 4180 says and defuses cells a spreadsheet would run as a
//! formula.

use std::io::{self, Write};

use super::model::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Csv,
    Compliance,
    /// The investigation timeline, one line per event or alert (needs
    /// [`super::ReportOptions::timeline`]).
    Timeline,
    /// The same, one JSON object per line.
    TimelineJson,
    /// One self-contained HTML page with charts.
    Html,
}

/// Writes `report` in `format`.
pub fn render(out: &mut dyn Write, report: &Report, format: Format) -> io::Result<()> {
    match format {
        Format::Text => write_text(out, report),
        Format::Json => write_json(out, report),
        Format::Csv => write_csv(out, report),
        Format::Compliance => write_compliance(out, report),
        Format::Timeline => super::timeline::write_text(out, &report.timeline),
        Format::TimelineJson => super::timeline::write_json(out, &report.timeline),
        Format::Html => super::html::write_html(out, report),
    }
}

fn esc(s: &str) -> String {
    crate::text::escape(s).into_owned()
}

pub(crate) fn write_json(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    out.write_all(b"\n")
}

/// The CSV header, in column order.
pub(crate) const CSV_HEADER: [&str; 14] = [
    "server",
    "tool",
    "calls",
    "success",
    "error",
    "denied",
    "approvals",
    "denials",
    "timeouts",
    "errors",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
];

/// RFC 4180: one row per server × tool (and the `(other)` overflow row),
/// CRLF line endings, fields quoted when they hold `,`, `"`, CR or LF.
pub(crate) fn write_csv(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    write_csv_row(out, CSV_HEADER.iter().map(|s| s.to_string()))?;
    for row in report.tools.iter().chain(report.other.iter()) {
        let opt = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
        let l = &row.latency_ms;
        write_csv_row(
            out,
            [
                defuse(&row.server),
                defuse(&row.tool),
                row.calls.to_string(),
                row.outcomes.success.to_string(),
                row.outcomes.error.to_string(),
                row.outcomes.denied.to_string(),
                row.approvals.approve.to_string(),
                row.approvals.deny.to_string(),
                row.approvals.timeout.to_string(),
                row.errors.total.to_string(),
                opt(l.p50),
                opt(l.p95),
                opt(l.p99),
                opt(l.max),
            ]
            .into_iter(),
        )?;
    }
    Ok(())
}

/// A text cell from a log: escaped as in every human-facing format (a CSV
/// ends up in a terminal as often as in a spreadsheet), then defused: a
/// cell starting with `=`, `+`, `-` or `@` is run as a formula by
/// spreadsheets (CSV injection), so it gets a leading `'`. (A leading tab or
/// CR, the other formula triggers, is already shown as `\t` or `\r`.)
fn defuse(s: &str) -> String {
    let s = crate::text::escape(s);
    if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.into_owned()
    }
}

fn write_csv_row(out: &mut dyn Write, cells: impl Iterator<Item = String>) -> io::Result<()> {
    let mut line = String::new();
    for (i, c) in cells.enumerate() {
        if i > 0 {
            line.push(',');
        }
        if c.contains([',', '"', '\r', '\n']) {
            line.push('"');
            line.push_str(&c.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(&c);
        }
    }
    line.push_str("\r\n");
    out.write_all(line.as_bytes())
}

/// Left-aligned first columns, right-aligned numbers; widths from content.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Columns from this index on are right-aligned.
    numeric_from: usize,
}

impl Table {
    fn new(header: &[&str], numeric_from: usize) -> Self {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
            numeric_from,
        }
    }

    fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |out: &mut dyn Write, cells: &[String]| -> io::Result<()> {
            let mut s = String::from("  ");
            for (i, c) in cells.iter().enumerate() {
                let pad = widths[i].saturating_sub(c.chars().count());
                if i > 0 {
                    s.push_str("  ");
                }
                if i >= self.numeric_from {
                    s.push_str(&" ".repeat(pad));
                    s.push_str(c);
                } else {
                    s.push_str(c);
                    s.push_str(&" ".repeat(pad));
                }
            }
            writeln!(out, "{}", s.trim_end())
        };
        line(out, &self.header)?;
        for r in &self.rows {
            line(out, r)?;
        }
        Ok(())
    }
}

fn opt_ms(v: Option<u64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_else(|| "-".into())
}

fn pct(v: Option<f64>) -> String {
    v.map(|r| format!("{:.1}%", r * 100.0))
        .unwrap_or_else(|| "-".into())
}

pub(super) fn period_line(r: &Report) -> String {
    let since = r.period.since.as_deref().unwrap_or("(start of data)");
    let until = r.period.until.as_deref().unwrap_or("(end of data)");
    match &r.period.name {
        Some(n) => format!("{n}: {since} to {until} (UTC, end excluded)"),
        None => format!("{since} to {until} (UTC, end excluded)"),
    }
}

fn filters_line(r: &Report) -> Option<String> {
    let f = &r.filters;
    let parts: Vec<String> = [
        ("user", &f.user),
        ("server", &f.server),
        ("token", &f.token),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", esc(v))))
    .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

pub(crate) fn write_text(out: &mut dyn Write, r: &Report) -> io::Result<()> {
    writeln!(out, "mcpwatch audit report")?;
    writeln!(out, "Period:    {}", period_line(r))?;
    if let Some(f) = filters_line(r) {
        writeln!(out, "Filters:   {f}")?;
    }
    writeln!(
        out,
        "Inputs:    {} log files, {} alert files, {} bytes in {}",
        r.inputs.log_files,
        r.inputs.alert_files,
        r.inputs.bytes,
        esc(&r.inputs.dir)
    )?;
    writeln!(
        out,
        "Events:    {} selected of {} read ({} outside the period, {} excluded by filters)",
        r.inputs.events_selected,
        r.inputs.events_read,
        r.limits.events_outside_period,
        r.limits.events_filtered_out
    )?;
    writeln!(
        out,
        "Totals:    {} tool calls, {} approval decisions, {} errors; {} servers, {} tools, {} users",
        r.totals.tool_calls,
        r.totals.approvals,
        r.totals.errors,
        r.totals.servers,
        r.totals.tools,
        r.totals.users
    )?;

    writeln!(out, "\nServers")?;
    let mut t = Table::new(
        &[
            "SERVER", "TOOLS", "CALLS", "OK", "ERROR", "DENIED", "APPROVE", "DENY", "TIMEOUT",
            "ERRORS", "P50MS", "P95MS", "P99MS", "MAXMS",
        ],
        1,
    );
    for s in &r.servers {
        let mut row = vec![esc(&s.server), s.tools.to_string(), s.calls.to_string()];
        row.extend(decision_cells(&s.outcomes, &s.approvals));
        row.push(s.errors.total.to_string());
        row.extend(latency_cells(&s.latency_ms));
        t.push(row);
    }
    t.write(out)?;

    writeln!(out, "\nTools")?;
    let mut t = Table::new(
        &[
            "SERVER", "TOOL", "CALLS", "OK", "ERROR", "DENIED", "APPROVE", "DENY", "TIMEOUT",
            "DENY%", "ERRORS", "P50MS", "P95MS", "P99MS", "MAXMS",
        ],
        2,
    );
    for s in r.tools.iter().chain(r.other.iter()) {
        let mut row = vec![esc(&s.server), esc(&s.tool), s.calls.to_string()];
        row.extend(decision_cells(&s.outcomes, &s.approvals));
        row.push(pct(s.approvals.deny_rate));
        row.push(s.errors.total.to_string());
        row.extend(latency_cells(&s.latency_ms));
        t.push(row);
    }
    t.write(out)?;
    if r.limits.pairs_overflow_events > 0 {
        writeln!(
            out,
            "  ({} events of pairs beyond the cap of {} are in the (other) row)",
            r.limits.pairs_overflow_events, r.limits.max_pairs
        )?;
    }

    let modes: Vec<(&ToolRow, &ModeDecisions)> = r
        .tools
        .iter()
        .flat_map(|t| t.approvals.by_mode.iter().map(move |m| (t, m)))
        .collect();
    if !modes.is_empty() {
        writeln!(out, "\nApproval decisions by mode")?;
        let mut t = Table::new(
            &[
                "SERVER", "TOOL", "MODE", "APPROVE", "DENY", "TIMEOUT", "APPROVE%", "DENY%",
                "TIMEOUT%",
            ],
            3,
        );
        for (row, m) in modes {
            t.push(vec![
                esc(&row.server),
                esc(&row.tool),
                m.mode.clone(),
                m.approve.to_string(),
                m.deny.to_string(),
                m.timeout.to_string(),
                pct(m.approve_rate),
                pct(m.deny_rate),
                pct(m.timeout_rate),
            ]);
        }
        t.write(out)?;
    }

    let errs: Vec<(&ToolRow, &String, &u64)> = r
        .tools
        .iter()
        .flat_map(|t| t.errors.by_type.iter().map(move |(k, v)| (t, k, v)))
        .collect();
    if !errs.is_empty() {
        writeln!(out, "\nErrors by type")?;
        let mut t = Table::new(&["SERVER", "TOOL", "ERROR_TYPE", "COUNT"], 3);
        for (row, k, v) in errs {
            t.push(vec![
                esc(&row.server),
                esc(&row.tool),
                esc(k),
                v.to_string(),
            ]);
        }
        t.write(out)?;
    }

    writeln!(out, "\nUsers")?;
    let mut t = Table::new(
        &[
            "USER",
            "CALLS",
            "DENIED_CALLS",
            "APPROVE",
            "DENY",
            "TIMEOUT",
            "ERRORS",
            "FIRST_SEEN",
            "LAST_SEEN",
            "MEAN/H",
            "SD/H",
            "BUSIEST_HOUR",
            "BUSIEST_CALLS",
        ],
        1,
    );
    for u in r.users.iter().chain(r.users_other.iter()) {
        let (mean, sd) = u
            .hourly_calls
            .as_ref()
            .map_or((String::new(), String::new()), |b| {
                (format!("{:.2}", b.mean), format!("{:.2}", b.sd))
            });
        let busiest = u.busiest_hour.as_ref();
        t.push(vec![
            esc(&u.user),
            u.calls.to_string(),
            u.denied_calls.to_string(),
            u.approvals.to_string(),
            u.denials.to_string(),
            u.timeouts.to_string(),
            u.errors.to_string(),
            u.first_seen.clone().unwrap_or_default(),
            u.last_seen.clone().unwrap_or_default(),
            mean,
            sd,
            busiest.map(|b| b.hour.clone()).unwrap_or_default(),
            busiest.map(|b| b.calls.to_string()).unwrap_or_default(),
        ]);
    }
    t.write(out)?;

    writeln!(out, "\n{}", hour_histogram(&r.hour_of_day))?;

    writeln!(
        out,
        "\nNew tools (first called in the period): {}{}",
        r.new_tools.total,
        if r.new_tools.approximate {
            " (approximate: older data exceeded the seen-set cap)"
        } else {
            ""
        }
    )?;
    if !r.new_tools.listed.is_empty() {
        let mut t = Table::new(&["FIRST_SEEN", "SERVER", "TOOL", "USER", "EVIDENCE"], 99);
        for n in &r.new_tools.listed {
            t.push(vec![
                n.first_seen.clone(),
                esc(&n.server),
                esc(&n.tool),
                esc(&n.user),
                format!("{}:{}", esc(&n.evidence.file), n.evidence.line),
            ]);
        }
        t.write(out)?;
    }

    write_drifted(out, r)?;
    write_invocations(out, r)?;
    write_bypasses(out, r)?;
    write_alerts(out, r)?;
    write_rejects(out, r)?;
    Ok(())
}

/// 24 one-character columns (`▁`…`█`, `·` for none), scaled to the busiest
/// hour, with an hour axis below.
pub(crate) fn hour_histogram(hours: &[u64; 24]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = hours.iter().copied().max().unwrap_or(0);
    let peak = hours.iter().position(|h| *h == max).unwrap_or(0);
    let bars: String = hours
        .iter()
        .map(|&h| {
            if h == 0 {
                '·'
            } else {
                // 1..=max → 0..=7
                let i = ((h * 8).div_ceil(max.max(1))).clamp(1, 8) - 1;
                BARS[i as usize]
            }
        })
        .collect();
    let head = if max == 0 {
        "Tool calls by hour of day (UTC): none".to_string()
    } else {
        format!("Tool calls by hour of day (UTC): peak {max} at {peak:02}h")
    };
    format!("{head}\n  |{bars}|\n   0     6     12    18   23")
}

fn write_drifted(out: &mut dyn Write, r: &Report) -> io::Result<()> {
    let d = &r.drifted_tools;
    let note = if d.approximate {
        " (approximate: more tools carried hashes than the pair cap)"
    } else {
        ""
    };
    writeln!(
        out,
        "\nDrifted tools (tool_hash changed): {}{note}",
        d.total
    )?;
    if d.listed.is_empty() {
        return Ok(());
    }
    let mut t = Table::new(
        &[
            "SERVER",
            "TOOL",
            "FIRST_HASH",
            "FIRST_SEEN",
            "LAST_HASH",
            "LAST_CHANGED",
            "EVIDENCE",
            "CHANGES",
        ],
        7,
    );
    for x in &d.listed {
        t.push(vec![
            esc(&x.server),
            esc(&x.tool),
            esc(&x.first_hash),
            x.first_seen.clone(),
            esc(&x.last_hash),
            x.last_changed.clone(),
            (x.evidence.as_ref())
                .map(|e| format!("{}:{}", esc(&e.file), e.line))
                .unwrap_or_default(),
            x.changes.to_string(),
        ]);
    }
    t.write(out)
}

fn write_invocations(out: &mut dyn Write, r: &Report) -> io::Result<()> {
    match &r.disabled_tool_invocations {
        None => writeln!(
            out,
            "\nDisabled-tool invocations: not judged (no security-config.json: policy unknown)"
        ),
        Some(l) => {
            writeln!(out, "\nDisabled-tool invocations: {}", l.total)?;
            if l.listed.is_empty() {
                return Ok(());
            }
            let mut t = Table::new(
                &[
                    "TS", "USER", "SERVER", "TOOL", "OUTCOME", "RULE", "EVIDENCE",
                ],
                99,
            );
            for i in &l.listed {
                t.push(vec![
                    i.ts.clone(),
                    esc(&i.user),
                    esc(&i.server),
                    esc(&i.tool),
                    i.outcome.clone(),
                    esc(&i.rule),
                    format!("{}:{}", esc(&i.evidence.file), i.evidence.line),
                ]);
            }
            t.write(out)?;
            if l.total > l.listed.len() as u64 {
                writeln!(out, "  ... {} more", l.total - l.listed.len() as u64)?;
            }
            Ok(())
        }
    }
}

fn write_bypasses(out: &mut dyn Write, r: &Report) -> io::Result<()> {
    let l = &r.approval_bypasses;
    writeln!(
        out,
        "\nApproval bypasses (approval_bypass alerts): {}",
        l.total
    )?;
    if l.listed.is_empty() {
        return Ok(());
    }
    let mut t = Table::new(&["TS", "REQUEST_ID", "EVIDENCE", "MESSAGE"], 99);
    for b in &l.listed {
        t.push(vec![
            b.ts.clone(),
            esc(b.request_id.as_deref().unwrap_or("-")),
            b.evidence
                .as_ref()
                .map(|e| format!("{}:{}", esc(&e.file), e.line))
                .unwrap_or_default(),
            esc(&b.message),
        ]);
    }
    t.write(out)?;
    if l.total > l.listed.len() as u64 {
        writeln!(out, "  ... {} more", l.total - l.listed.len() as u64)?;
    }
    Ok(())
}

fn write_alerts(out: &mut dyn Write, r: &Report) -> io::Result<()> {
    let a = &r.alerts;
    let sev: Vec<String> = crate::event::Severity::ALL
        .iter()
        .map(|s| {
            let n = a.by_severity.get(s.as_str()).copied().unwrap_or(0);
            format!("{s} {n}")
        })
        .collect();
    writeln!(out, "\nAlerts: {} ({})", a.total, sev.join(", "))?;
    if !a.by_rule.is_empty() {
        let mut t = Table::new(&["RULE", "LOW", "MEDIUM", "HIGH", "CRITICAL", "TOTAL"], 1);
        for x in &a.by_rule {
            t.push(vec![
                esc(&x.rule),
                x.low.to_string(),
                x.medium.to_string(),
                x.high.to_string(),
                x.critical.to_string(),
                x.total.to_string(),
            ]);
        }
        t.write(out)?;
    }
    if a.unreadable_lines > 0 {
        writeln!(out, "  ({} unreadable alert-log lines)", a.unreadable_lines)?;
    }
    Ok(())
}

fn write_rejects(out: &mut dyn Write, r: &Report) -> io::Result<()> {
    let parts: Vec<String> = r
        .rejected
        .by_reason
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if parts.is_empty() {
        writeln!(out, "\nRejected lines: 0")
    } else {
        writeln!(
            out,
            "\nRejected lines: {} ({})",
            r.rejected.total,
            parts.join(", ")
        )
    }
}

/// The auditor's summary: coverage, retention, gaps, policy, every
/// disabled-tool invocation and approval bypass, alert totals.
pub(crate) fn write_compliance(out: &mut dyn Write, r: &Report) -> io::Result<()> {
    writeln!(out, "mcpwatch compliance report")?;
    writeln!(out, "Generated:        {}", r.generated_at)?;
    writeln!(out, "Period covered:   {}", period_line(r))?;
    if let Some(f) = filters_line(r) {
        writeln!(out, "Filters:          {f}")?;
    }
    writeln!(
        out,
        "Audit directory:  {} ({} log files, {} alert files)",
        esc(&r.inputs.dir),
        r.inputs.log_files,
        r.inputs.alert_files
    )?;
    writeln!(
        out,
        "Activity:         {} tool calls, {} approval decisions, {} errors, {} users",
        r.totals.tool_calls, r.totals.approvals, r.totals.errors, r.totals.users
    )?;

    writeln!(out, "\nRetention")?;
    let c = &r.coverage;
    writeln!(out, "  Retention setting:      {} days", c.retention_days)?;
    match (&c.oldest_record, c.oldest_record_age_days) {
        (Some(o), Some(age)) => writeln!(out, "  Oldest record on disk:  {o} ({age} days old)")?,
        _ => writeln!(out, "  Oldest record on disk:  none")?,
    }
    let verdict = match c.retention_status.as_str() {
        "shorter_than_retention" => {
            "history on disk is shorter than the retention setting (new deployment, or data lost)"
        }
        "meets_retention" => "history on disk covers the retention setting",
        "exceeds_retention" => {
            "records older than the retention setting are on disk (pruning is not running)"
        }
        _ => "no audit records on disk",
    };
    writeln!(
        out,
        "  Status:                 {} ({verdict})",
        c.retention_status
    )?;

    writeln!(
        out,
        "\nLogging gaps (UTC days of the period without any log line)"
    )?;
    match (&c.first_day, &c.last_day) {
        (Some(f), Some(l)) => {
            writeln!(out, "  Days checked: {f} to {l}")?;
            if c.days_without_logs_total == 0 {
                writeln!(out, "  None")?;
            } else {
                writeln!(out, "  {} day(s):", c.days_without_logs_total)?;
                for d in &c.days_without_logs {
                    writeln!(out, "    {d}")?;
                }
                let more = c.days_without_logs_total - c.days_without_logs.len() as u64;
                if more > 0 {
                    writeln!(out, "    ... {more} more")?;
                }
            }
        }
        _ => writeln!(out, "  No days to check")?,
    }

    writeln!(out, "\nPolicy in force")?;
    let p = &r.policy;
    if !p.known {
        writeln!(
            out,
            "  Unknown: no security-config.json (disabled-tool and approval-bypass checks are off)"
        )?;
    } else {
        writeln!(
            out,
            "  Approval mode: {}",
            esc(p.approval_mode.as_deref().unwrap_or("always_ask"))
        )?;
        for list in ["auto_approved", "requires_approval", "disabled"] {
            let n = p.lists.get(list).copied().unwrap_or_default();
            writeln!(
                out,
                "  {list:<18} {} pattern(s), {} tool(s)",
                n.patterns, n.tools
            )?;
        }
    }

    write_drifted(out, r)?;
    write_invocations(out, r)?;
    write_bypasses(out, r)?;
    write_alerts(out, r)?;
    write_rejects(out, r)?;
    Ok(())
}

/// OK, ERROR, DENIED, APPROVE, DENY, TIMEOUT cells of a server or tool row.
fn decision_cells(o: &Outcomes, a: &Approvals) -> [String; 6] {
    [o.success, o.error, o.denied, a.approve, a.deny, a.timeout].map(|n| n.to_string())
}

/// P50MS, P95MS, P99MS, MAXMS cells.
fn latency_cells(l: &Latency) -> [String; 4] {
    [l.p50, l.p95, l.p99, l.max].map(opt_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses() {
        let mut out = Vec::new();
        write_csv_row(
            &mut out,
            [
                "a,b".to_string(),
                "say \"hi\"".into(),
                "x\ny".into(),
                defuse("=1+1"),
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a,b\",\"say \"\"hi\"\"\",\"x\ny\",'=1+1\r\n"
        );
    }

    #[test]
    fn csv_cells_escape_controls_and_bidi_overrides() {
        // `cat week.csv` must not retitle the terminal or reorder a line.
        assert_eq!(defuse("t\u{1b}]0;pwned\u{7}x"), "t\\u{1b}]0;pwned\\u{7}x");
        assert_eq!(defuse("invoice\u{202e}fdp.exe"), "invoice\\u{202e}fdp.exe");
        assert_eq!(defuse("a\r\nb"), "a\\r\\nb");
        // Formula triggers are still defused, after escaping.
        assert_eq!(defuse("\t=1+1"), "\\t=1+1");
        assert_eq!(defuse("-2+3"), "'-2+3");
        assert_eq!(defuse("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(defuse("plain_tool"), "plain_tool");
    }

    #[test]
    fn hour_histogram_scales_to_peak() {
        let mut h = [0u64; 24];
        h[9] = 8;
        h[10] = 1;
        h[14] = 4;
        let s = hour_histogram(&h);
        let bars = s.lines().nth(1).unwrap();
        assert_eq!(bars, "  |·········█▁···▄·········|");
        assert!(s.starts_with("Tool calls by hour of day (UTC): peak 8 at 09h"));
    }
}
