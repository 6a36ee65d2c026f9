//! `run --input nats://…` (SPEC §10): the audit stream as the daemon's
//! source instead of the directory. The same loop, engine, alert log,
//! outbox and checkpoint as `run` on files; only the reading differs.
//!
//! ```text
//!  JetStream ─► consumer task (tokio) ─► QUEUE ─► take: seq, highest offset,
//!   durable, from the checkpoint's seq      parse ─► Reorder (ts, lateness)
//!                                                  ─► Engine ─► emit (as run)
//! ```
//!
//! A message is taken once. The checkpoint holds the last stream sequence
//! taken, the sequences of the events still held for reordering (taken but
//! not yet detected), and the highest offset per host and file; after a
//! crash the consumer starts at the oldest held sequence, messages at or
//! below the last one are skipped unless they were held, and held ones are
//! taken again without the offset check they passed already. So no event
//! is lost or detected twice, and alerts raised again are dropped by the
//! alert log's ids as in `run`.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull};
use futures_util::StreamExt;

use super::wake::Wake;
use super::{Daemon, NatsOptions, RunError};
use crate::event::{Event, Kind, LineRef, Millis};
use crate::ingest::nats::{self, FileTaken, HEADER_FILE, HEADER_HOST, HEADER_LINE};
use crate::ingest::reorder::{Reorder, Tie};
use crate::state::{Highest, StreamCheckpoint};

/// Batches of messages between the consumer task and the detection
/// thread; when full, the task waits (the stream is the buffer).
const QUEUE: usize = 64;
/// Messages per batch handed over (and per pull request).
const BATCH: usize = 4_096;
/// A partial batch is handed over after this long without a message.
const FLUSH: Duration = Duration::from_millis(5);
/// Unacknowledged messages the server lets the consumer have: acks come
/// with checkpoints (every second or so) and lag the held events by the
/// allowed lateness.
const MAX_ACK_PENDING: i64 = 4_000_000;
/// Events held for reordering at most: beyond, the oldest go to the
/// engine before their lateness has passed (counted), so memory stays
/// bounded at any rate (~300 bytes an event).
const MAX_HELD: usize = 1_000_000;
/// Highest offsets remembered per host and file; beyond, the least
/// recently seen file is forgotten (a re-sent line of it would then be
/// taken again: only after months of rotations).
const MAX_FILES: usize = 100_000;

/// (host, file) as sent → (host, file, `<host>:<file>`), shared by every
/// message of that file instead of allocated per message.
type Names = HashMap<(String, String), (Arc<str>, Arc<str>, Arc<str>)>;

/// One message as the consumer task hands it over.
struct Incoming {
    seq: u64,
    kind: Option<Kind>,
    /// `Err(why)` for a message without the headers of SPEC §10.
    head: Result<Head, &'static str>,
    payload: bytes::Bytes,
    reply: Option<async_nats::Subject>,
}

struct Head {
    host: Arc<str>,
    /// The file's name as sent (`Mcpwatch-File`).
    file: Arc<str>,
    /// `<host>:<file>`, for evidence.
    evidence: Arc<str>,
    file_id: Arc<str>,
    offset: u64,
    line: u64,
}

/// An event held for reordering.
struct HeldEvent {
    seq: u64,
    kind: Kind,
    ev: Event,
    raw: bytes::Bytes,
    evidence: Arc<str>,
    line: u64,
}

/// What `run` keeps about the stream between cycles.
pub(super) struct StreamSource {
    rx: tokio::sync::mpsc::Receiver<Vec<Incoming>>,
    reorder: Reorder<HeldEvent>,
    name: String,
    /// The stream's creation time (see [`StreamCheckpoint::created`]).
    created: String,
    seq: u64,
    /// Held sequences of the checkpoint restarted from, to take again.
    retake: BTreeSet<u64>,
    highest: HashMap<(Arc<str>, Arc<str>), (FileTaken, u64)>,
    /// A counter for `highest`'s least-recently-seen eviction.
    touched: u64,
    /// (sequence, reply subject) of the last message of each batch: what
    /// a checkpoint acknowledges (ack-all) once it covers it.
    acks: VecDeque<(u64, async_nats::Subject)>,
    client: async_nats::Client,
    runtime: tokio::runtime::Handle,
    /// Set by the consumer task when it cannot go on (the stream is gone).
    pub(super) fatal: Arc<Mutex<Option<String>>>,
    /// Set when this source is dropped: the consumer task stops pulling
    /// (a group's term that ended must not take messages any more).
    stop: Arc<AtomicBool>,
}

