//! Process metrics in Prometheus text format (SPEC §8).
//!
//! One [`Metrics`] registry is shared (behind an `Arc`) by every stage of the
//! daemon; `scan` uses a private one for its summary. Counters and gauges
//! live in a `DashMap` keyed by name and label values so hot paths on
//! different threads do not contend on one lock; latency histograms are
//! hdrhistograms exposed as quantiles (a Prometheus summary).

pub(crate) mod server;

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use hdrhistogram::Histogram;

/// A metric's identity: its name and its label pairs, in the order given.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct SeriesKey {
    name: &'static str,
    labels: Vec<(&'static str, String)>,
}

impl SeriesKey {
    fn new(name: &'static str, labels: &[(&'static str, &str)]) -> Self {
        SeriesKey {
            name,
            labels: labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect(),
        }
    }
}

/// Highest value the latency histograms track, in microseconds (1 hour);
/// larger values are clamped so a stuck clock cannot make `record` fail.
const HISTOGRAM_MAX_MICROS: u64 = 3_600_000_000;

/// Quantiles exposed for each histogram.
const QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 1.0];

/// The registry. Cheap to update from any thread.
#[derive(Default)]
pub struct Metrics {
    counters: DashMap<SeriesKey, AtomicU64>,
    /// Gauges stored as `f64::to_bits`.
    gauges: DashMap<SeriesKey, AtomicU64>,
    histograms: DashMap<SeriesKey, Mutex<Histogram<u64>>>,
    help: DashMap<&'static str, (&'static str, &'static str)>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `by` to a counter, creating it at zero first.
    pub(crate) fn inc(&self, name: &'static str, labels: &[(&'static str, &str)], by: u64) {
        let key = SeriesKey::new(name, labels);
        if let Some(c) = self.counters.get(&key) {
            c.fetch_add(by, Ordering::Relaxed);
            return;
        }
        self.counters
            .entry(key)
            .or_insert_with(|| AtomicU64::new(0))
            .fetch_add(by, Ordering::Relaxed);
    }

    /// Makes a counter exist (at 0) so it shows before its first event.
    pub(crate) fn touch(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        self.inc(name, labels, 0);
    }

    /// Current value of a counter (0 if it never moved).
    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> u64 {
        self.counters
            .get(&SeriesKey::new(name, labels))
            .map(|c| c.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// Sum of a counter over all its label values.
    pub fn counter_total(&self, name: &'static str) -> u64 {
        self.counters
            .iter()
            .filter(|e| e.key().name == name)
            .map(|e| e.value().load(Ordering::Relaxed))
            .sum()
    }

    pub(crate) fn set_gauge(
        &self,
        name: &'static str,
        labels: &[(&'static str, &str)],
        value: f64,
    ) {
        let key = SeriesKey::new(name, labels);
        self.gauges
            .entry(key)
            .or_insert_with(|| AtomicU64::new(0))
            .store(value.to_bits(), Ordering::Relaxed);
    }

    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)]) -> f64 {
        self.gauges
            .get(&SeriesKey::new(name, labels))
            .map(|g| f64::from_bits(g.load(Ordering::Relaxed)))
            .unwrap_or(0.0)
    }

    /// Records a duration (seconds) into a histogram exposed as quantiles.
    pub(crate) fn observe_seconds(
        &self,
        name: &'static str,
        labels: &[(&'static str, &str)],
        secs: f64,
    ) {
        let micros = (secs.max(0.0) * 1e6).round() as u64;
        let key = SeriesKey::new(name, labels);
        let entry = self.histograms.entry(key).or_insert_with(|| {
            Mutex::new(
                Histogram::new_with_bounds(1, HISTOGRAM_MAX_MICROS, 3)
                    .expect("static histogram bounds are valid"),
            )
        });
        if let Ok(mut h) = entry.lock() {
            h.saturating_record(micros.clamp(1, HISTOGRAM_MAX_MICROS));
        }
    }

    /// Sets the `# HELP` text and `# TYPE` of a metric name.
    pub(crate) fn describe(&self, name: &'static str, kind: &'static str, help: &'static str) {
        self.help.insert(name, (kind, help));
    }

    /// Renders every series in Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut names: Vec<&'static str> = Vec::new();
        let mut counters: Vec<(SeriesKey, u64)> = self
            .counters
            .iter()
            .map(|e| (e.key().clone(), e.value().load(Ordering::Relaxed)))
            .collect();
        counters.sort_by(|a, b| a.0.cmp(&b.0));
        let mut gauges: Vec<(SeriesKey, f64)> = self
            .gauges
            .iter()
            .map(|e| {
                (
                    e.key().clone(),
                    f64::from_bits(e.value().load(Ordering::Relaxed)),
                )
            })
            .collect();
        gauges.sort_by(|a, b| a.0.cmp(&b.0));

        let mut header = |out: &mut String, name: &'static str, default_kind: &str| {
            if names.contains(&name) {
                return;
            }
            names.push(name);
            let (kind, help) = self
                .help
                .get(name)
                .map(|h| *h.value())
                .unwrap_or((default_kind, ""));
            if !help.is_empty() {
                let _ = writeln!(out, "# HELP {name} {help}");
            }
            let _ = writeln!(out, "# TYPE {name} {kind}");
        };
        for (k, v) in &counters {
            header(&mut out, k.name, "counter");
            let _ = writeln!(out, "{}{} {}", k.name, fmt_labels(&k.labels, None), v);
        }
        for (k, v) in &gauges {
            header(&mut out, k.name, "gauge");
            let _ = writeln!(out, "{}{} {}", k.name, fmt_labels(&k.labels, None), v);
        }
        let mut hists: Vec<SeriesKey> = self.histograms.iter().map(|e| e.key().clone()).collect();
        hists.sort();
        for k in hists {
            header(&mut out, k.name, "summary");
            let Some(h) = self.histograms.get(&k) else {
                continue;
            };
            let Ok(h) = h.lock() else { continue };
            for q in QUANTILES {
                let v = if h.is_empty() {
                    0.0
                } else {
                    h.value_at_quantile(q) as f64 / 1e6
                };
                let _ = writeln!(out, "{}{} {}", k.name, fmt_labels(&k.labels, Some(q)), v);
            }
            let sum = h.mean() * h.len() as f64 / 1e6;
            let _ = writeln!(out, "{}_sum{} {}", k.name, fmt_labels(&k.labels, None), sum);
            let _ = writeln!(
                out,
                "{}_count{} {}",
                k.name,
                fmt_labels(&k.labels, None),
                h.len()
            );
        }
        out
    }
}

