//! `disabled_tool`: a call of a tool whose policy class is `disabled`.

use serde::{Deserialize, Serialize};

use super::Rule;
use crate::config::{Config, RuleConfig};
use crate::detect::state::{Cooldown, KeyedState, state_key};
use crate::detect::{AlertDraft, Cx, Stats, idle_of};
use crate::event::{Field, Kind};
use crate::policy::ToolClass;

#[derive(Debug)]
pub(crate) struct DisabledTool {
    r: RuleConfig,
}

impl Rule for DisabledTool {
    const INPUTS: &'static [Kind] = &[Kind::ToolCall];
    const ADVICE: &'static str = "A disabled tool ran: find how it was reachable (server config, policy drift), check \
         what the call did, and revoke the token if misuse is suspected.";
    type State = State;

    fn new(r: RuleConfig, _: &Config) -> Self {
        DisabledTool { r }
    }

    fn process(&self, st: &mut State, cx: &mut Cx<'_, '_>) {
        if cx.tool.map(|p| p.class) == Some(ToolClass::Disabled) {
            process(&self.r, st, cx);
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct State {
    keys: KeyedState<Cooldown>,
}

crate::detect::state::impl_snapshot!(State { keys });

fn process(r: &RuleConfig, st: &mut State, cx: &mut Cx<'_, '_>) {
    let t = cx.ev.ts;
    let key = state_key(cx.ev, &r.key, cx.key);
    let (entry, touch) = st.keys.touch(key, t, idle_of(r), r.max_keys);
    if touch.evicted {
        Stats::bump(&mut cx.stats.evictions, r.name, 1);
    }
    let verdict = entry.value.hit(t, r.realert);
    let (ev, line) = (cx.ev, cx.line);
    let outcome = outcome(cx);
    cx.raise(r, verdict, |suppressed| {
        let message = format!(
            "user {} called disabled tool {} on server {} (outcome {outcome})",
            ev.key_value(Field::UserId),
            ev.key_value(Field::ToolName),
            ev.key_value(Field::ServerName),
        );
        AlertDraft::plain(suppressed, message).finish_at(r, ev, line)
    });
    if let Some(idle) = idle_of(r) {
        st.keys.expire(cx.watermark, idle);
    }
}

fn outcome(cx: &Cx<'_, '_>) -> &'static str {
    match cx.ev.outcome {
        Some(crate::event::Outcome::Success) => "success",
        Some(crate::event::Outcome::Error) => "error",
        Some(crate::event::Outcome::Denied) => "denied",
        None => "not logged",
    }
}
