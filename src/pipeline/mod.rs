//! The daemon (`mcpwatch run`): the only place stages are wired together.
//!
//! ```text
//!  notify events ─┐
//!  poll interval ─┼─► wake ─► Tailer::poll ─► parse ─► ts merge ─► Engine
//!  SIGTERM/INT ───┘                                                  │
//!            checkpoint.json ◄── every second ◄── outbox ◄── alerts ◄┘
//!                                                   │        alerts.log
//!                                            delivery tasks (tokio)
//! ```
//!
//! Detection runs on one plain thread (the tailer and the engine are
//! synchronous and deterministic); a tokio runtime beside it serves
//! `/metrics` and `/healthz`, waits for signals and runs the delivery tasks.
//! Order of durability for each alert: outbox first, then `alerts.log`, then
//! (at most a second later, after an fsync of `alerts.log`) the checkpoint
//! that marks its line consumed. After a crash the lines after the
//! checkpoint are read again and give the same alert ids; ids already in
//! `alerts.log` past the checkpoint are not written or submitted again.
//!
//! The loop itself is `serve`'s; `stream` reads the audit lines from NATS
//! instead of the directory, `forward` publishes them there, and `group`
//! runs the loop only while this instance holds its group's lease, with
//! the checkpoint and the outbox in NATS (SPEC §10).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::alert::Alert;
use crate::alert::delivery::{Delivery, DeliveryHandle};
use crate::alert::log::{AlertLog, AlertLogError};
use crate::config::{Config, Sources};
use crate::detect::{Engine, EngineState, Stats};
use crate::event::{Event, Kind, Millis, RejectReason};
use crate::ingest::merge::{TimeRange, merge_heads};
use crate::ingest::parse::Parser;
use crate::ingest::tail::{Batch, Tailer};
use crate::metrics::Metrics;
use crate::metrics::server::Health;
use crate::rotate::{DaemonConsumption, RotateOptions, Rotator};
use crate::state::writer::{CheckpointWrite, CheckpointWriter};
use crate::state::{self, CheckpointDoc, StateLock};
use group::checkpoint::Writer;

mod forward;
mod gate;
mod group;
mod live;
mod open;
mod reload;
mod serve;
mod service;
mod stream;
mod wake;

use gate::BypassGate;
use live::{Carried, LiveHeads};
use wake::watch;

/// Minimum time between two checkpoint writes (SPEC: at most every second).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// Default most bytes read from one file in one cycle (`run --read-limit`):
/// bounds the memory a huge backlog can take (the file is the buffer; the
/// next cycle reads on).
pub const READ_LIMIT_PER_FILE: u64 = 16 * 1024 * 1024;
/// Rejected lines logged one by one per cycle before only being counted.
const REJECTS_LOGGED_PER_CYCLE: usize = 20;
/// Wake-ups buffered between the watcher and the loop; more are pointless
/// (one wake reads everything), so extra ones are dropped.
const WAKE_QUEUE: usize = 64;
/// How long shutdown waits for delivery to persist its state.
const DELIVERY_SHUTDOWN: Duration = Duration::from_secs(5);
/// Everything shutdown waits for (draining, the last checkpoint, delivery)
/// fits in this, under SPEC §7's 10 s from the signal to the exit.
const SHUTDOWN_BUDGET: Duration = Duration::from_millis(8_500);

/// Everything `run` needs, resolved by the command.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub config: Config,
    pub dir: PathBuf,
    pub state_dir: PathBuf,
    pub metrics_addr: Option<SocketAddr>,
    /// Rotation and pruning pass period (SPEC §6: every minute).
    pub rotate_every: Duration,
    /// Most bytes read from one file in one cycle.
    pub read_limit: u64,
    /// Where `SIGHUP` loads the configuration from again (its `dir` is
    /// `--dir`); `None`: the configuration was built in memory, and a
    /// `SIGHUP` is refused.
    pub sources: Option<Sources>,
    /// `--state-dir` and `--metrics-addr` as given (`Some(None)`: `off`):
    /// they win over what a reloaded configuration says.
    pub state_dir_flag: Option<PathBuf>,
    pub metrics_addr_flag: Option<Option<SocketAddr>>,
    /// `forward --nats` or `run --input nats://…` (SPEC §10); `None`: the
    /// audit directory is the input.
    pub nats: Option<NatsOptions>,
}

