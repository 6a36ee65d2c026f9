//! `tool_definition_drift`: a call whose `tool_hash` (the digest of the
//! tool's definition as the agent saw it) differs from every hash seen
//! before for its (server, tool) — a "rug pull": a tool that changes what
//! it does after it was approved. The first hash of a pair is learned
//! silently; each hash new to its pair alerts once (realert does not
//! apply); calls without a hash are not judged. The message names the
//! hash of the pair's most recent call before this one, and says so when
//! the policy auto-approves the tool: then the new definition runs with
//! nobody looking.
//!
//! A pair keeps at most `max_hashes` (16) hashes; when full, the one seen
//! longest ago is evicted and counted (it would alert again if it came
//! back). The pairs persist across restarts and are dropped only by
//! `max_keys` (least recently seen first), never for idleness.

use serde::{Deserialize, Serialize};

use super::Rule;
use crate::config::{Config, RuleConfig};
use crate::detect::state::{KeyedState, state_key};
use crate::detect::{AlertDraft, Cx, Stats, describe_key};
use crate::event::{Kind, Millis, Text};
use crate::policy::ToolClass;

#[derive(Debug)]
pub(crate) struct ToolDefinitionDrift {
    r: RuleConfig,
}

impl Rule for ToolDefinitionDrift {
    const INPUTS: &'static [Kind] = &[Kind::ToolCall];
    const ADVICE: &'static str = "The tool's definition changed after it was in use: compare the new definition \
         with the one that was reviewed (ask the MCP server's owner what changed and why), and \
         move the tool to requiresApproval or disabled until it is reviewed again.";
    type State = DriftState;

    fn new(r: RuleConfig, _: &Config) -> Self {
        ToolDefinitionDrift { r }
    }

    fn process(&self, st: &mut DriftState, cx: &mut Cx<'_, '_>) {
        let Some(hash) = cx.ev.tool_hash.as_deref() else {
            return;
        };
        let r = &self.r;
        let t = cx.ev.ts;
        let key = state_key(cx.ev, &r.key, cx.key);
        let (entry, touch) = st.pairs.touch(key, t, None, r.max_keys);
        if touch.evicted {
            Stats::bump(&mut cx.stats.evictions, r.name, 1);
        }
        let seen = &mut entry.value.seen;
        // The usual call: the same hash as the pair's previous call.
        if seen.last().is_some_and(|s| s.hash == hash) {
            return;
        }
        if let Some(i) = seen.iter().position(|s| s.hash == hash) {
            let s = seen.remove(i);
            seen.push(s);
            return;
        }
        let previous = seen.last().cloned();
        if seen.len() >= r.max_hashes.max(1) {
            seen.remove(0);
            Stats::bump(&mut cx.stats.evictions, r.name, 1);
        }
        seen.push(Seen {
            hash: hash.into(),
            first_seen: t,
        });
        // The pair's first hash: learned silently.
        let Some(previous) = previous else {
            return;
        };
        let note = match cx.tool.map(|f| f.class) {
            Some(ToolClass::AutoApproved) => {
                "; the policy auto-approves this tool, so its new definition runs without \
                 anyone approving it: review it before it is called again"
            }
            Some(ToolClass::RequiresApproval) => "; the policy requires approval for its calls",
            Some(ToolClass::Disabled) => "; the policy disables this tool",
            None => "",
        };
        let message = format!(
            "{} changed its definition: hash {hash} replaces {} (the hash of its previous call, first seen {}){note}",
            describe_key(&r.key, cx.ev),
            previous.hash,
            crate::alert::format_ts(previous.first_seen),
        );
        let (ev, line) = (cx.ev, cx.line);
        cx.raise(r, Some(0), |suppressed| {
            AlertDraft::plain(suppressed, message).finish_at(r, ev, line)
        });
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct DriftState {
    pairs: KeyedState<Hashes>,
}

crate::detect::state::impl_snapshot!(DriftState { pairs });

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Hashes {
    /// Least recently seen first: the last is the hash of the pair's most
    /// recent call.
    seen: Vec<Seen>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Seen {
    hash: Text,
    /// Event time of the first call with this hash.
    first_seen: Millis,
}
