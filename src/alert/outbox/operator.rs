//! The operator's view of the outbox and hands on it (`mcpwatch outbox`,
//! SPEC §9): what is pending and dead per channel, and putting it back.
//!
//! # Beside a running daemon
//!
//! Two processes must never write one outbox. [`inspect`] only reads
//! (snapshot, journal, dead letters; a line still being appended is not
//! read), so it works while `mcpwatch run` holds the state directory's
//! lock. [`retry`] takes that lock when it is free and applies the request
//! itself; when a daemon holds it, it drops the request as a file into
//! `<state_dir>/outbox/requests/` (written under a dot-name, then renamed:
//! the daemon never sees half a request) and the daemon applies it on its
//! next look ([`REQUESTS_EVERY`]) and then deletes it.
//!
//! # Once, whatever happens
//!
//! Applying a request journals one [`Op::Requeue`] per dead letter, then
//! takes those lines out of `dead-letter.ndjson`, then deletes the request
//! file. A crash between any two steps repeats the request at the next
//! start, and the outbox remembers which dead letters it put back
//! ([`DeadKey`]): the repeat, or a second request for the same dead
//! letter, queues nothing twice.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::dead::{DeadKey, Lines};
use super::journal::Op;
use super::{Backoff, OUTBOX_DIR, Outbox, OutboxError, Pending, io_err};
use crate::alert::format_ts;
use crate::alert::router::{ACTION_ROUTE, DEFAULT_MAX_AGE, DeliveryConfig, Router};
use crate::event::Millis;
use crate::state::{LockError, StateLock};

/// Requests to a running daemon, in [`OUTBOX_DIR`].
pub(crate) const REQUESTS_DIR: &str = "requests";
/// How often a running daemon looks for requests: a retry asked for while
/// it runs is applied within about this long.
pub(crate) const REQUESTS_EVERY: Duration = Duration::from_secs(1);
/// How long `retry` waits for a running daemon to take its request before
/// saying it is still waiting (the request stays for the daemon).
const REQUEST_WAIT: Duration = Duration::from_secs(10);
/// Route label of a requeued group: it is closed, so no alert joins it
/// and the label only tells where it came from.
const REQUEUE_ROUTE: &str = "requeue";

/// One pending delivery or dead letter as the operator sees it (and as
/// `mcpwatch outbox --format json` prints it).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    pub channel: String,
    /// `pending` or `dead`.
    pub state: &'static str,
    /// The group's id (its first alert's id): the `Idempotency-Key`.
    pub group: String,
    /// Ids of the alerts it carries.
    pub alerts: Vec<String>,
    /// Rule and severity of its most severe alert.
    pub rule: String,
    pub severity: String,
    pub attempts: u32,
    /// When it entered the outbox (RFC 3339).
    pub entered: String,
    /// Pending: when it is tried next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<String>,
    /// Dead: when it was given up on, and why (`permanent`, `max_age`,
    /// `channel_removed`, `actions_off`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub died: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The receiver's answer or the failure, as the channel reported it.
    pub last_error: Option<String>,
}

/// A pending group, by its place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingKey {
    pub(crate) channel: String,
    pub(crate) group: String,
}

/// A request file: exactly the entries the operator picked, so a request
/// applied late changes nothing else.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Request {
    #[serde(default)]
    pub(crate) dead: Vec<DeadKey>,
    #[serde(default)]
    pub(crate) pending: Vec<PendingKey>,
}

/// The channels one process can deliver to, for judging requests.
pub(crate) struct Channels {
    delivered: Vec<(String, bool)>,
    gated: Vec<String>,
}

impl Channels {
    pub(crate) fn of(cfg: &DeliveryConfig) -> Channels {
        use crate::alert::router::ChannelDef;
        Channels {
            delivered: Router::new(cfg)
                .channels()
                .iter()
                .map(|c| (c.name().to_string(), matches!(c, ChannelDef::Action(_))))
                .collect(),
            gated: if cfg.run_actions {
                Vec::new()
            } else {
                cfg.actions.iter().map(|a| a.name.clone()).collect()
            },
        }
    }

