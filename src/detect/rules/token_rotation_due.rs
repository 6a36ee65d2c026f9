//! `token_rotation_due`: the token was first seen more than
//! `interval_days − notify_before_days` (30 − 7 = 23) days before this
//! call; once per token (SPEC §3, switched on by the seed's
//! `authentication.tokenRotation`).

use super::{Rule, token_age};
use crate::config::{Config, RuleConfig};
use crate::event::Kind;

#[derive(Debug)]
pub(crate) struct TokenRotationDue {
    r: RuleConfig,
    interval: u32,
    /// interval − notify: the age in days past which rotation is due.
    days: u32,
}

impl Rule for TokenRotationDue {
    const INPUTS: &'static [Kind] = &[Kind::ToolCall];
    const ADVICE: &'static str = "The token reaches its rotation interval soon: schedule its rotation \
         (authentication.tokenRotation) before it becomes overdue.";
    type State = token_age::State;

    fn new(r: RuleConfig, _: &Config) -> Self {
        let interval = r.seeded.interval_days.unwrap_or(30);
        let notify = r.seeded.notify_before_days.unwrap_or(7);
        TokenRotationDue {
            interval,
            days: interval.saturating_sub(notify),
            r,
        }
    }

    fn warm(&self, st: &token_age::State, cx: &crate::detect::Cx<'_, '_>) {
        token_age::warm(&self.r, st, cx);
    }

    fn process(&self, st: &mut token_age::State, cx: &mut crate::detect::Cx<'_, '_>) {
        let interval = self.interval;
        token_age::process(&self.r, self.days, st, cx, |token, age| {
            format!(
                "token {token} was first seen {age} days ago; rotation is due (interval {interval} days, notice {} days before)",
                interval - self.days
            )
        });
    }
}
