//! The `registry!` macro: from the one list of rule types in
//! [`super`] it writes everything that used to be kept by hand in step
//! with that list — the [`RuleName`](super::RuleName) enum and its
//! tables (name, shipped defaults, settings, inputs, advice), the
//! [`Rules`](super::Rules) struct with one slot per rule, the persisted
//! [`RulesState`](super::RulesState) with one field per rule, and the
//! per-event dispatch.
//!
//! Dispatch is static: for each event kind the macro writes the list of
//! rules in registry order, and [`reads`] of a rule's constant `INPUTS`
//! against a constant kind folds away at compile time, so an event costs
//! one `match` on its kind plus one `Option` test per rule that reads
//! that kind — no virtual call per rule per event.
//!
//! Field names of `Rules` and `RulesState` are the rule modules' names
//! (which are the rule names), so the checkpoint's JSON keys are the rule
//! names. Adding a rule adds a field at its place: a JSON checkpoint
//! written before still loads (`#[serde(default)]`: the new rule starts
//! empty), and so does the engine file, which keeps each rule's postcard
//! bytes under its name (`RulesState::to_parts`/`from_parts`).

/// Whether a rule whose inputs are `inputs` reads events of `kind`. A
/// `const fn` so that, with both arguments constant, the test disappears.
#[inline(always)]
pub(crate) const fn reads(inputs: &[crate::event::Kind], kind: crate::event::Kind) -> bool {
    let mut i = 0;
    while i < inputs.len() {
        if inputs[i] as u8 == kind as u8 {
            return true;
        }
        i += 1;
    }
    false
}

/// Runs one rule on one event when it is on and reads the event's kind.
#[inline(always)]
pub(crate) fn step<R: super::Rule>(
    rule: &Option<R>,
    st: &mut R::State,
    cx: &mut crate::detect::Cx<'_, '_>,
    kind: crate::event::Kind,
) {
    if reads(R::INPUTS, kind)
        && let Some(r) = rule
    {
        r.process(st, cx);
    }
}