    /// The route label a group of `channel` gets back, or why it cannot
    /// be put back.
    fn check(&self, channel: &str) -> Result<&'static str, String> {
        if let Some((_, action)) = self.delivered.iter().find(|(n, _)| n == channel) {
            return Ok(if *action { ACTION_ROUTE } else { REQUEUE_ROUTE });
        }
        if self.gated.iter().any(|n| n == channel) {
            return Err(format!(
                "channel {channel:?}: refused while the action does not run \
                 (incidentResponse.autoDisableOnSuspicious is not true)"
            ));
        }
        let names: Vec<&str> = self.delivered.iter().map(|(n, _)| n.as_str()).collect();
        Err(format!(
            "channel {channel:?}: refused while no channel of that name exists (configured: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))
    }
}

/// What applying a request did, per entry: `(channel, from, group)`,
/// `from` being `dead` or `pending`.
pub(crate) type Applied = Vec<(String, &'static str, String)>;

impl Outbox {
    /// Every pending delivery, then every dead letter of `dead`, sorted by
    /// channel (pending first, then oldest first).
    fn entries(&self, dead: &Lines) -> Vec<Entry> {
        let mut out: Vec<Entry> = self.pending.iter().map(|p| self.entry(p)).collect();
        out.extend(dead.letters().map(|d| {
            let top = d.alerts.iter().max_by_key(|a| a.severity);
            Entry {
                channel: d.channel.clone(),
                state: "dead",
                group: d.group.clone(),
                alerts: d.alerts.iter().map(|a| a.id.clone()).collect(),
                rule: top.map(|a| a.rule.clone()).unwrap_or_default(),
                severity: top
                    .map(|a| a.severity.as_str().to_string())
                    .unwrap_or_default(),
                attempts: d.attempts,
                entered: d.entered.clone(),
                next_attempt: None,
                died: Some(d.ts.clone()),
                reason: Some(d.reason.clone()),
                last_error: Some(d.error.clone()),
            }
        }));
        out.sort_by(|a, b| {
            (&a.channel, a.state != "pending", &a.entered).cmp(&(
                &b.channel,
                b.state != "pending",
                &b.entered,
            ))
        });
        out
    }

    fn entry(&self, p: &Pending) -> Entry {
        let alerts: Vec<&crate::alert::Alert> = p
            .alerts
            .iter()
            .filter_map(|id| self.alerts.get(id).map(|s| &s.alert))
            .collect();
        let top = alerts.iter().max_by_key(|a| a.severity);
        Entry {
            channel: p.channel.clone(),
            state: "pending",
            group: p.group.clone(),
            alerts: p.alerts.clone(),
            rule: top.map(|a| a.rule.clone()).unwrap_or_default(),
            severity: top
                .map(|a| a.severity.as_str().to_string())
                .unwrap_or_default(),
            attempts: p.attempts,
            entered: format_ts(p.created),
            next_attempt: Some(format_ts(p.due())),
            died: None,
            reason: None,
            last_error: p.last_error.clone(),
        }
    }

    /// Applies `req`: dead letters go back (each once, with a fresh
    /// `max_age` from `now`), pending groups become due now. Entries that
    /// are gone, or whose channel `channels` cannot deliver to, are
    /// skipped with a warning (a request may be applied long after it was
    /// made, by a daemon with another configuration).
    pub(crate) fn apply_request(
        &mut self,
        req: &Request,
        channels: &Channels,
        now: Millis,
    ) -> Result<Applied, OutboxError> {
        let mut done = Applied::new();
        if !req.dead.is_empty() {
            let path = self.dead_letter.clone();
            let lines = Lines::read(&path).map_err(io_err(&path))?;
            for key in &req.dead {
                if self.requeued.iter().any(|(k, _)| k == key) {
                    continue;
                }
                let Some(letter) = lines.letters().find(|l| l.key() == *key) else {
                    tracing::warn!(
                        "outbox retry: no dead letter of group {} on channel {:?} died at {}; skipped",
                        key.group,
                        key.channel,
                        key.ts
                    );
                    continue;
                };
                let route = match channels.check(&key.channel) {
                    Ok(r) => r,
                    Err(why) => {
                        tracing::warn!("outbox retry: dead letter {}: {why}; skipped", key.group);
                        continue;
                    }
                };
                self.commit(
                    Op::Requeue {
                        at: now,
                        key: key.clone(),
                        route: route.to_string(),
                        alerts: letter.stored(now),
                    },
                    now,
                )?;
                done.push((key.channel.clone(), "dead", key.group.clone()));
            }
            // Durable in the journal first; now out of the dead letters
            // (with any a crash left there after their requeue).
            lines
                .rewrite(&path, |k| self.requeued.iter().any(|(r, _)| r == k))
                .map_err(io_err(&path))?;
        }
        for key in &req.pending {
            if self.find(&key.channel, &key.group).is_none() {
                continue;
            }
            if let Err(why) = channels.check(&key.channel) {
                tracing::warn!("outbox retry: pending {}: {why}; skipped", key.group);
                continue;
            }
            self.commit(
                Op::Expedite {
                    channel: key.channel.clone(),
                    group: key.group.clone(),
                    at: now,
                },
                now,
            )?;
            // The channel's backoff is in memory only: lift it too.
            self.health.remove(&key.channel);
            done.push((key.channel.clone(), "pending", key.group.clone()));
        }
        Ok(done)
    }

    /// Applies every request file waiting in the outbox directory, oldest
    /// first, and deletes each once applied. A file that is not a request
    /// is renamed `<name>.rejected` with a warning (nothing is lost).
    pub(crate) fn take_requests(
        &mut self,
        channels: &Channels,
        now: Millis,
    ) -> Result<Applied, OutboxError> {
        let dir = self.dir.join(REQUESTS_DIR);
        let mut names: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "json")
                        && !p
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Applied::new()),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        names.sort();
        let mut done = Applied::new();
        for path in names {
            let bytes = std::fs::read(&path).map_err(io_err(&path))?;
            match serde_json::from_slice::<Request>(&bytes) {
                Ok(req) => done.extend(self.apply_request(&req, channels, now)?),
                Err(e) => {
                    tracing::warn!(
                        "{}: not an outbox request ({e}); renamed to .rejected",
                        path.display()
                    );
                    let mut to = path.clone().into_os_string();
                    to.push(".rejected");
                    std::fs::rename(&path, &to).map_err(io_err(&path))?;
                    continue;
                }
            }
            std::fs::remove_file(&path).map_err(io_err(&path))?;
        }
        Ok(done)
    }
}

