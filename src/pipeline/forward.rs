//! `mcpwatch forward` (SPEC §10): the tailer of `run`, no detection. Each
//! accepted line goes unchanged to `mcpwatch.audit.<kind>` on JetStream.
//!
//! ```text
//!  wake ─► Tailer::poll ─► parse (rejects counted) ─► send_publish ──► NATS
//!                                                     │ ack futures (≤ WINDOW)
//!   checkpoint.json ◄── newest poll fully acked ◄── acker task (in order)
//! ```
//!
//! Many publishes are in flight at once; a task awaits their acks in
//! order, so "acked" is always a prefix of what was published. After each
//! poll the tailer's position is remembered with the number of lines
//! published so far; the checkpoint written is the newest such position
//! whose lines are all acked. A failed publish rewinds the tailer to the
//! last acked position and publishes again from there: the stream's
//! duplicate window drops what it already had (same `Nats-Msg-Id`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};

use super::wake::{Wake, wait_for_signals, watch};
use super::{NatsOptions, RunError, RunOptions};
use crate::event::{Kind, RejectReason};
use crate::ingest::nats::{self, HEADER_FILE, HEADER_HOST, HEADER_LINE};
use crate::ingest::parse::Parser;
use crate::ingest::tail::{Batch, Tailer};
use crate::metrics::Metrics;
use crate::state::{self, CheckpointDoc, StateLock, TailCheckpoint};

/// Publishes whose ack is awaited at once: enough to keep a 2-core
/// machine's link to the server busy (one round trip per window, not per
/// line), few enough that a rewind re-sends little.
const WINDOW: usize = 8_192;
/// Minimum time between two checkpoint writes.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// Positions remembered while their lines await acks: one per poll.
const MARKS: usize = 4_096;
/// How long shutdown waits for the acks of what was published.
const SHUTDOWN_ACKS: Duration = Duration::from_secs(5);
/// Rejected lines logged one by one per poll before only being counted.
const REJECTS_LOGGED: usize = 20;

