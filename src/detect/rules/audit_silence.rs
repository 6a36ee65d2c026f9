//! `audit_silence`: as `server_silence`, over all tool calls (key `{"log":
//! "tool-usage.log"}`): the watermark passes the last call + `after` while
//! the hour ending at that call held at least `min_events` (60) calls. Live
//! it also fires by the wall clock: `after` after the last call was read
//! with no call read since (the read time is part of the checkpointed
//! state). Once per silence (SPEC §3); see [`super::silence`].

use super::Rule;
use super::silence::{Silence, SilenceKey, State};
use crate::config::{Config, RuleConfig};
use crate::detect::Cx;
use crate::event::Kind;

#[derive(Debug)]
pub(crate) struct AuditSilence(Silence);

impl Rule for AuditSilence {
    const INPUTS: &'static [Kind] = &[Kind::ToolCall];
    const ADVICE: &'static str = "tool-usage.log stopped growing after steady traffic: check that the agents \
         still run and still write their audit log (a full disk, a broken logger, a stopped platform).";
    type State = State;

    fn new(r: RuleConfig, _: &Config) -> Self {
        AuditSilence(Silence {
            after: r.seeded.after.unwrap_or(600_000).max(1),
            key: SilenceKey::Log("tool-usage.log"),
            by_read_time: true,
            r,
        })
    }

    fn process(&self, st: &mut State, cx: &mut Cx<'_, '_>) {
        self.0.on_call(st, cx);
    }

    fn judge_due(&self, st: &mut State, cx: &mut Cx<'_, '_>) {
        self.0.judge(st, cx);
    }
}