/// The outbox of `state_dir` as it is now, pending deliveries and dead
/// letters per channel, read without writing or locking anything (so
/// beside a running daemon too).
pub fn inspect(state_dir: &Path) -> Result<Vec<Entry>, OutboxError> {
    let ob = Outbox::load_read_only(state_dir)?;
    let path = ob.dead_letter.clone();
    let dead = Lines::read(&path).map_err(io_err(&path))?;
    if dead.unreadable() > 0 {
        tracing::warn!(
            "{}: {} lines are not dead letters; left as they are",
            path.display(),
            dead.unreadable()
        );
    }
    Ok(ob.entries(&dead))
}

/// `mcpwatch outbox retry [--dead] [ID...]`: picks the dead letters (with
/// `dead`) or pending deliveries whose group or alert id is in `ids` (all
/// when empty) and puts them back / makes them due now: here when the
/// state directory's lock is free, else through a request to the daemon
/// holding it. Refused whole ([`OutboxError::Refused`], nothing changed)
/// when an id matches nothing or an entry's channel is not configured.
///
/// Returns the entries picked (as they were) and who applied them: `None`
/// this call (no daemon ran); `Some(true)` the running daemon, which took
/// the request; `Some(false)` nobody yet: the request waits in the state
/// directory for the process holding its lock.
pub fn retry(
    state_dir: &Path,
    cfg: &DeliveryConfig,
    dead: bool,
    ids: &[String],
    now: Millis,
) -> Result<(Vec<Entry>, Option<bool>), OutboxError> {
    let channels = Channels::of(cfg);
    // No state directory: nothing was ever queued (and nothing is made).
    if !state_dir.is_dir() {
        return Ok((select(&[], dead, ids, &channels)?, None));
    }
    match StateLock::acquire(state_dir) {
        Ok(_lock) => {
            // Judged on the outbox as it is, read-only: a refusal writes
            // nothing (not even a compaction).
            let entries = select(&inspect(state_dir)?, dead, ids, &channels)?;
            if entries.is_empty() {
                return Ok((entries, None));
            }
            let max_age = if cfg.max_age > 0 {
                cfg.max_age
            } else {
                DEFAULT_MAX_AGE
            };
            let mut ob = Outbox::open(state_dir, max_age, Backoff::default(), now)?;
            // Requests a daemon left untaken first, as it would have.
            ob.take_requests(&channels, now)?;
            ob.apply_request(&request(&entries), &channels, now)?;
            Ok((entries, None))
        }
        Err(LockError::Held(_)) => {
            let entries = select(&inspect(state_dir)?, dead, ids, &channels)?;
            if entries.is_empty() {
                return Ok((entries, Some(true)));
            }
            let path = write_request(state_dir, &request(&entries), now)?;
            let end = std::time::Instant::now() + REQUEST_WAIT;
            while path.exists() && std::time::Instant::now() < end {
                std::thread::sleep(Duration::from_millis(100));
            }
            let taken = !path.exists();
            Ok((entries, Some(taken)))
        }
        Err(LockError::Io(p, e)) => Err(OutboxError::Io { path: p, source: e }),
    }
}

