//! The durable outbox: every alert routed to a channel is on disk before any
//! attempt, and stays there until that channel took it or gave up on it.
//!
//! # On disk (`<state_dir>/outbox/`)
//!
//! - `state.json`: a snapshot of the whole outbox, written atomically
//!   ([`write_atomic`]) at start, at shutdown and every
//!   [`COMPACT_EVERY_OPS`] operations;
//! - `journal.ndjson`: the operations since that snapshot, one JSON object a
//!   line, each fsynced before the call that made it returns. A `kill -9`
//!   can only tear the last line, which belongs to a call that never
//!   returned; loading ignores it.
//!
//! Every operation is applied to memory by the same code whether it is made
//! live or replayed, and replaying an operation the snapshot already holds
//! changes nothing (a crash between writing the snapshot and truncating the
//! journal is harmless).
//!
//! # Model
//!
//! A [`Pending`] delivery is one group on one channel. The first alert of a
//! (route, channel) starts a group whose id is that alert's id and which is
//! sent `group_wait` later; later alerts join it while it is still *open*
//! (not yet attempted). The first attempt *closes* it, so every retry sends
//! exactly the same alerts under the same id (the webhook's
//! `Idempotency-Key`, the email's `Message-ID`). For email, groups that are
//! due together (including those held back by `max_per_hour`) are folded
//! into one message when it is sent.
//!
//! Time is an argument of every method (the caller's injected clock), so the
//! backoff and `max_age` logic is tested without sleeping.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::router::Placement;
use super::{Alert, format_ts};
use crate::event::Millis;
use crate::ingest::checkpoint::write_atomic;

/// Directory of the outbox inside the state directory.
pub const OUTBOX_DIR: &str = "outbox";
/// Snapshot file in [`OUTBOX_DIR`].
pub const SNAPSHOT_FILE: &str = "state.json";
/// Journal file in [`OUTBOX_DIR`].
pub const JOURNAL_FILE: &str = "journal.ndjson";
/// Dead letters, in the state directory itself (SPEC §5).
pub const DEAD_LETTER_FILE: &str = "dead-letter.ndjson";

/// Journal operations between snapshots: bounds replay time and the
/// journal's size (each operation is one alert or one attempt, < 10 KiB).
pub const COMPACT_EVERY_OPS: usize = 1_000;
/// Most alerts one open group takes; the next starts a new group, so one
/// flood cannot build an email nobody reads or a POST a receiver refuses.
pub const MAX_GROUP_ALERTS: usize = 500;
/// Most alerts pending at once; beyond, `submit` refuses (the alert stays
/// in `alerts.log`) rather than growing memory and disk without bound.
pub const MAX_PENDING_ALERTS: usize = 100_000;
/// Most alert ids remembered for de-duplication (each ~80 bytes).
pub const MAX_RECENT_IDS: usize = 50_000;
/// Window of `max_per_hour`.
pub const HOUR: Millis = 3_600_000;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("outbox is full ({MAX_PENDING_ALERTS} alerts pending); alert {0} not queued")]
    Full(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OutboxError + '_ {
    move |source| OutboxError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Exponential backoff with jitter: attempt n waits between half and all of
/// `base * 2^(n-1)`, capped at `max`.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub base: Millis,
    pub max: Millis,
}

/// 1 s doubling up to 1 min: after an outage ends, alerts flow again within
/// a minute, and since backoff is per channel a dead receiver costs one
/// request a minute.
impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: 1_000,
            max: 60_000,
        }
    }
}

impl Backoff {
    /// Delay after the `attempts`-th failed attempt (1-based).
    pub fn delay(&self, attempts: u32) -> Millis {
        let shift = attempts.saturating_sub(1).min(30);
        let full = self
            .base
            .max(1)
            .saturating_mul(1 << shift)
            .min(self.max.max(1));
        full - fastrand::i64(0..=full / 2)
    }
}

/// One group on one channel, waiting to be delivered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub channel: String,
    pub route: String,
    /// Id of the group's first alert.
    pub group: String,
    /// Alert ids, in the order they joined.
    pub alerts: Vec<String>,
    /// When the first alert entered the outbox (`max_age` counts from here).
    pub created: Millis,
    pub send_at: Millis,
    /// Attempted at least once: no alert joins any more.
    pub closed: bool,
    pub attempts: u32,
    pub next_attempt: Millis,
    pub last_error: Option<String>,
}

