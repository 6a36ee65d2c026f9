//! The tool policy of SPEC §2: classify a tool as disabled, requiring
//! approval or auto-approved from `security-config.json`.
//!
//! Precedence: an exact name in a list's `tools` beats any pattern; among
//! matches of equal kind the most restrictive list wins; no match requires
//! approval. The approval mode then overrides everything but `disabled`.
//! [`Policy::classify`] runs once per tool call on the hot path, so it only
//! does set lookups and one compiled [`GlobSet`] match per list, and never
//! allocates.

use std::collections::HashSet;
use std::fmt;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::event::ApprovalMode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ToolClass {
    AutoApproved,
    RequiresApproval,
    Disabled,
}

impl ToolClass {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ToolClass::AutoApproved => "auto_approved",
            ToolClass::RequiresApproval => "requires_approval",
            ToolClass::Disabled => "disabled",
        }
    }
}

impl fmt::Display for ToolClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One of `rules.autoApproved`, `rules.requiresApproval`, `rules.disabled`.
#[derive(Clone, Debug, Default)]
pub(crate) struct ToolList {
    tools: HashSet<Box<str>>,
    /// In file order, as written; `set` holds them compiled, same indices.
    patterns: Vec<String>,
    set: GlobSet,
}

impl ToolList {
    /// Compiles the list; the error names the first bad pattern.
    pub(crate) fn new<T, P>(tools: T, patterns: P) -> Result<ToolList, (String, globset::Error)>
    where
        T: IntoIterator,
        T::Item: Into<String>,
        P: IntoIterator,
        P::Item: Into<String>,
    {
        let patterns: Vec<String> = patterns.into_iter().map(Into::into).collect();
        let mut b = GlobSetBuilder::new();
        for p in &patterns {
            b.add(compile_glob(p).map_err(|e| (p.clone(), e))?);
        }
        let set = b.build().map_err(|e| (String::new(), e))?;
        Ok(ToolList {
            tools: tools
                .into_iter()
                .map(|t| t.into().into_boxed_str())
                .collect(),
            patterns,
            set,
        })
    }

    pub(crate) fn tools(&self) -> impl Iterator<Item = &str> {
        self.tools.iter().map(|t| &**t)
    }

    pub(crate) fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// Compiles one pattern as the policy does: a case-sensitive shell glob on
/// the whole tool name. Exposed so the config loader can point at the exact
/// bad pattern.
pub(crate) fn compile_glob(pattern: &str) -> Result<Glob, globset::Error> {
    globset::GlobBuilder::new(pattern)
        .case_insensitive(false)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
}

/// What decided a tool's class; displays as `tool user_delete`,
/// `pattern admin_*`, `no matching rule` or `approvalMode always_ask`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason<'a> {
    Tool(&'a str),
    Pattern(&'a str),
    NoMatch,
    Mode(ApprovalMode),
}

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Tool(t) => write!(f, "tool {t}"),
            Reason::Pattern(p) => write!(f, "pattern {p}"),
            Reason::NoMatch => f.write_str("no matching rule"),
            Reason::Mode(m) => write!(f, "approvalMode {}", m.as_str()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Policy {
    pub mode: ApprovalMode,
    pub(crate) auto_approved: ToolList,
    pub(crate) requires_approval: ToolList,
    pub(crate) disabled: ToolList,
}

/// What `check` shows of a policy: `approvalMode <mode>; <n> named tools,
/// <m> patterns` (patterns counted over the three lists, as written).
impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let patterns: usize = self.lists().iter().map(|(_, l)| l.patterns().len()).sum();
        write!(
            f,
            "approvalMode {}; {} named tools, {patterns} patterns",
            self.mode.as_str(),
            self.named_tools().len()
        )
    }
}

impl Policy {
    /// A policy with the three lists of `rules` (empty lists where absent).
    pub(crate) fn new(
        mode: ApprovalMode,
        auto_approved: ToolList,
        requires_approval: ToolList,
        disabled: ToolList,
    ) -> Policy {
        Policy {
            mode,
            auto_approved,
            requires_approval,
            disabled,
        }
    }

    /// A policy without fine-grained rules (e.g. a config with only
    /// `approvalMode`).
    pub(crate) fn with_mode(mode: ApprovalMode) -> Policy {
        Policy::new(
            mode,
            ToolList::default(),
            ToolList::default(),
            ToolList::default(),
        )
    }

