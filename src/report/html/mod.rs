//! `--format html`: the report as one self-contained page, for a person who
//! would rather look than read — a security lead's week, an auditor's
//! month, evidence to archive or attach to a mail.
//!
//! Everything is inline: the stylesheet, the charts (SVG) and a small
//! script that makes the tables sortable by a click. No URL outside the
//! page is named, so it opens offline, in a mail or from an archive. The tables are complete and in a useful order without the
//! script; a Content-Security-Policy allows only this page's own style and
//! script (by their SHA-256), so even text that escaped [`esc`] could run
//! nothing. The charts are in [`charts`] (drawn by [`super::svg`]), the
//! tables in [`tables`]; the stylesheet and script are `page.css` and
//! `page.js` beside this file.
//!
//! Every value taken from a log goes through [`esc`]: the visible escapes
//! of [`crate::text::escape`] for control characters and bidi overrides
//! (SPEC §8), then HTML's for `& < > " '`, in text and attributes alike.
//! The page is deterministic: the same report gives the same bytes.

mod charts;
mod tables;

use std::fmt::Write as _;
use std::io::{self, Write};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::model::*;
use super::render::period_line;
use crate::event::Severity;
use charts::charts;
use tables::tables;

const CSS: &str = include_str!("page.css");
const JS: &str = include_str!("page.js");
/// Days without logs named in the header (the chart shades every one).
const MAX_GAPS_NAMED: usize = 31;

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
         style-src {}; script-src {}; base-uri 'none'; form-action 'none'\">\n\
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
        let none = if n == 0 { " none" } else { "" };
        let _ = write!(
            h,
            "<div class=\"sev {}{none}\"><b>{n}</b>{s} alerts</div>",
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
            "log files: {}, alert files: {}, {} bytes, in <code>{}</code>",
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
        (Some(o), Some(a)) => format!("; oldest record {}, {a} days old", esc(o)),
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
}