fn fmt_labels(labels: &[(&'static str, String)], quantile: Option<f64>) -> String {
    if labels.is_empty() && quantile.is_none() {
        return String::new();
    }
    let mut s = String::from("{");
    let mut first = true;
    for (k, v) in labels {
        if !first {
            s.push(',');
        }
        first = false;
        let _ = write!(s, "{k}=\"{}\"", escape_label(v));
    }
    if let Some(q) = quantile {
        if !first {
            s.push(',');
        }
        let _ = write!(s, "quantile=\"{q}\"");
    }
    s.push('}');
    s
}

/// Label values may come from log lines: escape as the format requires.
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_quantiles() {
        let m = Metrics::new();
        m.describe("mcpwatch_events_total", "counter", "Events read");
        m.inc(
            "mcpwatch_events_total",
            &[("file", "tool-usage.log"), ("kind", "tool_call")],
            3,
        );
        m.set_gauge("mcpwatch_outbox_pending", &[], 2.0);
        m.observe_seconds("mcpwatch_alert_latency_seconds", &[], 0.002);
        let text = m.render();
        assert!(text.contains("# TYPE mcpwatch_events_total counter"));
        assert!(
            text.contains("mcpwatch_events_total{file=\"tool-usage.log\",kind=\"tool_call\"} 3")
        );
        assert!(text.contains("mcpwatch_outbox_pending 2"));
        assert!(text.contains("mcpwatch_alert_latency_seconds{quantile=\"0.99\"} 0.002"));
        assert_eq!(m.counter_total("mcpwatch_events_total"), 3);
    }

    #[test]
    fn label_values_from_logs_are_escaped() {
        let m = Metrics::new();
        m.inc("x_total", &[("file", "a\"b\nc")], 1);
        assert!(m.render().contains("x_total{file=\"a\\\"b\\nc\"} 1"));
    }
}
