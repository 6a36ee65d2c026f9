//! What the report shows beside the rules beyond fixed thresholds: each
//! user's hourly calls (mean and sd, and their busiest hour) and the tools
//! whose definition hash changed. Both are a few numbers per user or per
//! hashed pair, whatever the volume.

use std::collections::HashMap;

use crate::alert::format_ts;
use crate::event::{Event, Field, Millis, Text};
use crate::report::model::{BusiestHour, DriftedTool, DriftedTools, HourlyBaseline, Place};

const HOUR: Millis = 3_600_000;

/// Distinct hashes remembered per pair (as `tool_definition_drift`'s
/// `max_hashes` default); more are counted in `distinct_hashes` as
/// "at least".
const HASHES_PER_PAIR: usize = 16;

/// One user's tool calls by UTC hour, from their first call's hour to
/// their last's. Hours without a call count as 0. A call stamped in an
/// earlier hour than the user's current one (out of order in its file)
/// counts in the current hour.
#[derive(Clone, Copy, Default)]
pub(super) struct UserHours {
    first: Option<i64>,
    current: i64,
    count: u64,
    calls: u64,
    /// Σ count² over the finished hours.
    squares: f64,
    busiest: Option<(i64, u64)>,
}

impl UserHours {
    pub(super) fn call(&mut self, ts: Millis) {
        let h = ts.div_euclid(HOUR);
        match self.first {
            None => {
                self.first = Some(h);
                self.current = h;
            }
            Some(_) if h > self.current => {
                self.finish_hour();
                self.current = h;
                self.count = 0;
            }
            Some(_) => {}
        }
        self.count += 1;
        self.calls += 1;
    }

    fn finish_hour(&mut self) {
        let c = self.count;
        self.squares += (c as f64) * (c as f64);
        if self.busiest.is_none_or(|(_, b)| c > b) {
            self.busiest = Some((self.current, c));
        }
    }

    /// The mean and sd of the hourly counts, and the busiest hour (the
    /// earliest of equals); `None` without a tool call.
    pub(super) fn summary(&self) -> Option<(HourlyBaseline, BusiestHour)> {
        let first = self.first?;
        let mut done = *self;
        done.finish_hour();
        let hours = (self.current - first + 1) as f64;
        let mean = self.calls as f64 / hours;
        let var = (done.squares / hours - mean * mean).max(0.0);
        let (hour, calls) = done.busiest?;
        Some((
            HourlyBaseline {
                hours: hours as u64,
                mean: round2(mean),
                sd: round2(var.sqrt()),
            },
            BusiestHour {
                hour: format_ts(hour * HOUR),
                calls,
            },
        ))
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// One pair's definition hashes.
struct PairHashes {
    first: (Text, Millis),
    /// The hash of the pair's latest call, and when it first appeared
    /// after a change (or at all).
    last: (Text, Millis),
    distinct: Vec<Text>,
    /// Distinct hashes beyond the remembered ones.
    more: u64,
    /// Calls in the period whose hash differed from the previous call's.
    changes: u64,
    last_change: Option<Place>,
}

/// (server, tool).
type PairKey = (Box<str>, Box<str>);

/// The hashes of every (server, tool) whose calls carry a `tool_hash`,
/// capped at `max` pairs.
pub(super) struct Drift {
    pairs: HashMap<PairKey, PairHashes>,
    max: usize,
    overflow: bool,
}

impl Drift {
    pub(super) fn new(max: usize) -> Drift {
        Drift {
            pairs: HashMap::new(),
            max,
            overflow: false,
        }
    }

    /// A call with its hash; `place` is where it was read when the call is
    /// in the period (`None`: older data, read only to know the hash the
    /// pair had before).
    pub(super) fn call(&mut self, ev: &Event, place: Option<Place>) {
        let Some(hash) = ev.tool_hash.as_deref() else {
            return;
        };
        let server = ev.key_value(Field::ServerName);
        let tool = ev.key_value(Field::ToolName);
        let key = (Box::from(server), Box::from(tool));
        if !self.pairs.contains_key(&key) {
            if self.pairs.len() >= self.max {
                self.overflow = true;
                return;
            }
            let h: Text = hash.into();
            self.pairs.insert(
                key,
                PairHashes {
                    first: (h.clone(), ev.ts),
                    last: (h.clone(), ev.ts),
                    distinct: vec![h],
                    more: 0,
                    changes: 0,
                    last_change: None,
                },
            );
            return;
        }
        let Some(p) = self.pairs.get_mut(&key) else {
            return;
        };
        if p.last.0 == hash {
            return;
        }
        p.last = (hash.into(), ev.ts);
        if !p.distinct.iter().any(|d| d == hash) {
            if p.distinct.len() < HASHES_PER_PAIR {
                p.distinct.push(hash.into());
            } else {
                p.more += 1;
            }
        }
        if let Some(place) = place {
            p.changes += 1;
            p.last_change = Some(place);
        }
    }

    /// The pairs that changed in the period, sorted by server then tool,
    /// at most `max_listed` listed.
    pub(super) fn finish(&self, max_listed: usize) -> DriftedTools {
        let mut changed: Vec<(&PairKey, &PairHashes)> =
            self.pairs.iter().filter(|(_, p)| p.changes > 0).collect();
        changed.sort_by(|a, b| a.0.cmp(b.0));
        DriftedTools {
            total: changed.len() as u64,
            listed: (changed.iter().take(max_listed))
                .map(|((server, tool), p)| DriftedTool {
                    server: server.to_string(),
                    tool: tool.to_string(),
                    first_hash: p.first.0.to_string(),
                    first_seen: format_ts(p.first.1),
                    last_hash: p.last.0.to_string(),
                    last_changed: format_ts(p.last.1),
                    changes: p.changes,
                    distinct_hashes: p.distinct.len() as u64 + p.more,
                    evidence: p.last_change.clone(),
                })
                .collect(),
            approximate: self.overflow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hourly_mean_and_sd_count_the_empty_hours_between() {
        let mut u = UserHours::default();
        // Hours 0 (3 calls), 1 (none), 2 (1 call), 3 (2 calls).
        for ts in [0, 10, 20, 2 * HOUR, 3 * HOUR, 3 * HOUR + 5] {
            u.call(ts);
        }
        let (b, busiest) = u.summary().expect("calls");
        assert_eq!(b.hours, 4);
        assert_eq!(b.mean, 1.5);
        // Population sd of [3, 0, 1, 2]: sqrt(1.25).
        assert_eq!(b.sd, 1.12);
        assert_eq!(busiest.hour, "1970-01-01T00:00:00.000Z");
        assert_eq!(busiest.calls, 3);
        assert!(UserHours::default().summary().is_none());
    }
}