/// Where the audit lines go (`forward`) or come from (`run --input`) on
/// NATS JetStream (SPEC §10).
#[derive(Clone, Debug)]
pub struct NatsOptions {
    /// Server URLs, comma-separated; may carry credentials (never shown).
    pub url: String,
    pub stream: String,
    /// Copies of the stream when `forward` creates it.
    pub replicas: usize,
    /// How long an unreachable NATS is retried at start before exit 1.
    pub connect_timeout: Duration,
    /// This host's name in `Nats-Msg-Id` and `Mcpwatch-Host` (`forward`).
    pub host: String,
    /// The stream's duplicate window when `forward` creates it.
    pub duplicate_window: Duration,
    /// How long `run` holds events back to put them in ts order.
    pub allowed_lateness: Duration,
    /// The durable consumer `run` reads through.
    pub consumer: String,
    /// The forwarder's role (`mcpwatch forward`): tail the audit directory
    /// and publish its lines, no detection; otherwise `run` reads the
    /// stream and detects.
    pub forward: bool,
    /// `run --group NAME` (SPEC §10): one of the group's instances holds
    /// its lease and detects, the others stand by.
    pub group: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Locked(#[from] state::LockError),
    #[error("metrics endpoint: cannot listen on {0}: {1}")]
    Metrics(SocketAddr, std::io::Error),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("checkpoint {0}: {1}")]
    Checkpoint(String, String),
    #[error("delivery: {0}")]
    Delivery(String),
    #[error("alert log {0}")]
    AlertLog(#[from] AlertLogError),
    #[error("NATS: {0}")]
    Nats(String),
    /// A flag's value the command line cannot have (exit 2).
    #[error("{0}")]
    Usage(String),
}

/// Runs the daemon until SIGTERM/SIGINT (or the forwarder, when
/// [`NatsOptions::forward`] says so). Blocks the calling thread.
pub fn run(opts: RunOptions) -> Result<(), RunError> {
    if opts.nats.as_ref().is_some_and(|n| n.forward) {
        return forward::run(opts);
    }
    if let Some(g) = opts.nats.as_ref().and_then(|n| n.group.as_deref())
        && !group::lease::valid_group(g)
    {
        return Err(RunError::Usage(format!(
            "--group {:?}: a group name is 1 to 64 of A-Z, a-z, 0-9, _ and - (it names NATS buckets)",
            crate::text::escape(g)
        )));
    }
    let _lock = StateLock::acquire(&opts.state_dir)?;
    let mut ctx = serve::Ctx::start(&opts)?;
    if let Some(group) = opts.nats.as_ref().and_then(|n| n.group.clone()) {
        return group::run(&opts, ctx, &group);
    }
    let (delivery, delivery_task) = {
        let _guard = ctx.runtime.enter();
        Delivery::start(&opts.config, &opts.state_dir, ctx.metrics.clone())
            .map_err(|e| RunError::Delivery(e.to_string()))?
    };
    let mut daemon = Daemon::new(
        &opts,
        ctx.metrics.clone(),
        ctx.health.clone(),
        delivery.clone(),
    )?;
    if let Some(n) = &opts.nats {
        let saved = CheckpointDoc::load(&opts.state_dir)
            .ok()
            .flatten()
            .and_then(|d| d.stream);
        daemon.stream = Some(stream::StreamSource::start(
            &ctx.runtime,
            n,
            saved,
            ctx.wake_tx.clone(),
        )?);
    }
    let _watcher = watch(&opts.dir, ctx.wake_tx.clone());
    for w in &opts.config.warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(
        "watching {} (state in {})",
        opts.dir.display(),
        opts.state_dir.display()
    );
    service::ready();
    let mut term = serve::Term {
        daemon,
        delivery,
        delivery_task,
        active: None,
    };
    let mut running = opts.clone();
    let ended = serve::serve(&mut running, &mut ctx, &mut term)?;
    serve::finish(&opts, ctx, term, ended)
}

/// The detection loop's state.
struct Daemon {
    dir: PathBuf,
    state_dir: PathBuf,
    tailer: Tailer,
    parser: Parser,
    engine: Engine,
    alert_log: AlertLog,
    delivery: DeliveryHandle,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    /// Ids already in `alerts.log` past the checkpoint (after a crash).
    written_ids: HashSet<String>,
    /// Engine counters already exported to metrics.
    exported: Stats,
    dirty: bool,
    last_checkpoint: Instant,
    /// How long the last checkpoint took on this thread (paces the next).
    checkpoint_cost: Duration,
    /// Number of the last engine state file handed to the writer.
    generation: u64,
    writer: Writer,
    alerts: Vec<Alert>,
    rotator: Arc<std::sync::Mutex<Rotator>>,
    /// The rotation pass in progress, if any.
    rotating: Option<std::thread::JoinHandle<()>>,
    /// Events read but not yet placed in ts order (see [`Daemon::detect`]).
    carry: [std::collections::VecDeque<Carried>; 3],
    /// The live gate of `approval_bypass` (SPEC §8), see [`BypassGate`].
    gate: BypassGate,
    /// Alerts raised but not yet both in the outbox and in `alerts.log`
    /// because the state directory (or the log) could not be written.
    /// While any are held, nothing more is read and no checkpoint is
    /// written: the engine state has raised them, so a checkpoint now would
    /// lose them in a crash; the files are the buffer (SPEC §8).
    held: Vec<Alert>,
    /// The held alerts are in the outbox already (only the log failed).
    held_queued: bool,
    /// Rotation settings a reload brought, for the next pass.
    next_rotation: Option<RotateOptions>,
    /// The audit stream, when it is the input instead of the directory.
    stream: Option<stream::StreamSource>,
    /// In a group (SPEC §10), alerts go to the group's outbox stream
    /// instead of the local outbox (delivery reads them back from there).
    alerts_out: Option<group::alerts::AlertPublisher>,
}

impl Daemon {
    /// One cycle: read every file to its end, detect in ts order, emit.
    /// Returns true when a read limit left more to read.
    fn cycle(&mut self) -> Result<bool, RunError> {
        if self.stream.is_some() {
            return self.stream_cycle();
        }
        if !self.state_writable() {
            return Ok(false);
        }
        self.check_inputs();
        let read_at = Instant::now();
        self.parser.now_ms = chrono::Utc::now().timestamp_millis();
        let batch = self
            .tailer
            .poll(read_at)
            .map_err(|e| RunError::Io(self.dir.display().to_string(), e))?;
        for e in &batch.errors {
            tracing::warn!("cannot read {}: {}", e.path.display(), e.error);
        }
        let mut logged = 0usize;
        for r in &batch.rejected {
            self.reject(&r.file, r.kind, r.line_no, r.reason, &mut logged);
        }
        let events = self.parse_batch(&batch, &mut logged);
        if let Some(ts) = events[Kind::Approval as usize].iter().map(|e| e.0.ts).max() {
            self.gate.approvals_seen = self.gate.approvals_seen.max(ts);
        }
        if let Some(ts) = events[Kind::ToolCall as usize].iter().map(|e| e.0.ts).min() {
            self.gate.calls_read(read_at, ts);
        }
        if let Some(grace) = self.engine.bypass_grace() {
            let h = self.gate.horizon(Instant::now(), grace);
            self.engine.set_bypass_horizon(h);
        }
        // The silences judge by min(watermark, clock) live (SPEC §3).
        self.engine.set_wall_clock(self.parser.now_ms);
        self.detect(&batch, &events, read_at)?;
        self.engine.tick(&mut self.alerts);
        self.dirty |= !self.alerts.is_empty();
        self.emit(read_at)?;
        self.export_engine_stats();
        self.health
            .last_poll_ms
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
        self.health
            .lag_bytes
            .store(self.tailer.lag_bytes(), Ordering::Relaxed);
        if !batch.is_empty() {
            self.dirty = true;
            self.health.dirty.store(true, Ordering::Relaxed);
        }
        Ok(!batch.caught_up || self.carrying())
    }

