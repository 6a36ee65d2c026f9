//! The charts of `--format html`, as inline SVG written by hand: bars over
//! time (stacked in layers), horizontal bars, latency ranges on a log
//! scale and a heat map of alerts per rule.
//!
//! Every chart plots aggregates (counts per hour or day bucket, one row per
//! server or tool), never one mark per event: a bucket is widened until a
//! chart holds at most [`MAX_BUCKETS`] of them, so the page stays small over
//! any period. Output is deterministic: integers, and coordinates printed
//! with one decimal (Rust's fixed-precision formatting does not depend on
//! the platform). Colours are CSS classes (`c-ok`, `c-deny`, …) that the
//! page's stylesheet defines for the light, dark and print themes. Every
//! label from a log goes through [`super::html::esc`].

use std::fmt::Write as _;

use super::html::esc;
use crate::alert::format_ts;
use crate::event::Millis;

const HOUR: Millis = 3_600_000;
const DAY: Millis = 86_400_000;
/// Most bars (or heat-map columns) a time chart draws: about 5 px each at
/// the charts' width.
pub(crate) const MAX_BUCKETS: i64 = 180;
/// Most rows a bar or latency chart draws (the tables list every one).
pub(crate) const MAX_ROWS: usize = 25;
/// The drawing's width in user units; it scales to the page's width.
const WIDTH: f64 = 960.0;
/// Left margin: room for a row label or the y axis's numbers.
const LEFT: f64 = 170.0;
const RIGHT: f64 = 16.0;
/// Widest bar of a time chart (user units).
const MAX_BAR: f64 = 48.0;
/// Longest label drawn in full (characters); the `<title>` holds the rest.
const LABEL_CHARS: usize = 24;

/// One layer of a stacked bar chart: its name in the tooltips, its CSS
/// class.
pub(crate) struct Layer {
    pub(crate) name: &'static str,
    pub(crate) class: &'static str,
}

/// A time axis cut into equal buckets, aligned to multiples of the bucket
/// since the epoch (so to UTC midnight from a day on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Axis {
    /// Start of the first bucket.
    pub(crate) start: Millis,
    pub(crate) bucket: Millis,
    pub(crate) buckets: i64,
}

impl Axis {
    /// The axis over `[from, to)` with buckets of a whole multiple of
    /// `unit` (an hour or a day), the smallest of 1, 2, 3, 4, 6, 8, 12 ×
    /// hours, 1, 2, 3, 7, 14 days, then multiples of 28 days that keeps
    /// the count at most [`MAX_BUCKETS`].
    pub(crate) fn new(from: Millis, to: Millis, unit: Millis) -> Axis {
        const NICE: [Millis; 12] = [
            HOUR,
            2 * HOUR,
            3 * HOUR,
            4 * HOUR,
            6 * HOUR,
            8 * HOUR,
            12 * HOUR,
            DAY,
            2 * DAY,
            3 * DAY,
            7 * DAY,
            14 * DAY,
        ];
        let to = to.max(from + 1);
        let fits = |b: Millis| {
            let start = from.div_euclid(b) * b;
            (to - start + b - 1) / b <= MAX_BUCKETS
        };
        let bucket = NICE
            .iter()
            .copied()
            .filter(|b| *b >= unit)
            .find(|b| fits(*b))
            .unwrap_or_else(|| {
                let span = to - from;
                let n = (span / (28 * DAY * MAX_BUCKETS)) + 1;
                let mut b = 28 * DAY * n;
                while !fits(b) {
                    b += 28 * DAY;
                }
                b
            });
        let start = from.div_euclid(bucket) * bucket;
        Axis {
            start,
            bucket,
            buckets: (to - start + bucket - 1) / bucket,
        }
    }

    fn end(&self) -> Millis {
        self.start + self.bucket * self.buckets
    }

    /// The bucket of `t`, if on the axis.
    pub(crate) fn index(&self, t: Millis) -> Option<usize> {
        (t >= self.start && t < self.end()).then(|| ((t - self.start) / self.bucket) as usize)
    }

    fn x(&self, t: Millis) -> f64 {
        let w = WIDTH - LEFT - RIGHT;
        LEFT + w * (t - self.start) as f64 / (self.end() - self.start) as f64
    }

