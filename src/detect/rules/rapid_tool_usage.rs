//! `rapid_tool_usage`: more than `threshold` (10) tool calls by one key
//! (the user) with ts in (t − 60 s, t].

use super::counting;
use super::threshold_number;
use crate::config::RuleConfig;
use crate::detect::{Cx, describe_key, format_window};

pub(crate) type State = counting::State;

pub(crate) fn process(r: &RuleConfig, st: &mut State, cx: &mut Cx<'_, '_>) {
    counting::process(r, st, cx, |count, cx| {
        format!(
            "{} made {count} tool calls in {} (threshold {})",
            describe_key(&r.key, cx.ev),
            format_window(r.window),
            threshold_number(r.threshold)
        )
    });
}
