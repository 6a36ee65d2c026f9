//! Talking to the service manager (SPEC §9): `sd_notify` messages when
//! `NOTIFY_SOCKET` is set, nothing otherwise. `READY=1` once the lock is
//! held, the configuration loaded and the inputs opened (not after the
//! backlog, which may outlast a start timeout); `RELOADING=1` and
//! `READY=1` around a reload; `STOPPING=1` at shutdown; `WATCHDOG=1` from
//! the detection loop itself, so a loop that hangs stops the pings. And
//! the `/metrics` and `/healthz` endpoint.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// Sends `states`; a service manager that cannot be reached is logged
/// once per message, never fatal.
fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("cannot notify the service manager: {e}");
    }
}

pub(super) fn ready() {
    send(&[NotifyState::Ready]);
}

pub(super) fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// `RELOADING=1` with the monotonic time systemd 253 and newer require.
pub(super) fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// The watchdog, when `WATCHDOG_USEC` asks for one: pings at half its
/// period, from wherever [`Watchdog::tick`] is called.
pub(super) struct Watchdog {
    every: Option<Duration>,
    last: Instant,
}

impl Watchdog {
    pub(super) fn from_env() -> Watchdog {
        Watchdog {
            every: sd_notify::watchdog_enabled().map(|d| d / 2),
            last: Instant::now(),
        }
    }

    /// How long the loop may sleep before the next ping is due.
    pub(super) fn max_wait(&self) -> Option<Duration> {
        self.every.map(|e| {
            e.saturating_sub(self.last.elapsed())
                .max(Duration::from_millis(1))
        })
    }

    pub(super) fn tick(&mut self) {
        if let Some(every) = self.every
            && self.last.elapsed() >= every
        {
            self.last = Instant::now();
            send(&[NotifyState::Watchdog]);
        }
    }
}

/// The runtime of the daemon's I/O beside its detection thread: metrics,
/// signals, delivery and NATS.
pub(super) fn io_runtime() -> Result<tokio::runtime::Runtime, super::RunError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("mcpwatch-io")
        .build()
        .map_err(|e| super::RunError::Io("tokio runtime".into(), e))
}

/// Serves `/metrics` and `/healthz` on `opts.metrics_addr` (if any) and
/// writes the address bound to `<state_dir>/metrics.addr`.
pub(super) fn serve_metrics(
    runtime: &tokio::runtime::Runtime,
    opts: &super::RunOptions,
    metrics: &std::sync::Arc<crate::metrics::Metrics>,
    health: &std::sync::Arc<crate::metrics::server::Health>,
) -> Result<(), super::RunError> {
    let Some(addr) = opts.metrics_addr else {
        return Ok(());
    };
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| super::RunError::Metrics(addr, e))?;
    let local = listener
        .local_addr()
        .map_err(|e| super::RunError::Metrics(addr, e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| super::RunError::Metrics(addr, e))?;
    tracing::info!("metrics listening on http://{local}/metrics (health: /healthz)");
    let _ = std::fs::write(opts.state_dir.join("metrics.addr"), local.to_string());
    let (m, h) = (metrics.clone(), health.clone());
    runtime.spawn(async move {
        if let Err(e) = crate::metrics::server::serve(listener, m, h).await {
            tracing::error!("metrics endpoint stopped: {e}");
        }
    });
    Ok(())
}
