//! The shared shape of the two counting rules (`rapid_tool_usage`,
//! `error_spike`): more than `threshold` events for one key with ts in
//! (t − window, t], then the realert cooldown.

use serde::{Deserialize, Serialize};

use super::{int, threshold_number};
use crate::config::RuleConfig;
use crate::detect::state::{Cooldown, KeyedState, Window, state_key};
use crate::detect::{AlertDraft, Cx, Stats, idle_of};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct State {
    keys: KeyedState<KeyState>,
}

crate::detect::state::impl_snapshot!(State { keys });

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct KeyState {
    window: Window,
    cooldown: Cooldown,
}

/// Warms the event's key (see `Rule::warm`).
pub(crate) fn warm(r: &RuleConfig, st: &State, cx: &Cx<'_, '_>) {
    st.keys.warm_event(cx.ev, &r.key);
}

/// Counts the event; on a hit that passes the cooldown, raises an alert
/// whose message `message(count)` writes.
pub(crate) fn process(
    r: &RuleConfig,
    st: &mut State,
    cx: &mut Cx<'_, '_>,
    message: impl FnOnce(u64, &Cx<'_, '_>) -> String,
) {
    let t = cx.ev.ts;
    let idle = idle_of(r);
    let key = state_key(cx.ev, &r.key, cx.key);
    let (entry, touch) = st.keys.touch(key, t, idle, r.max_keys);
    let ks = &mut entry.value;
    ks.window.add(t, 1, 0, r.window);
    let (count, _) = ks.window.sums(t, r.window);
    let verdict = ((count as f64) > r.threshold).then(|| ks.cooldown.hit(t, r.realert));
    if touch.evicted {
        Stats::bump(&mut cx.stats.evictions, r.name, 1);
    }
    if let Some(verdict) = verdict {
        let (ev, line) = (cx.ev, cx.line);
        let msg = message(count, cx);
        cx.raise(r, verdict, |suppressed| {
            AlertDraft {
                value: Some(int(count)),
                threshold: Some(threshold_number(r.threshold)),
                window: Some(r.window),
                suppressed,
                message: msg,
            }
            .finish_at(r, ev, line)
        });
    }
    if let Some(idle) = idle {
        st.keys.expire(cx.watermark, idle);
    }
}
