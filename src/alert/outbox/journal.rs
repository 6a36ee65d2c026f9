//! Durability: what the outbox writes to disk and how it reads it back.
//!
//! Every change is an [`Op`] appended to `journal.ndjson` and then applied
//! to memory by [`Outbox::apply`], the same code live and on replay; a
//! [`Snapshot`] of the whole state replaces the journal every
//! [`COMPACT_EVERY_OPS`] operations. Groups that
//! are given up on are appended to the dead letters here too.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{
    Backoff, COMPACT_EVERY_OPS, DEAD_LETTER_FILE, HOUR, JOURNAL_FILE, MAX_RECENT_IDS, OUTBOX_DIR,
    Outbox, OutboxError, Pending, SNAPSHOT_FILE, io_err,
};

/// Loads of a read-only outbox before giving up on a snapshot that keeps
/// being replaced under it (then the last load is used as it is).
const READ_ONLY_TRIES: u32 = 5;
use super::dead::DeadKey;
use crate::alert::{Alert, format_ts};
use crate::event::Millis;
use crate::state::write_atomic;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct StoredAlert {
    pub(super) at: Millis,
    pub(super) alert: Alert,
    /// [`Alert::line_fields`] (not in the alert's JSON): the environment of
    /// the actions this alert waits for.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) fields: BTreeMap<String, String>,
}

