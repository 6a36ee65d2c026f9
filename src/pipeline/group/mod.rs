//! `run --input nats://… --group NAME` (SPEC §10): high availability.
//! Any number of instances start with the same group; one holds the
//! group's lease and detects, the others stand by.
//!
//! ```text
//!  standby ── create(lease) ok ──► claim the checkpoint pointer (term)
//!     ▲                            load checkpoint ◄── object store
//!     │                            audit stream from the next sequence
//!     │                            detect ─► MCPWATCH_ALERTS (Nats-Msg-Id)
//!     │                            MCPWATCH_ALERTS ─► outbox ─► channels
//!     │                            checkpoint ─► object + pointer (CAS)
//!     └── lease lost or fenced ────┘  (renewed every second)
//! ```
//!
//! An instance that loses its lease (no renewal accepted for 3 s, a
//! renewal refused, or its checkpoint write fenced by a later holder)
//! stops at once: it writes nothing more, abandons delivery attempts in
//! flight (they stay pending in the stream for the next holder), and goes
//! back to standby, where it takes the lease again when it is free. So
//! does a term that cannot begin because NATS does not answer. Besides a
//! checkpoint that cannot be read, only `SIGTERM`/`SIGINT` end the
//! process: then an active instance writes its last checkpoint, stops
//! delivery, and releases the lease so a standby takes over at once.
//!
//! Rooms: `lease` (the key, its renewal, the group's names), `checkpoint`
//! (the object store, the fenced pointer, the writer), `alerts` (the
//! group's outbox stream: publishing, and the delivery pump).

pub(super) mod alerts;
pub(super) mod checkpoint;
pub(super) mod lease;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::serve::{self, Ctx, Ended, Term};
use super::wake::{Wake, watch as watch_dir};
use super::{Daemon, NatsOptions, RunError, RunOptions, service, stream};
use crate::alert::delivery::{Delivery, DeliveryHandle};
use crate::alert::outbox::OUTBOX_DIR;
use crate::ingest::nats;
use crate::state::CheckpointDoc;
use checkpoint::{Checkpoints, GroupWriter, Writer};
use lease::{Lease, Names};

/// 1 while this instance holds its group's lease and detects, 0 on
/// standby.
const M_ACTIVE: &str = "mcpwatch_group_active";
/// Lease terms this instance began (takeovers, the first included).
const M_TAKEOVERS: &str = "mcpwatch_group_takeovers_total";
/// How long one try at the lease may take.
const TAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the active term holds besides the daemon: the lease, and the
/// tasks that end with it.
pub(super) struct Active {
    lease: Arc<Lease>,
    js: jetstream::Context,
    names: Names,
    /// Stops the delivery pump.
    pump_stop: watch::Sender<bool>,
    pump: JoinHandle<()>,
    /// Stops the renewals (after delivery has stopped).
    renew_stop: watch::Sender<bool>,
}

impl Active {
    /// `Some(why)` once the lease is lost.
    pub(super) fn lost(&self) -> Option<String> {
        self.lease.lost()
    }

    /// A reload restarted delivery: the pump hands alerts to the new one.
    /// Alerts the old pump held stay pending in the outbox, and come
    /// back from the stream after [`alerts::ACK_WAIT`] to be acknowledged.
    pub(super) fn restart_pump(&mut self, runtime: &tokio::runtime::Runtime, d: DeliveryHandle) {
        self.pump_stop.send_replace(true);
        self.pump.abort();
        let (tx, rx) = watch::channel(false);
        self.pump_stop = tx;
        self.pump = runtime.spawn(alerts::pump(self.js.clone(), self.names.clone(), d, rx));
    }

    /// Stops taking alerts for delivery (first, before delivery stops).
    pub(super) async fn stop_pump(&mut self) {
        self.pump_stop.send_replace(true);
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut self.pump).await;
    }

    /// Ends the term's lease: at a clean stop (`release`) the key is
    /// deleted so a standby takes over at once; otherwise it just
    /// expires.
    pub(super) async fn end(self, release: bool) {
        self.renew_stop.send_replace(true);
        if release {
            self.lease.release().await;
        }
    }
}