impl Drop for StreamSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

impl StreamSource {
    /// Connects (retrying until the connect timeout), finds the stream and
    /// starts the consumer task at the checkpoint's position.
    pub(super) fn start(
        runtime: &tokio::runtime::Runtime,
        opts: &NatsOptions,
        saved: Option<StreamCheckpoint>,
        wake: mpsc::SyncSender<Wake>,
    ) -> Result<StreamSource, RunError> {
        let mut saved = saved
            .filter(|s| s.stream == opts.stream)
            .unwrap_or_default();
        let client = runtime
            .block_on(nats::connect(
                &opts.url,
                "mcpwatch run",
                opts.connect_timeout,
            ))
            .map_err(|e| RunError::Nats(e.to_string()))?;
        let js = {
            // The context spawns its ack handler: inside the runtime.
            let _in = runtime.enter();
            jetstream::new(client.clone())
        };
        let created = runtime.block_on(wait_for_stream(&js, &opts.stream, opts.connect_timeout))?;
        if !saved.created.is_empty() && saved.created != created {
            // Its sequences start again at 1: read it from its start. The
            // highest offsets stay (they still tell a line sent again).
            tracing::warn!(
                "the stream {} was created again since the checkpoint; reading it from its start",
                opts.stream
            );
            saved.seq = 0;
            saved.held.clear();
        }
        let retake: BTreeSet<u64> = saved.held.iter().flat_map(|&(a, b)| a..=b).collect();
        let start = retake.first().copied().unwrap_or(saved.seq + 1);
        let fatal = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
        runtime.spawn(consume(
            js,
            (opts.stream.clone(), opts.consumer.clone()),
            start,
            tx,
            wake,
            fatal.clone(),
            stop.clone(),
        ));
        tracing::info!(
            "reading the stream {} at {} from sequence {start} (durable consumer {})",
            opts.stream,
            nats::shown(&opts.url),
            opts.consumer
        );
        let mut highest = HashMap::new();
        saved.created = created;
        for (i, h) in saved.highest.into_iter().enumerate() {
            let taken = FileTaken {
                offset: h.offset,
                line: h.line,
                gaps: h.gaps,
            };
            highest.insert((h.host.into(), h.file.into()), (taken, i as u64));
        }
        Ok(StreamSource {
            rx,
            reorder: Reorder::new(opts.allowed_lateness.as_millis() as Millis),
            name: opts.stream.clone(),
            created: saved.created,
            seq: saved.seq,
            retake,
            touched: highest.len() as u64,
            highest,
            acks: VecDeque::new(),
            client,
            runtime: runtime.handle().clone(),
            fatal,
            stop,
        })
    }

    /// The stream's part of a checkpoint taken now, and the reply subject
    /// that acknowledges everything it covers.
    pub(super) fn checkpoint(&mut self) -> StreamCheckpoint {
        let mut held: Vec<u64> = self.reorder.held().map(|h| h.seq).collect();
        held.extend(self.retake.iter().copied());
        held.sort_unstable();
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for s in held {
            match ranges.last_mut() {
                Some((_, b)) if *b + 1 == s => *b = s,
                _ => ranges.push((s, s)),
            }
        }
        // Everything below the oldest held sequence is done: acknowledge it.
        let done = ranges.first().map_or(self.seq, |r| r.0 - 1);
        let mut ack = None;
        while self.acks.front().is_some_and(|a| a.0 <= done) {
            ack = self.acks.pop_front();
        }
        if let Some((_, reply)) = ack {
            let client = self.client.clone();
            self.runtime.spawn(async move {
                let _ = client
                    .publish(reply, bytes::Bytes::from_static(b"+ACK"))
                    .await;
            });
        }
        StreamCheckpoint {
            stream: self.name.clone(),
            created: self.created.clone(),
            seq: self.seq,
            held: ranges,
            highest: self
                .highest
                .iter()
                .map(|((host, file), (taken, _))| Highest {
                    host: host.to_string(),
                    file: file.to_string(),
                    offset: taken.offset,
                    line: taken.line,
                    gaps: taken.gaps.clone(),
                })
                .collect(),
        }
    }