    /// Parses the batch's lines into per-kind lists (file order kept).
    fn parse_batch(&mut self, batch: &Batch, logged: &mut usize) -> [Vec<(Event, usize)>; 3] {
        let mut per_kind: [Vec<(Event, usize)>; 3] = Default::default();
        for (i, (line, bytes)) in batch.iter().enumerate() {
            match self.parser.parse(line.kind, bytes) {
                Ok(ev) => per_kind[line.kind as usize].push((ev, i)),
                Err(reason) => self.reject(&line.file, line.kind, line.line_no, reason, logged),
            }
        }
        // Counted once a batch: a registry update costs a key's allocation.
        for (kind, events) in Kind::ALL.iter().zip(&per_kind) {
            if !events.is_empty() {
                let labels = [("file", kind.base_file()), ("kind", kind.as_str())];
                self.metrics
                    .inc("mcpwatch_events_total", &labels, events.len() as u64);
            }
        }
        per_kind
    }

    fn reject(&self, file: &str, kind: Kind, line: u64, reason: RejectReason, logged: &mut usize) {
        self.metrics.inc(
            "mcpwatch_lines_rejected_total",
            &[("file", kind.base_file()), ("reason", reason.as_str())],
            1,
        );
        *logged += 1;
        if *logged <= REJECTS_LOGGED_PER_CYCLE {
            tracing::warn!("{file}:{line}: line rejected ({})", reason.as_str());
        } else if *logged == REJECTS_LOGGED_PER_CYCLE + 1 {
            tracing::warn!(
                "more rejected lines in this read; counted in mcpwatch_lines_rejected_total"
            );
        }
    }

