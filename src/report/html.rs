//! `--format html`: the report as one self-contained page, for a person who
//! would rather look than read — a security lead's week, an auditor's
//! month, evidence to archive or attach to a mail.
//!
//! Everything is inline: the stylesheet, the charts (SVG from [`super::svg`])
//! and a small script that makes the tables sortable by a click. No URL
//! outside the page is named, so it opens offline and reads the same in ten
//! years. The tables are complete and in a useful order without the
//! script; a Content-Security-Policy allows only this page's own style and
//! script (by their SHA-256), so even text that escaped [`esc`] could run
//! nothing.
//!
//! Every value taken from a log goes through [`esc`]: the visible escapes
//! of [`crate::text::escape`] for control characters and bidi overrides
//! (SPEC §8), then HTML's for `& < > " '`, in text and attributes alike.
//! The page is deterministic: the same report gives the same bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::model::*;
use super::render::period_line;
use super::svg::{self, Axis, Series as S};
use crate::event::{Millis, Severity};

const CSS: &str = include_str!("html.css");
const JS: &str = include_str!("html.js");
/// Rows a table lists before it keeps only the busiest (JSON and CSV list
/// every one): the page stays a page, a few MB at most.
pub(crate) const MAX_TABLE_ROWS: usize = 2_000;
/// Days without logs named in the header (the chart shades every one).
const MAX_GAPS_NAMED: usize = 31;
const HOUR: Millis = 3_600_000;
const DAY: Millis = 86_400_000;

/// `s` made inert for HTML text and (double- or single-quoted) attribute
/// values: control characters and bidi controls shown as visible escapes
/// (`\u{202e}`), then `&`, `<`, `>`, `"` and `'` as entities.
pub(crate) fn esc(s: &str) -> String {
    let shown = crate::text::escape(s);
    let mut out = String::with_capacity(shown.len() + 8);
    for c in shown.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `'sha256-…'` of an inline script or style, for the CSP.
fn csp_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Writes `r` as one HTML page.
pub(crate) fn write_html(out: &mut dyn Write, r: &Report) -> io::Result<()> {
    let mut h = String::with_capacity(64 * 1024);
    head(&mut h, r);
    header(&mut h, r);
    charts(&mut h, r);
    tables(&mut h, r);
    let _ = write!(
        h,
        "</main>\n<footer>Made by mcpwatch report at {}. Times are UTC. \
         The tables sort by a click on a column header when scripts run; \
         <code>--format json</code> holds every figure.</footer>\n\
         <script>{JS}</script>\n</body>\n</html>\n",
        esc(&r.generated_at)
    );
    out.write_all(h.as_bytes())
}

fn head(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src {}; script-src {}; img-src data:; base-uri 'none'; form-action 'none'\">\n\
         <meta name=\"generator\" content=\"mcpwatch\">\n\
         <title>mcpwatch audit report: {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        csp_hash(CSS),
        csp_hash(JS),
        esc(&period_line(r))
    );
}