/// Runs the group's standby/active cycle until SIGTERM or SIGINT.
pub(super) fn run(opts: &RunOptions, mut ctx: Ctx, group: &str) -> Result<(), RunError> {
    let Some(n) = opts.nats.as_ref() else {
        return Err(RunError::Nats("--group needs --input nats://…".into()));
    };
    let names = Names::of(group);
    ctx.metrics.describe(
        M_ACTIVE,
        "gauge",
        "1 while this instance holds its group's lease and detects; 0 on standby.",
    );
    ctx.metrics.describe(
        M_TAKEOVERS,
        "counter",
        "Times this instance took its group's lease.",
    );
    ctx.metrics.set_gauge(M_ACTIVE, &[], 0.0);
    ctx.metrics.touch(M_TAKEOVERS, &[]);
    let (js, lease_kv, checkpoints) = ctx.runtime.block_on(open_group(n, &names))?;
    let checkpoints = Arc::new(checkpoints);
    let holder = lease::holder_id();
    let _watcher = watch_dir(&opts.dir, ctx.wake_tx.clone());
    for w in &opts.config.warnings {
        tracing::warn!("{w}");
    }
    service::ready();
    let mut running = opts.clone();
    loop {
        let Some(lease) = standby(&mut running, &ctx, &lease_kv, &holder, group)? else {
            service::stopping();
            tracing::info!("shutting down");
            ctx.runtime.shutdown_timeout(Duration::from_millis(200));
            tracing::info!("stopped cleanly");
            return Ok(());
        };
        tracing::info!(
            "took the lease of group {group} (term {}, holder {holder}); detecting",
            lease.term
        );
        ctx.metrics.inc(M_TAKEOVERS, &[], 1);
        ctx.metrics.set_gauge(M_ACTIVE, &[], 1.0);
        let mut term = match start_term(&running, &ctx, n, &names, group, &js, &checkpoints, lease)
        {
            Ok(t) => t,
            Err((e, lease)) => {
                ctx.metrics.set_gauge(M_ACTIVE, &[], 0.0);
                ctx.runtime.block_on(lease.release());
                if matches!(e, RunError::Nats(_)) {
                    // NATS did not answer in time (a node down, a leader
                    // being elected): give the lease back and stand by.
                    tracing::error!("{e}; giving the lease of group {group} back");
                    std::thread::sleep(lease::STANDBY_POLL);
                    continue;
                }
                // Nobody can detect from a checkpoint that cannot be read:
                // say so and stop, rather than take and drop the lease in
                // a loop.
                return Err(e);
            }
        };
        let ended = serve::serve(&mut running, &mut ctx, &mut term)?;
        ctx.metrics.set_gauge(M_ACTIVE, &[], 0.0);
        if let Ended::LeaseLost(why) = &ended {
            tracing::error!(
                "lost the lease of group {group}: {why}; stopped detecting and delivering, standing by"
            );
            serve::end_term(&ctx, term, &ended)?;
            continue;
        }
        return serve::finish(opts, ctx, term, ended);
    }
}

/// Connects, and opens (creating when missing) the lease bucket, the
/// checkpoint pointer and objects, and `MCPWATCH_ALERTS`; retried until
/// the connect timeout.
async fn open_group(
    n: &NatsOptions,
    names: &Names,
) -> Result<
    (
        jetstream::Context,
        async_nats::jetstream::kv::Store,
        Checkpoints,
    ),
    RunError,
