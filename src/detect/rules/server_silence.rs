//! `server_silence`: the watermark passes a server's last call + `after`
//! (default 10 × the seed's `monitoring.healthCheckInterval`: 600 s) while
//! the server had at least `min_events` (30) calls in the hour ending at
//! its last call; once per silence, a new call re-arms it (SPEC §3). The
//! shared machinery, and why the firing line is the last call, is in
//! [`super::silence`].

use super::Rule;
use super::silence::{Silence, SilenceKey, State};
use crate::config::{Config, RuleConfig};
use crate::detect::Cx;
use crate::event::Kind;

#[derive(Debug)]
pub(crate) struct ServerSilence(Silence);

impl Rule for ServerSilence {
    const INPUTS: &'static [Kind] = &[Kind::ToolCall];
    const ADVICE: &'static str = "A busy MCP server stopped receiving calls: check that it is up and \
         reachable, and whether agents lost their connection or their token to it.";
    type State = State;

    fn new(r: RuleConfig, _: &Config) -> Self {
        ServerSilence(Silence {
            after: r.seeded.after.unwrap_or(600_000).max(1),
            key: SilenceKey::Fields,
            by_read_time: false,
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