fn header(h: &mut String, r: &Report) {
    h.push_str("<header>\n<h1>mcpwatch audit report</h1>\n");
    let _ = write!(
        h,
        "<section class=\"severities\" aria-label=\"Alerts by severity\">"
    );
    for s in Severity::ALL.iter().rev() {
        let n = r.alerts.by_severity.get(s.as_str()).copied().unwrap_or(0);
        let class = if n == 0 { "none" } else { s.as_str() };
        let _ = write!(
            h,
            "<div class=\"sev {} {class}\"><b>{n}</b>{s} alerts</div>",
            s.as_str()
        );
    }
    let _ = write!(
        h,
        "<div class=\"sev total\"><b>{}</b>alerts in all</div></section>\n<dl class=\"facts\">\n",
        r.alerts.total
    );
    let mut fact = |k: &str, v: String| {
        let _ = writeln!(h, "<dt>{k}</dt><dd>{v}</dd>");
    };
    fact("Period", esc(&period_line(r)));
    fact("Generated", esc(&r.generated_at));
    let f = &r.filters;
    let filters: Vec<String> = [
        ("user", &f.user),
        ("server", &f.server),
        ("token", &f.token),
        ("request", &f.request),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} = <code>{}</code>", esc(v))))
    .collect();
    if !filters.is_empty() {
        fact("Filters", filters.join(", "));
    }
    let i = &r.inputs;
    fact(
        "Inputs",
        format!(
            "{} log files and {} alert files ({} bytes) in <code>{}</code>",
            i.log_files,
            i.alert_files,
            i.bytes,
            esc(&i.dir)
        ),
    );
    fact(
        "Events",
        format!(
            "{} selected of {} read ({} outside the period, {} excluded by filters)",
            i.events_selected,
            i.events_read,
            r.limits.events_outside_period,
            r.limits.events_filtered_out
        ),
    );
    let t = &r.totals;
    fact(
        "Totals",
        format!(
            "{} tool calls, {} approval decisions, {} errors; {} servers, {} tools, {} users",
            t.tool_calls, t.approvals, t.errors, t.servers, t.tools, t.users
        ),
    );
    fact("Policy in force", policy(&r.policy));
    let c = &r.coverage;
    let oldest = match (&c.oldest_record, c.oldest_record_age_days) {
        (Some(o), Some(a)) => format!("; oldest record {} ({a} days old)", esc(o)),
        _ => String::new(),
    };
    let status_class = if c.retention_status == "exceeds_retention" {
        " class=\"warn\""
    } else {
        ""
    };
    fact(
        "Retention",
        format!(
            "<span{status_class}>{}</span> (retention {} days{oldest})",
            esc(&c.retention_status),
            c.retention_days
        ),
    );
    fact("Days without logs", gaps_fact(c));
    let rej = &r.rejected;
    let parts: Vec<String> = rej
        .by_reason
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{} {n}", esc(k)))
        .collect();
    fact(
        "Rejected lines",
        if parts.is_empty() {
            "0".to_string()
        } else {
            format!(
                "<span class=\"warn\">{}</span> ({})",
                rej.total,
                parts.join(", ")
            )
        },
    );
    h.push_str("</dl>\n<nav>");
    for (id, name) in [
        ("charts", "Charts"),
        ("servers", "Servers"),
        ("tools", "Tools"),
        ("users", "Users"),
        ("new-tools", "New tools"),
        ("disabled", "Disabled-tool calls"),
        ("bypasses", "Approval bypasses"),
        ("alerts", "Alerts"),
    ] {
        let _ = write!(h, "<a href=\"#{id}\">{name}</a>");
    }
    h.push_str("</nav>\n</header>\n<main>\n");
}

fn policy(p: &PolicyInfo) -> String {
    if !p.known {
        return "unknown: no security-config.json (disabled-tool and approval-bypass checks \
                are off)"
            .to_string();
    }
    let lists: Vec<String> = ["auto_approved", "requires_approval", "disabled"]
        .into_iter()
        .map(|l| {
            let n = p.lists.get(l).copied().unwrap_or_default();
            format!("{l} {} patterns, {} tools", n.patterns, n.tools)
        })
        .collect();
    format!(
        "approval mode <code>{}</code>; {}",
        esc(p.approval_mode.as_deref().unwrap_or("always_ask")),
        lists.join("; ")
    )
}

fn gaps_fact(c: &Coverage) -> String {
    let (Some(first), Some(last)) = (&c.first_day, &c.last_day) else {
        return "no days to check".to_string();
    };
    if c.days_without_logs_total == 0 {
        return format!("none from {} to {}", esc(first), esc(last));
    }
    let named: Vec<String> = c
        .days_without_logs
        .iter()
        .take(MAX_GAPS_NAMED)
        .map(|d| esc(d))
        .collect();
    let more = c.days_without_logs_total - named.len() as u64;
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(
        "<span class=\"warn\">{}</span> from {} to {}: {}{more} (shaded on the charts)",
        c.days_without_logs_total,
        esc(first),
        esc(last),
        named.join(", ")
    )
}

