//! The tables of the page: those of the text report (servers, tools,
//! errors by type, users, new tools, drifted tools, disabled-tool calls,
//! approval bypasses, alerts), complete and in the model's order without
//! any script; `page.js` sorts them by a click. A numeric cell that shows
//! something other than its number (`-`, `5.2%`) carries the number in
//! `data-v`. Every cell from a log goes through [`esc`].

use std::fmt::Write as _;

use super::esc;
use crate::report::model::*;

/// Rows a table lists before it keeps only the busiest (JSON and CSV list
/// every one): the page stays a page, under 2 MB for a million users.
pub(crate) const MAX_TABLE_ROWS: usize = 1_000;

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
        let _ = write!(self.0, "<td class=\"n\">{n}</td>");
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

pub(super) fn tables(h: &mut String, r: &Report) {
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
                if s.is_empty() {
                    row.0.push_str("<td class=\"n\" data-v=\"-1\"></td>");
                } else {
                    let _ = write!(row.0, "<td class=\"n\">{s}</td>");
                }
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
