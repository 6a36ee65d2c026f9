//! `rapid_tool_usage`: more than `threshold` (10) tool calls by one key
//! (the user) with ts in (t − 60 s, t].

use super::threshold_number;
use super::{Rule, counting};
use crate::config::{Config, RuleConfig};
use crate::detect::{Cx, describe_key, format_window};
use crate::event::Kind;

#[derive(Debug)]
pub(crate) struct RapidToolUsage {
    r: RuleConfig,
}

impl Rule for RapidToolUsage {
    const INPUTS: &'static [Kind] = &[Kind::ToolCall];
    const ADVICE: &'static str = "Check whether this user's agent is looping or scripted: review the calls in \
         tool-usage.log around the evidence line, and consider rate limiting the user or \
         revoking the token if the calls are not theirs.";
    type State = counting::State;

    fn new(r: RuleConfig, _: &Config) -> Self {
        RapidToolUsage { r }
    }

    fn warm(&self, st: &counting::State, cx: &Cx<'_, '_>) {
        counting::warm(&self.r, st, cx);
    }

    fn process(&self, st: &mut counting::State, cx: &mut Cx<'_, '_>) {
        let r = &self.r;
        counting::process(r, st, cx, |count, cx| {
            format!(
                "{} made {count} tool calls in {} (threshold {})",
                describe_key(&r.key, cx.ev),
                format_window(r.window),
                threshold_number(r.threshold)
            )
        });
    }
}
