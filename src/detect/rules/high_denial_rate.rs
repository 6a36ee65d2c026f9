//! `high_denial_rate`: over the key's decisions with ts in (t − 1 h, t], at
//! least `min_decisions` and denials / decisions > `threshold`. Evaluated
//! at every approval event, whatever its decision; `timeout` counts as a
//! denial when `fallbackOnTimeout` is `deny`.

use serde::{Deserialize, Serialize};

use super::{Rule, threshold_number};
use crate::alert::Number;
use crate::config::{Config, RuleConfig};
use crate::detect::state::{Cooldown, KeyedState, Window, state_key};
use crate::detect::{AlertDraft, Cx, Stats, describe_key, format_window, idle_of};
use crate::event::{Decision, Kind};

#[derive(Debug)]
pub(crate) struct HighDenialRate {
    r: RuleConfig,
    /// `fallbackOnTimeout: deny` (the default): a timeout is a denial.
    timeout_is_denial: bool,
}

impl Rule for HighDenialRate {
    const INPUTS: &'static [Kind] = &[Kind::Approval];
    const ADVICE: &'static str = "Review the denied requests in approvals.log: repeated denials can mean an agent \
         probing for tools it should not use, or a prompt injection pushing it to.";
    type State = State;

    fn new(r: RuleConfig, config: &Config) -> Self {
        HighDenialRate {
            r,
            timeout_is_denial: config.security.timeout_is_denial,
        }
    }

    fn warm(&self, st: &State, cx: &Cx<'_, '_>) {
        st.keys.warm_event(cx.ev, &self.r.key);
    }

    fn process(&self, st: &mut State, cx: &mut Cx<'_, '_>) {
        process(&self.r, self.timeout_is_denial, st, cx);
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct State {
    keys: KeyedState<KeyState>,
}

crate::detect::state::impl_snapshot!(State { keys });

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct KeyState {
    /// a = decisions, b = denials.
    window: Window,
    cooldown: Cooldown,
}

fn process(r: &RuleConfig, timeout_is_denial: bool, st: &mut State, cx: &mut Cx<'_, '_>) {
    let t = cx.ev.ts;
    let idle = idle_of(r);
    let (decided, denied) = match cx.ev.decision {
        Some(Decision::Approve) => (1, 0),
        Some(Decision::Deny) => (1, 1),
        Some(Decision::Timeout) => (1, u32::from(timeout_is_denial)),
        None => (0, 0),
    };
    let key = state_key(cx.ev, &r.key, cx.key);
    let (entry, touch) = st.keys.touch(key, t, idle, r.max_keys);
    if touch.evicted {
        Stats::bump(&mut cx.stats.evictions, r.name, 1);
    }
    let ks = &mut entry.value;
    ks.window.add(t, decided, denied, r.window);
    let (decisions, denials) = ks.window.sums(t, r.window);
    // Division is correctly rounded, so a ratio exactly equal to a decimal
    // threshold compares equal (3/6 is exactly 0.5: no alert).
    let ratio = if decisions == 0 {
        0.0
    } else {
        denials as f64 / decisions as f64
    };
    if decisions >= r.min_decisions && ratio > r.threshold {
        let verdict = ks.cooldown.hit(t, r.realert);
        let (ev, line) = (cx.ev, cx.line);
        cx.raise(r, verdict, |suppressed| {
            let rounded = (ratio * 10_000.0).round() / 10_000.0;
            let message = format!(
                "{} had {denials} of {decisions} approval decisions denied in {} (ratio {rounded} > {})",
                describe_key(&r.key, ev),
                format_window(r.window),
                threshold_number(r.threshold)
            );
            AlertDraft {
                value: Some(Number::Float(rounded)),
                threshold: Some(Number::Float(r.threshold)),
                window: Some(r.window),
                suppressed,
                message,
            }
            .finish_at(r, ev, line)
        });
    }
    if let Some(idle) = idle {
        st.keys.expire(cx.watermark, idle);
    }
}
