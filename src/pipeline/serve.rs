//! The daemon's loop and its end, shared by `run` on files, `run --input
//! nats://…` and each active term of `run --input nats://… --group`: read,
//! detect and emit ([`Daemon::cycle`]), checkpoint, rotate, answer the
//! signals, then stop within SPEC §7's 10 s.
//!
//! Who owns what: [`Ctx`] lives for the process (metrics, health, the tokio
//! runtime, the wake-up queue); a [`Term`] is one stretch of detection with
//! its delivery, and in a group the lease it holds ([`group::Active`]).
//! A term ends on a signal, on a fatal NATS error, or (in a group) when the
//! lease is lost: then nothing more is written, and the group goes on
//! without this instance's unsaved work.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::wake::{Wake, wait_for_signals};
use super::{
    DELIVERY_SHUTDOWN, Daemon, RunError, RunOptions, SHUTDOWN_BUDGET, WAKE_QUEUE, group, reload,
    service,
};
use crate::alert::delivery::{Delivery, DeliveryHandle};
use crate::alert::router::DeliveryConfig;
use crate::metrics::Metrics;
use crate::metrics::server::Health;
use crate::rotate::Rotator;

/// What lives as long as the process.
pub(super) struct Ctx {
    pub(super) metrics: Arc<Metrics>,
    pub(super) health: Arc<Health>,
    pub(super) runtime: tokio::runtime::Runtime,
    pub(super) wake_tx: mpsc::SyncSender<Wake>,
    pub(super) wake_rx: mpsc::Receiver<Wake>,
}

impl Ctx {
    /// Metrics (every series known now at 0), health, the runtime, the
    /// `/metrics` endpoint and the signal handlers.
    pub(super) fn start(opts: &RunOptions) -> Result<Ctx, RunError> {
        let metrics = Arc::new(Metrics::new());
        crate::metrics::server::describe_daemon(&metrics);
        let health = Arc::new(Health::default());
        let now_ms = chrono::Utc::now().timestamp_millis();
        health.last_poll_ms.store(now_ms, Ordering::Relaxed);
        health.last_checkpoint_ms.store(now_ms, Ordering::Relaxed);
        health
            .poll_interval_ms
            .store(opts.config.settings.input.poll_interval, Ordering::Relaxed);
        let runtime = service::io_runtime()?;
        let (wake_tx, wake_rx) = mpsc::sync_channel::<Wake>(WAKE_QUEUE);
        service::serve_metrics(&runtime, opts, &metrics, &health)?;
        Rotator::describe_metrics(&metrics);
        for rule in crate::config::RuleName::ALL {
            if opts.config.rule_active(rule) {
                let severity = opts.config.rules.get(rule).severity.as_str();
                let name = rule.as_str();
                metrics.touch(
                    "mcpwatch_alerts_total",
                    &[("rule", name), ("severity", severity)],
                );
                metrics.touch("mcpwatch_alerts_suppressed_total", &[("rule", name)]);
                metrics.touch("mcpwatch_state_evictions_total", &[("rule", name)]);
            }
        }
        runtime.spawn(wait_for_signals(wake_tx.clone()));
        for result in ["ok", "refused"] {
            metrics.touch(reload::M_RELOADS, &[("result", result)]);
        }
        Ok(Ctx {
            metrics,
            health,
            runtime,
            wake_tx,
            wake_rx,
        })
    }
}

/// One stretch of detection: the daemon, its delivery, and in a group
/// the lease it holds.
pub(super) struct Term {
    pub(super) daemon: Daemon,
    pub(super) delivery: DeliveryHandle,
    pub(super) delivery_task: JoinHandle<()>,
    pub(super) active: Option<group::Active>,
}

/// Why [`serve`] returned.
pub(super) enum Ended {
    /// SIGTERM or SIGINT.
    Shutdown,
    /// The audit stream is gone (SPEC §10): stop as on SIGTERM, then fail.
    Fatal(RunError),
    /// The group's lease was lost or taken over: stop writing at once.
    LeaseLost(String),
}

