//! `new_tool_usage`: a (server, tool) pair never seen before. Tools named in
//! any of the policy's `tools` lists are documented, so never new; pairs
//! first seen within `learning_period` of the first event are learned
//! silently. The seen set is part of the persisted state, capped by
//! `max_keys` (the least recently seen pair is evicted, and may alert again).

use serde::{Deserialize, Serialize};

use super::Rule;
use crate::config::{Config, RuleConfig};
use crate::detect::state::{KeyedState, state_key};
use crate::detect::{AlertDraft, Cx, Stats, describe_key};
use crate::event::Kind;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct NewToolState {
    seen: KeyedState<()>,
}

crate::detect::state::impl_snapshot!(NewToolState { seen });

#[derive(Debug)]
pub(crate) struct NewToolUsage {
    r: RuleConfig,
}

impl Rule for NewToolUsage {
    const INPUTS: &'static [Kind] = &[Kind::ToolCall];
    const ADVICE: &'static str = "Confirm this server and tool were added on purpose, and check their policy class \
         with `mcpwatch check --tool NAME`; list the tool in security-config.json.";
    type State = NewToolState;

    fn new(r: RuleConfig, _: &Config) -> Self {
        NewToolUsage { r }
    }

    fn process(&self, st: &mut NewToolState, cx: &mut Cx<'_, '_>) {
        let r = &self.r;
        // Named in the policy's `tools` lists: documented, so never new.
        if cx.tool.is_some_and(|p| p.named) {
            return;
        }
        let key = state_key(cx.ev, &r.key, cx.key);
        let (_, touch) = st.seen.touch(key, cx.ev.ts, None, r.max_keys);
        if touch.evicted {
            Stats::bump(&mut cx.stats.evictions, r.name, 1);
        }
        if !touch.inserted {
            return;
        }
        if cx.ev.ts < cx.first_ts.saturating_add(r.learning_period) {
            return;
        }
        let message = format!(
            "first use of {} (not named in the approval policy){}",
            describe_key(&r.key, cx.ev),
            match cx.ev.user_id.as_deref() {
                Some(u) => format!(", by user {u}"),
                None => String::new(),
            }
        );
        let (ev, line) = (cx.ev, cx.line);
        cx.raise(r, Some(0), |suppressed| {
            AlertDraft::plain(suppressed, message).finish_at(r, ev, line)
        });
    }
}
