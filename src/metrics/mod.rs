//! Process metrics in Prometheus text format (SPEC §8, §9).
//!
//! One [`Metrics`] registry is shared (behind an `Arc`) by every stage of the
//! daemon; `scan` and `rotate` use a private one for their summaries. The
//! series live in a `metrics-exporter-prometheus` recorder (not installed
//! as the process-global one, so registries stay separate), which writes
//! the exposition: HELP and TYPE, escaped labels, and latencies as
//! histograms with fixed buckets (they aggregate across instances and over
//! time, unlike quantiles over the process lifetime). The recorder's values
//! are write-only, so counters and gauges are also kept here, where the
//! summaries and tests read them. [`Metrics::render`] adds the `process_*`
//! families of the Prometheus client conventions.

mod process;
pub(crate) mod server;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use metrics::{Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

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

/// The recorder's key of a series.
fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    Key::from_parts(
        name,
        labels
            .iter()
            .map(|(k, v)| Label::new(*k, (*v).to_string()))
            .collect::<Vec<_>>(),
    )
}

/// Where a series was registered from (the recorder asks; it shows nowhere).
const META: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// Upper bounds (`le`, seconds) of every latency histogram's buckets: a
/// 1-2-5 series from 100 µs to a minute, fine enough for the daemon's
/// milliseconds and a slow SMTP server's seconds alike.
pub(crate) const BUCKETS: [f64; 18] = [
    0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
    10.0, 30.0, 60.0,
];

/// The registry. Cheap to update from any thread.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Counter values, as [`Metrics::counter`] reads them.
    counters: DashMap<SeriesKey, AtomicU64>,
    /// Gauge values (`f64::to_bits`), as [`Metrics::gauge`] reads them.
    gauges: DashMap<SeriesKey, AtomicU64>,
    /// When this registry (the process, for the daemon) started.
    started: Mutex<Option<f64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        // Setting buckets fails only for an empty list.
        let builder = PrometheusBuilder::new();
        let recorder = match builder.set_buckets(&BUCKETS) {
            Ok(b) => b.build_recorder(),
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        Metrics {
            handle: recorder.handle(),
            recorder,
            counters: DashMap::new(),
            gauges: DashMap::new(),
            started: Mutex::new(None),
        }
    }
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
        self.recorder
            .register_counter(&key(name, labels), &META)
            .increment(by);
        let series = SeriesKey::new(name, labels);
        if let Some(c) = self.counters.get(&series) {
            c.fetch_add(by, Ordering::Relaxed);
            return;
        }
        self.counters
            .entry(series)
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
        self.recorder
            .register_gauge(&key(name, labels), &META)
            .set(value);
        self.gauges
            .entry(SeriesKey::new(name, labels))
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
        self.recorder
            .register_histogram(&key(name, labels), &META)
            .record(secs);
    }

    /// Makes a histogram exist (empty) so it shows before its first value.
    pub(crate) fn touch_histogram(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        // Registered is shown; the handle itself is not needed.
        drop(self.recorder.register_histogram(&key(name, labels), &META));
    }

    /// Sets the `# HELP` text and `# TYPE` of a metric name.
    pub(crate) fn describe(&self, name: &'static str, kind: &'static str, help: &'static str) {
        let (name, help) = (name.into(), help.into());
        match kind {
            "counter" => self.recorder.describe_counter(name, None, help),
            "histogram" => self.recorder.describe_histogram(name, None, help),
            _ => self.recorder.describe_gauge(name, None, help),
        }
    }

    /// Renders every series in Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = self.handle.render();
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
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        let sum: f64 = (text.lines())
            .find_map(|l| l.strip_prefix("x_seconds_sum{channel=\"a\"} "))
            .and_then(|v| v.parse().ok())
            .unwrap_or_default();
        assert!((sum - 7200.00325).abs() < 1e-9, "{sum} in\n{text}");
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
