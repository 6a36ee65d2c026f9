//! The rules of SPEC §3: one type per rule, each in its own file, all
//! listed once in the rule catalog ([`crate::catalog`]). A rule type
//! carries how its rule detects — the kinds of event it reads, its state,
//! its code and what to advise when it fires; the catalog entry carries
//! what configuration must know without that code (name, settings,
//! switches). From that one list `config` writes [`RuleName`] and its
//! tables, and the `registry!` macro here the engine's slots and state and
//! the dispatch.
//!
//! # Adding a rule
//!
//! 1. Write `src/detect/rules/<name>.rs`: a `//!` paragraph saying when it
//!    fires (the SPEC sentence), a type `impl Rule` with `INPUTS`,
//!    `ADVICE`, its `State` (`Default` = nothing seen yet; everything in
//!    it is checkpointed), `new` (settings → ready-to-run rule, once) and
//!    `process` (plus `judge_due` if it decides on the passing of event
//!    time rather than on an event). Tests go in the same file. Add
//!    `mod <name>;` below.
//! 2. Add its entry to the catalog (`src/catalog.rs`) at its place in
//!    SPEC §3's tables (the order alerts of one event come out in): module
//!    and type, the settings its file may set, `needs_policy` (it judges
//!    calls by their policy class, so it stays off without one) and
//!    `anomaly` (`monitoring.anomalyDetection: false` turns it off).
//! 3. Ship `rules/<name>.toml`: the documented defaults (every key its
//!    file may set, explained), embedded at build time and parsed as the
//!    built-in rule; a unit test checks the file is there.
//!
//! That is all: `check`, routes' `rules = [...]`, the rules directory, the
//! metrics and the email advice learn the rule from the catalog. Only a
//! setting of a *new kind* (a key no rule has yet) also needs a
//! [`Setting`](crate::config::Setting) variant, a [`RuleConfig`] field and
//! its parser in `config/rules.rs`; a new [`Kind`] of event, an arm in the
//! generated dispatch (`registry.rs`). The engine file keeps each rule's
//! state under its name, so files written before a rule was added still
//! load (the new rule starts empty; see `registry.rs`).
//!
//! Rules are pure (STYLE principle 1): they see the event, event time and
//! the engine's counters through `Cx`, never a clock or a file. A rule
//! that judges a call by its tool's policy class reads `cx.tool` (looked
//! up once per call for all rules) and is `needs_policy` in the catalog.

#[macro_use]
mod registry;

mod approval_bypass;
mod audit_silence;
mod counting;
mod disabled_tool;
mod error_spike;
mod exfil_sequence;
mod high_denial_rate;
mod new_tool_usage;
mod rapid_tool_usage;
mod rate_limit_exceeded;
mod server_silence;
mod silence;
mod token_age;
mod token_rotation_due;
mod token_rotation_overdue;
mod token_shared;
mod tool_definition_drift;
mod unusual_hours;
mod usage_baseline_spike;

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::Cx;
use super::state::Snapshot;
use crate::config::{Config, RuleConfig, RuleName};
use crate::event::Kind;

#[cfg(test)]
pub(crate) use usage_baseline_spike::Baseline;

crate::catalog::rule_catalog!(registry);

/// One rule of SPEC §3. The implementing type is the rule as it runs:
/// built once from its validated settings, then called for every event
/// of a kind it reads, with its own slice of the persisted state.
pub(crate) trait Rule: Sized + Debug {
    /// The kinds of event [`Rule::process`] is called for.
    const INPUTS: &'static [Kind];
    /// What an operator should look at when it fires (alert emails).
    const ADVICE: &'static str;

    /// What it remembers across events and restarts. `Default` is the
    /// state before any event; a [`Snapshot`] of it is checkpointed.
    type State: Clone + Debug + Default + Serialize + DeserializeOwned + Snapshot;

    /// The rule as it runs, from its settings and (for the few rules that
    /// need them) the rest of the configuration.
    fn new(r: RuleConfig, config: &Config) -> Self;

    /// One event of a kind in [`Rule::INPUTS`]; alerts go to `cx`.
    fn process(&self, st: &mut Self::State, cx: &mut Cx<'_, '_>);

    /// Starts loading the state [`Rule::process`] will touch for this
    /// event (see `KeyedState::warm`), before any rule runs. Only a hint:
    /// it changes nothing.
    fn warm(&self, _st: &Self::State, _cx: &Cx<'_, '_>) {}

    /// Decides what event time has made due (watermark in `cx`), before
    /// each event is processed and when the live gate moves. Most rules
    /// decide on their events only.
    fn judge_due(&self, _st: &mut Self::State, _cx: &mut Cx<'_, '_>) {}
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_rule_lives_in_the_module_named_after_it() {
        for (rule, module) in MODULES {
            assert_eq!(rule.as_str(), module);
        }
    }

    #[test]
    fn rule_names_are_distinct() {
        let names: BTreeSet<&str> = RuleName::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), RuleName::COUNT);
    }

    #[test]
    fn every_rule_ships_its_rules_file_and_no_file_is_without_a_rule() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let mut shipped = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).expect("rules/ is shipped") {
            let path = entry.expect("readable").path();
            if path.extension().is_some_and(|e| e == "toml") {
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                shipped.insert(stem.to_string());
                let rule = RuleName::parse(stem).expect("a file per registered rule");
                let text = std::fs::read_to_string(&path).expect("UTF-8");
                assert_eq!(
                    text,
                    rule.defaults(),
                    "{stem}: DEFAULTS embeds another file"
                );
            }
        }
        let registered: BTreeSet<String> = RuleName::ALL
            .iter()
            .map(|r| r.as_str().to_string())
            .collect();
        assert_eq!(shipped, registered);
    }

    /// The checkpoint's JSON names each rule's state after the rule, in
    /// registry order (postcard's layout is that order).
    #[test]
    fn checkpointed_state_is_keyed_by_rule_name_in_registry_order() {
        let json = serde_json::to_string(&RulesState::default()).expect("serializes");
        let at: Vec<usize> = (RuleName::ALL.iter())
            .map(|r| {
                json.find(&format!("\"{}\":", r.as_str()))
                    .expect("a field per rule")
            })
            .collect();
        assert!(at.is_sorted(), "{json}");
    }

    /// A checkpoint from before a rule existed loads, that rule empty.
    #[test]
    fn a_json_checkpoint_without_a_rule_loads_with_that_rule_empty() {
        let mut v = serde_json::to_value(RulesState::default()).expect("serializes");
        v.as_object_mut().expect("an object").remove("error_spike");
        let st: RulesState = serde_json::from_value(v).expect("loads");
        assert_eq!(
            serde_json::to_string(&st).ok(),
            serde_json::to_string(&RulesState::default()).ok()
        );
    }

    #[test]
    fn every_rule_reads_some_kind_of_event() {
        for rule in RuleName::ALL {
            assert!(!inputs(rule).is_empty(), "{}", rule.as_str());
        }
    }
}
