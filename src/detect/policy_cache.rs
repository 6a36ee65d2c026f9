//! The tool policy as the engine asks it, once per tool call: a cache by
//! tool name of what the rules need (class, named in a `tools` list),
//! handed to every rule in [`crate::detect::Cx::tool`]. Glob matching on
//! every call would dominate the engine's cost.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use super::state::same_key;
use crate::event::Text;
use crate::policy::{Policy, ToolClass};

/// Number of tool names whose class is cached before the cache is cleared
/// (a flood of distinct tool names must not grow memory without bound).
const CLASS_CACHE_MAX: usize = 65_536;

/// What the policy says of one tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ToolFacts {
    pub(crate) class: ToolClass,
    /// Named in one of the policy's `tools` lists (documented, so never
    /// a new tool).
    pub(crate) named: bool,
}

/// The policy plus its per-name cache. foldhash (randomly seeded: names
/// come from log lines) and the state maps' short-key compare: this
/// lookup runs for every call.
#[derive(Debug)]
pub(crate) struct PolicyCache {
    policy: Arc<Policy>,
    /// (name, its hash, facts).
    cache: HashTable<(Text, u64, ToolFacts)>,
    hasher: foldhash::fast::RandomState,
}

impl PolicyCache {
    pub(crate) fn new(policy: Arc<Policy>) -> PolicyCache {
        PolicyCache {
            policy,
            cache: HashTable::new(),
            hasher: Default::default(),
        }
    }

    pub(crate) fn lookup(&mut self, tool: &str) -> ToolFacts {
        let hash = self.hasher.hash_one(tool);
        if let Some(&(_, _, facts)) =
            (self.cache).find(hash, |(name, h, _)| *h == hash && same_key(name, tool))
        {
            return facts;
        }
        let facts = ToolFacts {
            class: self.policy.classify(tool),
            named: self.policy.is_named(tool),
        };
        if self.cache.len() >= CLASS_CACHE_MAX {
            self.cache.clear();
        }
        (self.cache).insert_unique(hash, (tool.into(), hash, facts), |e| e.1);
        facts
    }
}
