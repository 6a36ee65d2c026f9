//! `usage_baseline_spike`: a user's calls in the current UTC hour exceed
//! the mean + `z` (4) × sd of their own past hourly counts, with at least
//! `min_calls` (30) calls this hour and `min_history` (24) past hours. A
//! user ten times busier than their own normal, who never crosses a global
//! rate.
//!
//! Exactly SPEC §3: hour h = floor(ts / 3600 s). Per user the current
//! hour, its count c, and an exponentially weighted mean m and variance v
//! (weight α = `alpha`, 0.1; both 0 at the first call) with n hours folded
//! in. When a call falls in a later hour, the finished hour's count is
//! folded, then a 0 for each empty hour between (at most 168), each as
//! d = x − m; m ← m + α·d; v ← (1 − α)·(v + (α·d)·d); n ← n + 1; then
//! c ← 0. Then c ← c + 1, and the rule fires when n ≥ `min_history`,
//! c ≥ `min_calls` and c > m + z·√v, in IEEE doubles in that order. A call
//! stamped in an earlier hour than the user's current one counts in the
//! current hour. The state is kept until `max_keys` evicts it, never for
//! idleness.

use serde::{Deserialize, Serialize};

use super::{Rule, int};
use crate::alert::Number;
use crate::config::{Config, RuleConfig};
use crate::detect::state::{Cooldown, KeyedState, OptMillis, state_key};
use crate::detect::{AlertDraft, Cx, Stats, describe_key};
use crate::event::{Kind, Millis};

const HOUR: Millis = 3_600_000;
/// Empty hours folded at most between two calls (a week): after that
/// long the mean and variance are near 0 anyway.
const MAX_EMPTY_HOURS: i64 = 168;

#[derive(Debug)]
pub(crate) struct UsageBaselineSpike {
    r: RuleConfig,
}

impl Rule for UsageBaselineSpike {
    const INPUTS: &'static [Kind] = &[Kind::ToolCall];
    const ADVICE: &'static str = "The user is far busier than their own normal: look at which tools the calls of \
         this hour went to and whether the user (or a script with their token) meant to make \
         them.";
    type State = BaselineState;

    fn new(r: RuleConfig, _: &Config) -> Self {
        UsageBaselineSpike { r }
    }

    fn warm(&self, st: &BaselineState, cx: &Cx<'_, '_>) {
        st.users.warm_event(cx.ev, &self.r.key);
    }

    fn process(&self, st: &mut BaselineState, cx: &mut Cx<'_, '_>) {
        let r = &self.r;
        let t = cx.ev.ts;
        let key = state_key(cx.ev, &r.key, cx.key);
        let (entry, touch) = st.users.touch(key, t, None, r.max_keys);
        if touch.evicted {
            Stats::bump(&mut cx.stats.evictions, r.name, 1);
        }
        let u = &mut entry.value;
        u.baseline.call(t, r.alpha);
        let b = &u.baseline;
        if u64::from(b.n) < r.min_history || u64::from(b.c) < r.min_calls {
            return;
        }
        let threshold = b.m + r.z * b.v.sqrt();
        if (b.c as f64) <= threshold {
            return;
        }
        let (c, m, sd, n) = (u64::from(b.c), b.m, b.v.sqrt(), b.n);
        let hour = b.hour.get().unwrap_or(0);
        let verdict = u.cooldown.hit(t, r.realert);
        let (ev, line) = (cx.ev, cx.line);
        cx.raise(r, verdict, |suppressed| {
            let message = format!(
                "{} made {c} tool calls in the hour from {}, above their own baseline of {m:.2} ± {sd:.2} calls an hour over {n} hours (threshold {threshold:.2} = mean + {} × sd)",
                describe_key(&r.key, ev),
                crate::alert::format_ts(hour.saturating_mul(HOUR)),
                r.z,
            );
            AlertDraft {
                value: Some(int(c)),
                threshold: Some(Number::Float(threshold)),
                window: Some(HOUR),
                suppressed,
                message,
            }
            .finish_at(r, ev, line)
        });
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct BaselineState {
    users: KeyedState<UserState>,
}

crate::detect::state::impl_snapshot!(BaselineState { users });

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct UserState {
    baseline: Baseline,
    cooldown: Cooldown,
}

/// One user's hourly baseline, SPEC §3's formula.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Baseline {
    /// The current hour (floor(ts / 1 h)); none before the first call.
    pub(crate) hour: OptMillis,
    /// Calls in the current hour. Counts are `u32` (saturating) and the
    /// hour has no tag, so a user's baseline is 32 bytes, not 48;
    /// checkpoints hold the same bytes (postcard writes both widths as
    /// the same varint).
    pub(crate) c: u32,
    pub(crate) m: f64,
    pub(crate) v: f64,
    /// Hours folded into `m` and `v`.
    pub(crate) n: u32,
}

impl Baseline {
    /// One call at `ts`.
    pub(crate) fn call(&mut self, ts: Millis, alpha: f64) {
        let h = ts.div_euclid(HOUR);
        match self.hour.get() {
            None => self.hour.set(h),
            Some(cur) if h > cur => {
                self.fold(self.c as f64, alpha);
                let empty = (h - cur - 1).min(MAX_EMPTY_HOURS);
                for _ in 0..empty {
                    self.fold(0.0, alpha);
                }
                self.c = 0;
                self.hour.set(h);
            }
            Some(_) => {}
        }
        self.c = self.c.saturating_add(1);
    }

    fn fold(&mut self, x: f64, alpha: f64) {
        let d = x - self.m;
        self.m += alpha * d;
        self.v = (1.0 - alpha) * (self.v + (alpha * d) * d);
        self.n = self.n.saturating_add(1);
    }
}
