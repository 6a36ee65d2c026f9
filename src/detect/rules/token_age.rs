//! The shared shape of the two token-rotation rules
//! (`token_rotation_due`, `token_rotation_overdue`): a token's age counts
//! from the first call seen with its `token_id`, kept (with the seen set)
//! across restarts until `max_keys` evicts it, so it is a lower bound —
//! logs pruned by retention are not seen. A call without `token_id` is
//! ignored. The rule fires when the age is more than `days` days.

use serde::{Deserialize, Serialize};

use super::int;
use crate::config::RuleConfig;
use crate::detect::state::{Cooldown, KeyedState, OptMillis, state_key};
use crate::detect::{AlertDraft, Cx, Stats};
use crate::event::Millis;

pub(crate) const DAY: Millis = 86_400_000;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct State {
    tokens: KeyedState<TokenAge>,
}

crate::detect::state::impl_snapshot!(State { tokens });

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct TokenAge {
    /// Event time of the first call seen with the token.
    first: OptMillis,
    cooldown: Cooldown,
}

/// Warms the call's token (see `Rule::warm`).
pub(crate) fn warm(r: &RuleConfig, st: &State, cx: &Cx<'_, '_>) {
    if cx.ev.token_id.is_some() {
        st.tokens.warm_event(cx.ev, &r.key);
    }
}

/// Notes the call's token; when it is more than `days` old, raises the
/// alert (through the rule's cooldown) with the message `message(age
/// in whole days)` writes.
pub(crate) fn process(
    r: &RuleConfig,
    days: u32,
    st: &mut State,
    cx: &mut Cx<'_, '_>,
    message: impl FnOnce(&str, u64) -> String,
) {
    let Some(token) = cx.ev.token_id.as_deref() else {
        return;
    };
    let t = cx.ev.ts;
    let key = state_key(cx.ev, &r.key, cx.key);
    let (entry, touch) = st.tokens.touch(key, t, None, r.max_keys);
    if touch.evicted {
        Stats::bump(&mut cx.stats.evictions, r.name, 1);
    }
    let a = &mut entry.value;
    // Input is merged in ts order, but a late line (live, NATS) may be
    // older than the first sight: the age is from the earliest call seen.
    let first = a.first.get().map_or(t, |f| f.min(t));
    a.first.set(first);
    let age = t.saturating_sub(first);
    if age <= i64::from(days) * DAY {
        return;
    }
    let verdict = a.cooldown.hit(t, r.realert);
    let whole_days = (age / DAY) as u64;
    let message = message(token, whole_days);
    let (ev, line) = (cx.ev, cx.line);
    cx.raise(r, verdict, |suppressed| {
        AlertDraft {
            value: Some(int(whole_days)),
            threshold: Some(int(u64::from(days))),
            window: None,
            suppressed,
            message,
        }
        .finish_at(r, ev, line)
    });
}
