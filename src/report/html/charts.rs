//! The charts section: the model's [`Series`] cut into buckets of a time
//! axis, the servers' errors and the tools' latency, each drawn by
//! [`crate::report::svg`] with its caption and legend. Days without logs
//! are shaded on every time axis (the compliance gap).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::event::Millis;
use crate::report::model::*;
use crate::report::svg::{self, Axis, Layer};

const HOUR: Millis = 3_600_000;
const DAY: Millis = 86_400_000;

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

pub(super) fn charts(h: &mut String, r: &Report) {
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
    let layers = [
        Layer {
            name: "success",
            class: "c-ok",
        },
        Layer {
            name: "error",
            class: "c-err",
        },
        Layer {
            name: "denied",
            class: "c-deny",
        },
        Layer {
            name: "no outcome",
            class: "c-unknown",
        },
    ];
    let calls = bucketed(&hours, &s.calls_per_hour, HOUR);
    h.push_str(&svg::time_bars(
        &hours, &calls, &layers, "calls", &gaps, &caption,
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
    let layers = [
        Layer {
            name: "approve",
            class: "c-approve",
        },
        Layer {
            name: "deny",
            class: "c-err",
        },
        Layer {
            name: "timeout",
            class: "c-timeout",
        },
    ];
    let decisions = bucketed(&days, &s.decisions_per_day, DAY);
    h.push_str(&svg::time_bars(
        &days,
        &decisions,
        &layers,
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
    let mut tools: Vec<&ToolRow> = r.tools.iter().filter(|t| t.latency_ms.count > 0).collect();
    if tools.is_empty() {
        let _ = writeln!(
            h,
            "<figure><figcaption>{caption}</figcaption><p class=\"empty\">No call carried a duration.</p></figure>"
        );
        return;
    }
    tools.sort_by(|a, b| {
        b.latency_ms
            .p99
            .cmp(&a.latency_ms.p99)
            .then(a.server.cmp(&b.server))
            .then(a.tool.cmp(&b.tool))
    });
    let more = tools.len().saturating_sub(svg::MAX_ROWS);
    tools.truncate(svg::MAX_ROWS);
    let names: Vec<(String, [u64; 3])> = tools
        .iter()
        .map(|t| {
            let l = &t.latency_ms;
            let p = |x: Option<u64>| x.unwrap_or(0);
            (
                format!("{} / {}", t.server, t.tool),
                [p(l.p50), p(l.p95), p(l.p99)],
            )
        })
        .collect();
    let rows: Vec<(&str, [u64; 3])> = names.iter().map(|(n, p)| (n.as_str(), *p)).collect();
    figure(h, caption);
    h.push_str(&svg::latency(&rows, caption));
    if more > 0 {
        let _ = write!(
            h,
            "<p class=\"note\">{more} faster tools: see the Tools table.</p>"
        );
    }
    legend(h, &[("p50", "p50"), ("p95", "p95"), ("p99", "p99")]);
}
