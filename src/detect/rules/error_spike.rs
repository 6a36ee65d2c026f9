//! `error_spike`: more than `threshold` (5) errors for one key (the
//! server) with ts in (t − 5 min, t].

use super::threshold_number;
use super::{Rule, counting};
use crate::config::{Config, RuleConfig};
use crate::detect::{Cx, describe_key, format_window};
use crate::event::Kind;

#[derive(Debug)]
pub(crate) struct ErrorSpike {
    r: RuleConfig,
}

impl Rule for ErrorSpike {
    const INPUTS: &'static [Kind] = &[Kind::Error];
    const ADVICE: &'static str = "Check the MCP server's health and its upstream dependencies; errors.log holds the \
         error types and messages.";
    type State = counting::State;

    fn new(r: RuleConfig, _: &Config) -> Self {
        ErrorSpike { r }
    }

    fn warm(&self, st: &counting::State, cx: &Cx<'_, '_>) {
        counting::warm(&self.r, st, cx);
    }

    fn process(&self, st: &mut counting::State, cx: &mut Cx<'_, '_>) {
        let r = &self.r;
        counting::process(r, st, cx, |count, cx| {
            let latest = match cx.ev.error_type.as_deref() {
                Some(ty) => format!("; latest: {ty}"),
                None => String::new(),
            };
            format!(
                "{} had {count} errors in {} (threshold {}){latest}",
                describe_key(&r.key, cx.ev),
                format_window(r.window),
                threshold_number(r.threshold)
            )
        });
    }
}