/// Runs `forward` until SIGTERM/SIGINT. Blocks the calling thread.
pub(super) fn run(opts: RunOptions) -> Result<(), RunError> {
    let mut nats = opts
        .nats
        .clone()
        .ok_or_else(|| RunError::Nats("no NATS URL given".into()))?;
    if nats.host.is_empty() {
        // The system's name, made to fit a header and the message id.
        nats.host = crate::alert::formats::host_name()
            .chars()
            .map(|c| match c {
                '/' | ':' => '_',
                c if c.is_whitespace() || c.is_control() => '_',
                c => c,
            })
            .collect();
    }
    let _lock = StateLock::acquire(&opts.state_dir)?;
    let metrics = Arc::new(Metrics::new());
    crate::metrics::server::describe_daemon(&metrics);
    let runtime = super::service::io_runtime()?;
    super::service::serve_metrics(&runtime, &opts, &metrics, &Arc::default())?;
    let (wake_tx, wake_rx) = mpsc::sync_channel::<Wake>(super::WAKE_QUEUE);
    runtime.spawn(wait_for_signals(wake_tx.clone()));

    let js = runtime.block_on(open_stream(&nats))?;
    let saved = CheckpointDoc::load(&opts.state_dir)
        .map_err(|e| RunError::Checkpoint(opts.state_dir.display().to_string(), e.to_string()))?
        .map(|d| d.tail);
    let settings = &opts.config.settings;
    let new_tailer = |cp: Option<TailCheckpoint>| {
        let mut t = Tailer::new(&opts.dir, settings.input.max_line_bytes, cp)
            .with_rotate_wait(Duration::from_millis(
                settings.rotation.rotate_wait.max(0) as u64
            ))
            .with_since(chrono::Utc::now().timestamp_millis());
        t.set_read_limit(opts.read_limit);
        t
    };
    let mut fw = Forwarder {
        tailer: new_tailer(saved.clone()),
        saved: saved.clone(),
        written: saved,
        parser: Parser {
            max_line_bytes: settings.input.max_line_bytes,
            now_ms: 0,
        },
        host: nats.host.clone(),
        metrics,
        marks: VecDeque::new(),
        published: 0,
        acked: Arc::new(AtomicU64::new(0)),
        failed: Arc::new(AtomicBool::new(false)),
        last_write: Instant::now(),
    };
    let (ack_tx, ack_rx) = tokio::sync::mpsc::channel::<PublishAckFuture>(WINDOW);
    let mut acker = runtime.spawn(await_acks(ack_rx, fw.acked.clone(), fw.failed.clone()));
    let mut ack_tx = Some(ack_tx);
    let _watcher = watch(&opts.dir, wake_tx.clone());
    tracing::info!(
        "forwarding {} to {} (stream {}, host {})",
        opts.dir.display(),
        nats::shown(&nats.url),
        nats.stream,
        nats.host
    );
    super::service::ready();
    let poll = Duration::from_millis(settings.input.poll_interval.max(10) as u64);
    let mut batch = Batch::default();
    loop {
        if fw.failed.load(Ordering::Acquire) {
            // Everything after the last acked position is sent again.
            fw.maybe_checkpoint(&opts.state_dir, false);
            drop(ack_tx.take());
            let _ = runtime.block_on(&mut acker);
            tracing::warn!("publishing failed; sending again from the last acknowledged line");
            fw.tailer = new_tailer(fw.saved.clone());
            fw.marks.clear();
            fw.published = 0;
            fw.acked.store(0, Ordering::Release);
            fw.failed.store(false, Ordering::Release);
            let (tx, rx) = tokio::sync::mpsc::channel::<PublishAckFuture>(WINDOW);
            acker = runtime.spawn(await_acks(rx, fw.acked.clone(), fw.failed.clone()));
            ack_tx = Some(tx);
            std::thread::sleep(Duration::from_millis(500));
        }
        let Some(tx) = ack_tx.as_ref() else { break };
        fw.tailer
            .poll_into(Instant::now(), &mut batch)
            .map_err(|e| RunError::Io(opts.dir.display().to_string(), e))?;
        for e in &batch.errors {
            tracing::warn!("cannot read {}: {}", e.path.display(), e.error);
        }
        runtime.block_on(fw.publish(&js, &batch, tx));
        fw.mark();
        fw.maybe_checkpoint(&opts.state_dir, false);
        let wait = if batch.caught_up {
            poll
        } else {
            Duration::ZERO
        };
        let mut wakes = match wake_rx.recv_timeout(wait) {
            Ok(w) => vec![w],
            Err(mpsc::RecvTimeoutError::Timeout) => Vec::new(),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        wakes.extend(wake_rx.try_iter());
        if wakes.iter().any(|w| matches!(w, Wake::Shutdown)) {
            break;
        }
    }
    super::service::stopping();
    tracing::info!("shutting down");
    let until = Instant::now() + SHUTDOWN_ACKS;
    while fw.acked.load(Ordering::Acquire) < fw.published
        && !fw.failed.load(Ordering::Acquire)
        && Instant::now() < until
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    fw.maybe_checkpoint(&opts.state_dir, true);
    drop(ack_tx);
    runtime.shutdown_timeout(Duration::from_millis(200));
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Connects (retrying until `connect_timeout`) and makes sure the stream
/// exists, creating it as SPEC §10 says when missing.
async fn open_stream(nats: &NatsOptions) -> Result<jetstream::Context, RunError> {
    let client = nats::connect(&nats.url, "mcpwatch forward", nats.connect_timeout)
        .await
        .map_err(|e| RunError::Nats(e.to_string()))?;
    let js = jetstream::ContextBuilder::new()
        .max_ack_inflight(WINDOW)
        .backpressure_on_inflight(true)
        .build(client);
    // JetStream may still be electing its leaders (a cluster starting, a
    // node just lost): retried, as the connection is, until the timeout.
    let until = Instant::now() + nats.connect_timeout;
    loop {
        let failed = match js.get_stream(&nats.stream).await {
            Ok(_) => break,
            Err(e) if nats::stream_missing(&e) => {
                let config =
                    nats::stream_config(&nats.stream, nats.replicas, nats.duplicate_window);
                match js.get_or_create_stream(config).await {
                    Ok(_) => {
                        tracing::info!(
                            "created the stream {} ({} replicas)",
                            nats.stream,
                            nats.replicas
                        );
                        break;
                    }
                    Err(e) => format!("cannot create the stream {}: {e}", nats.stream),
                }
            }
            Err(e) => format!("cannot look up the stream {}: {e}", nats.stream),
        };
        if Instant::now() >= until {
            return Err(RunError::Nats(failed));
        }
        tracing::warn!("{failed}; trying again");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(js)
}

/// Awaits acks in publish order; counts them, and stops at the first
/// failure (the forwarder then rewinds).
async fn await_acks(
    mut rx: tokio::sync::mpsc::Receiver<PublishAckFuture>,
    acked: Arc<AtomicU64>,
    failed: Arc<AtomicBool>,
) {
    while let Some(f) = rx.recv().await {
        match f.await {
            Ok(_) => {
                acked.fetch_add(1, Ordering::AcqRel);
            }
            Err(e) => {
                tracing::warn!("a publish was not acknowledged: {e}");
                failed.store(true, Ordering::Release);
                return;
            }
        }
    }
}

struct Forwarder {
    tailer: Tailer,
    /// The newest position whose lines are all acked (where a rewind goes).
    saved: Option<TailCheckpoint>,
    /// The position last written to disk.
    written: Option<TailCheckpoint>,
    parser: Parser,
    host: String,
    metrics: Arc<Metrics>,
    /// (lines published before this position, the tailer's position).
    marks: VecDeque<(u64, TailCheckpoint)>,
    published: u64,
    acked: Arc<AtomicU64>,
    failed: Arc<AtomicBool>,
    last_write: Instant,
}

impl Forwarder {
    /// Publishes every accepted line of the batch; returns once each is
    /// handed to the client (their acks come to the acker task).
    async fn publish(
        &mut self,
        js: &jetstream::Context,
        batch: &Batch,
        acks: &tokio::sync::mpsc::Sender<PublishAckFuture>,
    ) {
        self.parser.now_ms = chrono::Utc::now().timestamp_millis();
        let mut logged = 0usize;
        for r in &batch.rejected {
            self.reject(&r.file, r.kind, r.line_no, r.reason, &mut logged);
        }
        let subjects = Kind::ALL.map(nats::subject);
        for (line, bytes) in batch.iter() {
            if let Err(reason) = self.parser.parse(line.kind, bytes) {
                self.reject(&line.file, line.kind, line.line_no, reason, &mut logged);
                continue;
            }
            self.metrics.inc(
                "mcpwatch_events_total",
                &[
                    ("file", line.kind.base_file()),
                    ("kind", line.kind.as_str()),
                ],
                1,
            );
            let msg = PublishMessage::build()
                .payload(bytes.to_vec().into())
                .message_id(nats::msg_id(&self.host, line.file_id, line.offset))
                .header(HEADER_HOST, self.host.as_str())
                .header(HEADER_FILE, &*line.file)
                .header(HEADER_LINE, line.line_no.to_string().as_str());
            let sent = js
                .send_publish(subjects[line.kind as usize].clone(), msg)
                .await;
            match sent {
                Ok(f) => {
                    self.published += 1;
                    if acks.send(f).await.is_err() {
                        self.failed.store(true, Ordering::Release);
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!("cannot publish: {e}");
                    self.failed.store(true, Ordering::Release);
                    return;
                }
            }
        }
    }

    fn reject(&self, file: &str, kind: Kind, line: u64, reason: RejectReason, logged: &mut usize) {
        self.metrics.inc(
            "mcpwatch_lines_rejected_total",
            &[("file", kind.base_file()), ("reason", reason.as_str())],
            1,
        );
        *logged += 1;
        if *logged <= REJECTS_LOGGED {
            tracing::warn!("{file}:{line}: line rejected ({})", reason.as_str());
        }
    }

    /// Remembers the tailer's position after a poll, with the number of
    /// lines published before it.
    fn mark(&mut self) {
        if self.failed.load(Ordering::Acquire) {
            return;
        }
        let cp = self.tailer.checkpoint();
        if self.marks.back().is_some_and(|(_, last)| *last == cp) {
            return;
        }
        if self.marks.len() >= MARKS {
            // Keep the older marks (what a rewind needs): merge the newest.
            self.marks.pop_back();
        }
        self.marks.push_back((self.published, cp));
    }

    /// Moves `saved` to the newest fully acked position and writes it when
    /// due (or `force`d).
    fn maybe_checkpoint(&mut self, state_dir: &std::path::Path, force: bool) {
        let acked = self.acked.load(Ordering::Acquire);
        while self.marks.front().is_some_and(|(n, _)| *n <= acked) {
            if let Some((_, cp)) = self.marks.pop_front() {
                self.saved = Some(cp);
            }
        }
        if self.saved == self.written || (!force && self.last_write.elapsed() < CHECKPOINT_EVERY) {
            return;
        }
        let Some(tail) = self.saved.clone() else {
            return;
        };
        let doc = CheckpointDoc {
            tail,
            ..Default::default()
        };
        let written = serde_json::to_vec(&doc)
            .map_err(std::io::Error::other)
            .and_then(|b| state::write_atomic(&state_dir.join(state::CHECKPOINT_FILE), &b));
        match written {
            Ok(()) => {
                self.metrics.inc("mcpwatch_checkpoint_writes_total", &[], 1);
                self.written = self.saved.clone();
                self.last_write = Instant::now();
            }
            Err(e) => {
                self.metrics
                    .inc("mcpwatch_checkpoint_failures_total", &[], 1);
                tracing::error!("checkpoint not written: {e}; retrying");
            }
        }
    }
}
