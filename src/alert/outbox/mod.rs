//! The durable outbox: every alert routed to a channel is on disk before any
//! attempt, and stays there until that channel took it or gave up on it.
//!
//! # On disk (`<state_dir>/outbox/`)
//!
//! - `state.json`: a snapshot of the whole outbox, written atomically
//!   ([`write_atomic`](crate::state::write_atomic)) at start,
//!   at shutdown and every [`COMPACT_EVERY_OPS`] operations;
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
//!
//! # Rooms
//!
//! This file holds the outbox's types and queries; `schedule` decides
//! what is sent when (grouping on submit, backoff, `max_per_hour`,
//! `max_age`), `journal` makes every change durable (snapshot, journal,
//! replay, dead letters), `dead` reads the dead letters back, and
//! `operator` is `mcpwatch outbox`: the read-only listing and the retry
//! requests a running daemon applies.

mod dead;
mod journal;
mod operator;
mod schedule;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Alert;
use crate::event::Millis;
use journal::StoredAlert;

pub(crate) use operator::{Channels, REQUESTS_EVERY};
pub use operator::{Entry, inspect, retry};
pub use schedule::Backoff;

/// Directory of the outbox inside the state directory.
pub(crate) const OUTBOX_DIR: &str = "outbox";
/// Snapshot file in [`OUTBOX_DIR`].
pub(crate) const SNAPSHOT_FILE: &str = "state.json";
/// Journal file in [`OUTBOX_DIR`].
pub(crate) const JOURNAL_FILE: &str = "journal.ndjson";
/// Dead letters, in the state directory itself (SPEC §5).
pub(crate) const DEAD_LETTER_FILE: &str = "dead-letter.ndjson";

/// Journal operations between snapshots: bounds replay time and the
/// journal's size (each operation is one alert or one attempt, < 10 KiB).
pub(crate) const COMPACT_EVERY_OPS: usize = 1_000;
/// Most alerts one open group takes; the next starts a new group, so one
/// flood cannot build an email nobody reads or a POST a receiver refuses.
pub(crate) const MAX_GROUP_ALERTS: usize = 500;
/// Most alerts pending at once; beyond, `submit` refuses (the alert stays
/// in `alerts.log`) rather than growing memory and disk without bound.
pub(crate) const MAX_PENDING_ALERTS: usize = 100_000;
/// Most alert ids remembered for de-duplication (each ~80 bytes).
pub(crate) const MAX_RECENT_IDS: usize = 50_000;
/// Window of `max_per_hour`.
pub(crate) const HOUR: Millis = 3_600_000;

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
    /// `mcpwatch outbox retry` refused, every reason; nothing was changed.
    #[error("refused, nothing changed:\n  {}", .0.join("\n  "))]
    Refused(Vec<String>),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OutboxError + '_ {
    move |source| OutboxError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One group on one channel, waiting to be delivered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub(crate) channel: String,
    pub(crate) route: String,
    /// Id of the group's first alert.
    pub(crate) group: String,
    /// Alert ids, in the order they joined.
    pub(crate) alerts: Vec<String>,
    /// When the first alert entered the outbox (`max_age` counts from here).
    pub(crate) created: Millis,
    pub(crate) send_at: Millis,
    /// Attempted at least once: no alert joins any more.
    pub(crate) closed: bool,
    pub(crate) attempts: u32,
    pub(crate) next_attempt: Millis,
    pub(crate) last_error: Option<String>,
}

/// What [`Outbox::submit`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Submitted {
    /// Already in the outbox or delivered recently: nothing written.
    Duplicate,
    /// No channel takes it.
    NotRouted,
    /// Durable; these channels have work.
    Queued(Vec<String>),
}

/// One attempt to make, handed to a channel's worker.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    /// The group id: `Idempotency-Key` / `Message-ID`.
    pub(crate) group: String,
    pub(crate) alerts: Vec<Alert>,
    /// Attempts already made (0 for the first).
    pub(crate) attempts: u32,
}

/// What a channel's worker should do next.
#[derive(Clone, Debug)]
pub(crate) enum Next {
    Send(Job),
    /// Nothing due before this time.
    At(Millis),
    Idle,
}

/// What became of a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Tried again at this time.
    Retry { at: Millis },
    /// Gave up: `expired` when `max_age` passed, else the error was permanent.
    Dead { expired: bool },
}

/// The outbox. Not thread-safe by itself: the delivery core keeps it behind
/// a mutex, and every method is short (at most one fsynced append).
pub(crate) struct Outbox {
    dir: PathBuf,
    dead_letter: PathBuf,
    /// `None` when opened read-only ([`Outbox::load_read_only`]).
    journal: Option<File>,
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
    /// Dead letters put back, oldest first (bounded as `recent`): a
    /// request applied again after a crash, or asked for twice, queues
    /// nothing twice.
    requeued: VecDeque<(dead::DeadKey, Millis)>,
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
    /// Number of pending deliveries (group × channel).
    pub(crate) fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// The pending deliveries (for tests).
    #[cfg(test)]
    pub(crate) fn pending(&self) -> &[Pending] {
        &self.pending
    }

    /// Whether an alert id is pending or was submitted within `max_age`.
    pub(crate) fn knows(&self, id: &str) -> bool {
        self.alerts.contains_key(id) || self.recent_ids.contains(id)
    }

    /// Whether an alert is still pending on some channel (not yet
    /// delivered everywhere, nor given up on).
    pub(crate) fn holds(&self, id: &str) -> bool {
        self.alerts.contains_key(id)
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
}

#[cfg(test)]
pub(super) mod tests;