/// The loop: one cycle after the other until a signal, a fatal error or
/// (in a group) the lease's loss. `running` holds the configuration as
/// reloads change it.
pub(super) fn serve(
    running: &mut RunOptions,
    ctx: &mut Ctx,
    term: &mut Term,
) -> Result<Ended, RunError> {
    let mut watchdog = service::Watchdog::from_env();
    let rotate_every = running.rotate_every;
    let mut last_rotate = Instant::now();
    loop {
        if let Some(lost) = term.active.as_ref().and_then(group::Active::lost) {
            return Ok(Ended::LeaseLost(lost));
        }
        let more = match term.daemon.cycle() {
            Ok(more) => more,
            Err(e @ RunError::Nats(_)) => {
                tracing::error!("{e}");
                return Ok(Ended::Fatal(e));
            }
            Err(e) => return Err(e),
        };
        term.daemon.maybe_checkpoint(false)?;
        if last_rotate.elapsed() >= rotate_every {
            last_rotate = Instant::now();
            term.daemon.rotate_pass()?;
        }
        watchdog.tick();
        let poll =
            Duration::from_millis(running.config.settings.input.poll_interval.max(10) as u64);
        let mut wait = if more { Duration::ZERO } else { poll };
        if let Some(w) = watchdog.max_wait() {
            wait = wait.min(w);
        }
        if term.active.is_some() {
            // The lease is looked at every cycle; a quiet stream must not
            // keep a lost one unnoticed.
            wait = wait.min(Duration::from_millis(200));
        }
        let mut wakes = match ctx.wake_rx.recv_timeout(wait) {
            Ok(w) => vec![w],
            Err(mpsc::RecvTimeoutError::Timeout) => Vec::new(),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(Ended::Shutdown),
        };
        // Coalesce a burst of wake-ups into one cycle.
        wakes.extend(ctx.wake_rx.try_iter());
        if wakes.iter().any(|w| matches!(w, Wake::Shutdown)) {
            return Ok(Ended::Shutdown);
        }
        if wakes.iter().any(|w| matches!(w, Wake::Reload)) {
            service::reloading();
            if let Some(new) = running.reload_config(&ctx.metrics) {
                let channels_changed =
                    DeliveryConfig::from(&new) != DeliveryConfig::from(&running.config);
                term.daemon.reconfigure(&running.config, &new);
                if channels_changed {
                    // Pending work stays in the outbox for the new workers.
                    ctx.runtime.block_on(async {
                        term.delivery.clone().shutdown().await;
                        let _ = (&mut term.delivery_task).await;
                    });
                    let _guard = ctx.runtime.enter();
                    (term.delivery, term.delivery_task) =
                        Delivery::start(&new, &running.state_dir, ctx.metrics.clone())
                            .map_err(|e| RunError::Delivery(e.to_string()))?;
                    term.daemon.delivery = term.delivery.clone();
                    if let Some(a) = &mut term.active {
                        a.restart_pump(&ctx.runtime, term.delivery.clone());
                    }
                }
                running.config = new;
                tracing::info!("configuration reloaded");
            }
            service::ready();
        }
    }
}

/// Ends a term: after a signal or a fatal error, finishes what was read
/// and makes it durable (the last checkpoint, the outbox), all within
/// SPEC §7's 10 s whatever the size of the detector state; after the
/// lease's loss, writes nothing more (the group's checkpoint belongs to
/// the new holder) and only stops delivery. Returns whether the last
/// checkpoint could not be written.
pub(super) fn end_term(ctx: &Ctx, term: Term, ended: &Ended) -> Result<bool, RunError> {
    let Term {
        mut daemon,
        delivery,
        delivery_task,
        active,
    } = term;
    let stop_by = Instant::now() + SHUTDOWN_BUDGET;
    let mut unsaved = false;
    if !matches!(ended, Ended::LeaseLost(_)) {
        // Finish what was read (a backlog cut by the read limit for at
        // most a few seconds more), then make it durable.
        let drain_until = Instant::now() + Duration::from_secs(3);
        while matches!(ended, Ended::Shutdown) && daemon.cycle()? && Instant::now() < drain_until {}
        daemon
            .writer
            .wait_idle(stop_by.saturating_duration_since(Instant::now()));
        daemon.maybe_checkpoint(true)?;
        daemon
            .writer
            .wait_idle(stop_by.saturating_duration_since(Instant::now()));
        if daemon.writer.busy() {
            tracing::warn!(
                "the last checkpoint is still being written at the end of the shutdown budget; the lines after the previous one will be read again"
            );
        }
        // A rotation pass compressing a large file is not waited for: its
        // temporary archive is removed by the next pass.
        if daemon.rotating.as_ref().is_some_and(|h| h.is_finished()) {
            daemon.wait_rotation();
        }
        // Nothing is lost either way (the checkpoint did not move past what
        // was not saved), but the operator must know: exit 1 (SPEC §8).
        unsaved = daemon.writer.failed() || !daemon.held.is_empty();
    }
    drop(daemon);
    let left = stop_by.saturating_duration_since(Instant::now());
    ctx.runtime.block_on(async {
        // In a group: no alert is taken for delivery any more, delivery
        // stops, and only then does the lease go (renewed until here).
        let mut active = active;
        if let Some(a) = &mut active {
            a.stop_pump().await;
        }
        let _ = tokio::time::timeout(DELIVERY_SHUTDOWN.min(left), delivery.shutdown()).await;
        let _ = tokio::time::timeout(Duration::from_millis(500), delivery_task).await;
        if let Some(a) = active {
            a.end(!matches!(ended, Ended::LeaseLost(_))).await;
        }
    });
    Ok(unsaved)
}

/// The process's end after its last term.
pub(super) fn finish(
    opts: &RunOptions,
    ctx: Ctx,
    term: Term,
    ended: Ended,
) -> Result<(), RunError> {
    service::stopping();
    tracing::info!("shutting down");
    let unsaved = end_term(&ctx, term, &ended);
    ctx.runtime.shutdown_timeout(Duration::from_millis(200));
    exit_with(opts, unsaved?, ended)
}

/// The result of the process: a checkpoint not written or a fatal error
/// is an exit 1.
pub(super) fn exit_with(opts: &RunOptions, unsaved: bool, ended: Ended) -> Result<(), RunError> {
    if unsaved {
        return Err(RunError::Checkpoint(
            opts.state_dir.display().to_string(),
            "the state directory could not be written at shutdown; the lines after the last checkpoint will be read again".into(),
        ));
    }
    if let Ended::Fatal(e) = ended {
        return Err(e);
    }
    tracing::info!("stopped cleanly");
    Ok(())
}