    /// Merges the three kinds by ts (ties in kind order) with `scan`'s
    /// merge ([`merge_heads`]) and runs the engine, exactly as `scan` would
    /// over the whole files: when a read limit left a file unread, that
    /// log's source must wait once its buffered lines run out (its next
    /// line's ts is unknown), which stops the merge, and what is left waits
    /// in `carry` for the next cycle. No checkpoint is written while
    /// anything is carried, so a crash re-reads rather than loses.
    fn detect(
        &mut self,
        batch: &Batch,
        per_kind: &[Vec<(Event, usize)>; 3],
        read_at: Instant,
    ) -> Result<(), RunError> {
        let mut complete = [true; 3];
        if !batch.caught_up {
            for f in self.tailer.followed_files() {
                if f.read_pos < f.size {
                    complete[f.kind as usize] = false;
                }
            }
        }
        let mut heads = LiveHeads {
            batch,
            per_kind,
            carry: &mut self.carry,
            next: [0; 3],
            complete,
            engine: &mut self.engine,
            alerts: &mut self.alerts,
        };
        // Live sources never fail to read: the tailer reported its errors.
        let _ = merge_heads(&mut heads, 3, TimeRange::default());
        let next = heads.next;
        // Keep what could not be placed yet, in file order.
        for k in 0..3 {
            for (ev, idx) in &per_kind[k][next[k]..] {
                let line = &batch.lines[*idx];
                self.carry[k].push_back(Carried {
                    ev: ev.clone(),
                    raw: batch.bytes(line).to_vec(),
                    file: line.file.clone(),
                    line: line.line_no,
                });
            }
        }
        self.emit(read_at)
    }

    /// Whether events read are still waiting in `carry`.
    fn carrying(&self) -> bool {
        self.carry.iter().any(|c| !c.is_empty())
    }

    /// Emits the cycle's alerts: outbox first (one fsync for the batch),
    /// then the alert log (see the module doc). Alerts already written
    /// before a crash are dropped here, so neither sink sees them twice.
    /// When either cannot be written, the alerts are held (see
    /// [`Daemon::held`]) and retried before anything more is read.
    fn emit(&mut self, read_at: Instant) -> Result<(), RunError> {
        if self.alerts.is_empty() {
            return Ok(());
        }
        let mut alerts = std::mem::take(&mut self.alerts);
        alerts.retain(|a| !self.written_ids.contains(&a.id));
        let latency = read_at.elapsed().as_secs_f64();
        for a in &alerts {
            self.metrics.inc(
                "mcpwatch_alerts_total",
                &[("rule", &a.rule), ("severity", a.severity.as_str())],
                1,
            );
            self.metrics
                .observe_seconds("mcpwatch_alert_latency_seconds", &[], latency);
        }
        self.held.append(&mut alerts);
        self.alerts = alerts;
        self.release_held();
        Ok(())
    }