/// Epoch days of the listed days without logs.
fn gap_days(c: &Coverage) -> Vec<i64> {
    let mut v: Vec<i64> = c
        .days_without_logs
        .iter()
        .filter_map(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .filter_map(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_millis().div_euclid(DAY))
        .collect();
    v.sort_unstable();
    v
}

/// Counts per hour (or day: `unit`) summed into the buckets of `axis`.
fn bucketed<const N: usize>(
    axis: &Axis,
    counts: &BTreeMap<i64, [u64; N]>,
    unit: Millis,
) -> Vec<[u64; N]> {
    let mut v = vec![[0u64; N]; axis.buckets as usize];
    for (k, c) in counts {
        if let Some(i) = axis.index(k * unit) {
            for (a, b) in v[i].iter_mut().zip(c) {
                *a += b;
            }
        }
    }
    v
}

/// "per hour", "per 4 hours", "per day", "per 7 days".
fn per(bucket: Millis) -> String {
    match bucket {
        HOUR => "per hour".to_string(),
        DAY => "per day".to_string(),
        b if b % DAY == 0 => format!("per {} days", b / DAY),
        b => format!("per {} hours", b / HOUR),
    }
}

fn legend(h: &mut String, items: &[(&str, &str)]) {
    h.push_str("<div class=\"legend\">");
    for (class, name) in items {
        let _ = write!(h, "<span class=\"l-{class}\">{name}</span>");
    }
    h.push_str("</div></figure>\n");
}

fn figure(h: &mut String, caption: &str) {
    let _ = write!(h, "<figure><figcaption>{caption}</figcaption>");
}

fn charts(h: &mut String, r: &Report) {
    h.push_str("<section id=\"charts\">\n<h2>Charts</h2>\n");
    let gaps = gap_days(&r.coverage);
    let s = &r.series;
    let Some((from, to)) = s.span else {
        h.push_str("<p class=\"empty\">No records: nothing to chart.</p>\n</section>\n");
        return;
    };
    let gap_legend = if gaps.is_empty() {
        None
    } else {
        Some(("gap", "no log line that day"))
    };

    let hours = Axis::new(from, to, HOUR);
    let caption = format!("Tool calls {}, by outcome", per(hours.bucket));
    figure(h, &caption);
    let series = [
        S {
            name: "success",
            class: "c-ok",
        },
        S {
            name: "error",
            class: "c-err",
        },
        S {
            name: "denied",
            class: "c-deny",
        },
        S {
            name: "no outcome",
            class: "c-unknown",
        },
    ];
    let calls = bucketed(&hours, &s.calls_per_hour, HOUR);
    h.push_str(&svg::time_bars(
        &hours, &calls, &series, "calls", &gaps, &caption,
    ));
    let mut items = vec![
        ("ok", "success"),
        ("err", "error"),
        ("deny", "denied"),
        ("unknown", "no outcome"),
    ];
    items.extend(gap_legend);
    legend(h, &items);

    let days = Axis::new(from, to, DAY);
    let caption = format!("Approval decisions {}", per(days.bucket));
    figure(h, &caption);
    let series = [
        S {
            name: "approve",
            class: "c-approve",
        },
        S {
            name: "deny",
            class: "c-err",
        },
        S {
            name: "timeout",
            class: "c-timeout",
        },
    ];
    let decisions = bucketed(&days, &s.decisions_per_day, DAY);
    h.push_str(&svg::time_bars(
        &days,
        &decisions,
        &series,
        "decisions",
        &gaps,
        &caption,
    ));
    let mut items = vec![
        ("approve", "approve"),
        ("err", "deny"),
        ("timeout", "timeout"),
    ];
    items.extend(gap_legend);
    legend(h, &items);

    errors_chart(h, r);
    latency_chart(h, r);

    let caption = format!("Alerts per rule, {}", per(hours.bucket));
    if s.alerts_per_hour.is_empty() {
        let _ = writeln!(
            h,
            "<figure><figcaption>{caption}</figcaption><p class=\"empty\">No alerts in the period.</p></figure>"
        );
    } else {
        figure(h, &caption);
        let rows: Vec<(&str, Vec<u64>)> = s
            .alerts_per_hour
            .iter()
            .map(|(rule, per_hour)| {
                let mut v = vec![0u64; hours.buckets as usize];
                for (hour, n) in per_hour {
                    if let Some(i) = hours.index(hour * HOUR) {
                        v[i] += n;
                    }
                }
                (rule.as_str(), v)
            })
            .collect();
        h.push_str(&svg::heatmap(&hours, &rows, &gaps, &caption));
        let mut items = vec![("err", "alerts (darker: more)")];
        items.extend(gap_legend);
        legend(h, &items);
    }
    h.push_str("</section>\n");
}

fn errors_chart(h: &mut String, r: &Report) {
    let caption = "Errors per server";
    let mut rows: Vec<(&str, u64)> = r
        .servers
        .iter()
        .filter(|s| s.errors.total > 0)
        .map(|s| (s.server.as_str(), s.errors.total))
        .collect();
    if rows.is_empty() {
        let _ = writeln!(
            h,
            "<figure><figcaption>{caption}</figcaption><p class=\"empty\">No errors in the period.</p></figure>"
        );
        return;
    }
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let more = rows.len().saturating_sub(svg::MAX_ROWS);
    rows.truncate(svg::MAX_ROWS);
    figure(h, caption);
    h.push_str(&svg::hbars(&rows, "c-err", "errors", caption));
    if more > 0 {
        let _ = write!(
            h,
            "<p class=\"note\">{more} more servers with errors: see the Servers table.</p>"
        );
    }
    h.push_str("</figure>\n");
}

fn latency_chart(h: &mut String, r: &Report) {
    let caption = "Latency per tool: p50, p95 and p99 (log scale), slowest first";
    let names: Vec<(String, [u64; 3])> = {
        let mut v: Vec<&ToolRow> = r.tools.iter().filter(|t| t.latency_ms.count > 0).collect();
        v.sort_by(|a, b| {
            b.latency_ms
                .p99
                .cmp(&a.latency_ms.p99)
                .then(a.server.cmp(&b.server))
                .then(a.tool.cmp(&b.tool))
        });
        let more = v.len().saturating_sub(svg::MAX_ROWS);
        if more > 0 {
            v.truncate(svg::MAX_ROWS);
        }
        v.into_iter()
            .map(|t| {
                let l = &t.latency_ms;
                let p = |x: Option<u64>| x.unwrap_or(0);
                (
                    format!("{} / {}", t.server, t.tool),
                    [p(l.p50), p(l.p95), p(l.p99)],
                )
            })
            .collect()
    };
    if names.is_empty() {
        let _ = writeln!(
            h,
            "<figure><figcaption>{caption}</figcaption><p class=\"empty\">No call carried a duration.</p></figure>"
        );
        return;
    }
    let rows: Vec<(&str, [u64; 3])> = names.iter().map(|(n, p)| (n.as_str(), *p)).collect();
    figure(h, caption);
    h.push_str(&svg::latency(&rows, caption));
    legend(h, &[("p50", "p50"), ("p95", "p95"), ("p99", "p99")]);
}

/// One table row being written.
struct Row(String);

impl Row {
    fn new() -> Row {
        Row(String::from("<tr>"))
    }
    fn text(mut self, s: &str) -> Row {
        let _ = write!(self.0, "<td>{}</td>", esc(s));
        self
    }
    fn num(mut self, n: u64) -> Row {
        let _ = write!(self.0, "<td class=\"n\" data-v=\"{n}\">{n}</td>");
        self
    }
    fn opt(mut self, n: Option<u64>) -> Row {
        match n {
            Some(n) => self.num(n),
            None => {
                self.0.push_str("<td class=\"n\" data-v=\"-1\">-</td>");
                self
            }
        }
    }
    fn pct(mut self, r: Option<f64>) -> Row {
        match r {
            Some(r) => {
                let _ = write!(
                    self.0,
                    "<td class=\"n\" data-v=\"{r:.4}\">{:.1}%</td>",
                    r * 100.0
                );
            }
            None => self.0.push_str("<td class=\"n\" data-v=\"-1\">-</td>"),
        }
        self
    }
    fn place(self, p: Option<&Place>) -> Row {
        match p {
            Some(p) => self.text(&format!("{}:{}", p.file, p.line)),
            None => self.text(""),
        }
    }
    fn done(mut self) -> String {
        self.0.push_str("</tr>\n");
        self.0
    }
}

/// The items to list of `all`: every one up to [`MAX_TABLE_ROWS`], else
/// the heaviest by `weight` (the first of equals), in their order.
fn capped<T>(all: &[T], weight: impl Fn(&T) -> u64) -> Vec<&T> {
    if all.len() <= MAX_TABLE_ROWS {
        return all.iter().collect();
    }
    let mut idx: Vec<usize> = (0..all.len()).collect();
    idx.sort_by_key(|i| std::cmp::Reverse(weight(&all[*i])));
    idx.truncate(MAX_TABLE_ROWS);
    idx.sort_unstable();
    idx.into_iter().map(|i| &all[i]).collect()
}

/// A section with a sortable table. Columns whose name starts with `#` are
/// numeric (right-aligned, sorted by value).
fn table(
    h: &mut String,
    id: &str,
    title: &str,
    cols: &[&str],
    rows: Vec<String>,
    notes: &[String],
) {
    let id_attr = if id.is_empty() {
        String::new()
    } else {
        format!(" id=\"{id}\"")
    };
    let _ = write!(h, "<section{id_attr}>\n<h2>{title}</h2>\n");
    for n in notes {
        let _ = writeln!(h, "<p class=\"note\">{n}</p>");
    }
    if rows.is_empty() {
        h.push_str("<p class=\"empty\">None.</p>\n</section>\n");
        return;
    }
    h.push_str("<div class=\"scroll\"><table class=\"sortable\">\n<thead><tr>");
    for c in cols {
        match c.strip_prefix('#') {
            Some(c) => {
                let _ = write!(h, "<th class=\"n\" scope=\"col\">{c}</th>");
            }
            None => {
                let _ = write!(h, "<th scope=\"col\">{c}</th>");
            }
        }
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for r in rows {
        h.push_str(&r);
    }
    h.push_str("</tbody></table></div>\n</section>\n");
}

/// "Showing the N … of M; json lists all" when `shown` < `all`.
fn shown_note(shown: usize, all: usize, what: &str) -> Vec<String> {
    if shown < all {
        vec![format!(
            "Showing the {shown} {what} of {all}; <code>--format json</code> lists every one."
        )]
    } else {
        Vec::new()
    }
}

/// "N more not listed" when a listing stopped at `limits.max_listed`.
fn more_note(total: u64, listed: usize) -> Vec<String> {
    let more = total.saturating_sub(listed as u64);
    if more > 0 {
        vec![format!(
            "{total} in all; {more} more beyond the report's list limit are not listed."
        )]
    } else {
        Vec::new()
    }
}

const COUNTS: [&str; 6] = ["#OK", "#ERROR", "#DENIED", "#APPROVE", "#DENY", "#TIMEOUT"];
const LATENCY: [&str; 4] = ["#P50 MS", "#P95 MS", "#P99 MS", "#MAX MS"];

fn counts(row: Row, o: &Outcomes, a: &Approvals) -> Row {
    row.num(o.success)
        .num(o.error)
        .num(o.denied)
        .num(a.approve)
        .num(a.deny)
        .num(a.timeout)
}

fn latency(row: Row, l: &Latency) -> Row {
    row.opt(l.p50).opt(l.p95).opt(l.p99).opt(l.max)
}

fn tables(h: &mut String, r: &Report) {
    let mut cols = vec!["SERVER", "#TOOLS", "#CALLS"];
    cols.extend(COUNTS);
    cols.push("#ERRORS");
    cols.extend(LATENCY);
    let servers = capped(&r.servers, |s| s.calls);
    let rows = servers
        .iter()
        .map(|s| {
            let row = Row::new().text(&s.server).num(s.tools).num(s.calls);
            latency(
                counts(row, &s.outcomes, &s.approvals).num(s.errors.total),
                &s.latency_ms,
            )
            .done()
        })
        .collect();
    let note = shown_note(
        servers.len(),
        r.servers.len(),
        "servers with the most calls",
    );
    table(h, "servers", "Servers", &cols, rows, &note);

    let mut cols = vec!["SERVER", "TOOL", "#CALLS"];
    cols.extend(COUNTS);
    cols.extend(["#DENY %", "#ERRORS"]);
    cols.extend(LATENCY);
    let tools = capped(&r.tools, |t| t.calls);
    let rows = tools
        .iter()
        .copied()
        .chain(r.other.iter())
        .map(|t| {
            let row = Row::new().text(&t.server).text(&t.tool).num(t.calls);
            let row = counts(row, &t.outcomes, &t.approvals)
                .pct(t.approvals.deny_rate)
                .num(t.errors.total);
            latency(row, &t.latency_ms).done()
        })
        .collect();
    let mut note = shown_note(tools.len(), r.tools.len(), "tools with the most calls");
    if r.limits.pairs_overflow_events > 0 {
        note.push(format!(
            "{} events of server × tool pairs beyond the cap of {} are in the {OTHER} row.",
            r.limits.pairs_overflow_events, r.limits.max_pairs
        ));
    }
    table(h, "tools", "Tools", &cols, rows, &note);

    let errs: Vec<(&ToolRow, &String, &u64)> = r
        .tools
        .iter()
        .flat_map(|t| t.errors.by_type.iter().map(move |(k, v)| (t, k, v)))
        .collect();
    let listed = capped(&errs, |e| *e.2);
    let rows = listed
        .iter()
        .map(|(t, k, n)| {
            Row::new()
                .text(&t.server)
                .text(&t.tool)
                .text(k)
                .num(**n)
                .done()
        })
        .collect();
    let note = shown_note(listed.len(), errs.len(), "most frequent");
    let cols = ["SERVER", "TOOL", "ERROR TYPE", "#COUNT"];
    table(h, "", "Errors by type", &cols, rows, &note);

    users_table(h, r);
    listings(h, r);
}

fn users_table(h: &mut String, r: &Report) {
    let users = capped(&r.users, |u| u.calls);
    let rows = users
        .iter()
        .copied()
        .chain(r.users_other.iter())
        .map(|u| {
            let (mean, sd) = u
                .hourly_calls
                .as_ref()
                .map_or((String::new(), String::new()), |b| {
                    (format!("{:.2}", b.mean), format!("{:.2}", b.sd))
                });
            let busiest = u.busiest_hour.as_ref();
            let num_text = |row: Row, s: String| -> Row {
                let mut row = row;
                let v = if s.is_empty() { "-1" } else { s.as_str() };
                let _ = write!(row.0, "<td class=\"n\" data-v=\"{v}\">{s}</td>");
                row
            };
            let row = Row::new()
                .text(&u.user)
                .num(u.calls)
                .num(u.denied_calls)
                .num(u.approvals)
                .num(u.denials)
                .num(u.timeouts)
                .num(u.errors)
                .text(u.first_seen.as_deref().unwrap_or(""))
                .text(u.last_seen.as_deref().unwrap_or(""));
            let row =
                num_text(num_text(row, mean), sd).text(busiest.map_or("", |b| b.hour.as_str()));
            match busiest {
                Some(b) => row.num(b.calls),
                None => row.opt(None),
            }
            .done()
        })
        .collect();
    let cols = [
        "USER",
        "#CALLS",
        "#DENIED CALLS",
        "#APPROVE",
        "#DENY",
        "#TIMEOUT",
        "#ERRORS",
        "FIRST SEEN",
        "LAST SEEN",
        "#MEAN/H",
        "#SD/H",
        "BUSIEST HOUR",
        "#BUSIEST CALLS",
    ];
    let mut note = shown_note(users.len(), r.users.len(), "users with the most calls");
    if r.limits.users_overflow_events > 0 {
        note.push(format!(
            "{} events of users beyond the cap of {} are in the {OTHER} row.",
            r.limits.users_overflow_events, r.limits.max_users
        ));
    }
    table(h, "users", "Users", &cols, rows, &note);
}

fn listings(h: &mut String, r: &Report) {
    let n = &r.new_tools;
    let listed = capped(&n.listed, |_| 0);
    let rows = listed
        .iter()
        .map(|t| {
            Row::new()
                .text(&t.first_seen)
                .text(&t.server)
                .text(&t.tool)
                .text(&t.user)
                .place(Some(&t.evidence))
                .done()
        })
        .collect();
    let mut note = more_note(n.total, listed.len());
    if n.approximate {
        note.push("Approximate: older data held more tools than the seen-set cap.".to_string());
    }
    let cols = ["FIRST SEEN", "SERVER", "TOOL", "USER", "EVIDENCE"];
    let title = format!("New tools (first called in the period): {}", n.total);
    table(h, "new-tools", &title, &cols, rows, &note);

    let d = &r.drifted_tools;
    let listed = capped(&d.listed, |_| 0);
    let rows = listed
        .iter()
        .map(|x| {
            Row::new()
                .text(&x.server)
                .text(&x.tool)
                .text(&x.first_hash)
                .text(&x.first_seen)
                .text(&x.last_hash)
                .text(&x.last_changed)
                .place(x.evidence.as_ref())
                .num(x.changes)
                .done()
        })
        .collect();
    let cols = [
        "SERVER",
        "TOOL",
        "FIRST HASH",
        "FIRST SEEN",
        "LAST HASH",
        "LAST CHANGED",
        "EVIDENCE",
        "#CHANGES",
    ];
    let title = format!("Drifted tools (tool_hash changed): {}", d.total);
    table(
        h,
        "",
        &title,
        &cols,
        rows,
        &more_note(d.total, listed.len()),
    );

    match &r.disabled_tool_invocations {
        None => table(
            h,
            "disabled",
            "Disabled-tool calls",
            &[],
            Vec::new(),
            &["Not judged: no security-config.json, so the policy is unknown.".to_string()],
        ),
        Some(l) => {
            let listed = capped(&l.listed, |_| 0);
            let rows = listed
                .iter()
                .map(|i| {
                    Row::new()
                        .text(&i.ts)
                        .text(&i.user)
                        .text(&i.server)
                        .text(&i.tool)
                        .text(&i.outcome)
                        .text(&i.rule)
                        .place(Some(&i.evidence))
                        .done()
                })
                .collect();
            let cols = [
                "TS", "USER", "SERVER", "TOOL", "OUTCOME", "RULE", "EVIDENCE",
            ];
            let title = format!("Disabled-tool calls: {}", l.total);
            table(
                h,
                "disabled",
                &title,
                &cols,
                rows,
                &more_note(l.total, listed.len()),
            );
        }
    }

    let b = &r.approval_bypasses;
    let listed = capped(&b.listed, |_| 0);
    let rows = listed
        .iter()
        .map(|x| {
            Row::new()
                .text(&x.ts)
                .text(x.request_id.as_deref().unwrap_or("-"))
                .place(x.evidence.as_ref())
                .text(&x.message)
                .done()
        })
        .collect();
    let cols = ["TS", "REQUEST ID", "EVIDENCE", "MESSAGE"];
    let title = format!("Approval bypasses (approval_bypass alerts): {}", b.total);
    table(
        h,
        "bypasses",
        &title,
        &cols,
        rows,
        &more_note(b.total, listed.len()),
    );

    let a = &r.alerts;
    let rows = a
        .by_rule
        .iter()
        .map(|x| {
            Row::new()
                .text(&x.rule)
                .num(x.low)
                .num(x.medium)
                .num(x.high)
                .num(x.critical)
                .num(x.total)
                .done()
        })
        .collect();
    let mut note = Vec::new();
    if a.unreadable_lines > 0 {
        note.push(format!(
            "{} lines of the alert log are not alerts.",
            a.unreadable_lines
        ));
    }
    let cols = ["RULE", "#LOW", "#MEDIUM", "#HIGH", "#CRITICAL", "#TOTAL"];
    let title = format!("Alerts: {}", a.total);
    table(h, "alerts", &title, &cols, rows, &note);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esc_makes_markup_quotes_controls_and_bidi_inert() {
        assert_eq!(
            esc("<script>alert('x')</script>"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
        );
        assert_eq!(
            esc("\"><img src=x onerror=alert(1)>"),
            "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"
        );
        assert_eq!(esc("a&amp;b"), "a&amp;amp;b");
        assert_eq!(esc("t\u{1b}]0;x\u{7}\r\n"), "t\\u{1b}]0;x\\u{7}\\r\\n");
        assert_eq!(esc("invoice\u{202e}fdp.exe"), "invoice\\u{202e}fdp.exe");
        assert_eq!(esc("\u{2066}a\u{2069}"), "\\u{2066}a\\u{2069}");
        assert_eq!(esc("ünï 名前"), "ünï 名前");
    }

    #[test]
    fn the_csp_hashes_the_exact_inline_texts() {
        let hash = csp_hash("");
        // SHA-256 of the empty string, base64.
        assert_eq!(
            hash,
            "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
        );
        let opts = crate::report::ReportOptions::new("audit", Default::default(), 0);
        let empty = crate::report::Collector::new(&opts).finish();
        let mut page = Vec::new();
        write_html(&mut page, &empty).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(page.contains(&csp_hash(CSS)) && page.contains(&csp_hash(JS)));
        assert!(page.contains(&format!("<style>{CSS}</style>")));
        assert!(page.contains(&format!("<script>{JS}</script>")));
    }

    #[test]
    fn capped_keeps_the_heaviest_in_their_order() {
        let all: Vec<u64> = (0..MAX_TABLE_ROWS as u64 + 3).collect();
        let kept = capped(&all, |v| *v);
        assert_eq!(kept.len(), MAX_TABLE_ROWS);
        assert_eq!(
            (*kept[0], *kept[MAX_TABLE_ROWS - 1]),
            (3, MAX_TABLE_ROWS as u64 + 2)
        );
        let firsts = capped(&all, |_| 0);
        assert_eq!(*firsts[MAX_TABLE_ROWS - 1], MAX_TABLE_ROWS as u64 - 1);
    }
}
