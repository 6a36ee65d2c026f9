//! The `registry!` macro: from the rule catalog ([`crate::catalog`]) it
//! writes everything of the engine that used to be kept by hand in step
//! with the list of rules — the [`Rules`](super::Rules) struct with one
//! slot per rule, the persisted [`RulesState`](super::RulesState) with one
//! field per rule, each rule's advice and inputs, and the per-event
//! dispatch. ([`RuleName`](crate::config::RuleName) and its tables are
//! written by `config` from the same list.)
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

/// Warms one rule's state for one event (see [`super::Rule::warm`]) when
/// it is on and reads the event's kind.
#[inline(always)]
pub(crate) fn warm<R: super::Rule>(
    rule: &Option<R>,
    st: &R::State,
    cx: &crate::detect::Cx<'_, '_>,
    kind: crate::event::Kind,
) {
    if reads(R::INPUTS, kind)
        && let Some(r) = rule
    {
        r.warm(st, cx);
    }
}

/// Writes the engine's types from the catalog's `module::Type { … }`
/// entries (the metadata in braces is `config`'s); see the module doc.
/// Each `module` is the rule's name; a unit test checks it.
macro_rules! registry {
    ($($module:ident :: $Type:ident { $($meta:tt)* }),+ $(,)?) => {
        /// What an operator should look at when `rule` fires (alert
        /// emails).
        pub(crate) const fn advice(rule: RuleName) -> &'static str {
            match rule {
                $(RuleName::$Type => <$module::$Type as Rule>::ADVICE),+
            }
        }

        /// The event kinds a rule reads (for tests: the engine dispatches
        /// by each rule type's `INPUTS`).
        #[cfg(test)]
        pub(crate) const fn inputs(rule: RuleName) -> &'static [Kind] {
            match rule {
                $(RuleName::$Type => <$module::$Type as Rule>::INPUTS),+
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
                        RuleName::$Type.as_str().to_string(),
                        postcard::to_stdvec(&self.$module)?,
                    ),
                )+])
            }

            /// Every rule's state as it is now, for a checkpoint (see
            /// [`Snapshot`]).
            pub(crate) fn snapshot(&mut self) -> RulesState {
                RulesState {
                    $($module: Snapshot::snapshot(&mut self.$module),)+
                }
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
                        if name == RuleName::$Type.as_str() {
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
                match cx.ev.kind {
                    Some(Kind::ToolCall) => {
                        $(registry::warm(&self.$module, &st.$module, cx, Kind::ToolCall);)+
                    }
                    Some(Kind::Approval) => {
                        $(registry::warm(&self.$module, &st.$module, cx, Kind::Approval);)+
                    }
                    Some(Kind::Error) => {
                        $(registry::warm(&self.$module, &st.$module, cx, Kind::Error);)+
                    }
                    None => {}
                }
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
