//! `rules/<rule>.toml`: one file per rule of SPEC §3, and the parsers of
//! every kind of [`Setting`] a rule may take.
//!
//! The shipped `rules/` files are embedded and parsed by the same code as a
//! user's files, so the built-in defaults are exactly the shipped files. A
//! user's file overrides only the keys it sets.

use super::tree::{Ctx, Node, one_of};
use super::{RuleConfig, RuleName, RuleSet, Setting};
use crate::event::{Field, Millis, Severity};

/// The shipped rule files, in [`RuleName::ALL`] order (each rule type
/// embeds its own).
pub(crate) const BUILTIN_RULES: [(RuleName, &str); RuleName::COUNT] = {
    let mut out = [(RuleName::ALL[0], ""); RuleName::COUNT];
    let mut i = 0;
    while i < RuleName::COUNT {
        out[i] = (RuleName::ALL[i], RuleName::ALL[i].defaults());
        i += 1;
    }
    out
};

const COMMON: [&str; 5] = ["enabled", "severity", "key", "realert", "max_keys"];

/// Common settings a rule has no use for, refused rather than ignored:
/// the silences fire once per silence (no cooldown), and `audit_silence`
/// watches the whole log (its key is fixed).
fn unused(rule: RuleName) -> &'static [&'static str] {
    match rule {
        RuleName::ServerSilence => &["realert"],
        RuleName::AuditSilence => &["key", "realert"],
        _ => &[],
    }
}

/// The keys a rule's file may set: the common ones plus its own.
pub(crate) fn allowed_keys(rule: RuleName) -> Vec<&'static str> {
    let mut v: Vec<&str> = (COMMON.iter().copied())
        .filter(|k| !unused(rule).contains(k))
        .collect();
    v.extend(rule.settings().iter().map(|s| s.key()));
    v
}

/// Only a sanity cap: 100 million keys of state is more than any machine
/// this runs beside should hold.
const MAX_KEYS_LIMIT: i64 = 100_000_000;

/// The starting point the embedded files are applied over. Every field
/// the embedded files leave unset keeps these neutral values.
fn blank(name: RuleName) -> RuleConfig {
    RuleConfig {
        name,
        enabled: true,
        severity: Severity::Low,
        key: Vec::new(),
        window: 0,
        threshold: 0.0,
        realert: None,
        max_keys: 1_000_000,
        hours: Vec::new(),
        timezone: chrono_tz::UTC,
        min_decisions: 0,
        grace: 0,
        horizon: 0,
        learning_period: 0,
        seeded: super::Seeded::default(),
        rotation_at: None,
        by: Field::AgentId,
        min_events: 0,
        sources: Vec::new(),
        sinks: Vec::new(),
        max_hashes: 16,
        alpha: 0.1,
        z: 4.0,
        min_calls: 0,
        min_history: 0,
    }
}

/// The built-in rule set, parsed from the embedded files.
pub(crate) fn builtin() -> RuleSet {
    let rules = BUILTIN_RULES
        .iter()
        .map(|(name, text)| {
            let mut r = blank(*name);
            let mut cx = Ctx::new(
                format!("<built-in>/rules/{}.toml", name.as_str()),
                "a table",
            );
            // The embedded files are tested to parse cleanly (see tests), so
            // neither branch below is taken in a released binary.
            if let Ok(root) = super::tree::parse_toml(text) {
                apply(&root, &mut r, &mut cx);
            }
            debug_assert!(cx.errors.is_empty(), "{:?}", cx.errors);
            r
        })
        .collect();
    RuleSet { rules }
}

