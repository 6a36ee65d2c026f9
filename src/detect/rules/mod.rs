//! One file per rule of SPEC §3. Each rule is a function of (its settings,
//! its state, the event); [`Rules`] holds the settings and dispatches an
//! event to the rules of its kind in the order of the spec's table.

mod approval_bypass;
mod counting;
mod disabled_tool;
mod error_spike;
mod high_denial_rate;
mod new_tool_usage;
mod rapid_tool_usage;
mod unusual_hours;

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use serde::{Deserialize, Serialize};

use super::Cx;
use crate::config::{Config, RuleConfig, RuleName};
use crate::detect::state::same_key;
use crate::event::{Kind, Text};
use crate::policy::{Policy, ToolClass};

pub(crate) use approval_bypass::BypassState;
pub(crate) use new_tool_usage::NewToolState;

/// Settings of every rule, fixed for the engine's life.
#[derive(Debug)]
pub(crate) struct Rules {
    rapid: Option<RuleConfig>,
    hours: Option<unusual_hours::Hours>,
    denial: Option<RuleConfig>,
    new_tool: Option<new_tool_usage::NewTool>,
    disabled: Option<RuleConfig>,
    bypass: Option<RuleConfig>,
    errors: Option<RuleConfig>,
    timeout_is_denial: bool,
    policy: Option<PolicyCache>,
}

/// The persisted state of every rule.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct RulesState {
    pub(crate) rapid_tool_usage: rapid_tool_usage::State,
    pub(crate) unusual_hours: unusual_hours::State,
    pub(crate) high_denial_rate: high_denial_rate::State,
    pub(crate) new_tool_usage: NewToolState,
    pub(crate) disabled_tool: disabled_tool::State,
    pub(crate) approval_bypass: BypassState,
    pub(crate) error_spike: error_spike::State,
}

/// Number of tool names whose class is cached before the cache is cleared
/// (a flood of distinct tool names must not grow memory without bound).
const CLASS_CACHE_MAX: usize = 65_536;

/// The policy plus a per-tool-name cache of what the engine asks of it
/// (class, named in a `tools` list): glob matching on every call would
/// dominate the engine's cost. foldhash (randomly seeded: names come from
/// log lines) and the state maps' short-key compare: this lookup runs for
/// every call.
#[derive(Debug)]
struct PolicyCache {
    policy: Arc<Policy>,
    /// (name, its hash, class, named).
    cache: HashTable<(Text, u64, ToolClass, bool)>,
    hasher: foldhash::fast::RandomState,
}

impl PolicyCache {
    /// (class, named) of a tool.
    fn lookup(&mut self, tool: &str) -> (ToolClass, bool) {
        let hash = self.hasher.hash_one(tool);
        if let Some(&(_, _, class, named)) =
            (self.cache).find(hash, |(name, h, _, _)| *h == hash && same_key(name, tool))
        {
            return (class, named);
        }
        let (class, named) = (self.policy.classify(tool), self.policy.is_named(tool));
        if self.cache.len() >= CLASS_CACHE_MAX {
            self.cache.clear();
        }
        (self.cache).insert_unique(hash, (tool.into(), hash, class, named), |e| e.1);
        (class, named)
    }
}

impl Rules {
    pub(crate) fn new(config: &Config) -> Rules {
        let on = |name: RuleName| {
            config
                .rule_active(name)
                .then(|| config.rules.get(name).clone())
        };
        let policy = config.policy.clone();
        Rules {
            rapid: on(RuleName::RapidToolUsage),
            hours: on(RuleName::UnusualHours).map(unusual_hours::Hours::new),
            denial: on(RuleName::HighDenialRate),
            new_tool: on(RuleName::NewToolUsage).map(new_tool_usage::NewTool::new),
            disabled: on(RuleName::DisabledTool),
            bypass: on(RuleName::ApprovalBypass),
            errors: on(RuleName::ErrorSpike),
            timeout_is_denial: config.security.timeout_is_denial,
            policy: policy.map(|policy| PolicyCache {
                policy,
                cache: HashTable::new(),
                hasher: Default::default(),
            }),
        }
    }

    #[cfg(test)]
    pub(crate) fn enabled(&self, rule: RuleName) -> bool {
        match rule {
            RuleName::RapidToolUsage => self.rapid.is_some(),
            RuleName::UnusualHours => self.hours.is_some(),
            RuleName::HighDenialRate => self.denial.is_some(),
            RuleName::NewToolUsage => self.new_tool.is_some(),
            RuleName::DisabledTool => self.disabled.is_some(),
            RuleName::ApprovalBypass => self.bypass.is_some(),
            RuleName::ErrorSpike => self.errors.is_some(),
        }
    }

    pub(crate) fn bypass_grace(&self) -> Option<crate::event::Millis> {
        self.bypass.as_ref().map(|r| r.grace)
    }

    /// Judges the pending calls that became due (no event of its own).
    pub(crate) fn judge_due(&mut self, st: &mut RulesState, cx: &mut Cx<'_, '_>) {
        if let Some(r) = &self.bypass {
            approval_bypass::decide_due(r, &mut st.approval_bypass, cx);
        }
    }

    pub(crate) fn process(&mut self, st: &mut RulesState, cx: &mut Cx<'_, '_>) {
        self.judge_due(st, cx);
        match cx.ev.kind {
            Some(Kind::ToolCall) => {
                if let Some(r) = &self.rapid {
                    rapid_tool_usage::process(r, &mut st.rapid_tool_usage, cx);
                }
                if let Some(r) = &self.hours {
                    r.process(&mut st.unusual_hours, cx);
                }
                let (class, named) = match &mut self.policy {
                    Some(p) => {
                        let (c, n) = p.lookup(cx.ev.tool_name.as_deref().unwrap_or("unknown"));
                        (Some(c), n)
                    }
                    None => (None, false),
                };
                if let Some(r) = &self.new_tool {
                    r.process(named, &mut st.new_tool_usage, cx);
                }
                if let (Some(r), Some(ToolClass::Disabled)) = (&self.disabled, class) {
                    disabled_tool::process(r, &mut st.disabled_tool, cx);
                }
                if let (Some(r), Some(ToolClass::RequiresApproval)) = (&self.bypass, class) {
                    approval_bypass::on_call(r, &mut st.approval_bypass, cx);
                }
            }
            Some(Kind::Approval) => {
                if let Some(r) = &self.denial {
                    high_denial_rate::process(
                        r,
                        self.timeout_is_denial,
                        &mut st.high_denial_rate,
                        cx,
                    );
                }
                if let Some(r) = &self.bypass {
                    approval_bypass::on_approval(r, &mut st.approval_bypass, cx);
                }
            }
            Some(Kind::Error) => {
                if let Some(r) = &self.errors {
                    error_spike::process(r, &mut st.error_spike, cx);
                }
            }
            None => {}
        }
    }
}

/// A count as an alert number.
pub(crate) fn int(n: u64) -> crate::alert::Number {
    crate::alert::Number::Int(n)
}

/// A rule threshold as an alert number (integral thresholds print as
/// integers).
pub(crate) fn threshold_number(t: f64) -> crate::alert::Number {
    if t.fract() == 0.0 && (0.0..1e15).contains(&t) {
        crate::alert::Number::Int(t as u64)
    } else {
        crate::alert::Number::Float(t)
    }
}