    /// What a bucket is called in a tooltip.
    fn name(&self, i: usize) -> String {
        let s = self.start + i as Millis * self.bucket;
        let e = s + self.bucket;
        if self.bucket % DAY == 0 {
            if self.bucket == DAY {
                day(s)
            } else {
                format!("{} to {}", day(s), day(e - DAY))
            }
        } else {
            format!("{} to {} UTC", part(s, 0, 16), part(e, 11, 16))
        }
    }

    /// Ticks for the time labels: every bucket-aligned step of the first
    /// of 1, 2, 3, 6, 12 h, 1, 2, 7, 14, 28 … days that makes at most 12.
    fn ticks(&self) -> Vec<Millis> {
        let span = self.end() - self.start;
        let step = [
            HOUR,
            2 * HOUR,
            3 * HOUR,
            6 * HOUR,
            12 * HOUR,
            DAY,
            2 * DAY,
            7 * DAY,
            14 * DAY,
        ]
        .into_iter()
        .filter(|s| s % self.bucket == 0 || *s >= self.bucket)
        .find(|s| span / s <= 12)
        .unwrap_or_else(|| 28 * DAY * (span / (28 * DAY * 12) + 1));
        // Weeks start on Monday (the epoch was a Thursday).
        let offset = if step % (7 * DAY) == 0 { 4 * DAY } else { 0 };
        let first = (self.start - offset + step - 1).div_euclid(step) * step + offset;
        (0..)
            .map(|i| first + i * step)
            .take_while(|t| *t <= self.end())
            .collect()
    }
}

fn day(t: Millis) -> String {
    part(t, 0, 10)
}

/// Bytes `from..to` of [`format_ts`]'s text (`2026-11-23T14:00:00.000Z`);
/// empty for a time it cannot write.
fn part(t: Millis, from: usize, to: usize) -> String {
    format_ts(t).get(from..to).unwrap_or_default().to_string()
}

/// A label cut to [`LABEL_CHARS`] characters (with `…`), escaped.
fn label(s: &str) -> String {
    if s.chars().count() <= LABEL_CHARS {
        esc(s)
    } else {
        let cut: String = s.chars().take(LABEL_CHARS - 1).collect();
        format!("{}…", esc(&cut))
    }
}

/// The y axis for values up to `max`: a step of 1, 2 or 5 × 10ⁿ such that
/// at most four steps reach `max`, and the top (a whole number of steps,
/// at least one).
fn y_scale(max: u64) -> (u64, u64) {
    let mut p = 1u64;
    loop {
        for m in [1, 2, 5] {
            if let Some(step) = p.checked_mul(m)
                && step.saturating_mul(4) >= max
            {
                let steps = max.div_ceil(step).max(1);
                return (step, step.saturating_mul(steps));
            }
        }
        match p.checked_mul(10) {
            Some(n) => p = n,
            None => return (u64::MAX / 4, u64::MAX),
        }
    }
}

fn open(out: &mut String, height: f64, title: &str) {
    let _ = write!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH:.0} {height:.0}\" role=\"img\" \
         aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        esc(title)
    );
}

/// Days without any log line (epoch days, sorted), shaded on the axis as
/// runs of consecutive days, each with a tooltip and a mark at its top.
fn gaps(out: &mut String, axis: &Axis, gap_days: &[i64], top: f64, bottom: f64) {
    let mut i = 0;
    while i < gap_days.len() {
        let mut j = i;
        while j + 1 < gap_days.len() && gap_days[j + 1] == gap_days[j] + 1 {
            j += 1;
        }
        let (from, to) = (gap_days[i] * DAY, (gap_days[j] + 1) * DAY);
        let (a, b) = (axis.x(from.max(axis.start)), axis.x(to.min(axis.end())));
        if b > a {
            let what = if i == j {
                format!("no log line on {}", day(from))
            } else {
                format!("no log line from {} to {}", day(from), day(to - DAY))
            };
            let _ = write!(
                out,
                "<g class=\"gap\"><title>{what}</title><rect x=\"{a:.1}\" y=\"{top:.1}\" \
                 width=\"{:.1}\" height=\"{:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" \
                 text-anchor=\"middle\">no logs</text></g>",
                b - a,
                bottom - top,
                (a + b) / 2.0,
                top + 11.0
            );
        }
        i = j + 1;
    }
}

/// The time labels under a plot whose bottom is at `y`.
fn time_labels(out: &mut String, axis: &Axis, y: f64) {
    for t in axis.ticks() {
        let x = axis.x(t);
        let text = if t % DAY == 0 {
            part(t, 5, 10)
        } else {
            part(t, 11, 16)
        };
        let _ = write!(
            out,
            "<line class=\"tick\" x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>\
             <text class=\"axis\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{text}</text>",
            y + 4.0,
            y + 16.0
        );
    }
}