    /// The lists from the most restrictive down: the order ties are broken in.
    fn lists(&self) -> [(ToolClass, &ToolList); 3] {
        [
            (ToolClass::Disabled, &self.disabled),
            (ToolClass::RequiresApproval, &self.requires_approval),
            (ToolClass::AutoApproved, &self.auto_approved),
        ]
    }

    /// The class of a tool under this policy. Allocation-free.
    pub(crate) fn classify(&self, tool: &str) -> ToolClass {
        let lists = self.lists();
        let rule_class = lists
            .iter()
            .find(|(_, l)| l.tools.contains(tool))
            .or_else(|| lists.iter().find(|(_, l)| l.set.is_match(tool)))
            .map_or(ToolClass::RequiresApproval, |(c, _)| *c);
        self.apply_mode(rule_class)
    }

    fn apply_mode(&self, rule_class: ToolClass) -> ToolClass {
        match (self.mode, rule_class) {
            (_, ToolClass::Disabled) => ToolClass::Disabled,
            (ApprovalMode::AlwaysAsk, _) => ToolClass::RequiresApproval,
            (ApprovalMode::NoApproval, _) => ToolClass::AutoApproved,
            (ApprovalMode::FineGrained, c) => c,
        }
    }

    /// The class and what decided it; allocates only when a pattern decided
    /// (to find which one), so `check` and alert evidence use it, not the
    /// hot path.
    pub fn decide<'a>(&'a self, tool: &'a str) -> (ToolClass, Reason<'a>) {
        let lists = self.lists();
        let (class, reason) =
            if let Some((c, _)) = lists.iter().find(|(_, l)| l.tools.contains(tool)) {
                (*c, Reason::Tool(tool))
            } else if let Some((c, l)) = lists.iter().find(|(_, l)| l.set.is_match(tool)) {
                // The first pattern in file order that matches, for the message.
                let first = l.set.matches(tool).into_iter().min();
                let p = first
                    .and_then(|i| l.patterns.get(i))
                    .map_or("", String::as_str);
                (*c, Reason::Pattern(p))
            } else {
                (ToolClass::RequiresApproval, Reason::NoMatch)
            };
        if class == ToolClass::Disabled || self.mode == ApprovalMode::FineGrained {
            (class, reason)
        } else {
            (self.apply_mode(class), Reason::Mode(self.mode))
        }
    }

    /// The class and the rule that decided it, e.g. `"pattern admin_*"`.
    pub(crate) fn explain(&self, tool: &str) -> (ToolClass, String) {
        let (c, r) = self.decide(tool);
        (c, r.to_string())
    }

