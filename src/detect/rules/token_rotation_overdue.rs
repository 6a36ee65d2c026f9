//! `token_rotation_overdue`: the token was first seen more than
//! `interval_days` (30) days before this call (SPEC §3, switched on by
//! the seed's `authentication.tokenRotation`); realert 24 h.

use super::{Rule, token_age};
use crate::config::{Config, RuleConfig};
use crate::event::Kind;

#[derive(Debug)]
pub(crate) struct TokenRotationOverdue {
    r: RuleConfig,
    days: u32,
}

impl Rule for TokenRotationOverdue {
    const INPUTS: &'static [Kind] = &[Kind::ToolCall];
    const ADVICE: &'static str = "The token is older than its rotation interval and still in use: rotate \
         it now and find what kept the old one alive.";
    type State = token_age::State;

    fn new(r: RuleConfig, _: &Config) -> Self {
        TokenRotationOverdue {
            days: r.seeded.interval_days.unwrap_or(30),
            r,
        }
    }

    fn warm(&self, st: &token_age::State, cx: &crate::detect::Cx<'_, '_>) {
        token_age::warm(&self.r, st, cx);
    }

    fn process(&self, st: &mut token_age::State, cx: &mut crate::detect::Cx<'_, '_>) {
        let days = self.days;
        token_age::process(&self.r, days, st, cx, |token, age| {
            format!(
                "token {token} was first seen {age} days ago and is still in use; rotation is overdue (interval {days} days)"
            )
        });
    }
}