impl Pending {
    fn due(&self) -> Millis {
        if self.closed {
            self.next_attempt
        } else {
            self.send_at
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredAlert {
    at: Millis,
    alert: Alert,
}

/// Where a submitted alert went, as journaled (replay must not re-route:
/// the configuration may have changed since).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Slot {
    channel: String,
    route: String,
    group: String,
    send_at: Millis,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum DoneResult {
    Ok,
    Dead,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    Submit {
        at: Millis,
        alert: Alert,
        to: Vec<Slot>,
    },
    /// First attempt of `group` starts; `merged` open groups fold into it.
    Close {
        channel: String,
        group: String,
        merged: Vec<String>,
    },
    Fail {
        channel: String,
        group: String,
        attempts: u32,
        next: Millis,
        error: String,
    },
    Done {
        channel: String,
        group: String,
        at: Millis,
        result: DoneResult,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Snapshot {
    alerts: Vec<StoredAlert>,
    pending: Vec<Pending>,
    /// (alert id, when submitted), oldest first.
    recent: Vec<(String, Millis)>,
    /// Successful sends per email channel within the last hour.
    sent: BTreeMap<String, Vec<Millis>>,
}

/// What [`Outbox::submit`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// Already in the outbox or delivered recently: nothing written.
    Duplicate,
    /// No channel takes it.
    NotRouted,
    /// Durable; these channels have work.
    Queued(Vec<String>),
}

/// One attempt to make, handed to a channel's worker.
#[derive(Clone, Debug)]
pub struct Job {
    pub channel: String,
    /// The group id: `Idempotency-Key` / `Message-ID`.
    pub group: String,
    pub alerts: Vec<Alert>,
    /// Attempts already made (0 for the first).
    pub attempts: u32,
}

/// What a channel's worker should do next.
#[derive(Clone, Debug)]
pub enum Next {
    Send(Job),
    /// Nothing due before this time.
    At(Millis),
    Idle,
}

/// What became of a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Tried again at this time.
    Retry { at: Millis },
    /// Gave up: `expired` when `max_age` passed, else the error was permanent.
    Dead { expired: bool },
}

/// The outbox. Not thread-safe by itself: the delivery core keeps it behind
/// a mutex, and every method is short (at most one fsynced append).
pub struct Outbox {
    dir: PathBuf,
    dead_letter: PathBuf,
    journal: File,
    ops_since_snapshot: usize,
    max_age: Millis,
    backoff: Backoff,
    alerts: BTreeMap<String, StoredAlert>,
    pending: Vec<Pending>,
    recent: VecDeque<(String, Millis)>,
    recent_ids: HashSet<String>,
    sent: BTreeMap<String, VecDeque<Millis>>,
    /// Per channel: consecutive retryable failures and the time before
    /// which the channel is left alone. In memory only: after a restart
    /// each channel is tried at once.
    health: BTreeMap<String, (u32, Millis)>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("dir", &self.dir)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// Opens (creating if needed) the outbox of `state_dir`, replays its
    /// journal and compacts it.
    pub fn open(
        state_dir: &Path,
        max_age: Millis,
        backoff: Backoff,
        now: Millis,
    ) -> Result<Outbox, OutboxError> {
        let dir = state_dir.join(OUTBOX_DIR);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        // Alerts name users and tools: the outbox is for this user only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io_err(&dir))?;
        }
        let snap_path = dir.join(SNAPSHOT_FILE);
        let snapshot: Snapshot = match std::fs::read(&snap_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| OutboxError::Io {
                path: snap_path.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Snapshot::default(),
            Err(e) => return Err(io_err(&snap_path)(e)),
        };
        let journal_path = dir.join(JOURNAL_FILE);
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&journal_path)
            .map_err(io_err(&journal_path))?;
        let mut ob = Outbox {
            dead_letter: state_dir.join(DEAD_LETTER_FILE),
            dir,
            journal,
            ops_since_snapshot: 0,
            max_age,
            backoff,
            alerts: snapshot
                .alerts
                .into_iter()
                .map(|s| (s.alert.id.clone(), s))
                .collect(),
            pending: snapshot.pending,
            recent: snapshot.recent.into_iter().collect(),
            recent_ids: HashSet::new(),
            sent: snapshot
                .sent
                .into_iter()
                .map(|(k, v)| (k, v.into_iter().collect()))
                .collect(),
            health: BTreeMap::new(),
        };
        ob.recent_ids = ob.recent.iter().map(|(id, _)| id.clone()).collect();
        let reader = BufReader::new(File::open(&journal_path).map_err(io_err(&journal_path))?);
        for (n, line) in reader.split(b'\n').enumerate() {
            let line = line.map_err(io_err(&journal_path))?;
            match serde_json::from_slice::<Op>(&line) {
                Ok(op) => ob.apply(op),
                // A torn last line (kill -9 during an append whose call
                // never returned) or damage: skip it, keep the rest.
                Err(e) => tracing::warn!(
                    "{}:{}: skipping unreadable outbox journal line: {e}",
                    journal_path.display(),
                    n + 1
                ),
            }
        }
        ob.compact(now)?;
        Ok(ob)
    }

    /// Number of pending deliveries (group × channel).
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// The pending deliveries (for tests and diagnostics).
    pub fn pending(&self) -> &[Pending] {
        &self.pending
    }

    /// Whether an alert id is pending or was submitted within `max_age`.
    pub fn knows(&self, id: &str) -> bool {
        self.alerts.contains_key(id) || self.recent_ids.contains(id)
    }

    /// Places `alert` into the groups of `placements`, durably (fsynced)
    /// before returning. An id already known is not added twice.
    pub fn submit(
        &mut self,
        alert: &Alert,
        placements: &[Placement],
        now: Millis,
    ) -> Result<Submitted, OutboxError> {
        let r = self.submit_unsynced(alert, placements, now)?;
        if matches!(r, Submitted::Queued(_)) {
            self.sync()?;
        }
        Ok(r)
    }

    /// Like [`Outbox::submit`] for many alerts with one fsync at the end
    /// (a backlog of alerts then costs one disk flush, not one each). All
    /// are durable when it returns `Ok`; the results are in input order.
    pub fn submit_batch(
        &mut self,
        batch: &[(&Alert, Vec<Placement>)],
        now: Millis,
    ) -> Result<Vec<Submitted>, OutboxError> {
        let mut out = Vec::with_capacity(batch.len());
        let mut result = Ok(());
        for (alert, placements) in batch {
            match self.submit_unsynced(alert, placements, now) {
                Ok(r) => out.push(r),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // Flush what was written even when one alert was refused.
        self.sync()?;
        result.map(|()| out)
    }

    fn sync(&mut self) -> Result<(), OutboxError> {
        let jpath = self.dir.join(JOURNAL_FILE);
        self.journal.sync_data().map_err(io_err(&jpath))
    }

    fn submit_unsynced(
        &mut self,
        alert: &Alert,
        placements: &[Placement],
        now: Millis,
    ) -> Result<Submitted, OutboxError> {
        if self.knows(&alert.id) {
            return Ok(Submitted::Duplicate);
        }
        if placements.is_empty() {
            // Nothing will be sent, so nothing to de-duplicate: remember
            // nothing (with no channel at all this is every alert).
            return Ok(Submitted::NotRouted);
        }
        if self.alerts.len() >= MAX_PENDING_ALERTS {
            return Err(OutboxError::Full(alert.id.clone()));
        }
        let to: Vec<Slot> = placements
            .iter()
            .map(|p| {
                match self.pending.iter().find(|g| {
                    g.channel == p.channel
                        && g.route == p.route
                        && !g.closed
                        && g.alerts.len() < MAX_GROUP_ALERTS
                }) {
                    Some(g) => Slot {
                        channel: p.channel.clone(),
                        route: p.route.clone(),
                        group: g.group.clone(),
                        send_at: g.send_at,
                    },
                    None => Slot {
                        channel: p.channel.clone(),
                        route: p.route.clone(),
                        group: alert.id.clone(),
                        send_at: now.saturating_add(p.group_wait),
                    },
                }
            })
            .collect();
        let channels = to.iter().map(|s| s.channel.clone()).collect();
        self.write_op(
            Op::Submit {
                at: now,
                alert: alert.clone(),
                to,
            },
            now,
            false,
        )?;
        Ok(Submitted::Queued(channels))
    }

    /// The next attempt for `channel`: the delivery due first (a closed one
    /// at its retry time, an open one at its `send_at`), held back while an
    /// email channel has sent `max_per_hour` messages in the last hour
    /// (0: no limit). Starting a first attempt closes the group and, for
    /// email, folds every other open group already due into it.
    pub fn next(
        &mut self,
        channel: &str,
        fold: bool,
        max_per_hour: u32,
        now: Millis,
    ) -> Result<Next, OutboxError> {
        let held = self.health.get(channel).map_or(Millis::MIN, |h| h.1);
        let allowed = self.rate_allowed_at(channel, max_per_hour, now).max(held);
        let Some(first) = self
            .pending
            .iter()
            .filter(|p| p.channel == channel)
            .min_by_key(|p| (p.due().max(allowed), p.created))
        else {
            return Ok(Next::Idle);
        };
        let due = first.due().max(allowed);
        if due > now {
            return Ok(Next::At(due));
        }
        let group = first.group.clone();
        if !first.closed {
            let merged: Vec<String> = if fold {
                self.pending
                    .iter()
                    .filter(|p| {
                        p.channel == channel && !p.closed && p.group != group && p.send_at <= now
                    })
                    .map(|p| p.group.clone())
                    .collect()
            } else {
                Vec::new()
            };
            self.commit(
                Op::Close {
                    channel: channel.to_string(),
                    group: group.clone(),
                    merged,
                },
                now,
            )?;
        }
        let Some(p) = self.find(channel, &group) else {
            return Ok(Next::Idle);
        };
        Ok(Next::Send(Job {
            channel: channel.to_string(),
            group: group.clone(),
            alerts: p
                .alerts
                .iter()
                .filter_map(|id| self.alerts.get(id).map(|s| s.alert.clone()))
                .collect(),
            attempts: p.attempts,
        }))
    }

    /// The channel took the group.
    pub fn delivered(
        &mut self,
        channel: &str,
        group: &str,
        now: Millis,
    ) -> Result<(), OutboxError> {
        self.health.remove(channel);
        self.commit(
            Op::Done {
                channel: channel.to_string(),
                group: group.to_string(),
                at: now,
                result: DoneResult::Ok,
            },
            now,
        )
    }

    /// An attempt failed. A retryable failure is retried after the backoff,
    /// but never later than `max_age` after the group entered the outbox; at
    /// or past that moment, and for any permanent failure, the group goes to
    /// the dead letters with `error`.
    ///
    /// Backoff is per channel: a retryable failure holds the whole channel
    /// (not just this group) until the retry, with the delay growing with
    /// the channel's consecutive failures, so a receiver that is down gets
    /// one probe per backoff step rather than one request per pending group.
    pub fn failed(
        &mut self,
        channel: &str,
        group: &str,
        error: &str,
        retryable: bool,
        now: Millis,
    ) -> Result<Failure, OutboxError> {
        let Some(p) = self.find(channel, group) else {
            return Ok(Failure::Dead { expired: false });
        };
        let attempts = p.attempts.saturating_add(1);
        let deadline = p.created.saturating_add(self.max_age);
        if retryable && now < deadline {
            let failures = self
                .health
                .get(channel)
                .map_or(0, |h| h.0)
                .saturating_add(1)
                .max(attempts);
            let next = now
                .saturating_add(self.backoff.delay(failures))
                .min(deadline);
            self.health.insert(channel.to_string(), (failures, next));
            self.commit(
                Op::Fail {
                    channel: channel.to_string(),
                    group: group.to_string(),
                    attempts,
                    next,
                    error: error.to_string(),
                },
                now,
            )?;
            return Ok(Failure::Retry { at: next });
        }
        let expired = retryable;
        self.write_dead_letter(channel, group, attempts, error, expired, now)?;
        self.commit(
            Op::Done {
                channel: channel.to_string(),
                group: group.to_string(),
                at: now,
                result: DoneResult::Dead,
            },
            now,
        )?;
        Ok(Failure::Dead { expired })
    }

    /// Writes a snapshot and empties the journal (at shutdown, and on its own
    /// every [`COMPACT_EVERY_OPS`] operations).
    pub fn compact(&mut self, now: Millis) -> Result<(), OutboxError> {
        // Forget ids older than max_age that are no longer pending.
        while let Some((id, at)) = self.recent.front() {
            let old = *at < now.saturating_sub(self.max_age);
            if (old && !self.alerts.contains_key(id)) || self.recent.len() > MAX_RECENT_IDS {
                self.recent_ids.remove(id);
                self.recent.pop_front();
            } else {
                break;
            }
        }
        for times in self.sent.values_mut() {
            while times.front().is_some_and(|t| *t <= now - HOUR) {
                times.pop_front();
            }
        }
        self.sent.retain(|_, v| !v.is_empty());
        let snap = Snapshot {
            alerts: self.alerts.values().cloned().collect(),
            pending: self.pending.clone(),
            recent: self.recent.iter().cloned().collect(),
            sent: self
                .sent
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().copied().collect()))
                .collect(),
        };
        let path = self.dir.join(SNAPSHOT_FILE);
        let bytes = serde_json::to_vec(&snap).map_err(|e| OutboxError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        write_atomic(&path, &bytes).map_err(io_err(&path))?;
        let jpath = self.dir.join(JOURNAL_FILE);
        self.journal.set_len(0).map_err(io_err(&jpath))?;
        self.journal.sync_all().map_err(io_err(&jpath))?;
        self.ops_since_snapshot = 0;
        Ok(())
    }

    fn rate_allowed_at(&self, channel: &str, max_per_hour: u32, now: Millis) -> Millis {
        if max_per_hour == 0 {
            return Millis::MIN;
        }
        let Some(times) = self.sent.get(channel) else {
            return Millis::MIN;
        };
        let recent: Vec<Millis> = times.iter().copied().filter(|t| *t > now - HOUR).collect();
        if recent.len() < max_per_hour as usize {
            return Millis::MIN;
        }
        // The slot of the oldest send that must leave the window frees up.
        recent[recent.len() - max_per_hour as usize] + HOUR
    }

    fn find(&self, channel: &str, group: &str) -> Option<&Pending> {
        self.pending
            .iter()
            .find(|p| p.channel == channel && p.group == group)
    }

    fn find_mut(&mut self, channel: &str, group: &str) -> Option<&mut Pending> {
        self.pending
            .iter_mut()
            .find(|p| p.channel == channel && p.group == group)
    }

    fn remember(&mut self, id: &str, at: Millis) {
        if self.recent_ids.insert(id.to_string()) {
            self.recent.push_back((id.to_string(), at));
        }
        // Bounded between compactions too; the oldest go first.
        while self.recent.len() > MAX_RECENT_IDS {
            if let Some((old, _)) = self.recent.pop_front() {
                self.recent_ids.remove(&old);
            }
        }
    }

    /// Journals `op` (fsynced), then applies it.
    fn commit(&mut self, op: Op, now: Millis) -> Result<(), OutboxError> {
        self.write_op(op, now, true)
    }

    /// Appends `op` to the journal (fsynced when `sync`), then applies it.
    fn write_op(&mut self, op: Op, now: Millis, sync: bool) -> Result<(), OutboxError> {
        let jpath = self.dir.join(JOURNAL_FILE);
        let mut line = serde_json::to_vec(&op).map_err(|e| OutboxError::Io {
            path: jpath.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        line.push(b'\n');
        self.journal.write_all(&line).map_err(io_err(&jpath))?;
        if sync {
            self.journal.sync_data().map_err(io_err(&jpath))?;
        }
        self.apply(op);
        self.ops_since_snapshot += 1;
        if self.ops_since_snapshot >= COMPACT_EVERY_OPS {
            self.compact(now)?;
        }
        Ok(())
    }

    /// Applies one operation to memory; idempotent for operations the
    /// snapshot already reflects.
    fn apply(&mut self, op: Op) {
        match op {
            Op::Submit { at, alert, to } => {
                if self.knows(&alert.id) {
                    return;
                }
                let id = alert.id.clone();
                for s in to {
                    match self.find_mut(&s.channel, &s.group) {
                        Some(p) => p.alerts.push(id.clone()),
                        None => self.pending.push(Pending {
                            channel: s.channel,
                            route: s.route,
                            group: s.group,
                            alerts: vec![id.clone()],
                            created: at,
                            send_at: s.send_at,
                            closed: false,
                            attempts: 0,
                            next_attempt: s.send_at,
                            last_error: None,
                        }),
                    }
                }
                self.alerts.insert(id.clone(), StoredAlert { at, alert });
                self.remember(&id, at);
            }
            Op::Close {
                channel,
                group,
                merged,
            } => {
                let mut extra: Vec<String> = Vec::new();
                let mut created = Millis::MAX;
                for m in &merged {
                    if let Some(i) = self
                        .pending
                        .iter()
                        .position(|p| p.channel == channel && &p.group == m && !p.closed)
                    {
                        let p = self.pending.remove(i);
                        created = created.min(p.created);
                        extra.extend(p.alerts);
                    }
                }
                if let Some(p) = self.find_mut(&channel, &group) {
                    p.closed = true;
                    p.created = p.created.min(created);
                    for a in extra {
                        if !p.alerts.contains(&a) {
                            p.alerts.push(a);
                        }
                    }
                }
            }
            Op::Fail {
                channel,
                group,
                attempts,
                next,
                error,
            } => {
                if let Some(p) = self.find_mut(&channel, &group)
                    && attempts > p.attempts
                {
                    p.closed = true;
                    p.attempts = attempts;
                    p.next_attempt = next;
                    p.last_error = Some(error);
                }
            }
            Op::Done {
                channel,
                group,
                at,
                result,
            } => {
                let Some(i) = self
                    .pending
                    .iter()
                    .position(|p| p.channel == channel && p.group == group)
                else {
                    return;
                };
                let p = self.pending.remove(i);
                for id in p.alerts {
                    if !self.pending.iter().any(|q| q.alerts.contains(&id)) {
                        self.alerts.remove(&id);
                    }
                }
                if result == DoneResult::Ok {
                    self.sent.entry(channel).or_default().push_back(at);
                }
            }
        }
    }

    fn write_dead_letter(
        &self,
        channel: &str,
        group: &str,
        attempts: u32,
        error: &str,
        expired: bool,
        now: Millis,
    ) -> Result<(), OutboxError> {
        let Some(p) = self.find(channel, group) else {
            return Ok(());
        };
        let alerts: Vec<&Alert> = p
            .alerts
            .iter()
            .filter_map(|id| self.alerts.get(id).map(|s| &s.alert))
            .collect();
        let entry = serde_json::json!({
            "ts": format_ts(now),
            "channel": channel,
            "group": group,
            "entered": format_ts(p.created),
            "attempts": attempts,
            "reason": if expired { "max_age" } else { "permanent" },
            "error": error,
            "alerts": alerts,
        });
        let path = &self.dead_letter;
        let mut line = serde_json::to_vec(&entry).map_err(|e| OutboxError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        line.push(b'\n');
        let mut opts = OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(io_err(path))?;
        f.write_all(&line).map_err(io_err(path))?;
        f.sync_data().map_err(io_err(path))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::router::tests::alert;
    use crate::event::Severity;

    const T0: Millis = 1_795_442_639_000;

    fn place(channel: &str, route: &str, wait: Millis) -> Placement {
        Placement {
            channel: channel.to_string(),
            route: route.to_string(),
            group_wait: wait,
        }
    }

    fn open(dir: &Path, now: Millis) -> Outbox {
        Outbox::open(
            dir,
            24 * HOUR,
            Backoff {
                base: 1_000,
                max: 60_000,
            },
            now,
        )
        .unwrap()
    }

    fn job(n: Next) -> Job {
        match n {
            Next::Send(j) => j,
            other => panic!("expected a job, got {other:?}"),
        }
    }

    fn ids(j: &Job) -> Vec<&str> {
        j.alerts.iter().map(|a| a.id.as_str()).collect()
    }

    #[test]
    fn alerts_within_group_wait_form_one_group_keyed_by_first_id() {
        let d = tempfile::tempdir().unwrap();
        let mut ob = open(d.path(), T0);
        let p = [place("siem", "r0", 30_000)];
        for (i, id) in ["a1", "a2", "a3"].iter().enumerate() {
            let r = ob
                .submit(
                    &alert("rapid_tool_usage", Severity::Medium, id),
                    &p,
                    T0 + i as i64 * 1000,
                )
                .unwrap();
            assert_eq!(r, Submitted::Queued(vec!["siem".to_string()]));
        }
        assert!(
            matches!(ob.next("siem", false, 0, T0 + 29_999).unwrap(), Next::At(t) if t == T0 + 30_000)
        );
        let j = job(ob.next("siem", false, 0, T0 + 30_000).unwrap());
        assert_eq!(j.group, "a1");
        assert_eq!(ids(&j), vec!["a1", "a2", "a3"]);
        // The group is closed now: a new alert starts a new group.
        ob.submit(&alert("x", Severity::Medium, "a4"), &p, T0 + 30_001)
            .unwrap();
        assert_eq!(ob.pending_count(), 2);
        ob.delivered("siem", "a1", T0 + 30_002).unwrap();
        assert!(
            matches!(ob.next("siem", false, 0, T0 + 30_003).unwrap(), Next::At(t) if t == T0 + 60_001)
        );
    }

    #[test]
    fn submit_deduplicates_pending_and_recently_delivered_ids() {
        let d = tempfile::tempdir().unwrap();
        let mut ob = open(d.path(), T0);
        let p = [place("siem", "r0", 0)];
        let a = alert("x", Severity::Low, "dup");
        assert!(matches!(
            ob.submit(&a, &p, T0).unwrap(),
            Submitted::Queued(_)
        ));
        assert_eq!(ob.submit(&a, &p, T0).unwrap(), Submitted::Duplicate);
        let j = job(ob.next("siem", false, 0, T0).unwrap());
        ob.delivered("siem", &j.group, T0 + 1).unwrap();
        assert_eq!(ob.submit(&a, &p, T0 + 2).unwrap(), Submitted::Duplicate);
        // Also across a restart.
        drop(ob);
        let mut ob = open(d.path(), T0 + 3);
        assert_eq!(ob.submit(&a, &p, T0 + 3).unwrap(), Submitted::Duplicate);
        assert_eq!(ob.pending_count(), 0);
    }

    #[test]
    fn retryable_failures_back_off_exponentially_with_jitter() {
        let d = tempfile::tempdir().unwrap();
        let mut ob = open(d.path(), T0);
        ob.submit(
            &alert("x", Severity::Low, "a"),
            &[place("siem", "r0", 0)],
            T0,
        )
        .unwrap();
        let mut now = T0;
        for attempt in 1..=8u32 {
            let j = job(ob.next("siem", false, 0, now).unwrap());
            assert_eq!(j.attempts, attempt - 1);
            let f = ob.failed("siem", "a", "HTTP 503", true, now).unwrap();
            let Failure::Retry { at } = f else {
                panic!("{f:?}")
            };
            let full = (1_000i64 << (attempt - 1)).min(60_000);
            assert!(
                at - now >= full / 2 && at - now <= full,
                "attempt {attempt}: {}",
                at - now
            );
            assert!(matches!(ob.next("siem", false, 0, at - 1).unwrap(), Next::At(t) if t == at));
            now = at;
        }
        assert_eq!(ob.pending()[0].last_error.as_deref(), Some("HTTP 503"));
    }

    #[test]
    fn permanent_failure_goes_straight_to_dead_letters_with_error() {
        let d = tempfile::tempdir().unwrap();
        let mut ob = open(d.path(), T0);
        ob.submit(
            &alert("x", Severity::Low, "a"),
            &[place("siem", "r0", 0)],
            T0,
        )
        .unwrap();
        job(ob.next("siem", false, 0, T0).unwrap());
        let f = ob
            .failed("siem", "a", "HTTP 400 Bad Request", false, T0)
            .unwrap();
        assert_eq!(f, Failure::Dead { expired: false });
        assert_eq!(ob.pending_count(), 0);
        let dl = std::fs::read_to_string(d.path().join(DEAD_LETTER_FILE)).unwrap();
        let v: serde_json::Value = serde_json::from_str(dl.trim()).unwrap();
        assert_eq!(v["channel"], "siem");
        assert_eq!(v["group"], "a");
        assert_eq!(v["attempts"], 1);
        assert_eq!(v["reason"], "permanent");
        assert_eq!(v["error"], "HTTP 400 Bad Request");
        assert_eq!(v["alerts"][0]["id"], "a");
    }

    #[test]
    fn retries_stop_exactly_at_max_age_then_dead_letter() {
        let d = tempfile::tempdir().unwrap();
        let mut ob = Outbox::open(
            d.path(),
            10_000,
            Backoff {
                base: 4_000,
                max: 8_000,
            },
            T0,
        )
        .unwrap();
        ob.submit(
            &alert("x", Severity::Low, "a"),
            &[place("siem", "r0", 0)],
            T0,
        )
        .unwrap();
        let mut now = T0;
        let mut last = None;
        for _ in 0..10 {
            let Next::Send(j) = ob.next("siem", false, 0, now).unwrap() else {
                break;
            };
            let f = ob
                .failed("siem", &j.group, "connection refused", true, now)
                .unwrap();
            last = Some(f);
            match f {
                Failure::Retry { at } => {
                    assert!(at <= T0 + 10_000, "never scheduled past max_age");
                    now = at;
                }
                Failure::Dead { .. } => break,
            }
        }
        assert_eq!(last, Some(Failure::Dead { expired: true }));
        assert_eq!(now, T0 + 10_000, "the last attempt is at max_age exactly");
        let dl = std::fs::read_to_string(d.path().join(DEAD_LETTER_FILE)).unwrap();
        assert!(dl.contains("\"reason\":\"max_age\""));
        assert!(dl.contains("connection refused"));
    }

    #[test]
    fn retryable_failure_holds_the_whole_channel_until_its_retry() {
        let d = tempfile::tempdir().unwrap();
        let mut ob = open(d.path(), T0);
        for (i, r) in ["r0", "r1", "r2"].iter().enumerate() {
            ob.submit(
                &alert("x", Severity::Low, &format!("g{i}")),
                &[place("siem", r, 0)],
                T0,
            )
            .unwrap();
        }
        let j = job(ob.next("siem", false, 0, T0).unwrap());
        let Failure::Retry { at } = ob.failed("siem", &j.group, "HTTP 503", true, T0).unwrap()
        else {
            panic!("expected a retry")
        };
        // Two more groups are due, but the receiver is down: no request.
        assert!(matches!(ob.next("siem", false, 0, T0 + 1).unwrap(), Next::At(t) if t == at));
        // A second failure (another group) backs the channel off further.
        let j = job(ob.next("siem", false, 0, at).unwrap());
        let Failure::Retry { at: at2 } = ob.failed("siem", &j.group, "HTTP 503", true, at).unwrap()
        else {
            panic!("expected a retry")
        };
        assert!(at2 - at >= 1_000, "second consecutive failure waits 1-2 s");
        // Recovery releases every group at once.
        let j = job(ob.next("siem", false, 0, at2).unwrap());
        ob.delivered("siem", &j.group, at2).unwrap();
        let j = job(ob.next("siem", false, 0, at2).unwrap());
        ob.delivered("siem", &j.group, at2).unwrap();
        assert!(matches!(
            ob.next("siem", false, 0, at2).unwrap(),
            Next::Send(_)
        ));
    }

    #[test]
    fn channels_progress_independently() {
        let d = tempfile::tempdir().unwrap();
        let mut ob = open(d.path(), T0);
        let p = [place("mail", "r0", 0), place("siem", "r0", 0)];
        ob.submit(&alert("x", Severity::Low, "a"), &p, T0).unwrap();
        job(ob.next("siem", false, 0, T0).unwrap());
        ob.failed("siem", "a", "HTTP 503", true, T0).unwrap();
        let j = job(ob.next("mail", true, 0, T0).unwrap());
        ob.delivered("mail", &j.group, T0).unwrap();
        assert_eq!(ob.pending_count(), 1);
        assert_eq!(ob.pending()[0].channel, "siem");
    }

    #[test]
    fn email_over_max_per_hour_folds_alerts_into_next_message() {
        let d = tempfile::tempdir().unwrap();
        let mut ob = open(d.path(), T0);
        let p = [place("mail", "r0", 0)];
        for i in 0..2 {
            let id = format!("s{i}");
            ob.submit(&alert("x", Severity::Low, &id), &p, T0 + i)
                .unwrap();
            let j = job(ob.next("mail", true, 2, T0 + i).unwrap());
            ob.delivered("mail", &j.group, T0 + i).unwrap();
        }
        // Limit reached: three more alerts wait, then go out as one message.
        for i in 0..3 {
            let id = format!("w{i}");
            ob.submit(&alert("x", Severity::Low, &id), &p, T0 + 100 + i * 10)
                .unwrap();
            // A closed group would not take more; the waiting one is open.
        }
        assert!(
            matches!(ob.next("mail", true, 2, T0 + 1_000).unwrap(), Next::At(t) if t == T0 + HOUR)
        );
        let j = job(ob.next("mail", true, 2, T0 + HOUR).unwrap());
        assert_eq!(ids(&j), vec!["w0", "w1", "w2"]);
    }

    #[test]
    fn email_folds_groups_of_several_routes_due_together() {
        let d = tempfile::tempdir().unwrap();
        let mut ob = open(d.path(), T0);
        ob.submit(
            &alert("x", Severity::Low, "a"),
            &[place("mail", "r0", 5)],
            T0,
        )
        .unwrap();
        ob.submit(
            &alert("y", Severity::Low, "b"),
            &[place("mail", "r1", 5)],
            T0 + 1,
        )
        .unwrap();
        let j = job(ob.next("mail", true, 0, T0 + 10).unwrap());
        assert_eq!(j.group, "a");
        assert_eq!(ids(&j), vec!["a", "b"]);
        assert_eq!(ob.pending_count(), 1);
        // Webhooks keep one POST per group.
        ob.submit(
            &alert("x", Severity::Low, "c"),
            &[place("siem", "r0", 5)],
            T0,
        )
        .unwrap();
        ob.submit(
            &alert("y", Severity::Low, "d"),
            &[place("siem", "r1", 5)],
            T0,
        )
        .unwrap();
        let j = job(ob.next("siem", false, 0, T0 + 10).unwrap());
        assert_eq!(ids(&j), vec!["c"]);
    }

    #[test]
    fn restart_keeps_groups_ids_attempts_and_torn_journal_line_is_ignored() {
        let d = tempfile::tempdir().unwrap();
        {
            let mut ob = open(d.path(), T0);
            let p = [place("siem", "r0", 30_000)];
            ob.submit(&alert("x", Severity::Low, "g1"), &p, T0).unwrap();
            ob.submit(&alert("x", Severity::Low, "g2"), &p, T0 + 1)
                .unwrap();
            ob.submit(
                &alert("x", Severity::Low, "h1"),
                &[place("mail", "r0", 0)],
                T0,
            )
            .unwrap();
            job(ob.next("mail", true, 0, T0).unwrap());
            ob.failed("mail", "h1", "421 try later", true, T0).unwrap();
            // Dropped without compaction, as after kill -9.
        }
        let jpath = d.path().join(OUTBOX_DIR).join(JOURNAL_FILE);
        let mut f = OpenOptions::new().append(true).open(&jpath).unwrap();
        f.write_all(b"{\"op\":\"submit\",\"at\":1,\"ale").unwrap();
        drop(f);
        let mut ob = open(d.path(), T0 + 5);
        assert_eq!(ob.pending_count(), 2);
        let siem = ob.pending().iter().find(|p| p.channel == "siem").unwrap();
        assert_eq!(siem.group, "g1");
        assert_eq!(siem.alerts, vec!["g1", "g2"]);
        assert_eq!(siem.send_at, T0 + 30_000);
        let mail = ob.pending().iter().find(|p| p.channel == "mail").unwrap();
        assert_eq!(mail.attempts, 1);
        assert!(mail.closed);
        // A third alert still joins the open group after the restart.
        ob.submit(
            &alert("x", Severity::Low, "g3"),
            &[place("siem", "r0", 30_000)],
            T0 + 6,
        )
        .unwrap();
        let j = job(ob.next("siem", false, 0, T0 + 30_000).unwrap());
        assert_eq!(ids(&j), vec!["g1", "g2", "g3"]);
        // Journal was compacted at open.
        drop(ob);
        let ob = open(d.path(), T0 + 30_001);
        assert!(ob.pending().iter().any(|p| p.group == "g1" && p.closed));
    }

    #[test]
    fn replaying_journal_over_snapshot_that_has_it_changes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let jpath = d.path().join(OUTBOX_DIR).join(JOURNAL_FILE);
        let saved;
        {
            let mut ob = open(d.path(), T0);
            ob.submit(
                &alert("x", Severity::Low, "a"),
                &[place("siem", "r0", 0)],
                T0,
            )
            .unwrap();
            job(ob.next("siem", false, 0, T0).unwrap());
            ob.failed("siem", "a", "HTTP 503", true, T0).unwrap();
            saved = std::fs::read(&jpath).unwrap();
            ob.compact(T0).unwrap();
        }
        // Crash between snapshot and journal truncation: the journal is back.
        std::fs::write(&jpath, &saved).unwrap();
        let ob = open(d.path(), T0 + 1);
        assert_eq!(ob.pending_count(), 1);
        assert_eq!(ob.pending()[0].alerts, vec!["a"]);
        assert_eq!(ob.pending()[0].attempts, 1);
    }

    #[test]
    fn journal_is_compacted_and_full_groups_start_new_ones() {
        let d = tempfile::tempdir().unwrap();
        let jpath = d.path().join(OUTBOX_DIR).join(JOURNAL_FILE);
        let mut ob = open(d.path(), T0);
        let p = vec![place("siem", "r0", 60_000)];
        let alerts: Vec<Alert> = (0..COMPACT_EVERY_OPS + 5)
            .map(|i| alert("x", Severity::Low, &format!("a{i:05}")))
            .collect();
        let batch: Vec<(&Alert, Vec<Placement>)> = alerts.iter().map(|a| (a, p.clone())).collect();
        let r = ob.submit_batch(&batch, T0).unwrap();
        assert!(r.iter().all(|r| matches!(r, Submitted::Queued(_))));
        // Submitting the batch again adds nothing.
        let r = ob.submit_batch(&batch, T0).unwrap();
        assert!(r.iter().all(|r| *r == Submitted::Duplicate));
        let journal_lines = std::fs::read_to_string(&jpath).unwrap().lines().count();
        assert_eq!(journal_lines, 5, "compacted after {COMPACT_EVERY_OPS} ops");
        let sizes: Vec<usize> = ob.pending().iter().map(|p| p.alerts.len()).collect();
        assert_eq!(sizes, vec![MAX_GROUP_ALERTS, MAX_GROUP_ALERTS, 5]);
        drop(ob);
        let ob = open(d.path(), T0 + 1);
        let sizes: Vec<usize> = ob.pending().iter().map(|p| p.alerts.len()).collect();
        assert_eq!(sizes, vec![MAX_GROUP_ALERTS, MAX_GROUP_ALERTS, 5]);
        assert_eq!(ob.pending()[1].group, format!("a{MAX_GROUP_ALERTS:05}"));
    }

    mod model {
        //! Random runs of submit / time / attempts / restarts against the
        //! outbox's promise: every routed alert reaches each of its channels
        //! exactly once, delivered or dead-lettered, whatever the order of
        //! events and however often the process restarts between them.
        use super::*;
        use proptest::prelude::*;
        use std::collections::BTreeMap as Map;

        #[derive(Clone, Debug)]
        enum Step {
            Submit {
                id: u8,
                mail: Option<u8>,
                siem: Option<u8>,
                wait: i64,
            },
            Advance(i64),
            Attempt {
                mail: bool,
                outcome: u8,
            },
            Reopen,
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                4 => (0u8..12, proptest::option::of(0u8..2), proptest::option::of(0u8..2), 0i64..3_000)
                    .prop_map(|(id, mail, siem, wait)| Step::Submit { id, mail, siem, wait }),
                2 => (0i64..4_000).prop_map(Step::Advance),
                4 => (any::<bool>(), 0u8..4).prop_map(|(mail, outcome)| Step::Attempt { mail, outcome }),
                1 => Just(Step::Reopen),
            ]
        }

        /// Per channel: alert id → times delivered or dead-lettered.
        type Seen = Map<&'static str, Map<String, u32>>;

        fn attempt(ob: &mut Outbox, ch: &'static str, outcome: u8, now: Millis, seen: &mut Seen) {
            let Next::Send(job) = ob.next(ch, ch == "mail", 3, now).unwrap() else {
                return;
            };
            let ended = match outcome {
                0 | 1 => {
                    ob.delivered(ch, &job.group, now).unwrap();
                    true
                }
                2 => matches!(
                    ob.failed(ch, &job.group, "HTTP 503", true, now).unwrap(),
                    Failure::Dead { .. }
                ),
                _ => {
                    ob.failed(ch, &job.group, "HTTP 400", false, now).unwrap();
                    true
                }
            };
            if ended {
                for a in &job.alerts {
                    *seen.entry(ch).or_default().entry(a.id.clone()).or_default() += 1;
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
            #[test]
            fn every_routed_alert_ends_exactly_once_per_channel(steps in proptest::collection::vec(step(), 1..40)) {
                let d = tempfile::tempdir().unwrap();
                let backoff = Backoff { base: 500, max: 2_000 };
                let max_age = 1_000_000_000;
                let mut now = T0;
                let mut ob = Outbox::open(d.path(), max_age, backoff, now).unwrap();
                let mut expected: Map<&'static str, std::collections::BTreeSet<String>> = Map::new();
                let mut seen: Seen = Map::new();
                for s in steps {
                    match s {
                        Step::Submit { id, mail, siem, wait } => {
                            let id = format!("id{id}");
                            let mut p = Vec::new();
                            if let Some(r) = mail { p.push(place("mail", &format!("r{r}"), wait)); }
                            if let Some(r) = siem { p.push(place("siem", &format!("r{r}"), wait)); }
                            let known = ob.knows(&id);
                            let r = ob.submit(&alert("x", Severity::Low, &id), &p, now).unwrap();
                            if !known && !p.is_empty() {
                                prop_assert!(matches!(r, Submitted::Queued(_)));
                                for pl in &p {
                                    let ch = if pl.channel == "mail" { "mail" } else { "siem" };
                                    expected.entry(ch).or_default().insert(id.clone());
                                }
                            }
                        }
                        Step::Advance(dt) => now += dt,
                        Step::Attempt { mail, outcome } => {
                            attempt(&mut ob, if mail { "mail" } else { "siem" }, outcome, now, &mut seen);
                        }
                        Step::Reopen => {
                            drop(ob);
                            ob = Outbox::open(d.path(), max_age, backoff, now).unwrap();
                        }
                    }
                }
                // Drain: time passes, channels recover.
                for _ in 0..10_000 {
                    let mut idle = true;
                    for ch in ["mail", "siem"] {
                        match ob.next(ch, ch == "mail", 3, now).unwrap() {
                            Next::Idle => {}
                            Next::At(t) => { idle = false; now = now.max(t); }
                            Next::Send(_) => { idle = false; attempt(&mut ob, ch, 0, now, &mut seen); }
                        }
                    }
                    if idle { break; }
                }
                prop_assert_eq!(ob.pending_count(), 0);
                for ch in ["mail", "siem"] {
                    let want = expected.get(ch).cloned().unwrap_or_default();
                    let got = seen.get(ch).cloned().unwrap_or_default();
                    prop_assert_eq!(got.keys().cloned().collect::<std::collections::BTreeSet<_>>(), want);
                    prop_assert!(got.values().all(|n| *n == 1), "{}: {:?}", ch, got);
                }
            }
        }
    }

    #[test]
    fn not_routed_alert_writes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let mut ob = open(d.path(), T0);
        let r = ob.submit(&alert("x", Severity::Low, "a"), &[], T0).unwrap();
        assert_eq!(r, Submitted::NotRouted);
        let jpath = d.path().join(OUTBOX_DIR).join(JOURNAL_FILE);
        assert_eq!(std::fs::metadata(jpath).unwrap().len(), 0);
    }
}