    /// Every tool named in any list's `tools` (such a tool is never new).
    pub(crate) fn named_tools(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .lists()
            .iter()
            .flat_map(|(_, l)| l.tools().map(str::to_string))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Whether `tool` is named in any list's `tools` (allocation-free form of
    /// [`Policy::named_tools`] for `new_tool_usage`).
    pub(crate) fn is_named(&self, tool: &str) -> bool {
        self.lists().iter().any(|(_, l)| l.tools.contains(tool))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(tools: &[&str], patterns: &[&str]) -> ToolList {
        ToolList::new(tools.iter().copied(), patterns.iter().copied())
            .unwrap_or_else(|(p, e)| panic!("bad pattern {p}: {e}"))
    }

    /// The seed guide's fine-grained example.
    fn seed(mode: ApprovalMode) -> Policy {
        Policy::new(
            mode,
            list(
                &["weather_get", "calendar_read"],
                &["*_read", "*_get", "*_search"],
            ),
            list(
                &["email_send", "order_process"],
                &["*_send", "*_create", "*_update"],
            ),
            list(&["user_delete", "system_admin"], &["*_delete", "admin_*"]),
        )
    }

    fn ex(p: &Policy, t: &str) -> (ToolClass, String) {
        p.explain(t)
    }

    #[test]
    fn exact_tool_beats_pattern() {
        // `report_delete` would be disabled by `*_delete`, but naming it in
        // autoApproved.tools wins.
        let p = Policy::new(
            ApprovalMode::FineGrained,
            list(&["report_delete"], &[]),
            list(&[], &[]),
            list(&[], &["*_delete"]),
        );
        assert_eq!(
            ex(&p, "report_delete"),
            (ToolClass::AutoApproved, "tool report_delete".into())
        );
        assert_eq!(
            ex(&p, "file_delete"),
            (ToolClass::Disabled, "pattern *_delete".into())
        );
    }

    #[test]
    fn most_restrictive_pattern_wins() {
        let p = seed(ApprovalMode::FineGrained);
        assert_eq!(
            ex(&p, "admin_read"),
            (ToolClass::Disabled, "pattern admin_*".into())
        );
        assert_eq!(p.classify("admin_read"), ToolClass::Disabled);
    }

    #[test]
    fn most_restrictive_exact_tool_wins() {
        let p = Policy::new(
            ApprovalMode::FineGrained,
            list(&["x"], &[]),
            list(&["x"], &[]),
            list(&[], &[]),
        );
        assert_eq!(ex(&p, "x"), (ToolClass::RequiresApproval, "tool x".into()));
    }

    #[test]
    fn unknown_tool_requires_approval() {
        let p = seed(ApprovalMode::FineGrained);
        assert_eq!(
            ex(&p, "frobnicate"),
            (ToolClass::RequiresApproval, "no matching rule".into())
        );
    }

    #[test]
    fn seed_examples_classify() {
        let p = seed(ApprovalMode::FineGrained);
        let cases = [
            ("weather_get", ToolClass::AutoApproved, "tool weather_get"),
            (
                "calendar_read",
                ToolClass::AutoApproved,
                "tool calendar_read",
            ),
            ("docs_search", ToolClass::AutoApproved, "pattern *_search"),
            ("email_send", ToolClass::RequiresApproval, "tool email_send"),
            (
                "ticket_create",
                ToolClass::RequiresApproval,
                "pattern *_create",
            ),
            ("user_delete", ToolClass::Disabled, "tool user_delete"),
            ("system_admin", ToolClass::Disabled, "tool system_admin"),
            ("admin_reset", ToolClass::Disabled, "pattern admin_*"),
        ];
        for (tool, class, why) in cases {
            assert_eq!(ex(&p, tool), (class, why.to_string()), "{tool}");
            assert_eq!(p.classify(tool), class, "{tool}");
        }
    }

    #[test]
    fn patterns_are_case_sensitive_and_whole_name() {
        let p = seed(ApprovalMode::FineGrained);
        assert_eq!(p.classify("Admin_reset"), ToolClass::RequiresApproval);
        assert_eq!(p.classify("DOC_READ"), ToolClass::RequiresApproval);
        assert_eq!(p.classify("x_read_y"), ToolClass::RequiresApproval);
        assert_eq!(p.classify("_read"), ToolClass::AutoApproved);
    }

    #[test]
    fn always_ask_requires_approval_for_all_but_disabled() {
        let p = seed(ApprovalMode::AlwaysAsk);
        assert_eq!(
            ex(&p, "weather_get"),
            (
                ToolClass::RequiresApproval,
                "approvalMode always_ask".into()
            )
        );
        assert_eq!(
            ex(&p, "unknown_tool"),
            (
                ToolClass::RequiresApproval,
                "approvalMode always_ask".into()
            )
        );
        assert_eq!(
            ex(&p, "admin_reset"),
            (ToolClass::Disabled, "pattern admin_*".into())
        );
    }

    #[test]
    fn no_approval_approves_all_but_disabled() {
        let p = seed(ApprovalMode::NoApproval);
        assert_eq!(
            ex(&p, "email_send"),
            (ToolClass::AutoApproved, "approvalMode no_approval".into())
        );
        assert_eq!(
            ex(&p, "unknown_tool"),
            (ToolClass::AutoApproved, "approvalMode no_approval".into())
        );
        assert_eq!(
            ex(&p, "user_delete"),
            (ToolClass::Disabled, "tool user_delete".into())
        );
        assert_eq!(
            Policy::with_mode(ApprovalMode::NoApproval).classify("anything"),
            ToolClass::AutoApproved
        );
    }

    #[test]
    fn named_tools_lists_every_tools_entry_once() {
        let p = seed(ApprovalMode::FineGrained);
        assert_eq!(
            p.named_tools(),
            [
                "calendar_read",
                "email_send",
                "order_process",
                "system_admin",
                "user_delete",
                "weather_get"
            ]
        );
        assert!(p.is_named("email_send"));
        assert!(!p.is_named("admin_reset"));
    }
}