/// [`Alert::line_fields`] as the outbox stores them.
pub(super) fn to_stored(fields: &[(&'static str, String)]) -> BTreeMap<String, String> {
    fields
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

/// Back from the outbox: the names this program writes (`ts` and the
/// canonical fields), in their order; anything else is dropped.
fn from_stored(fields: &BTreeMap<String, String>) -> Vec<(&'static str, String)> {
    std::iter::once("ts")
        .chain(crate::event::Field::ALL.iter().map(|f| f.as_str()))
        .filter_map(|k| fields.get(k).map(|v| (k, v.clone())))
        .collect()
}

impl StoredAlert {
    /// The alert with its line fields, as a worker needs it.
    pub(super) fn full(&self) -> Alert {
        let mut a = self.alert.clone();
        a.line_fields = from_stored(&self.fields);
        a
    }
}

/// Where a submitted alert went, as journaled (replay must not re-route:
/// the configuration may have changed since).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Slot {
    pub(super) channel: String,
    pub(super) route: String,
    pub(super) group: String,
    pub(super) send_at: Millis,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum DoneResult {
    Ok,
    Dead,
}

// An op lives for one append and one apply: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(super) enum Op {
    Submit {
        at: Millis,
        alert: Alert,
        to: Vec<Slot>,
        /// [`Alert::line_fields`], which the alert's JSON leaves out.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        fields: BTreeMap<String, String>,
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
    /// A dead letter back in the outbox (`mcpwatch outbox retry --dead`):
    /// its group, closed (the same alerts under the same id), with a
    /// fresh `max_age` from `at`. Unlike `Submit` it skips alert ids the
    /// outbox knows, and it is applied once per dead letter ([`DeadKey`]),
    /// however often it is replayed or asked for again.
    Requeue {
        at: Millis,
        key: DeadKey,
        route: String,
        alerts: Vec<StoredAlert>,
    },
    /// A pending group made due now (`mcpwatch outbox retry`).
    Expedite {
        channel: String,
        group: String,
        at: Millis,
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
    /// Dead letters put back ([`Op::Requeue`]), with when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    requeued: Vec<(DeadKey, Millis)>,
}

impl Outbox {
    /// Opens (creating if needed) the outbox of `state_dir`, replays its
    /// journal and compacts it.
    pub(crate) fn open(
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
        let journal_path = dir.join(JOURNAL_FILE);
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&journal_path)
            .map_err(io_err(&journal_path))?;
        let mut ob = Outbox::load(state_dir, max_age, backoff, Some(journal))?;
        ob.compact(now)?;
        Ok(ob)
    }

    /// The outbox of `state_dir` as it is on disk, read without writing,
    /// creating or locking anything: `mcpwatch outbox` beside a running
    /// daemon. Every write method of the result fails. A compaction
    /// between reading the snapshot and the journal would hide the
    /// operations in between, so the load is repeated while the snapshot
    /// was replaced meanwhile (the daemon compacts every
    /// [`COMPACT_EVERY_OPS`] operations: a few tries suffice).
    pub(crate) fn load_read_only(state_dir: &Path) -> Result<Outbox, OutboxError> {
        use std::os::unix::fs::MetadataExt;
        let snap_path = state_dir.join(OUTBOX_DIR).join(SNAPSHOT_FILE);
        let id = || {
            std::fs::metadata(&snap_path)
                .ok()
                .map(|m| (m.dev(), m.ino()))
        };
        let mut tries = 0;
        loop {
            let before = id();
            let ob = Outbox::load(state_dir, super::HOUR, Backoff::default(), None)?;
            tries += 1;
            if id() == before || tries >= READ_ONLY_TRIES {
                return Ok(ob);
            }
        }
    }

    /// Snapshot plus journal, replayed; `journal` is the file later
    /// operations are appended to (`None`: read-only).
    fn load(
        state_dir: &Path,
        max_age: Millis,
        backoff: Backoff,
        journal: Option<File>,
    ) -> Result<Outbox, OutboxError> {
        let dir = state_dir.join(OUTBOX_DIR);
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
            requeued: snapshot.requeued.into_iter().collect(),
        };
        ob.recent_ids = ob.recent.iter().map(|(id, _)| id.clone()).collect();
        let file = match File::open(&journal_path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ob),
            Err(e) => return Err(io_err(&journal_path)(e)),
        };
        let mut reader = BufReader::new(file);
        let mut line = Vec::new();
        for n in 1.. {
            line.clear();
            if reader
                .read_until(b'\n', &mut line)
                .map_err(io_err(&journal_path))?
                == 0
            {
                break;
            }
            let complete = line.last() == Some(&b'\n');
            match serde_json::from_slice::<Op>(&line) {
                Ok(op) => ob.apply(op),
                // A last line still being written (read beside a running
                // daemon), or torn by a kill -9 during an append whose
                // call never returned: not an operation yet.
                Err(_) if !complete => break,
                // Damage: skip it, keep the rest.
                Err(e) => tracing::warn!(
                    "{}:{n}: skipping unreadable outbox journal line: {e}",
                    journal_path.display(),
                ),
            }
        }
        Ok(ob)
    }

    /// The journal file, which a read-only outbox does not have.
    fn journal(&mut self) -> Result<&mut File, OutboxError> {
        let path = self.dir.join(JOURNAL_FILE);
        self.journal.as_mut().ok_or_else(|| OutboxError::Io {
            path: path.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the outbox was opened read-only",
            ),
        })
    }

    /// The open journal must still be the one in the outbox directory: if
    /// the directory (or the file) was deleted, every op would go to an
    /// unlinked file and the pending alerts would be lost at the next
    /// start. Then the directory is made again and the whole state written
    /// into it as a snapshot.
    fn ensure_journal(&mut self, now: Millis) -> Result<(), OutboxError> {
        use std::os::unix::fs::MetadataExt;
        let jpath = self.dir.join(JOURNAL_FILE);
        let open = self.journal()?.metadata().map_err(io_err(&jpath))?;
        let same =
            std::fs::metadata(&jpath).is_ok_and(|m| m.dev() == open.dev() && m.ino() == open.ino());
        if same {
            return Ok(());
        }
        tracing::warn!(
            "{} is gone; writing the outbox's {} pending deliveries there again",
            jpath.display(),
            self.pending.len()
        );
        std::fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io_err(&self.dir))?;
        }
        self.journal = Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(&jpath)
                .map_err(io_err(&jpath))?,
        );
        self.compact(now)
    }

    /// Pending deliveries to channels that are no longer configured go to
    /// the dead letters with that reason (SPEC §8; at start and at a
    /// reload): nothing would ever send them. Returns the channels and how
    /// many groups each had. `gated` are actions that exist but do not run
    /// (`autoDisableOnSuspicious` is not true): theirs go too, saying so.
    pub(crate) fn drop_unknown_channels(
        &mut self,
        known: &[&str],
        gated: &[&str],
        now: Millis,
    ) -> Result<BTreeMap<String, u64>, OutboxError> {
        let orphans: Vec<(String, String, u32)> = self
            .pending
            .iter()
            .filter(|p| !known.contains(&p.channel.as_str()))
            .map(|p| (p.channel.clone(), p.group.clone(), p.attempts))
            .collect();
        let mut dropped = BTreeMap::new();
        for (channel, group, attempts) in orphans {
            let (error, reason) = if gated.contains(&channel.as_str()) {
                (
                    "the action does not run: incidentResponse.autoDisableOnSuspicious is not true",
                    "actions_off",
                )
            } else {
                (
                    "no channel of this name is configured any more",
                    "channel_removed",
                )
            };
            self.write_dead_letter(&channel, &group, attempts, error, reason, now)?;
            self.commit(
                Op::Done {
                    channel: channel.clone(),
                    group,
                    at: now,
                    result: DoneResult::Dead,
                },
                now,
            )?;
            *dropped.entry(channel).or_insert(0) += 1;
        }
        Ok(dropped)
    }

    pub(super) fn sync(&mut self) -> Result<(), OutboxError> {
        let jpath = self.dir.join(JOURNAL_FILE);
        self.journal()?.sync_data().map_err(io_err(&jpath))
    }
    /// Writes a snapshot and empties the journal (at shutdown, and on its own
    /// every [`COMPACT_EVERY_OPS`] operations).
    pub(crate) fn compact(&mut self, now: Millis) -> Result<(), OutboxError> {
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
        // A marker only has to outlive its request file and the rewrite of
        // the dead letters, both done at once; max_age is ample.
        while self.requeued.front().is_some_and(|(_, at)| {
            *at < now.saturating_sub(self.max_age) || self.requeued.len() > MAX_RECENT_IDS
        }) {
            self.requeued.pop_front();
        }
        let snap = Snapshot {
            alerts: self.alerts.values().cloned().collect(),
            pending: self.pending.clone(),
            recent: self.recent.iter().cloned().collect(),
            sent: self
                .sent
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().copied().collect()))
                .collect(),
            requeued: self.requeued.iter().cloned().collect(),
        };
        let path = self.dir.join(SNAPSHOT_FILE);
        let bytes = serde_json::to_vec(&snap).map_err(|e| OutboxError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        write_atomic(&path, &bytes).map_err(io_err(&path))?;
        let jpath = self.dir.join(JOURNAL_FILE);
        let journal = self.journal()?;
        journal.set_len(0).map_err(io_err(&jpath))?;
        journal.sync_all().map_err(io_err(&jpath))?;
        self.ops_since_snapshot = 0;
        Ok(())
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
    pub(super) fn commit(&mut self, op: Op, now: Millis) -> Result<(), OutboxError> {
        self.write_op(op, now, true)
    }

    /// Appends `op` to the journal (fsynced when `sync`), then applies it.
    pub(super) fn write_op(&mut self, op: Op, now: Millis, sync: bool) -> Result<(), OutboxError> {
        let jpath = self.dir.join(JOURNAL_FILE);
        let mut line = serde_json::to_vec(&op).map_err(|e| OutboxError::Io {
            path: jpath.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        line.push(b'\n');
        self.ensure_journal(now)?;
        let journal = self.journal()?;
        let before = journal.metadata().map(|m| m.len());
        let written = journal
            .write_all(&line)
            .and_then(|()| if sync { journal.sync_data() } else { Ok(()) });
        if let Err(e) = written {
            // A full disk can take half a line: cut it off, or the next op
            // would be glued to it and both lost at replay.
            if let Ok(len) = before {
                let _ = journal.set_len(len);
            }
            return Err(io_err(&jpath)(e));
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
            Op::Submit {
                at,
                alert,
                to,
                fields,
            } => {
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
                self.alerts
                    .insert(id.clone(), StoredAlert { at, alert, fields });
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
            Op::Requeue {
                at,
                key,
                route,
                alerts,
            } => {
                if self.requeued.iter().any(|(k, _)| *k == key) {
                    return;
                }
                self.requeued.push_back((key.clone(), at));
                if self.find(&key.channel, &key.group).is_some() {
                    return;
                }
                let ids: Vec<String> = alerts.iter().map(|a| a.alert.id.clone()).collect();
                for a in alerts {
                    self.remember(&a.alert.id, at);
                    self.alerts.entry(a.alert.id.clone()).or_insert(a);
                }
                self.pending.push(Pending {
                    channel: key.channel,
                    route,
                    group: key.group,
                    alerts: ids,
                    created: at,
                    send_at: at,
                    closed: true,
                    attempts: 0,
                    next_attempt: at,
                    last_error: None,
                });
            }
            Op::Expedite { channel, group, at } => {
                if let Some(p) = self.find_mut(&channel, &group) {
                    if p.closed {
                        p.next_attempt = p.next_attempt.min(at);
                    } else {
                        p.send_at = p.send_at.min(at);
                    }
                }
            }
        }
    }

    pub(super) fn write_dead_letter(
        &self,
        channel: &str,
        group: &str,
        attempts: u32,
        error: &str,
        reason: &str,
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
        // An action's environment (the firing line's fields) is not in the
        // alert's JSON: kept beside it, so a requeued run gets it again.
        let fields: BTreeMap<&str, &BTreeMap<String, String>> = p
            .alerts
            .iter()
            .filter_map(|id| self.alerts.get(id))
            .filter(|s| !s.fields.is_empty())
            .map(|s| (s.alert.id.as_str(), &s.fields))
            .collect();
        let mut entry = serde_json::json!({
            "ts": format_ts(now),
            "channel": channel,
            "group": group,
            "entered": format_ts(p.created),
            "attempts": attempts,
            "reason": reason,
            "error": error,
            "alerts": alerts,
        });
        if !fields.is_empty() {
            entry["fields"] = serde_json::json!(fields);
        }
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