/// Applies one rule file over `r`; returns whether it set `enabled`
/// explicitly (which `monitoring.anomalyDetection: false` respects).
pub(crate) fn apply(root: &Node, r: &mut RuleConfig, cx: &mut Ctx) -> bool {
    let Some(entries) = cx.obj(root, "(root)") else {
        return false;
    };
    let allowed = allowed_keys(r.name);
    cx.known_keys(entries, "", &allowed);
    let mut explicit_enabled = false;
    let mut rotation_at = None;
    for e in entries {
        let (f, v) = (e.key.as_str(), &e.val);
        if !allowed.contains(&f) {
            continue;
        }
        match f {
            "enabled" => {
                if let Some(b) = cx.bool_(v, f) {
                    r.enabled = b;
                    explicit_enabled = true;
                }
            }
            "severity" => {
                let names: Vec<&str> = Severity::ALL.iter().map(|s| s.as_str()).collect();
                let what = format!("a string: {}", one_of(&names));
                if let Some(s) = cx.str_(v, f, &what) {
                    match Severity::parse(s) {
                        Some(sev) => r.severity = sev,
                        None => cx.err(
                            v.pos,
                            f,
                            format!("unknown value {s:?}; expected {}", one_of(&names)),
                        ),
                    }
                }
            }
            "key" => {
                let names: Vec<&str> = Field::ALL.iter().map(|x| x.as_str()).collect();
                let before = cx.errors.len();
                let items = cx.str_list(v, f, "a field name");
                if cx.errors.len() > before {
                    continue;
                }
                let mut key = Vec::new();
                let mut ok = true;
                for (i, (pos, s)) in items.iter().enumerate() {
                    let field = format!("key[{i}]");
                    match Field::parse(s) {
                        Some(k) if key.contains(&k) => {
                            ok = false;
                            cx.err(*pos, &field, format!("{s:?} is listed twice"));
                        }
                        Some(k) => key.push(k),
                        None => {
                            ok = false;
                            cx.err(
                                *pos,
                                &field,
                                format!("unknown field {s:?}; expected {}", one_of(&names)),
                            );
                        }
                    }
                }
                if ok && key.is_empty() {
                    cx.err(
                        v.pos,
                        f,
                        format!("must name at least one field: {}", one_of(&names)),
                    );
                } else if ok {
                    r.key = key;
                }
            }
            "window" => {
                if let Some(d) = cx.duration(v, f, 1) {
                    r.window = d;
                }
            }
            "threshold" => {
                let t = if r.name.settings().contains(&Setting::Ratio) {
                    cx.num(
                        v,
                        f,
                        0.0,
                        0.999_999,
                        "a denial ratio from 0 up to (not including) 1, such as 0.5",
                    )
                } else {
                    cx.int(v, f, 0, i64::from(u32::MAX), "a whole number of events ≥ 0")
                        .map(|n| n as f64)
                };
                if let Some(t) = t {
                    r.threshold = t;
                }
            }
            "realert" => {
                if matches!(&v.val, super::tree::Val::Str(s) if s == "never") {
                    r.realert = None;
                } else if let Some(d) = cx.duration(v, f, 0) {
                    r.realert = Some(d);
                }
            }
            "max_keys" => {
                if let Some(n) = cx.int(
                    v,
                    f,
                    1,
                    MAX_KEYS_LIMIT,
                    "a whole number from 1 to 100000000",
                ) {
                    r.max_keys = n as usize;
                }
            }
            "hours" => {
                if let Some(items) = cx.arr(v, f) {
                    let mut hours = Vec::new();
                    let mut ok = true;
                    for (i, item) in items.iter().enumerate() {
                        let field = format!("hours[{i}]");
                        match cx.int(item, &field, 0, 23, "an hour from 0 to 23") {
                            Some(h) if hours.contains(&(h as u8)) => {
                                ok = false;
                                cx.err(item.pos, &field, format!("hour {h} is listed twice"));
                            }
                            Some(h) => hours.push(h as u8),
                            None => ok = false,
                        }
                    }
                    if ok {
                        hours.sort_unstable();
                        r.hours = hours;
                    }
                }
            }
            "timezone" => {
                if let Some(s) = cx.str_(v, f, "an IANA time zone name such as \"UTC\"") {
                    match s.parse::<chrono_tz::Tz>() {
                        Ok(tz) => r.timezone = tz,
                        Err(_) => cx.err(
                            v.pos,
                            f,
                            format!(
                                "unknown time zone {s:?}; expected an IANA name such as \"UTC\", \"Europe/Berlin\" or \"America/New_York\""
                            ),
                        ),
                    }
                }
            }
            "min_decisions" => {
                if let Some(n) = cx.int(v, f, 1, i64::from(u32::MAX), "a whole number ≥ 1") {
                    r.min_decisions = n as u64;
                }
            }
            "grace" => {
                if let Some(d) = cx.duration(v, f, 0) {
                    r.grace = d;
                }
            }
            "horizon" => {
                if let Some(d) = cx.duration(v, f, 0) {
                    r.horizon = d;
                }
            }
            "learning_period" => {
                if let Some(d) = cx.duration(v, f, 0) {
                    r.learning_period = d;
                }
            }
            "requests_per_minute" | "burst_limit" => {
                if let Some(n) = cx.int(v, f, 1, SEEDED_RATE_LIMIT, SEEDED_RATE_WHAT) {
                    let n = Some(n as u32);
                    match f {
                        "requests_per_minute" => r.seeded.requests_per_minute = n,
                        _ => r.seeded.burst_limit = n,
                    }
                }
            }
            "by" => {
                let names: Vec<&str> = Field::ALL.iter().map(|x| x.as_str()).collect();
                let what = format!("a field name: {}", one_of(&names));
                if let Some(s) = cx.str_(v, f, &what) {
                    match Field::parse(s) {
                        Some(field) => r.by = field,
                        None => cx.err(
                            v.pos,
                            f,
                            format!("unknown field {s:?}; expected {}", one_of(&names)),
                        ),
                    }
                }
            }
            "interval_days" => {
                rotation_at = rotation_at.or(Some(v.pos));
                if let Some(n) = cx.int(v, f, 1, MAX_DAYS, "a whole number of days from 1 to 36500")
                {
                    r.seeded.interval_days = Some(n as u32);
                }
            }
            "notify_before_days" => {
                rotation_at = Some(v.pos);
                if let Some(n) = cx.int(v, f, 0, MAX_DAYS, "a whole number of days from 0 to 36500")
                {
                    r.seeded.notify_before_days = Some(n as u32);
                }
            }
            "after" => {
                if let Some(d) = cx.duration(v, f, 1) {
                    r.seeded.after = Some(d);
                }
            }
            "min_events" => {
                if let Some(n) = cx.int(v, f, 0, i64::from(u32::MAX), "a whole number ≥ 0") {
                    r.min_events = n as u64;
                }
            }
            "sources" | "sinks" => {
                if let Some(list) = tool_matchers(v, f, cx) {
                    if f == "sources" {
                        r.sources = list;
                    } else {
                        r.sinks = list;
                    }
                }
            }
            "max_hashes" => {
                if let Some(n) = cx.int(v, f, 1, 65_536, "a whole number from 1 to 65536") {
                    r.max_hashes = n as usize;
                }
            }
            "alpha" => {
                let what = "a weight above 0 and at most 1, such as 0.1";
                if let Some(a) = cx.num(v, f, f64::MIN_POSITIVE, 1.0, what) {
                    r.alpha = a;
                }
            }
            "z" => {
                if let Some(z) = cx.num(v, f, 0.0, 1e6, "a number of standard deviations ≥ 0") {
                    r.z = z;
                }
            }
            "min_calls" | "min_history" => {
                let what = "a whole number ≥ 0";
                if let Some(n) = cx.int(v, f, 0, i64::from(u32::MAX), what) {
                    if f == "min_calls" {
                        r.min_calls = n as u64;
                    } else {
                        r.min_history = n as u64;
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(pos) = rotation_at {
        r.rotation_at = Some(pos);
    }
    explicit_enabled
}

/// SPEC §2's `intervalDays` > `notifyBeforeDays` once a rules file set one
/// of them: its values first, then the seed's, then 30 and 7. The error
/// points at the file's `notify_before_days` (else its `interval_days`).
pub(crate) fn check_rotation(r: &RuleConfig, seed: Option<&super::TokenRotation>, cx: &mut Ctx) {
    let Some(pos) = r.rotation_at else {
        return;
    };
    let interval = (r.seeded.interval_days)
        .or(seed.and_then(|s| s.interval_days))
        .unwrap_or(DEFAULT_INTERVAL_DAYS);
    let notify = (r.seeded.notify_before_days)
        .or(seed.and_then(|s| s.notify_before_days))
        .unwrap_or(DEFAULT_NOTIFY_BEFORE_DAYS);
    if notify >= interval {
        let field = if r.seeded.notify_before_days.is_some() {
            "notify_before_days"
        } else {
            "interval_days"
        };
        cx.err(
            pos,
            field,
            format!(
                "notify_before_days ({notify}) must be less than interval_days ({interval}); expected 0 ≤ notify_before_days < interval_days"
            ),
        );
    }
}

/// SPEC §3's defaults of the seed-derived settings.
pub(crate) const DEFAULT_REQUESTS_PER_MINUTE: u32 = 60;
pub(crate) const DEFAULT_BURST_LIMIT: u32 = 10;
pub(crate) const DEFAULT_INTERVAL_DAYS: u32 = 30;
pub(crate) const DEFAULT_NOTIFY_BEFORE_DAYS: u32 = 7;
/// `healthCheckInterval`'s default (seconds) when `monitoring` omits it.
pub(crate) const DEFAULT_HEALTH_CHECK_MS: Millis = 60_000;

/// `requests_per_minute` and `burst_limit` (here and in the seed's
/// `rateLimiting`): SPEC §3 bounds both, so the integer arithmetic of the
/// rate rule (ms × rate) stays far from overflow.
pub(crate) const SEEDED_RATE_LIMIT: i64 = 1_000_000;
pub(crate) const SEEDED_RATE_WHAT: &str = "a whole number from 1 to 1000000";
/// Token rotation days: 100 years at most.
pub(crate) const MAX_DAYS: i64 = 36_500;

/// The policy classes a `sources`/`sinks` entry may name as
/// `class:<name>`.
pub(crate) const TOOL_CLASSES: [&str; 3] = ["auto_approved", "requires_approval", "disabled"];

/// `sources`/`sinks`: a list of tool-name globs (case-sensitive shell
/// globs on the whole name, as the policy's patterns) or `class:<class>`
/// entries; every bad entry is reported. `None` when any is bad.
fn tool_matchers(v: &Node, f: &str, cx: &mut Ctx) -> Option<Vec<String>> {
    let before = cx.errors.len();
    let items = cx.str_list(
        v,
        f,
        "a tool-name glob such as \"*_send\", or \"class:requires_approval\"",
    );
    for (i, (pos, s)) in items.iter().enumerate() {
        let field = format!("{f}[{i}]");
        if let Some(class) = s.strip_prefix("class:") {
            if !TOOL_CLASSES.contains(&class) {
                cx.err(
                    *pos,
                    &field,
                    format!(
                        "unknown policy class {class:?}; expected {}",
                        one_of(&TOOL_CLASSES)
                    ),
                );
            }
        } else if let Err(e) = crate::policy::compile_glob(s) {
            cx.err(*pos, &field, format!("bad glob {s:?}: {}", e.kind()));
        }
    }
    (cx.errors.len() == before).then(|| items.iter().map(|(_, s)| s.to_string()).collect())
}
