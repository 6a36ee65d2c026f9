//! `disabled_tool`: a call of a tool whose policy class is `disabled`.

use serde::{Deserialize, Serialize};

use crate::config::RuleConfig;
use crate::detect::state::{Cooldown, KeyedState, state_key};
use crate::detect::{AlertDraft, Cx, Stats, idle_of};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    keys: KeyedState<Cooldown>,
}

pub(crate) fn process(r: &RuleConfig, st: &mut State, cx: &mut Cx<'_, '_>) {
    let t = cx.ev.ts;
    state_key(cx.ev, &r.key, cx.key);
    let (entry, touch) = st.keys.touch(cx.key, t, idle_of(r), r.max_keys);
    if touch.evicted {
        Stats::bump(&mut cx.stats.evictions, r.name, 1);
    }
    match entry.value.hit(t, r.realert) {
        Some(suppressed) => {
            let message = format!(
                "user {} called disabled tool {} on server {} (outcome {})",
                cx.ev.key_value(crate::event::Field::UserId),
                cx.ev.key_value(crate::event::Field::ToolName),
                cx.ev.key_value(crate::event::Field::ServerName),
                outcome(cx),
            );
            let alert = AlertDraft {
                value: None,
                threshold: None,
                window: None,
                suppressed,
                message,
            }
            .finish(r, cx.ev, cx.line.file, cx.line.line, cx.line.raw);
            Stats::bump(&mut cx.stats.alerts, r.name, 1);
            cx.out.push(alert);
        }
        None => Stats::bump(&mut cx.stats.suppressed, r.name, 1),
    }
    if let Some(idle) = idle_of(r) {
        st.keys.expire(cx.watermark, idle);
    }
}

pub(crate) fn outcome(cx: &Cx<'_, '_>) -> &'static str {
    match cx.ev.outcome {
        Some(crate::event::Outcome::Success) => "success",
        Some(crate::event::Outcome::Error) => "error",
        Some(crate::event::Outcome::Denied) => "denied",
        None => "not logged",
    }
}