/// Bars over time, one per bucket of `axis`, each stacked from the values
/// of `layers` in order; `unit` names what is counted ("calls"). Days in
/// `gap_days` are shaded.
pub(crate) fn time_bars<const N: usize>(
    axis: &Axis,
    values: &[[u64; N]],
    layers: &[Layer; N],
    unit: &str,
    gap_days: &[i64],
    title: &str,
) -> String {
    const TOP: f64 = 8.0;
    const PLOT: f64 = 200.0;
    let bottom = TOP + PLOT;
    let mut out = String::new();
    open(&mut out, bottom + 24.0, title);
    gaps(&mut out, axis, gap_days, TOP, bottom);
    let (step, max) = y_scale(values.iter().map(|v| v.iter().sum()).max().unwrap_or(0));
    for k in 0..=max / step {
        let v = step * k;
        let y = bottom - PLOT * v as f64 / max as f64;
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{v}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
    }
    for (i, v) in values.iter().enumerate() {
        let total: u64 = v.iter().sum();
        if total == 0 {
            continue;
        }
        let t = axis.start + i as Millis * axis.bucket;
        let (x0, x1) = (axis.x(t), axis.x(t + axis.bucket));
        // A few wide buckets (one day) get bars, not walls, centred.
        let w = ((x1 - x0) * 0.85).clamp(0.5, MAX_BAR);
        let x0 = if w == MAX_BAR {
            (x0 + x1 - w) / 2.0
        } else {
            x0
        };
        let parts: Vec<String> = layers
            .iter()
            .zip(v)
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| format!("{n} {}", s.name))
            .collect();
        let _ = write!(
            out,
            "<g><title>{}: {total} {unit} ({})</title>",
            axis.name(i),
            parts.join(", ")
        );
        let mut y = bottom;
        for (s, n) in layers.iter().zip(v) {
            if *n == 0 {
                continue;
            }
            let h = PLOT * *n as f64 / max as f64;
            y -= h;
            let _ = write!(
                out,
                "<rect class=\"{}\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\"/>",
                s.class
            );
        }
        out.push_str("</g>");
    }
    let _ = write!(
        out,
        "<line class=\"base\" x1=\"{LEFT:.1}\" y1=\"{bottom:.1}\" x2=\"{:.1}\" y2=\"{bottom:.1}\"/>",
        WIDTH - RIGHT
    );
    time_labels(&mut out, axis, bottom);
    out.push_str("</svg>");
    out
}

/// Horizontal bars, one per `(label, value)` row, in the order given.
pub(crate) fn hbars(rows: &[(&str, u64)], class: &str, unit: &str, title: &str) -> String {
    const ROW: f64 = 22.0;
    let height = ROW * rows.len() as f64 + 12.0;
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let w = WIDTH - LEFT - RIGHT - 60.0;
    let mut out = String::new();
    open(&mut out, height, title);
    for (i, (name, n)) in rows.iter().enumerate() {
        let y = 6.0 + ROW * i as f64;
        let len = w * *n as f64 / max as f64;
        let _ = write!(
            out,
            "<g><title>{}: {n} {unit}</title><text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" \
             text-anchor=\"end\">{}</text><rect class=\"{class}\" x=\"{LEFT:.1}\" y=\"{:.1}\" \
             width=\"{len:.1}\" height=\"{:.1}\"/><text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\">{n}</text></g>",
            esc(name),
            LEFT - 6.0,
            y + 14.0,
            label(name),
            y + 2.0,
            ROW - 6.0,
            LEFT + len + 4.0,
            y + 14.0
        );
    }
    out.push_str("</svg>");
    out
}

