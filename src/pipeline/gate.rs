//! The live gate of `approval_bypass` (SPEC §8): the engine is pure and
//! judges on event time; live, a pending call also waits for
//! `approvals.log` to move past its deadline or for `grace` of wall-clock
//! time since it was read. This is the only place that clock is read.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::event::Millis;

/// When a pending `approval_bypass` call may be judged live: once
/// `approvals.log` has yielded a line past its deadline, or `grace` of
/// wall-clock time has passed since the call was read. So approvals
/// written a moment after a line stamped minutes ahead are still in time.
#[derive(Debug)]
pub(super) struct BypassGate {
    /// Highest ts of an approval read so far.
    pub(super) approvals_seen: Millis,
    /// (when read, lowest call ts of that read) for reads younger than
    /// `grace`, as a monotonic queue: lowest ts ascending from the front,
    /// so the front is the lowest ts still within its grace.
    calls: VecDeque<(Instant, Millis)>,
}

impl BypassGate {
    pub(super) fn new() -> BypassGate {
        BypassGate {
            approvals_seen: Millis::MIN,
            calls: VecDeque::new(),
        }
    }

    /// Notes calls read at `at`, the lowest of them stamped `lowest`.
    pub(super) fn calls_read(&mut self, at: Instant, lowest: Millis) {
        while self.calls.back().is_some_and(|b| b.1 >= lowest) {
            self.calls.pop_back();
        }
        self.calls.push_back((at, lowest));
    }

    /// Deadlines below this may be judged.
    pub(super) fn horizon(&mut self, now: Instant, grace: Millis) -> Millis {
        let g = Duration::from_millis(grace.max(0) as u64);
        while self
            .calls
            .front()
            .is_some_and(|c| now.saturating_duration_since(c.0) >= g)
        {
            self.calls.pop_front();
        }
        let wall = self
            .calls
            .front()
            .map_or(Millis::MAX, |c| c.1.saturating_add(grace));
        self.approvals_seen.max(wall)
    }
}
