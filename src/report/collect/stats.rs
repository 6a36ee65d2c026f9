//! The counters a [`Collector`](super::Collector) keeps per server × tool
//! pair and per user, and the [`Caps`] that bound how many it keeps.
//!
//! Each pair's counters turn into its [`ToolRow`] here, so what a row of the
//! report means is read next to what is counted for it.

use std::collections::HashMap;

use hdrhistogram::Histogram;

use crate::alert::format_ts;
use crate::event::Millis;
use crate::report::model::*;

/// Memory caps of one report run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    /// Distinct server × tool pairs with their own row (each holds a
    /// latency histogram of a few KiB: 10,000 pairs stay under ~100 MiB).
    pub max_pairs: usize,
    /// Distinct users with their own row.
    pub max_users: usize,
    /// Entries listed per list (new tools, invocations, bypasses, gaps).
    pub max_listed: usize,
    /// Pairs remembered from data older than the period (for new tools).
    pub max_seen: usize,
    /// Request ids of `--token`'s calls remembered to attribute approvals
    /// and errors without a `token_id`.
    pub max_token_requests: usize,
    /// Distinct `error_type` values per pair before `(other)`.
    pub max_error_types: usize,
    /// Tool names whose policy class is cached.
    pub max_classified: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            max_pairs: 10_000,
            max_users: 100_000,
            max_listed: 10_000,
            max_seen: 1_000_000,
            max_token_requests: 1_000_000,
            max_error_types: 100,
            max_classified: 100_000,
        }
    }
}

const MODES: [&str; 4] = ["always_ask", "fine_grained", "no_approval", "unknown"];
/// Histogram precision: two significant digits (values below 256 are exact).
pub(super) const SIGFIG: u8 = 2;
/// Durations beyond this (about 31 years in ms) are clamped, not recorded raw.
pub(super) const MAX_DURATION_MS: f64 = 1e12;

#[derive(Default)]
pub(super) struct PairStats {
    pub(super) calls: u64,
    pub(super) outcomes: Outcomes,
    /// [mode][approve, deny, timeout]
    pub(super) decisions: [[u64; 3]; 4],
    pub(super) undecided: u64,
    pub(super) errors: u64,
    pub(super) error_types: HashMap<Box<str>, u64>,
    pub(super) hist: Option<Histogram<u64>>,
    pub(super) max_ms: u64,
    /// A call of this pair was already seen in the period.
    pub(super) called: bool,
}

impl PairStats {
    pub(super) fn add_to(&self, agg: &mut PairStats, caps: &Caps) {
        agg.calls += self.calls;
        agg.outcomes.success += self.outcomes.success;
        agg.outcomes.error += self.outcomes.error;
        agg.outcomes.denied += self.outcomes.denied;
        agg.outcomes.unknown += self.outcomes.unknown;
        for (m, row) in self.decisions.iter().enumerate() {
            for (d, n) in row.iter().enumerate() {
                agg.decisions[m][d] += n;
            }
        }
        agg.undecided += self.undecided;
        agg.errors += self.errors;
        for (t, n) in &self.error_types {
            bump_capped(&mut agg.error_types, t, *n, caps.max_error_types);
        }
        if let Some(h) = &self.hist {
            match &mut agg.hist {
                Some(a) => {
                    // Both auto-resize with the same precision: cannot fail.
                    let _ = a.add(h);
                }
                None => agg.hist = Some(h.clone()),
            }
        }
        agg.max_ms = agg.max_ms.max(self.max_ms);
    }