/// The entries `ids` name (all when empty) among the dead ones (`dead`) or
/// the pending ones, each once; every problem at once, or the selection.
fn select(
    all: &[Entry],
    dead: bool,
    ids: &[String],
    channels: &Channels,
) -> Result<Vec<Entry>, OutboxError> {
    let state = if dead { "dead" } else { "pending" };
    let named = |e: &Entry, id: &str| e.group == id || e.alerts.iter().any(|a| a == id);
    let mut problems = Vec::new();
    let mut picked: Vec<Entry> = Vec::new();
    let mut take = |e: &Entry| {
        if !picked.contains(e) {
            picked.push(e.clone());
        }
    };
    if ids.is_empty() {
        all.iter().filter(|e| e.state == state).for_each(&mut take);
    }
    for id in ids {
        let mut found = false;
        for e in all.iter().filter(|e| e.state == state && named(e, id)) {
            found = true;
            take(e);
        }
        if !found {
            let other = all.iter().any(|e| e.state != state && named(e, id));
            problems.push(match (dead, other) {
                (true, true) => {
                    format!("{id}: not a dead letter but pending (retry it without --dead)")
                }
                (false, true) => {
                    format!("{id}: not pending but a dead letter (retry it with --dead)")
                }
                (true, false) => format!("{id}: no dead letter has this group or alert id"),
                (false, false) => format!("{id}: no pending delivery has this group or alert id"),
            });
        }
    }
    for e in &picked {
        if let Err(why) = channels.check(&e.channel) {
            problems.push(format!("{} {}: {why}", e.state, e.group));
        }
    }
    if problems.is_empty() {
        Ok(picked)
    } else {
        Err(OutboxError::Refused(problems))
    }
}

fn request(entries: &[Entry]) -> Request {
    let mut req = Request::default();
    for e in entries {
        match (e.state, &e.died) {
            ("dead", Some(ts)) => req.dead.push(DeadKey {
                channel: e.channel.clone(),
                group: e.group.clone(),
                ts: ts.clone(),
            }),
            _ => req.pending.push(PendingKey {
                channel: e.channel.clone(),
                group: e.group.clone(),
            }),
        }
    }
    req
}

/// Writes `req` into the requests directory: under a dot-name first, then
/// renamed, so the daemon reads whole requests only. Named by time (the
/// daemon takes them in name order) and process id (unique).
fn write_request(state_dir: &Path, req: &Request, now: Millis) -> Result<PathBuf, OutboxError> {
    let dir = state_dir.join(OUTBOX_DIR).join(REQUESTS_DIR);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let name = format!("{now:015}-{}.json", std::process::id());
    let path = dir.join(&name);
    let bytes = serde_json::to_vec(req).map_err(|e| OutboxError::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(e),
    })?;
    crate::state::write_atomic_mode(&path, &bytes, Some(0o600)).map_err(io_err(&path))?;
    Ok(path)
}

#[cfg(test)]
#[path = "operator_tests.rs"]
mod tests;