    /// Whether `head`'s line is new for its host and file (see
    /// [`FileTaken`]), which it then becomes.
    fn first_time(&mut self, head: &Head) -> bool {
        self.touched += 1;
        let key = (head.host.clone(), head.file_id.clone());
        if !self.highest.contains_key(&key)
            && self.highest.len() >= MAX_FILES
            && let Some(oldest) = self
                .highest
                .iter()
                .min_by_key(|(_, (_, seen))| *seen)
                .map(|(k, _)| k.clone())
        {
            self.highest.remove(&oldest);
        }
        let (taken, seen) = self.highest.entry(key).or_default();
        *seen = self.touched;
        taken.take(head.offset, head.line)
    }
}

/// Waits for the stream to exist (a forwarder creates it) until `timeout`;
/// returns its creation time (Unix ns).
async fn wait_for_stream(
    js: &jetstream::Context,
    name: &str,
    timeout: Duration,
) -> Result<String, RunError> {
    let until = Instant::now() + timeout;
    loop {
        match js.get_stream(name).await {
            Ok(s) => return Ok(s.cached_info().created.unix_timestamp_nanos().to_string()),
            Err(e) if Instant::now() >= until => {
                return Err(RunError::Nats(format!(
                    "the stream {name} cannot be read ({e}); is a forwarder running?"
                )));
            }
            Err(e) => {
                tracing::warn!("the stream {name} cannot be read yet ({e}); waiting");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// The consumer task: (re)creates the durable consumer at the next
/// sequence wanted and hands messages over in batches. A lost connection
/// or server makes it start again where it stopped; a stream that is gone
/// ends it with a fatal error for the detection loop.
async fn consume(
    js: jetstream::Context,
    (stream, durable): (String, String),
    mut next: u64,
    tx: tokio::sync::mpsc::Sender<Vec<Incoming>>,
    wake: mpsc::SyncSender<Wake>,
    fatal: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
) {
    let mut names = Names::new();
    loop {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let s = match js.get_stream(&stream).await {
            Ok(s) => s,
            Err(e) => {
                if nats::stream_missing(&e) {
                    if let Ok(mut f) = fatal.lock() {
                        *f = Some(format!(
                            "the stream {stream} no longer exists (deleted?): {e}"
                        ));
                    }
                    let _ = wake.try_send(Wake::Files);
                    return;
                }
                tracing::warn!("the stream {stream} cannot be reached ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        // The durable consumer starts where this detector's checkpoint
        // says, whatever the server remembers.
        let _ = s.delete_consumer(&durable).await;
        let consumer = s
            .create_consumer(pull::Config {
                durable_name: Some(durable.clone()),
                deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: next.max(1),
                },
                ack_policy: jetstream::consumer::AckPolicy::All,
                ack_wait: Duration::from_secs(600),
                max_ack_pending: MAX_ACK_PENDING,
                ..Default::default()
            })
            .await;
        let messages = match consumer {
            Ok(c) => c.stream().max_messages_per_batch(BATCH).messages().await,
            Err(e) => {
                tracing::warn!("cannot create the consumer {durable} on {stream} ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let mut messages = match messages {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("cannot read {stream} ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let mut batch = Vec::with_capacity(BATCH);
        // The stream's sequences have no holes but those of messages gone
        // (max_age): the first message after the consumer starts may be
        // past `next`, a later one must not. A later hole is messages the
        // server handed to a pull request that never reached this client
        // (a node lost mid-delivery); the acknowledgement of a later
        // message would cover them (`AckPolicy::All`), so the consumer
        // starts again at the first one missing.
        let mut first = true;
        loop {
            if stop.load(Ordering::Acquire) {
                return;
            }
            let got = tokio::time::timeout(FLUSH, messages.next()).await;
            let idle = got.is_err();
            let ended = match got {
                Ok(Some(Ok(m))) => {
                    let inc = incoming(&m, &mut names);
                    if !first && inc.seq > next {
                        tracing::warn!(
                            "messages {next} to {} of {stream} were not delivered; reading again from {next}",
                            inc.seq - 1
                        );
                        true
                    } else {
                        first = false;
                        next = next.max(inc.seq + 1);
                        batch.push(inc);
                        false
                    }
                }
                Ok(Some(Err(e))) => {
                    tracing::warn!("reading {stream}: {e}; starting again at {next}");
                    true
                }
                Ok(None) => true,
                Err(_) => false,
            };
            if !batch.is_empty() && (ended || idle || batch.len() >= BATCH) {
                if tx.send(std::mem::take(&mut batch)).await.is_err() {
                    return;
                }
                let _ = wake.try_send(Wake::Files);
            }
            if ended {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads a message's sequence, kind and SPEC §10 headers.
fn incoming(m: &jetstream::Message, names: &mut Names) -> Incoming {
    let seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
    let kind = nats::kind_of_subject(m.subject.as_str());
    let get = |h: &str| {
        m.headers
            .as_ref()
            .and_then(|hs| hs.get(h))
            .map(|v| v.as_str().to_string())
    };
    let head = (|| {
        let id = get("Nats-Msg-Id").ok_or("no Nats-Msg-Id")?;
        let (id_host, file_id, offset) = nats::parse_msg_id(&id).ok_or("bad Nats-Msg-Id")?;
        let host = get(HEADER_HOST).ok_or("no Mcpwatch-Host")?;
        if host != id_host {
            return Err("Mcpwatch-Host differs from Nats-Msg-Id");
        }
        let file = get(HEADER_FILE)
            .filter(|f| !f.is_empty() && !f.contains('/'))
            .ok_or("no Mcpwatch-File")?;
        let line = get(HEADER_LINE)
            .and_then(|l| l.parse().ok())
            .filter(|&l: &u64| l > 0)
            .ok_or("no Mcpwatch-Line")?;
        if names.len() > 10_000 {
            names.clear();
        }
        let (host, file, evidence) = names
            .entry((host.clone(), file.clone()))
            .or_insert_with(|| {
                let e = format!("{host}:{file}");
                (host.as_str().into(), file.as_str().into(), e.into())
            })
            .clone();
        Ok(Head {
            host,
            file,
            evidence,
            file_id: file_id.into(),
            offset,
            line,
        })
    })();
    Incoming {
        seq,
        kind,
        head,
        payload: m.payload.clone(),
        reply: m.reply.clone(),
    }
}

impl Daemon {
    /// One cycle of `run --input nats://…`: take what the consumer task
    /// handed over, hand the events the lateness has released to the
    /// engine in ts order, emit. Returns true when more may be waiting.
    pub(super) fn stream_cycle(&mut self) -> Result<bool, RunError> {
        if !self.state_writable() {
            return Ok(false);
        }
        let Some(mut src) = self.stream.take() else {
            return Ok(false);
        };
        let result = self.stream_cycle_with(&mut src);
        self.stream = Some(src);
        result
    }

    fn stream_cycle_with(&mut self, src: &mut StreamSource) -> Result<bool, RunError> {
        if let Some(e) = src.fatal.lock().ok().and_then(|f| f.clone()) {
            return Err(RunError::Nats(e));
        }
        let read_at = Instant::now();
        let now = chrono::Utc::now().timestamp_millis();
        self.parser.now_ms = now;
        let mut taken = 0usize;
        let mut logged = 0usize;
        let mut late: Vec<HeldEvent> = Vec::new();
        while taken < QUEUE * BATCH / 4 {
            let Ok(batch) = src.rx.try_recv() else { break };
            taken += batch.len();
            if let Some(last) = batch.last()
                && let Some(reply) = &last.reply
            {
                src.acks.push_back((last.seq, reply.clone()));
            }
            for inc in batch {
                if let Some(h) = self.take(src, inc, now, &mut logged) {
                    late.push(h);
                }
            }
        }
        if taken > 0 {
            self.dirty = true;
            self.health.dirty.store(true, Ordering::Relaxed);
        }
        // Late events first, as they came; then what the lateness released.
        let mut released: Vec<HeldEvent> = late;
        let n_late = released.len() as u64;
        if n_late > 0 {
            self.metrics.inc("mcpwatch_events_late_total", &[], n_late);
        }
        src.reorder.release(now, |_, _, h| released.push(h));
        let early = src
            .reorder
            .release_over(MAX_HELD, |_, _, h| released.push(h));
        if early > 0 {
            self.metrics
                .inc("mcpwatch_events_released_early_total", &[], early as u64);
        }
        if let Some(ts) = released
            .iter()
            .filter(|h| h.kind == Kind::Approval)
            .map(|h| h.ev.ts)
            .max()
        {
            self.gate.approvals_seen = self.gate.approvals_seen.max(ts);
        }
        if let Some(ts) = released
            .iter()
            .filter(|h| h.kind == Kind::ToolCall)
            .map(|h| h.ev.ts)
            .min()
        {
            self.gate.calls_read(read_at, ts);
        }
        if let Some(grace) = self.engine.bypass_grace() {
            let h = self.gate.horizon(Instant::now(), grace);
            self.engine.set_bypass_horizon(h);
        }
        self.engine.set_wall_clock(now);
        for h in &released {
            let line = LineRef {
                file: &h.evidence,
                line: h.line,
                raw: &h.raw,
            };
            self.engine.process(&h.ev, line, &mut self.alerts);
        }
        self.engine.tick(&mut self.alerts);
        self.dirty |= !self.alerts.is_empty();
        self.emit(read_at)?;
        self.export_engine_stats();
        self.health.last_poll_ms.store(now, Ordering::Relaxed);
        Ok(taken > 0)
    }

    /// Takes one message: skips what an earlier run took, drops a line
    /// sent again (offset at or below the highest of its host and file),
    /// parses, and holds the event for reordering. Returns a late event
    /// to process at once.
    fn take(
        &mut self,
        src: &mut StreamSource,
        inc: Incoming,
        now: Millis,
        logged: &mut usize,
    ) -> Option<HeldEvent> {
        let retaken = src.retake.remove(&inc.seq);
        if inc.seq <= src.seq && !retaken {
            return None;
        }
        src.seq = src.seq.max(inc.seq);
        let base = inc.kind.map_or("unknown", Kind::base_file);
        let (Some(kind), Ok(head)) = (inc.kind, &inc.head) else {
            let why = inc
                .head
                .as_ref()
                .err()
                .copied()
                .unwrap_or("not an audit subject");
            self.metrics.inc(
                "mcpwatch_lines_rejected_total",
                &[("file", base), ("reason", "bad_message")],
                1,
            );
            *logged += 1;
            if *logged <= 20 {
                tracing::warn!("{}: stream message {} rejected ({why})", src.name, inc.seq);
            }
            return None;
        };
        if !retaken && !src.first_time(head) {
            self.metrics.inc("mcpwatch_lines_resent_total", &[], 1);
            return None;
        }
        let ev = match self.parser.parse(kind, &inc.payload) {
            Ok(ev) => ev,
            Err(reason) => {
                self.reject(&head.evidence, kind, head.line, reason, logged);
                return None;
            }
        };
        self.metrics.inc(
            "mcpwatch_events_total",
            &[("file", kind.base_file()), ("kind", kind.as_str())],
            1,
        );
        let tie = Tie {
            host: head.host.clone(),
            kind,
            file: head.file.clone(),
            line: head.line,
        };
        let held = HeldEvent {
            seq: inc.seq,
            kind,
            ev,
            raw: inc.payload,
            evidence: head.evidence.clone(),
            line: head.line,
        };
        let ts = held.ev.ts;
        src.reorder.push(ts, tie, held, now)
    }
}