    /// Puts the held alerts into the outbox, then into `alerts.log`;
    /// whatever fails stays held (and is retried on the next cycle).
    fn release_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        if !self.held_queued {
            // In a group, the alerts stream is the outbox, and an alert it
            // had already (raised again after a fail-over) is not logged
            // again either.
            let queued = match &self.alerts_out {
                Some(out) => out
                    .publish(&self.held)
                    .map(|fresh| self.held.retain(|a| fresh.contains(&a.id))),
                None => self
                    .delivery
                    .submit_all(&self.held)
                    .map_err(|e| e.to_string()),
            };
            if let Err(e) = queued {
                if !self.health.state_unwritable.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        "{} alerts cannot be queued for delivery: {e}; reading stops until the outbox can be written",
                        self.held.len()
                    );
                }
                return;
            }
            self.held_queued = true;
        }
        let mut text = String::new();
        for a in &self.held {
            text.push_str(&serde_json::to_string(a).unwrap_or_default());
            text.push('\n');
        }
        if !text.is_empty()
            && let Err(e) = self.alert_log.append(&text)
        {
            if !self.health.state_unwritable.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    "{} alerts queued for delivery but not written to the alert log: {e}; retrying",
                    self.held.len()
                );
            }
            return;
        }
        if !self.delivery.has_channels() {
            eprint!("{text}");
        }
        self.held.clear();
        self.held_queued = false;
        if !self.writer.failed() && self.health.state_unwritable.swap(false, Ordering::Relaxed) {
            tracing::info!("alerts written again; reading goes on");
        }
    }

    /// Notes (for `/healthz`, and once in the log) a missing audit
    /// directory and log names that are not regular files.
    fn check_inputs(&mut self) {
        let missing = !self.dir.is_dir();
        if self
            .health
            .audit_dir_missing
            .swap(missing, Ordering::Relaxed)
            != missing
        {
            if missing {
                tracing::warn!(
                    "the audit directory {} does not exist; waiting for it",
                    self.dir.display()
                );
            } else {
                tracing::info!("the audit directory {} exists now", self.dir.display());
            }
        }
        let odd: Vec<String> = Kind::ALL
            .iter()
            .map(|k| k.base_file())
            .filter(|name| std::fs::metadata(self.dir.join(name)).is_ok_and(|m| !m.is_file()))
            .map(str::to_string)
            .collect();
        if let Ok(mut known) = self.health.unreadable_inputs.lock()
            && *known != odd
        {
            for name in odd.iter().filter(|n| !known.contains(n)) {
                tracing::warn!(
                    "{}: not a regular file (a FIFO or a directory?); nothing can be read from it",
                    self.dir.join(name).display()
                );
            }
            *known = odd;
        }
    }

    /// Whether reading may go on: no alert is held and the last checkpoint
    /// was written. Otherwise retries what failed first.
    fn state_writable(&mut self) -> bool {
        self.release_held();
        if !self.held.is_empty() {
            return false;
        }
        if self.writer.failed() {
            self.health.state_unwritable.store(true, Ordering::Relaxed);
            // The failed write's lines are not in a checkpoint: try again.
            self.dirty = true;
            self.health.dirty.store(true, Ordering::Relaxed);
            if let Err(e) = self.maybe_checkpoint(true) {
                tracing::error!("checkpoint: {e}");
            }
            self.flush_checkpoint();
            if self.writer.failed() {
                return false;
            }
        }
        self.health.state_unwritable.store(false, Ordering::Relaxed);
        true
    }

    fn export_engine_stats(&mut self) {
        let now = self.engine.stats().clone();
        for (rule, n) in &now.suppressed {
            let before = self.exported.suppressed.get(rule).copied().unwrap_or(0);
            if *n > before {
                self.metrics.inc(
                    "mcpwatch_alerts_suppressed_total",
                    &[("rule", rule)],
                    n - before,
                );
            }
        }
        for (rule, n) in &now.evictions {
            let before = self.exported.evictions.get(rule).copied().unwrap_or(0);
            if *n > before {
                self.metrics.inc(
                    "mcpwatch_state_evictions_total",
                    &[("rule", rule)],
                    n - before,
                );
            }
        }
        let late = now.late_approvals - self.exported.late_approvals.min(now.late_approvals);
        if late > 0 {
            self.metrics.inc("mcpwatch_approvals_late_total", &[], late);
        }
        let unjudged = now.bypass_unjudged - self.exported.bypass_unjudged.min(now.bypass_unjudged);
        if unjudged > 0 {
            self.metrics
                .inc("mcpwatch_bypass_unjudged_total", &[], unjudged);
        }
        self.exported = now;
    }

    /// Writes the checkpoint when due (or `force`d and anything changed),
    /// never while events read are still carried to the next cycle.
    fn maybe_checkpoint(&mut self, force: bool) -> Result<(), RunError> {
        // At most every second, and never more than a tenth of the time
        // spent snapshotting the detector state (detection waits for that;
        // the writer thread serializes the snapshot). One write at a time:
        // if the writer is still busy, the next cycle tries again.
        let every = CHECKPOINT_EVERY.max(self.checkpoint_cost * 10);
        if !self.dirty
            || self.carrying()
            || !self.held.is_empty()
            || self.writer.busy()
            || (!force && self.last_checkpoint.elapsed() < every)
        {
            return Ok(());
        }
        let started = Instant::now();
        let alerts_pos = self.alert_log.sync()?;
        let engine = self.engine.snapshot();
        self.generation += 1;
        let engine_file = format!("engine-{}.bin", self.generation);
        let doc = serde_json::to_vec(&CheckpointDoc {
            tail: self.tailer.checkpoint(),
            engine: None,
            engine_file: Some(engine_file.clone()),
            alerts_log: Some(alerts_pos),
            stream: self.stream.as_mut().map(|s| s.checkpoint()),
        })
        .map_err(|e| RunError::Checkpoint(self.state_dir.display().to_string(), e.to_string()))?;
        self.checkpoint_cost = started.elapsed();
        self.writer.send(CheckpointWrite {
            engine,
            engine_file,
            doc,
            started,
        });
        // The lines behind these ids are consumed; only a restart from an
        // older checkpoint could raise them again, and it reloads them.
        self.written_ids.clear();
        self.dirty = false;
        self.health.dirty.store(false, Ordering::Relaxed);
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    /// Waits until the checkpoint handed to the writer is on disk.
    fn flush_checkpoint(&self) {
        self.writer.wait_idle(Duration::from_secs(5));
    }

    /// Starts one rotation and pruning pass (SPEC §6) on its own thread, so
    /// compressing a large file never stalls detection. The pass sees the
    /// positions of a checkpoint written just now: it compresses and deletes
    /// only what a saved checkpoint has consumed.
    fn rotate_pass(&mut self) -> Result<(), RunError> {
        if self.rotating.as_ref().is_some_and(|h| !h.is_finished()) {
            return Ok(());
        }
        if !self.dir.is_dir() {
            // Said once by `check_inputs`; nothing to rotate.
            return Ok(());
        }
        self.wait_rotation();
        if let Some(opts) = self.next_rotation.take() {
            self.rotator = Arc::new(std::sync::Mutex::new(Rotator::new(opts)));
        }
        self.maybe_checkpoint(true)?;
        self.flush_checkpoint();
        if self.writer.failed() || !self.held.is_empty() {
            // The positions below are not saved: compressing what they
            // cover could lose lines in a crash. Next pass.
            return Ok(());
        }
        let positions = self.tailer.checkpoint().files;
        let rotator = self.rotator.clone();
        let metrics = self.metrics.clone();
        self.rotating = Some(std::thread::spawn(move || {
            let Ok(mut rotator) = rotator.lock() else {
                return;
            };
            let consumption = DaemonConsumption::new(positions);
            if let Err(e) = rotator.pass(chrono::Utc::now(), &consumption, &metrics) {
                tracing::error!("rotation pass failed: {e}");
            }
        }));
        Ok(())
    }

    fn wait_rotation(&mut self) {
        if let Some(h) = self.rotating.take() {
            let _ = h.join();
        }
    }
}