    fn approvals(&self) -> Approvals {
        let mut a = Approvals {
            undecided: self.undecided,
            ..Approvals::default()
        };
        for (m, row) in self.decisions.iter().enumerate() {
            let [ap, de, ti] = *row;
            a.approve += ap;
            a.deny += de;
            a.timeout += ti;
            let n = ap + de + ti;
            if n > 0 {
                a.by_mode.push(ModeDecisions {
                    mode: MODES[m].to_string(),
                    approve: ap,
                    deny: de,
                    timeout: ti,
                    approve_rate: rate(ap, n),
                    deny_rate: rate(de, n),
                    timeout_rate: rate(ti, n),
                });
            }
        }
        a.by_mode.sort_by(|x, y| x.mode.cmp(&y.mode));
        a.decisions = a.approve + a.deny + a.timeout;
        a.approve_rate = rate(a.approve, a.decisions);
        a.deny_rate = rate(a.deny, a.decisions);
        a.timeout_rate = rate(a.timeout, a.decisions);
        a
    }

    fn errors(&self) -> Errors {
        Errors {
            total: self.errors,
            by_type: self
                .error_types
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        }
    }

    fn latency(&self) -> Latency {
        match &self.hist {
            Some(h) if !h.is_empty() => Latency {
                count: h.len(),
                // The histogram answers with the highest value of a
                // bucket, which can be above every value recorded.
                p50: Some(h.value_at_quantile(0.50).min(self.max_ms)),
                p95: Some(h.value_at_quantile(0.95).min(self.max_ms)),
                p99: Some(h.value_at_quantile(0.99).min(self.max_ms)),
                max: Some(self.max_ms),
            },
            _ => Latency::default(),
        }
    }

    pub(super) fn row(&self, server: &str, tool: &str) -> ToolRow {
        ToolRow {
            server: server.to_string(),
            tool: tool.to_string(),
            calls: self.calls,
            outcomes: self.outcomes.clone(),
            approvals: self.approvals(),
            errors: self.errors(),
            latency_ms: self.latency(),
        }
    }
}

pub(super) fn bump_capped(map: &mut HashMap<Box<str>, u64>, key: &str, n: u64, cap: usize) {
    if let Some(v) = map.get_mut(key) {
        *v += n;
    } else if map.len() < cap {
        map.insert(key.into(), n);
    } else {
        *map.entry(OTHER.into()).or_default() += n;
    }
}

/// A ratio rounded to four decimals; `None` without a denominator.
pub(crate) fn rate(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| (n as f64 / d as f64 * 10_000.0).round() / 10_000.0)
}

#[derive(Default)]
pub(super) struct UserStats {
    pub(super) calls: u64,
    pub(super) denied_calls: u64,
    pub(super) approvals: u64,
    pub(super) denials: u64,
    pub(super) timeouts: u64,
    pub(super) errors: u64,
    pub(super) first: Option<Millis>,
    pub(super) last: Option<Millis>,
    pub(super) hours: super::hourly::UserHours,
}

impl UserStats {
    /// The row of one user, with their hourly calls.
    pub(super) fn user_row(&self, user: &str) -> UserRow {
        let (hourly, busiest) = self.hours.summary().unzip();
        UserRow {
            hourly_calls: hourly,
            busiest_hour: busiest,
            ..self.row(user)
        }
    }

    /// The row without hourly figures (the overflow row mixes users).
    pub(super) fn row(&self, user: &str) -> UserRow {
        UserRow {
            user: user.to_string(),
            calls: self.calls,
            denied_calls: self.denied_calls,
            approvals: self.approvals,
            denials: self.denials,
            timeouts: self.timeouts,
            errors: self.errors,
            first_seen: self.first.map(format_ts),
            last_seen: self.last.map(format_ts),
            hourly_calls: None,
            busiest_hour: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_never_exceed_the_largest_latency_recorded() {
        let mut h = Histogram::<u64>::new(2).unwrap();
        for ms in [12_345, 12_345, 12_345] {
            h.record(ms).unwrap();
        }
        assert!(
            h.value_at_quantile(0.5) > 12_345,
            "the bucket's top is above it"
        );
        let p = PairStats {
            hist: Some(h),
            max_ms: 12_345,
            ..PairStats::default()
        };
        let l = p.latency();
        assert_eq!(
            (l.p50, l.p95, l.p99, l.max),
            (Some(12_345), Some(12_345), Some(12_345), Some(12_345))
        );
    }
}
