//! `exfil_sequence`: per conversation (else user), a call to a `sinks`
//! tool (`*_send`, `*_post`, …) that follows, within `window` (10 min), a
//! call to a `sources` tool (`*_read`, `*_get`, …) on another server —
//! data read in one place and sent to another, the seed's "check for data
//! exfiltration". Neither call may be `denied` or `error` (a missing
//! outcome counts). A call is first judged as a sink, then remembered as a
//! source. The evidence lists the sink call, then the most recent such
//! source call.
//!
//! The key is the first field of the rule's `key` (`conversation_id`, then
//! `user_id`) that the call carries; a call with none is not judged. Each
//! key keeps the latest source call of its two most recently read servers:
//! when a key's calls come in ts order (as merged logs do), that is all it
//! takes to find the most recent source on a server other than any sink's.
//!
//! `sources` and `sinks` entries are globs on the tool name, or
//! `class:<class>` for every tool of that policy class (`class:requires_approval`
//! as a sink: everything a human must approve; nothing while the policy is
//! unknown). Glob results are cached per tool name: matching every call
//! against a dozen globs would cost more than the rest of the rule.

use std::hash::BuildHasher;

use globset::{GlobSet, GlobSetBuilder};
use hashbrown::HashTable;
use serde::{Deserialize, Serialize};

use super::Rule;
use crate::alert::Evidence;
use crate::config::{Config, RuleConfig};
use crate::detect::state::{Cooldown, KeyedState, same_key};
use crate::detect::{AlertDraft, Cx, Stats, format_window, idle_of};
use crate::event::{Field, Kind, Millis, Outcome, Text};
use crate::policy::{ToolClass, compile_glob};

/// Tool names whose roles are cached before the cache is cleared (a flood
/// of distinct tool names must not grow memory without bound).
const ROLE_CACHE_MAX: usize = 65_536;
/// Source calls remembered per key: the latest of each of the two most
/// recent servers (see the module doc for why two suffice).
const SOURCES_PER_KEY: usize = 2;

const SOURCE: u8 = 1;
const SINK: u8 = 2;

#[derive(Debug)]
pub(crate) struct ExfilSequence {
    r: RuleConfig,
    sources: Matcher,
    sinks: Matcher,
}

/// One of `sources` / `sinks`, compiled.
#[derive(Debug, Default)]
struct Matcher {
    globs: GlobSet,
    /// Policy classes named as `class:…`, by [`class_index`].
    classes: [bool; 3],
}

impl Matcher {
    /// From entries `check` has validated (a bad one, impossible there, is
    /// skipped rather than trusted).
    fn new(entries: &[String]) -> Matcher {
        let mut m = Matcher::default();
        let mut b = GlobSetBuilder::new();
        for e in entries {
            match e.strip_prefix("class:") {
                Some(class) => {
                    let names = crate::config::TOOL_CLASSES;
                    if let Some(i) = names.iter().position(|c| *c == class) {
                        m.classes[i] = true;
                    }
                }
                None => {
                    if let Ok(g) = compile_glob(e) {
                        b.add(g);
                    }
                }
            }
        }
        m.globs = b.build().unwrap_or_default();
        m
    }
}

fn class_index(c: ToolClass) -> usize {
    match c {
        ToolClass::AutoApproved => 0,
        ToolClass::RequiresApproval => 1,
        ToolClass::Disabled => 2,
    }
}

impl Rule for ExfilSequence {
    const INPUTS: &'static [Kind] = &[Kind::ToolCall];
    const ADVICE: &'static str = "Data read from one server was sent out through another: open both evidence \
         lines, check what the source call returned and where the sink call sent it, and \
         whether the user asked for it (a prompt injection in the data read is the usual cause).";
    type State = ExfilState;

    fn new(r: RuleConfig, _: &Config) -> Self {
        ExfilSequence {
            sources: Matcher::new(&r.sources),
            sinks: Matcher::new(&r.sinks),
            r,
        }
    }