/// Latency per row on a log scale: a line from p50 to p99 with a mark at
/// each of p50, p95 and p99 (milliseconds).
pub(crate) fn latency(rows: &[(&str, [u64; 3])], title: &str) -> String {
    const ROW: f64 = 22.0;
    const TOP: f64 = 6.0;
    let bottom = TOP + ROW * rows.len() as f64;
    let max = rows.iter().map(|r| r.1[2]).max().unwrap_or(1).max(1);
    // Decades from 1 ms to the first power of ten at or above the max.
    let mut decades = 1u32;
    while 10u64.saturating_pow(decades) < max && decades < 12 {
        decades += 1;
    }
    let w = WIDTH - LEFT - RIGHT;
    let x = |ms: u64| LEFT + w * ((ms.max(1) as f64).log10() / f64::from(decades)).min(1.0);
    let mut out = String::new();
    open(&mut out, bottom + 24.0, title);
    for d in 0..=decades {
        let v = 10u64.pow(d);
        let xv = x(v);
        let text = match v {
            v if v >= 1000 => format!("{} s", v / 1000),
            v => format!("{v} ms"),
        };
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{xv:.1}\" y1=\"{TOP:.1}\" x2=\"{xv:.1}\" y2=\"{bottom:.1}\"/>\
             <text class=\"axis\" x=\"{xv:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{text}</text>",
            bottom + 16.0
        );
    }
    for (i, (name, [p50, p95, p99])) in rows.iter().enumerate() {
        let y = TOP + ROW * i as f64 + ROW / 2.0;
        let _ = write!(
            out,
            "<g><title>{}: p50 {p50} ms, p95 {p95} ms, p99 {p99} ms</title>\
             <text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <line class=\"range\" x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>",
            esc(name),
            LEFT - 6.0,
            y + 4.0,
            label(name),
            x(*p50),
            x(*p99)
        );
        for (v, class) in [(p50, "c-p50"), (p95, "c-p95"), (p99, "c-p99")] {
            let _ = write!(
                out,
                "<circle class=\"{class}\" cx=\"{:.1}\" cy=\"{y:.1}\" r=\"4.5\"/>",
                x(*v)
            );
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    out
}

/// One row per `(rule, counts per bucket of axis)`, a cell per non-empty
/// bucket, darker for more alerts (four steps of the row set's maximum).
pub(crate) fn heatmap(
    axis: &Axis,
    rows: &[(&str, Vec<u64>)],
    gap_days: &[i64],
    title: &str,
) -> String {
    const ROW: f64 = 20.0;
    const TOP: f64 = 4.0;
    let bottom = TOP + ROW * rows.len() as f64;
    let max = rows
        .iter()
        .flat_map(|r| r.1.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut out = String::new();
    open(&mut out, bottom + 24.0, title);
    gaps(&mut out, axis, gap_days, TOP, bottom);
    for (r, (name, counts)) in rows.iter().enumerate() {
        let y = TOP + ROW * r as f64;
        let total: u64 = counts.iter().sum();
        let _ = write!(
            out,
            "<g><title>{}: {total} alerts</title><text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" \
             text-anchor=\"end\">{}</text></g><line class=\"grid\" x1=\"{LEFT:.1}\" y1=\"{:.1}\" \
             x2=\"{:.1}\" y2=\"{:.1}\"/>",
            esc(name),
            LEFT - 6.0,
            y + 14.0,
            label(name),
            y + ROW,
            WIDTH - RIGHT,
            y + ROW
        );
        for (i, n) in counts.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let t = axis.start + i as Millis * axis.bucket;
            let (x0, x1) = (axis.x(t), axis.x(t + axis.bucket));
            let level = (n * 4).div_ceil(max).clamp(1, 4);
            let _ = write!(
                out,
                "<rect class=\"heat h{level}\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" \
                 height=\"{:.1}\"><title>{}, {}: {n} alerts</title></rect>",
                y + 2.0,
                (x1 - x0).max(1.5),
                ROW - 4.0,
                esc(name),
                axis.name(i)
            );
        }
    }
    time_labels(&mut out, axis, bottom);
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_23: Millis = 1_795_392_000_000; // 2026-11-23T00:00:00Z

    #[test]
    fn a_day_has_hourly_buckets_a_week_too_a_month_four_hourly() {
        let day = Axis::new(NOV_23, NOV_23 + DAY, HOUR);
        assert_eq!((day.start, day.bucket, day.buckets), (NOV_23, HOUR, 24));
        let week = Axis::new(NOV_23, NOV_23 + 7 * DAY, HOUR);
        assert_eq!((week.bucket, week.buckets), (HOUR, 168));
        let month = Axis::new(NOV_23, NOV_23 + 30 * DAY, HOUR);
        assert_eq!((month.bucket, month.buckets), (4 * HOUR, 180));
        let year = Axis::new(NOV_23, NOV_23 + 365 * DAY, DAY);
        assert_eq!(year.bucket, 3 * DAY);
        assert!(year.buckets <= MAX_BUCKETS);
        // Ten years of days: multiples of four weeks.
        let decade = Axis::new(NOV_23, NOV_23 + 3650 * DAY, DAY);
        assert_eq!(decade.bucket % (28 * DAY), 0);
        assert!(decade.buckets <= MAX_BUCKETS, "{decade:?}");
    }

    #[test]
    fn buckets_align_to_the_epoch_and_cover_the_span() {
        let a = Axis::new(NOV_23 + 90 * 60_000, NOV_23 + 5 * HOUR, HOUR);
        assert_eq!((a.start, a.buckets), (NOV_23 + HOUR, 4));
        assert_eq!(a.index(NOV_23 + HOUR), Some(0));
        assert_eq!(a.index(NOV_23 + 5 * HOUR - 1), Some(3));
        assert_eq!(a.index(NOV_23 + 5 * HOUR), None);
        assert_eq!(a.index(NOV_23), None);
        assert_eq!(a.name(0), "2026-11-23T01:00 to 02:00 UTC");
        let d = Axis::new(NOV_23, NOV_23 + 2 * DAY, DAY);
        assert_eq!(d.name(1), "2026-11-24");
    }

    #[test]
    fn ticks_of_a_day_are_two_hourly_of_a_week_daily() {
        let day = Axis::new(NOV_23, NOV_23 + DAY, HOUR);
        let t = day.ticks();
        assert_eq!(t.len(), 13);
        assert_eq!((t[0], t[1]), (NOV_23, NOV_23 + 2 * HOUR));
        let week = Axis::new(NOV_23, NOV_23 + 7 * DAY, HOUR);
        assert_eq!(week.ticks().len(), 8);
        // A month's ticks are weekly, on Mondays (2026-11-23 is one).
        let month = Axis::new(NOV_23 - 22 * DAY, NOV_23 + 8 * DAY, HOUR);
        let t = month.ticks();
        assert_eq!(t[0], NOV_23 - 21 * DAY);
        assert!(t.contains(&NOV_23) && t.windows(2).all(|w| w[1] - w[0] == 7 * DAY));
    }

    #[test]
    fn y_scales_have_round_steps_and_at_most_four_of_them() {
        assert_eq!(
            [0, 1, 3, 7, 10, 11, 310, 4999].map(y_scale),
            [
                (1, 1),
                (1, 1),
                (1, 3),
                (2, 8),
                (5, 10),
                (5, 15),
                (100, 400),
                (2000, 6000)
            ]
        );
    }

    #[test]
    fn hostile_labels_are_cut_by_characters_and_escaped() {
        assert_eq!(label("<b>"), "&lt;b&gt;");
        let long = "é".repeat(30);
        assert_eq!(label(&long), format!("{}…", "é".repeat(23)));
        let svg = hbars(&[("x\"><script>", 3)], "c-err", "errors", "t");
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("x&quot;&gt;&lt;script&gt;: 3 errors"), "{svg}");
    }

    #[test]
    fn gap_days_are_shaded_as_runs() {
        let axis = Axis::new(NOV_23, NOV_23 + 7 * DAY, HOUR);
        let d = NOV_23 / DAY;
        let mut out = String::new();
        gaps(&mut out, &axis, &[d + 1, d + 2, d + 5], 0.0, 10.0);
        assert_eq!(out.matches("<rect").count(), 2, "{out}");
        assert!(out.contains("no log line from 2026-11-24 to 2026-11-25"));
        assert!(out.contains("no log line on 2026-11-28"));
    }

    #[test]
    fn stacked_bars_stack_in_layer_order_and_skip_empty_buckets() {
        let axis = Axis::new(NOV_23, NOV_23 + 2 * HOUR, HOUR);
        let layers = [
            Layer {
                name: "success",
                class: "c-ok",
            },
            Layer {
                name: "error",
                class: "c-err",
            },
        ];
        let svg = time_bars(&axis, &[[3, 1], [0, 0]], &layers, "calls", &[], "t");
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains(
            "<title>2026-11-23T00:00 to 01:00 UTC: 4 calls (3 success, 1 error)</title>"
        ));
        // Scale 0..4 over 200 units: 3 → 150 from the bottom (208), then 1 → 50;
        // the bar is at most 48 wide, centred in its bucket (170 to 557).
        assert!(
            svg.contains("class=\"c-ok\" x=\"339.5\" y=\"58.0\" width=\"48.0\""),
            "{svg}"
        );
        assert!(
            svg.contains("class=\"c-err\" x=\"339.5\" y=\"8.0\""),
            "{svg}"
        );
    }
}
