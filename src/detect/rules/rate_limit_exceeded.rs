//! `rate_limit_exceeded`: a call that finds its user's token bucket empty
//! (SPEC §3). The bucket holds `burst_limit` (b) tokens, refills at
//! `requests_per_minute` (r) per 60 s and is full at the user's first
//! call; only a call that finds a whole token takes one.
//!
//! Exact: this is the generic cell rate algorithm (virtual scheduling)
//! with emission interval T = 60 s / r and tolerance τ = (b − 1) × T, all
//! in milliseconds × r, so T is 60 000 and no rounding decides a
//! boundary. A call at t conforms when t·r ≥ TAT − τ (TAT, the theoretical
//! arrival time, starts at the first call), and then TAT = max(t·r, TAT) + T.

use serde::{Deserialize, Serialize};

use super::{Rule, int};
use crate::config::{Config, RuleConfig};
use crate::detect::state::{Cooldown, KeyedState, OptMillis, Window, state_key};
use crate::detect::{AlertDraft, Cx, Stats, describe_key, format_window};
use crate::event::{Kind, Millis};

/// `value` counts the user's calls in this window (SPEC §3).
const VALUE_WINDOW: Millis = 60_000;
/// T in ms × r: 60 s / r, scaled by r.
const EMISSION: i128 = 60_000;

#[derive(Debug)]
pub(crate) struct RateLimitExceeded {
    r: RuleConfig,
    /// r: requests per minute.
    rate: i128,
    /// τ in ms × r.
    tolerance: i128,
    burst: u32,
    /// How long a user's state matters after their last call: the bucket
    /// is full again within b × T, and the value window and the realert
    /// clock need theirs.
    idle: Millis,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct RateState {
    users: KeyedState<Bucket>,
}

crate::detect::state::impl_snapshot!(RateState { users });

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Bucket {
    /// Theoretical arrival time in ms × r; `None` before the first call.
    /// Computed in `i128`, kept in `i64` (half the bytes a user, and the
    /// same checkpoint bytes: postcard writes both as zigzag varints):
    /// ts × r fits until the year 2262 at the largest r `check` accepts.
    tat: OptMillis,
    calls: Window,
    cooldown: Cooldown,
}

impl Rule for RateLimitExceeded {
    const INPUTS: &'static [Kind] = &[Kind::ToolCall];
    const ADVICE: &'static str = "The user called tools faster than rateLimiting allows: check whether the \
         agent is looping or the account is scripted, and whether the platform's rate limit is enforced.";
    type State = RateState;

    fn new(r: RuleConfig, _: &Config) -> Self {
        let rate = r.seeded.requests_per_minute.unwrap_or(60).max(1);
        let burst = r.seeded.burst_limit.unwrap_or(10).max(1);
        // b × T in ms, rounded up: after that long the bucket is full.
        let refill = (i64::from(burst) * 60_000 + i64::from(rate) - 1) / i64::from(rate);
        let idle = refill
            .max(VALUE_WINDOW)
            .max(r.realert.unwrap_or(Millis::MAX));
        RateLimitExceeded {
            rate: i128::from(rate),
            tolerance: i128::from(burst - 1) * EMISSION,
            burst,
            idle,
            r,
        }
    }

    fn warm(&self, st: &RateState, cx: &Cx<'_, '_>) {
        st.users.warm_event(cx.ev, &self.r.key);
    }

    fn process(&self, st: &mut RateState, cx: &mut Cx<'_, '_>) {
        let r = &self.r;
        let t = cx.ev.ts;
        let key = state_key(cx.ev, &r.key, cx.key);
        let (entry, touch) = st.users.touch(key, t, Some(self.idle), r.max_keys);
        if touch.evicted {
            Stats::bump(&mut cx.stats.evictions, r.name, 1);
        }
        let b = &mut entry.value;
        b.calls.add(t, 1, 0, VALUE_WINDOW);
        let now = i128::from(t) * self.rate;
        let tat = b.tat.get().map_or(now, i128::from);
        let verdict = if now >= tat - self.tolerance {
            let next = now.max(tat) + EMISSION;
            b.tat.set(i64::try_from(next).unwrap_or(i64::MAX));
            None
        } else {
            Some(b.cooldown.hit(t, r.realert))
        };
        if let Some(verdict) = verdict {
            let (count, _) = b.calls.sums(t, VALUE_WINDOW);
            let (ev, line) = (cx.ev, cx.line);
            let message = format!(
                "{} made {count} tool calls in {} and found the token bucket empty (rateLimiting: {} per minute, burst {})",
                describe_key(&r.key, ev),
                format_window(VALUE_WINDOW),
                self.rate,
                self.burst
            );
            cx.raise(r, verdict, |suppressed| {
                AlertDraft {
                    value: Some(int(count)),
                    threshold: Some(int(self.rate as u64)),
                    window: Some(VALUE_WINDOW),
                    suppressed,
                    message,
                }
                .finish_at(r, ev, line)
            });
        }
        st.users.expire(cx.watermark, self.idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bucket as checkpoints before `tat` shrank to `i64` wrote it.
    #[derive(Serialize)]
    struct Before {
        tat: Option<i128>,
        calls: Window,
        cooldown: Cooldown,
    }

    #[test]
    fn a_bucket_checkpointed_with_an_i128_tat_reads_back_the_same() {
        let tat = 1_795_442_639_000_i128 * 60 + 60_000;
        let old = postcard::to_allocvec(&Before {
            tat: Some(tat),
            calls: Window::default(),
            cooldown: Cooldown::default(),
        })
        .unwrap();
        let b: Bucket = postcard::from_bytes(&old).unwrap();
        assert_eq!(b.tat.get().map(i128::from), Some(tat));
        assert_eq!(postcard::to_allocvec(&b).unwrap(), old);
    }
}
