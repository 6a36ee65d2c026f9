//! When the outbox sends what: alerts join groups on submit, a channel's
//! next attempt waits for its group's `send_at`, its retry time and
//! `max_per_hour`, and a failure is retried with [`Backoff`] until
//! `max_age`, then dead-lettered.
//!
//! Every durable change goes through the journal (`journal.rs`); this file
//! decides which change to make, and keeps the per-channel health that
//! lives in memory only. Time is an argument throughout.

use super::journal::{DoneResult, Op, Slot};
use super::{
    Failure, HOUR, Job, MAX_GROUP_ALERTS, MAX_PENDING_ALERTS, Next, Outbox, OutboxError, Pending,
    Submitted,
};
use crate::alert::Alert;
use crate::alert::router::{ACTION_ROUTE, Placement};
use crate::event::Millis;

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
    pub(crate) fn delay(&self, attempts: u32) -> Millis {
        let shift = attempts.saturating_sub(1).min(30);
        let full = self
            .base
            .max(1)
            .saturating_mul(1 << shift)
            .min(self.max.max(1));
        full - fastrand::i64(0..=full / 2)
    }
}

impl Pending {
    pub(super) fn due(&self) -> Millis {
        if self.closed {
            self.next_attempt
        } else {
            self.send_at
        }
    }
}

impl Outbox {
    /// Places `alert` into the groups of `placements`, durably (fsynced)
    /// before returning. An id already known is not added twice.
    pub(crate) fn submit(
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
    pub(crate) fn submit_batch(
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
                // An action's group holds one alert: it runs once per alert.
                let joinable = p.route != ACTION_ROUTE;
                match self.pending.iter().find(|g| {
                    joinable
                        && g.channel == p.channel
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
                fields: super::journal::to_stored(&alert.line_fields),
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
    pub(crate) fn next(
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
            group: group.clone(),
            alerts: p
                .alerts
                .iter()
                .filter_map(|id| self.alerts.get(id).map(|s| s.full()))
                .collect(),
            attempts: p.attempts,
        }))
    }
    /// The channel took the group.
    pub(crate) fn delivered(
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
    pub(crate) fn failed(
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
        let reason = if expired { "max_age" } else { "permanent" };
        self.write_dead_letter(channel, group, attempts, error, reason, now)?;
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
}
