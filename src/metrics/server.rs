//! The daemon's HTTP endpoint: `/metrics` (Prometheus text) and `/healthz`
//! (200 or 503 with a JSON body saying which part is unwell), plus the
//! HELP/TYPE of every family the daemon exports.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use crate::event::Kind;
use crate::metrics::Metrics;

/// Liveness facts for `/healthz`, written by the detection loop.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// Unix ms of the last completed poll.
    pub(crate) last_poll_ms: AtomicI64,
    /// Unix ms of the last checkpoint written (or of start-up).
    pub(crate) last_checkpoint_ms: AtomicI64,
    /// Whether detection has consumed lines not yet in a checkpoint.
    pub(crate) dirty: AtomicBool,
    /// Bytes written but not consumed at the last poll.
    pub(crate) lag_bytes: AtomicU64,
    /// Poll interval in ms (what "keeping up" is measured against).
    pub(crate) poll_interval_ms: AtomicI64,
    /// The state directory cannot be written (the outbox or the
    /// checkpoint): reading has stopped until it can.
    pub(crate) state_unwritable: AtomicBool,
    /// The audit directory does not exist (SPEC §9: 503).
    pub(crate) audit_dir_missing: AtomicBool,
    /// Log names that are something else than a regular file (or a link
    /// to one): a FIFO, a directory. Nothing can be read from them.
    pub(crate) unreadable_inputs: std::sync::Mutex<Vec<String>>,
}

impl Health {
    /// `(healthy, JSON body)`.
    pub(crate) fn report(&self, now_ms: i64) -> (bool, String) {
        let poll_age = now_ms - self.last_poll_ms.load(Ordering::Relaxed);
        let ckpt_age = now_ms - self.last_checkpoint_ms.load(Ordering::Relaxed);
        let interval = self.poll_interval_ms.load(Ordering::Relaxed).max(1);
        let tailing_ok = poll_age <= 3 * interval + 5_000;
        let state_ok = !self.state_unwritable.load(Ordering::Relaxed);
        let checkpoint_ok = state_ok && (!self.dirty.load(Ordering::Relaxed) || ckpt_age <= 10_000);
        let dir_ok = !self.audit_dir_missing.load(Ordering::Relaxed);
        let unreadable = self
            .unreadable_inputs
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default();
        let ok = tailing_ok && checkpoint_ok && dir_ok && unreadable.is_empty();
        let body = serde_json::json!({
            "status": if ok { "ok" } else { "degraded" },
            "audit_dir": if dir_ok { "ok" } else { "missing" },
            "inputs": if unreadable.is_empty() {
                "ok".to_string()
            } else {
                format!("not a regular file: {}", unreadable.join(", "))
            },
            "tailing": if tailing_ok { "ok" } else { "stalled" },
            "checkpoint": if checkpoint_ok { "ok" } else { "behind" },
            "state_dir": if state_ok { "ok" } else { "unwritable" },
            "last_poll_age_ms": poll_age,
            "last_checkpoint_age_ms": ckpt_age,
            "lag_bytes": self.lag_bytes.load(Ordering::Relaxed),
        });
        (ok, body.to_string())
    }
}

pub(crate) async fn serve(
    listener: std::net::TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> std::io::Result<()> {
    use axum::http::{StatusCode, header};
    use axum::routing::get;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get({
                let m = metrics.clone();
                move || {
                    let m = m.clone();
                    async move {
                        (
                            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                            m.render(),
                        )
                    }
                }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let h = health.clone();
                async move {
                    let (ok, body) = h.report(chrono::Utc::now().timestamp_millis());
                    let code = if ok {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    (code, [(header::CONTENT_TYPE, "application/json")], body)
                }
            }),
        );
    axum::serve(listener, app).await
}

/// HELP and TYPE lines for every metric the daemon exports.
pub(crate) fn describe_daemon(m: &Metrics) {
    let d = [
        (
            "mcpwatch_events_total",
            "counter",
            "Accepted audit events, by log file and kind.",
        ),
        (
            "mcpwatch_lines_rejected_total",
            "counter",
            "Rejected lines, by log file and reason.",
        ),
        (
            "mcpwatch_alerts_total",
            "counter",
            "Alerts raised, by rule and severity.",
        ),
        (
            "mcpwatch_alerts_suppressed_total",
            "counter",
            "Rule hits suppressed by realert, by rule.",
        ),
        (
            "mcpwatch_state_evictions_total",
            "counter",
            "Detector keys evicted because max_keys was reached, by rule.",
        ),
        (
            "mcpwatch_checkpoint_writes_total",
            "counter",
            "Checkpoints written.",
        ),
        (
            "mcpwatch_alert_latency_seconds",
            "histogram",
            "Time from reading the firing line to appending its alert.",
        ),
        (
            "mcpwatch_checkpoint_seconds",
            "histogram",
            "Time to write one checkpoint (engine state, positions, fsync).",
        ),
        (
            "mcpwatch_checkpoint_failures_total",
            "counter",
            "Checkpoints that could not be written (retried).",
        ),
        (
            "mcpwatch_approvals_late_total",
            "counter",
            "Approve decisions that arrived after their call was judged a bypass.",
        ),
        (
            "mcpwatch_events_late_total",
            "counter",
            "Stream events that arrived after allowed_lateness, processed on arrival (SPEC §10).",
        ),
        (
            "mcpwatch_events_released_early_total",
            "counter",
            "Stream events handed to detection before allowed_lateness passed: too many held.",
        ),
        (
            "mcpwatch_lines_resent_total",
            "counter",
            "Stream lines dropped as sent again: at or below the highest offset of their host and file.",
        ),
        (
            "mcpwatch_bypass_unjudged_total",
            "counter",
            "Calls needing approval that had no request_id to judge.",
        ),
        (
            "mcpwatch_deliveries_total",
            "counter",
            "Delivery attempts, by channel and result.",
        ),
        (
            "mcpwatch_outbox_pending",
            "gauge",
            "Deliveries waiting in the outbox.",
        ),
        (
            "mcpwatch_config_reloads_total",
            "counter",
            "Configuration reloads on SIGHUP, by result (ok, refused).",
        ),
    ];
    for (name, kind, help) in d {
        m.describe(name, kind, help);
    }
    for k in Kind::ALL {
        m.touch(
            "mcpwatch_events_total",
            &[("file", k.base_file()), ("kind", k.as_str())],
        );
    }
    for k in Kind::ALL {
        for r in crate::event::RejectReason::ALL {
            m.touch(
                "mcpwatch_lines_rejected_total",
                &[("file", k.base_file()), ("reason", r.as_str())],
            );
        }
    }
    for name in [
        "mcpwatch_checkpoint_writes_total",
        "mcpwatch_checkpoint_failures_total",
        "mcpwatch_approvals_late_total",
        "mcpwatch_bypass_unjudged_total",
        "mcpwatch_events_late_total",
        "mcpwatch_lines_resent_total",
        "mcpwatch_events_released_early_total",
    ] {
        m.touch(name, &[]);
    }
    m.touch_histogram("mcpwatch_alert_latency_seconds", &[]);
    m.touch_histogram("mcpwatch_checkpoint_seconds", &[]);
    m.set_gauge("mcpwatch_outbox_pending", &[], 0.0);
    m.expose_process();
}
