//! [`RuleName`] and what configuration knows of each rule, written from
//! the rule catalog ([`crate::catalog`]): names, shipped defaults, the
//! settings a rules file may set and the two switches. Nothing here knows
//! how a rule detects; `detect` builds its engine from the same list.

use super::Setting;

/// Writes [`RuleName`] from the catalog's entries.
macro_rules! rule_names {
    ($($module:ident :: $Type:ident {
        settings: [$($setting:ident),* $(,)?],
        needs_policy: $needs_policy:literal,
        anomaly: $anomaly:literal $(,)?
    }),+ $(,)?) => {
        /// Every rule, in the order of SPEC §3's tables: the order the
        /// engine evaluates them for one event, and `RuleSet`'s index.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum RuleName {
            $($Type),+
        }

        impl RuleName {
            /// How many rules there are.
            pub const COUNT: usize = [$(stringify!($Type)),+].len();

            pub const ALL: [RuleName; RuleName::COUNT] = [$(RuleName::$Type),+];

            /// The name in rule files, alerts, routes and metrics (also the
            /// name of its module in `detect::rules`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(RuleName::$Type => stringify!($module)),+
                }
            }

            pub(crate) fn parse(s: &str) -> Option<RuleName> {
                RuleName::ALL.into_iter().find(|r| r.as_str() == s)
            }

            /// The shipped `rules/<name>.toml`, embedded: the built-in
            /// defaults are exactly what ships, parsed by the code that
            /// reads a user's file.
            pub(crate) const fn defaults(self) -> &'static str {
                match self {
                    $(RuleName::$Type => include_str!(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/rules/",
                        stringify!($module),
                        ".toml"
                    ))),+
                }
            }

            /// The keys of its rules file beyond the common ones
            /// (`enabled`, `severity`, `key`, `realert`, `max_keys`), in
            /// the order the error for an unknown key lists them.
            pub(crate) const fn settings(self) -> &'static [Setting] {
                match self {
                    $(RuleName::$Type => &[$(Setting::$setting),*]),+
                }
            }

            /// Whether it stays off while the tool policy is unknown (it
            /// judges calls by their policy class).
            pub(crate) const fn needs_policy(self) -> bool {
                match self {
                    $(RuleName::$Type => $needs_policy),+
                }
            }

            /// Whether `monitoring.anomalyDetection: false` turns it off
            /// (unless its rules file sets `enabled = true`).
            pub(crate) const fn anomaly(self) -> bool {
                match self {
                    $(RuleName::$Type => $anomaly),+
                }
            }
        }
    };
}

crate::catalog::rule_catalog!(rule_names);
