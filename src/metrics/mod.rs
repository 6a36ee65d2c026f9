//! Process metrics in Prometheus text format (SPEC §8, §9).
//!
//! One [`Metrics`] registry is shared (behind an `Arc`) by every stage of the
//! daemon; `scan` uses a private one for its summary. Counters, gauges and
//! histograms live in `DashMap`s keyed by name and label values, updated
//! with atomics, so hot paths on different threads do not contend on one
//! lock. Latencies are Prometheus histograms with fixed buckets (which
//! aggregate across instances and over time, unlike quantiles over the
//! process lifetime). [`Metrics::render`] adds `mcpwatch_build_info` and
//! the `process_*` families of the Prometheus client conventions.

mod process;
pub(crate) mod server;

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

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

/// Upper bounds (`le`, seconds) of every latency histogram's buckets: a
/// 1-2-5 series from 100 µs to a minute, fine enough for the daemon's
/// milliseconds and a slow SMTP server's seconds alike.
pub(crate) const BUCKETS: [f64; 18] = [
    0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
    10.0, 30.0, 60.0,
];

/// One histogram series: per-bucket counts (the last is above every
/// bound), the sum in microseconds and the count.
#[derive(Default)]
struct Buckets {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

/// The registry. Cheap to update from any thread.
#[derive(Default)]
pub struct Metrics {
    counters: DashMap<SeriesKey, AtomicU64>,
    /// Gauges stored as `f64::to_bits`.
    gauges: DashMap<SeriesKey, AtomicU64>,
    histograms: DashMap<SeriesKey, Buckets>,
    help: DashMap<&'static str, (&'static str, &'static str)>,
    /// When this registry (the process, for the daemon) started.
    started: Mutex<Option<f64>>,
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

    /// Records a duration (seconds) into a histogram.
    pub(crate) fn observe_seconds(
        &self,
        name: &'static str,
        labels: &[(&'static str, &str)],
        secs: f64,
    ) {
        let secs = if secs.is_finite() { secs.max(0.0) } else { 0.0 };
        let slot = BUCKETS.partition_point(|&le| le < secs);
        let entry = self
            .histograms
            .entry(SeriesKey::new(name, labels))
            .or_default();
        entry.counts[slot].fetch_add(1, Ordering::Relaxed);
        entry
            .sum_micros
            .fetch_add((secs * 1e6).round() as u64, Ordering::Relaxed);
    }

    /// Makes a histogram exist (empty) so it shows before its first value.
    pub(crate) fn touch_histogram(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        self.histograms
            .entry(SeriesKey::new(name, labels))
            .or_default();
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
            header(&mut out, k.name, "histogram");
            let Some(h) = self.histograms.get(&k) else {
                continue;
            };
            let mut cumulative = 0;
            for (i, le) in BUCKETS
                .iter()
                .map(|b| b.to_string())
                .chain(["+Inf".into()])
                .enumerate()
            {
                cumulative += h.counts[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "{}_bucket{} {cumulative}",
                    k.name,
                    fmt_labels(&k.labels, Some(&le))
                );
            }
            let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let labels = fmt_labels(&k.labels, None);
            let _ = writeln!(out, "{}_sum{labels} {sum}", k.name);
            let _ = writeln!(out, "{}_count{labels} {cumulative}", k.name);
        }
        let started = *self.started.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(started) = started {
            process::render(&mut out, started);
        }
        out
    }

    /// Adds `mcpwatch_build_info` and the `process_*` families (CPU time,
    /// memory, descriptors, start time) to what [`Metrics::render`] shows,
    /// with now as the start time: called once by the daemon at its start.
    pub(crate) fn expose_process(&self) {
        self.describe(
            "mcpwatch_build_info",
            "gauge",
            "Always 1; the version of the running mcpwatch is its label.",
        );
        self.set_gauge(
            "mcpwatch_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        *self.started.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
    }
}

fn fmt_labels(labels: &[(&'static str, String)], le: Option<&str>) -> String {
    if labels.is_empty() && le.is_none() {
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
    if let Some(le) = le {
        if !first {
            s.push(',');
        }
        let _ = write!(s, "le=\"{le}\"");
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
    fn latencies_are_histograms_with_cumulative_buckets() {
        let m = Metrics::new();
        for s in [0.0001, 0.00015, 0.003, 7200.0] {
            m.observe_seconds("x_seconds", &[("channel", "a")], s);
        }
        let text = m.render();
        for line in [
            "# TYPE x_seconds histogram",
            "x_seconds_bucket{channel=\"a\",le=\"0.0001\"} 1",
            "x_seconds_bucket{channel=\"a\",le=\"0.0002\"} 2",
            "x_seconds_bucket{channel=\"a\",le=\"0.002\"} 2",
            "x_seconds_bucket{channel=\"a\",le=\"0.005\"} 3",
            "x_seconds_bucket{channel=\"a\",le=\"60\"} 3",
            "x_seconds_bucket{channel=\"a\",le=\"+Inf\"} 4",
            "x_seconds_count{channel=\"a\"} 4",
            "x_seconds_sum{channel=\"a\"} 7200.00325",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }

    #[test]
    fn renders_counters_gauges_and_histograms() {
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
        assert!(text.contains("mcpwatch_alert_latency_seconds_bucket{le=\"0.002\"} 1"));
        assert_eq!(m.counter_total("mcpwatch_events_total"), 3);
    }

    #[test]
    fn label_values_from_logs_are_escaped() {
        let m = Metrics::new();
        m.inc("x_total", &[("file", "a\"b\nc")], 1);
        assert!(m.render().contains("x_total{file=\"a\\\"b\\nc\"} 1"));
    }
}