> {
    let client = nats::connect(&n.url, "mcpwatch run --group", n.connect_timeout)
        .await
        .map_err(|e| RunError::Nats(e.to_string()))?;
    let js = jetstream::new(client);
    let until = Instant::now() + n.connect_timeout;
    loop {
        let opened = async {
            let kv = lease::bucket(&js, lease::lease_config(names, n.replicas)).await?;
            let cps = Checkpoints::open(&js, names, n.replicas).await?;
            js.get_or_create_stream(alerts::stream_config(n.replicas))
                .await
                .map_err(|e| format!("cannot create the stream {}: {e}", alerts::STREAM))?;
            Ok::<_, String>((kv, cps))
        };
        match opened.await {
            Ok((kv, cps)) => return Ok((js, kv, cps)),
            Err(e) if Instant::now() >= until => return Err(RunError::Nats(e)),
            Err(e) => {
                tracing::warn!("{e}; trying again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Waits for the lease, trying to take it every [`lease::STANDBY_POLL`];
/// `None` on SIGTERM or SIGINT. Detects and delivers nothing meanwhile.
fn standby(
    running: &mut RunOptions,
    ctx: &Ctx,
    kv: &async_nats::jetstream::kv::Store,
    holder: &str,
    group: &str,
) -> Result<Option<Lease>, RunError> {
    let mut said = false;
    let mut watchdog = service::Watchdog::from_env();
    loop {
        let tried = ctx.runtime.block_on(async {
            tokio::time::timeout(TAKE_TIMEOUT, Lease::try_take(kv, holder)).await
        });
        match tried {
            Ok(Ok(Some(lease))) => return Ok(Some(lease)),
            Ok(Ok(None)) if !said => {
                tracing::info!("standing by in group {group}: another instance holds the lease");
                said = true;
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                tracing::warn!("cannot take the lease of group {group} ({e}); trying again")
            }
            Err(_) => tracing::warn!("taking the lease of group {group} timed out; trying again"),
        }
        // A standby is healthy: it is doing what it should, and what a
        // term it left behind had not saved is the new holder's now.
        ctx.health
            .last_poll_ms
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
        ctx.health.dirty.store(false, Ordering::Relaxed);
        ctx.health.state_unwritable.store(false, Ordering::Relaxed);
        watchdog.tick();
        let wakes: Vec<Wake> = match ctx.wake_rx.recv_timeout(lease::STANDBY_POLL) {
            Ok(w) => std::iter::once(w).chain(ctx.wake_rx.try_iter()).collect(),
            Err(mpsc::RecvTimeoutError::Timeout) => Vec::new(),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(None),
        };
        if wakes.iter().any(|w| matches!(w, Wake::Shutdown)) {
            return Ok(None);
        }
        if wakes.iter().any(|w| matches!(w, Wake::Reload)) {
            service::reloading();
            if let Some(new) = running.reload_config(&ctx.metrics) {
                running.config = new;
                tracing::info!("configuration reloaded");
            }
            service::ready();
        }
    }
}

/// Begins a term with the lease just taken: renewals, the claim of the
/// checkpoint pointer, the daemon restored from the group's checkpoint,
/// the audit stream from its next sequence, delivery from the alerts
/// stream. On failure the lease comes back for release.
#[allow(clippy::too_many_arguments)]
fn start_term(
    running: &RunOptions,
    ctx: &Ctx,
    n: &NatsOptions,
    names: &Names,
    group: &str,
    js: &jetstream::Context,
    checkpoints: &Arc<Checkpoints>,
    lease: Lease,
) -> Result<Term, (RunError, Arc<Lease>)> {
    let lease = Arc::new(lease);
    let (renew_stop, renew_rx) = watch::channel(false);
    ctx.runtime.spawn(lease.clone().renew(renew_rx));
    let fail = |e: RunError| (e, lease.clone());
    let consumer = names.audit_consumer(&n.consumer, group, lease.term);
    let (before, loaded) = ctx
        .runtime
        .block_on(checkpoints.claim(&lease, &consumer))
        .map_err(|e| fail(RunError::Nats(e)))?;
    if let Some(old) = before.consumer.filter(|c| *c != consumer) {
        // The previous term's consumer: its holder is gone or stale.
        ctx.runtime.block_on(async {
            if let Ok(s) = js.get_stream(&n.stream).await {
                let _ = s.delete_consumer(&old).await;
            }
        });
    }
    // What an earlier term of this instance left pending in the local
    // outbox was either delivered and acknowledged since (by whoever held
    // the lease) or is still in the alerts stream, which hands it over
    // again: the stream is the group's outbox, the local one only its
    // working copy.
    let _ = std::fs::remove_dir_all(running.state_dir.join(OUTBOX_DIR));
    let (delivery, delivery_task) = {
        let _guard = ctx.runtime.enter();
        Delivery::start(&running.config, &running.state_dir, ctx.metrics.clone())
            .map_err(|e| fail(RunError::Delivery(e.to_string())))?
    };
    let mut daemon = Daemon::new(
        running,
        ctx.metrics.clone(),
        ctx.health.clone(),
        delivery.clone(),
    )
    .map_err(fail)?;
    let mut saved = None;
    if let Some(l) = &loaded {
        let doc: CheckpointDoc = serde_json::from_slice(&l.doc).map_err(|e| {
            fail(RunError::Checkpoint(
                "the group's checkpoint".into(),
                e.to_string(),
            ))
        })?;
        daemon.restore_engine(&l.engine).map_err(fail)?;
        saved = doc.stream;
        tracing::info!(
            "resuming from the group's checkpoint at stream sequence {}",
            before.seq
        );
    }
    daemon.writer = Writer::Group(GroupWriter::new(
        ctx.runtime.handle().clone(),
        checkpoints.clone(),
        lease.clone(),
    ));
    daemon.alerts_out = Some(alerts::AlertPublisher {
        js: js.clone(),
        subject: names.alerts_subject.clone(),
        runtime: ctx.runtime.handle().clone(),
        lease: lease.clone(),
        taken: Default::default(),
    });
    let mut term_opts = n.clone();
    term_opts.consumer = consumer;
    daemon.stream = Some(
        stream::StreamSource::start(&ctx.runtime, &term_opts, saved, ctx.wake_tx.clone())
            .map_err(fail)?,
    );
    let (pump_stop, pump_rx) = watch::channel(false);
    let pump = ctx.runtime.spawn(alerts::pump(
        js.clone(),
        names.clone(),
        delivery.clone(),
        pump_rx,
    ));
    Ok(Term {
        daemon,
        delivery,
        delivery_task,
        active: Some(Active {
            lease,
            js: js.clone(),
            names: names.clone(),
            pump_stop,
            pump,
            renew_stop,
        }),
    })
}