    fn process(&self, st: &mut ExfilState, cx: &mut Cx<'_, '_>) {
        let ev = cx.ev;
        let tool = ev.key_value(Field::ToolName);
        let mut roles = st.roles.lookup(tool, &self.sources, &self.sinks);
        if let Some(facts) = cx.tool {
            let i = class_index(facts.class);
            roles |= if self.sources.classes[i] { SOURCE } else { 0 };
            roles |= if self.sinks.classes[i] { SINK } else { 0 };
        }
        if roles == 0 {
            return;
        }
        let Some((field, value)) = (self.r.key.iter()).find_map(|f| Some((*f, ev.field(*f)?)))
        else {
            return;
        };
        let ok = !matches!(ev.outcome, Some(Outcome::Denied | Outcome::Error));
        if !ok {
            return;
        }
        let r = &self.r;
        let t = ev.ts;
        // One map for every key field: the field's place, then the value.
        cx.key.clear();
        cx.key.push(char::from(b'0' + field as u8));
        cx.key.push_str(value);
        let idle = idle_of(r);
        let (entry, touch) = st.keys.touch(cx.key, t, idle, r.max_keys);
        if touch.evicted {
            Stats::bump(&mut cx.stats.evictions, r.name, 1);
        }
        let ks = &mut entry.value;
        let server = ev.key_value(Field::ServerName);
        if roles & SINK != 0
            && let Some(src) = (ks.sources.iter())
                .find(|s| s.server != server && s.ts > t - r.window && s.ts <= t)
                .cloned()
        {
            let verdict = ks.cooldown.hit(t, r.realert);
            let line = cx.line;
            cx.raise(r, verdict, |suppressed| {
                let message = format!(
                    "{} {value}: {tool} on server {server} sent data {} after {} on server {} read it (user {})",
                    field.noun(),
                    format_window(t - src.ts),
                    src.tool,
                    src.server,
                    ev.key_value(Field::UserId),
                );
                let draft = AlertDraft {
                    window: Some(r.window),
                    ..AlertDraft::plain(suppressed, message)
                };
                let mut a = draft.finish_keyed(r, &[field], ev, line.file, line.line, line.raw);
                a.evidence.push(Evidence {
                    file: src.file.to_string(),
                    line: src.line,
                    request_id: src.request_id.as_deref().map(str::to_string),
                });
                a
            });
        }
        if roles & SOURCE != 0 {
            remember(
                &mut ks.sources,
                Source {
                    ts: t,
                    server: server.into(),
                    tool: tool.into(),
                    file: cx.line.file.as_ref().into(),
                    line: cx.line.line,
                    request_id: ev.request_id.clone(),
                },
            );
        }
        if let Some(idle) = idle {
            st.keys.expire(cx.watermark, idle);
        }
    }
}

/// Keeps `src` as its server's latest source, most recent first, at most
/// [`SOURCES_PER_KEY`] servers. On equal ts the call processed later is
/// the more recent.
fn remember(sources: &mut Vec<Source>, src: Source) {
    if let Some(i) = sources.iter().position(|s| s.server == src.server) {
        if sources[i].ts > src.ts {
            return;
        }
        sources.remove(i);
    }
    let at = sources.iter().position(|s| s.ts <= src.ts);
    sources.insert(at.unwrap_or(sources.len()), src);
    sources.truncate(SOURCES_PER_KEY);
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct ExfilState {
    keys: KeyedState<KeyState>,
    /// Not state: rebuilt from the settings as calls come.
    #[serde(skip)]
    roles: RoleCache,
}

crate::detect::state::impl_snapshot!(ExfilState { keys; roles });

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct KeyState {
    /// Most recent first (see [`remember`]).
    sources: Vec<Source>,
    cooldown: Cooldown,
}

/// A remembered source call: what the message and the evidence need.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Source {
    ts: Millis,
    server: Text,
    tool: Text,
    file: Text,
    line: u64,
    request_id: Option<Text>,
}

/// Glob roles (`SOURCE | SINK`) per tool name. foldhash, randomly seeded:
/// names come from log lines.
#[derive(Clone, Debug, Default)]
struct RoleCache {
    cache: HashTable<(Text, u64, u8)>,
    hasher: foldhash::fast::RandomState,
}

impl RoleCache {
    fn lookup(&mut self, tool: &str, sources: &Matcher, sinks: &Matcher) -> u8 {
        let hash = self.hasher.hash_one(tool);
        if let Some(&(_, _, roles)) =
            (self.cache).find(hash, |(name, h, _)| *h == hash && same_key(name, tool))
        {
            return roles;
        }
        let mut roles = 0;
        if sources.globs.is_match(tool) {
            roles |= SOURCE;
        }
        if sinks.globs.is_match(tool) {
            roles |= SINK;
        }
        if self.cache.len() >= ROLE_CACHE_MAX {
            self.cache.clear();
        }
        (self.cache).insert_unique(hash, (tool.into(), hash, roles), |e| e.1);
        roles
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(ts: Millis, server: &str) -> Source {
        Source {
            ts,
            server: server.into(),
            tool: "t".into(),
            file: "f".into(),
            line: 1,
            request_id: None,
        }
    }

    fn servers(v: &[Source]) -> Vec<(&str, Millis)> {
        v.iter().map(|s| (s.server.as_str(), s.ts)).collect()
    }

    #[test]
    fn a_key_keeps_the_latest_source_of_its_two_most_recent_servers() {
        let mut v = Vec::new();
        remember(&mut v, src(1, "a"));
        remember(&mut v, src(2, "b"));
        remember(&mut v, src(3, "a"));
        assert_eq!(servers(&v), [("a", 3), ("b", 2)]);
        remember(&mut v, src(4, "c"));
        assert_eq!(servers(&v), [("c", 4), ("a", 3)]);
        // An older call of a known server does not replace its latest.
        remember(&mut v, src(2, "a"));
        assert_eq!(servers(&v), [("c", 4), ("a", 3)]);
        // Equal ts: the call processed later counts as more recent.
        remember(&mut v, src(4, "d"));
        assert_eq!(servers(&v), [("d", 4), ("c", 4)]);
    }
}