/// Writes the registry's types from `module::Type` entries; see the
/// module doc. Each `module` must be the rule's name (`Type::NAME`); a
/// unit test checks it.
macro_rules! registry {
    ($($module:ident :: $Type:ident),+ $(,)?) => {
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

            /// The name in rule files, alerts, routes and metrics.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(RuleName::$Type => <$module::$Type as Rule>::NAME),+
                }
            }

            pub(crate) fn parse(s: &str) -> Option<RuleName> {
                RuleName::ALL.into_iter().find(|r| r.as_str() == s)
            }

            /// The shipped `rules/<name>.toml` (the built-in defaults).
            pub(crate) const fn defaults(self) -> &'static str {
                match self {
                    $(RuleName::$Type => <$module::$Type as Rule>::DEFAULTS),+
                }
            }

            /// The event kinds it reads (for tests: the engine dispatches by
            /// each rule type's `INPUTS`).
            #[cfg(test)]
            pub(crate) const fn inputs(self) -> &'static [Kind] {
                match self {
                    $(RuleName::$Type => <$module::$Type as Rule>::INPUTS),+
                }
            }

            /// The keys of its rules file beyond the common ones.
            pub(crate) const fn settings(self) -> &'static [Setting] {
                match self {
                    $(RuleName::$Type => <$module::$Type as Rule>::SETTINGS),+
                }
            }

            /// Whether it stays off while the tool policy is unknown.
            pub(crate) const fn needs_policy(self) -> bool {
                match self {
                    $(RuleName::$Type => <$module::$Type as Rule>::NEEDS_POLICY),+
                }
            }

            /// Whether `monitoring.anomalyDetection: false` turns it off.
            pub(crate) const fn anomaly(self) -> bool {
                match self {
                    $(RuleName::$Type => <$module::$Type as Rule>::ANOMALY),+
                }
            }

            /// What an operator should look at when it fires.
            pub(crate) const fn advice(self) -> &'static str {
                match self {
                    $(RuleName::$Type => <$module::$Type as Rule>::ADVICE),+
                }
            }
        }

        /// Every rule that is on, built from the configuration once for
        /// the engine's life; `None` where a rule is off.
        #[derive(Debug)]
        pub(crate) struct Rules {
            $(pub(crate) $module: Option<$module::$Type>,)+
        }

        /// The persisted state of every rule (checkpointed with the
        /// engine, as JSON and postcard: field names and order matter).
        #[derive(Clone, Debug, Default, Serialize, Deserialize)]
        #[serde(default)]
        pub(crate) struct RulesState {
            $(pub(crate) $module: <$module::$Type as Rule>::State,)+
        }

        impl RulesState {
            /// Each rule's state as (its name, its postcard bytes), for the
            /// engine file: rules added or removed since do not stop a
            /// restart (see [`RulesState::from_parts`]).
            pub(crate) fn to_parts(&self) -> Result<Vec<(String, Vec<u8>)>, postcard::Error> {
                Ok(vec![$(
                    (
                        <$module::$Type as Rule>::NAME.to_string(),
                        postcard::to_stdvec(&self.$module)?,
                    ),
                )+])
            }

            /// Forgets one rule's state (a reload changed what it means).
            pub(crate) fn reset(&mut self, rule: RuleName) {
                match rule {
                    $(RuleName::$Type => self.$module = Default::default()),+
                }
            }

            /// The state [`RulesState::to_parts`] wrote: a rule that has
            /// no part (added since) starts empty; a part of no rule
            /// (removed since) is dropped.
            pub(crate) fn from_parts(parts: Vec<(String, Vec<u8>)>) -> Result<RulesState, postcard::Error> {
                let mut st = RulesState::default();
                for (name, bytes) in parts {
                    $(
                        if name == <$module::$Type as Rule>::NAME {
                            st.$module = postcard::from_bytes(&bytes)?;
                            continue;
                        }
                    )+
                }
                Ok(st)
            }
        }

        impl Rules {
            pub(crate) fn new(config: &Config) -> Rules {
                Rules {
                    $($module: config.rule_active(RuleName::$Type).then(|| {
                        <$module::$Type as Rule>::new(
                            config.rules.get(RuleName::$Type).clone(),
                            config,
                        )
                    }),)+
                }
            }

            #[cfg(test)]
            pub(crate) fn enabled(&self, rule: RuleName) -> bool {
                match rule {
                    $(RuleName::$Type => self.$module.is_some()),+
                }
            }

            /// Judges what became due by event time (no event of its
            /// own): before every event, and on the live tick.
            pub(crate) fn judge_due(&self, st: &mut RulesState, cx: &mut Cx<'_, '_>) {
                $(if let Some(r) = &self.$module {
                    r.judge_due(&mut st.$module, cx);
                })+
            }

            /// One event: what became due first, then each rule that
            /// reads the event's kind, in registry order.
            pub(crate) fn process(&self, st: &mut RulesState, cx: &mut Cx<'_, '_>) {
                self.judge_due(st, cx);
                match cx.ev.kind {
                    Some(Kind::ToolCall) => {
                        $(registry::step(&self.$module, &mut st.$module, cx, Kind::ToolCall);)+
                    }
                    Some(Kind::Approval) => {
                        $(registry::step(&self.$module, &mut st.$module, cx, Kind::Approval);)+
                    }
                    Some(Kind::Error) => {
                        $(registry::step(&self.$module, &mut st.$module, cx, Kind::Error);)+
                    }
                    None => {}
                }
            }
        }

        /// The module each rule lives in, for the test that module, rule
        /// and file names agree.
        #[cfg(test)]
        const MODULES: [(RuleName, &str); RuleName::COUNT] =
            [$((RuleName::$Type, stringify!($module))),+];
    };
}
