//! Validated configuration: what every stage reads. Loading and validation
//! (with `file:line:col` errors) live beside this file; these types hold
//! only values that already passed validation.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::event::{Field, Millis, Severity};
use crate::policy::Policy;

/// Everything `mcpwatch` knows after loading the four optional sources.
#[derive(Clone, Debug)]
pub struct Config {
    /// The tool policy from `security-config.json`; `None` when no such file
    /// exists (then `disabled_tool` and `approval_bypass` stay off).
    pub policy: Option<Arc<Policy>>,
    pub(crate) security: SecurityExtras,
    pub retention: Retention,
    pub rules: RuleSet,
    pub settings: Settings,
    /// Non-fatal findings for `check` and `run` to print (e.g. critical
    /// notifications configured but no email channel to send them).
    pub warnings: Vec<String>,
    /// Which files were read (for `check`'s summary and `run`'s log).
    pub sources: LoadedSources,
}

/// The files a [`Config`] came from; `None` where the default was used.
#[derive(Clone, Debug, Default)]
pub struct LoadedSources {
    pub config: Option<PathBuf>,
    /// The audit directory's `config.json`, when it exists.
    pub audit_config: Option<PathBuf>,
    pub rules_dir: Option<PathBuf>,
    /// Rules overridden by a file in `rules_dir`.
    pub rule_files: Vec<RuleName>,
    pub settings: Option<PathBuf>,
    /// The audit log directory: `--dir`, else the settings' `input.dir`.
    pub dir: PathBuf,
}

/// What `security-config.json` says beyond the tool policy.
#[derive(Clone, Debug, Default)]
pub(crate) struct SecurityExtras {
    /// `fallbackOnTimeout`: when true (`deny`, the default) an approval
    /// `timeout` counts as a denial in `high_denial_rate`.
    pub(crate) timeout_is_denial: bool,
    /// `monitoring.anomalyDetection`; `false` turns off the four anomaly
    /// rules unless a rules file sets `enabled = true`.
    pub(crate) anomaly_detection: bool,
    pub(crate) notification_emails: Vec<String>,
    pub(crate) escalation_webhook: Option<String>,
    /// `auditLogging.enabled` (or a string such as `"required"`: on).
    pub(crate) audit_logging: bool,
    /// `approvalTimeout` (seconds in the file).
    pub(crate) approval_timeout: Option<Millis>,
    /// `rateLimiting`: switches `rate_limit_exceeded` on (SPEC §3).
    pub(crate) rate_limiting: Option<RateLimiting>,
    /// `incidentResponse.autoDisableOnSuspicious`: only when true do the
    /// `[[actions]]` of mcpwatch.toml run (SPEC §5).
    pub(crate) auto_disable: bool,
    /// `authentication.tokenRotation`: switches the two token-rotation
    /// rules on.
    pub(crate) token_rotation: Option<TokenRotation>,
    /// `monitoring`, when present: switches the two silence rules on.
    pub(crate) monitoring: Option<Monitoring>,
}

/// `authentication.tokenRotation` of `security-config.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TokenRotation {
    /// `enabled` (absent: true).
    pub(crate) enabled: bool,
    pub(crate) interval_days: Option<u32>,
    pub(crate) notify_before_days: Option<u32>,
}

/// `monitoring` of `security-config.json`, as far as the silence rules
/// read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Monitoring {
    /// `enabled` (absent: true).
    pub(crate) enabled: bool,
    /// The silences' `after` from `healthCheckInterval`: 10 × its seconds,
    /// to the millisecond, rounded down (SPEC §3).
    pub(crate) silence_after: Option<Millis>,
}

/// `rateLimiting` of `security-config.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RateLimiting {
    /// `enabled` (absent: true: the section's presence switches the rule on).
    pub(crate) enabled: bool,
    pub(crate) requests_per_minute: Option<u32>,
    pub(crate) burst_limit: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub days: u32,
    pub compress: bool,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            days: 90,
            compress: true,
        }
    }
}

/// The rules of SPEC §3, written from the rule registry
/// (`detect/rules/mod.rs`): a rule's name, defaults and settings belong to
/// its type there.
pub use super::rule_name::RuleName;

/// A rule-specific key of `rules/<rule>.toml`: a rule lists the ones its
/// file may set ([`RuleName::settings`]), `config/rules.rs` reads each
/// into its [`RuleConfig`] field. A rule that needs a kind of setting no
/// rule has yet adds a variant here, a field there and its parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Setting {
    /// `window`: a duration of at least 1 ms.
    Window,
    /// `threshold` as a whole number of events.
    Threshold,
    /// `threshold` as a ratio in [0, 1).
    Ratio,
    /// `min_decisions`.
    MinDecisions,
    /// `hours`: local hours 0..=23.
    Hours,
    /// `timezone`: an IANA name.
    Timezone,
    /// `grace`.
    Grace,
    /// `horizon`.
    Horizon,
    /// `learning_period`.
    LearningPeriod,
    /// `requests_per_minute` (rate_limit_exceeded; seed: `rateLimiting`).
    RequestsPerMinute,
    /// `burst_limit` (rate_limit_exceeded).
    BurstLimit,
    /// `by`: the field whose distinct values are counted (token_shared).
    By,
    /// `interval_days` (token rotation; seed: `tokenRotation`).
    IntervalDays,
    /// `notify_before_days` (token_rotation_due).
    NotifyBeforeDays,
    /// `after`: the silence that raises (silences; seed:
    /// 10 × `healthCheckInterval`).
    After,
    /// `min_events`: calls needed in the hour before a silence.
    MinEvents,
    /// `sources`: tool-name globs (or `class:<policy class>`).
    Sources,
    /// `sinks`: likewise.
    Sinks,
    /// `max_hashes`: definition hashes kept per tool.
    MaxHashes,
    /// `alpha`: the weight of the newest hour, in (0, 1].
    Alpha,
    /// `z`: standard deviations above the mean.
    Z,
    /// `min_calls`: calls this hour before a spike counts.
    MinCalls,
    /// `min_history`: past hours folded in before a spike counts.
    MinHistory,
}

impl Setting {
    /// The key in the rules file.
    pub(crate) const fn key(self) -> &'static str {
        match self {
            Setting::Window => "window",
            Setting::Threshold | Setting::Ratio => "threshold",
            Setting::MinDecisions => "min_decisions",
            Setting::Hours => "hours",
            Setting::Timezone => "timezone",
            Setting::Grace => "grace",
            Setting::Horizon => "horizon",
            Setting::LearningPeriod => "learning_period",
            Setting::RequestsPerMinute => "requests_per_minute",
            Setting::BurstLimit => "burst_limit",
            Setting::By => "by",
            Setting::IntervalDays => "interval_days",
            Setting::NotifyBeforeDays => "notify_before_days",
            Setting::After => "after",
            Setting::MinEvents => "min_events",
            Setting::Sources => "sources",
            Setting::Sinks => "sinks",
            Setting::MaxHashes => "max_hashes",
            Setting::Alpha => "alpha",
            Setting::Z => "z",
            Setting::MinCalls => "min_calls",
            Setting::MinHistory => "min_history",
        }
    }
}

/// One rule's settings (`rules/<rule>.toml`), defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RuleConfig {
    pub(crate) name: RuleName,
    pub(crate) enabled: bool,
    pub(crate) severity: Severity,
    pub(crate) key: Vec<Field>,
    pub(crate) window: Millis,
    /// A count for most rules, a ratio for `high_denial_rate`.
    pub(crate) threshold: f64,
    /// `None` means `"never"`.
    pub(crate) realert: Option<Millis>,
    pub(crate) max_keys: usize,
    /// `unusual_hours`: local hours (0..=23) that are unusual.
    pub(crate) hours: Vec<u8>,
    pub(crate) timezone: chrono_tz::Tz,
    /// `high_denial_rate`.
    pub(crate) min_decisions: u64,
    /// `approval_bypass`.
    pub(crate) grace: Millis,
    pub(crate) horizon: Millis,
    /// `new_tool_usage`.
    pub(crate) learning_period: Millis,
    /// `exfil_sequence`: tool-name globs, or `class:<policy class>`, as
    /// written (validated; the rule compiles them).
    pub(crate) sources: Vec<String>,
    pub(crate) sinks: Vec<String>,
    /// `tool_definition_drift`.
    pub(crate) max_hashes: usize,
    /// `usage_baseline_spike`.
    pub(crate) alpha: f64,
    pub(crate) z: f64,
    pub(crate) min_calls: u64,
    pub(crate) min_history: u64,
    /// The settings the seed's `security-config.json` also gives (SPEC §3,
    /// "Rules that the seed's own settings switch on"): `None` until a
    /// rules file sets them; loading then fills them from the seed, else
    /// the defaults ([`crate::config::Seeded`]).
    pub(crate) seeded: Seeded,
    /// `token_shared`: the field whose distinct values are counted.
    pub(crate) by: Field,
    /// The silences: calls needed in the hour ending at the last call.
    pub(crate) min_events: u64,
    /// Where the rule's file set `interval_days`/`notify_before_days` (for
    /// the error when they and the seed's disagree); not a setting.
    pub(crate) rotation_at: Option<super::tree::Pos>,
}

/// The seed-derived settings of one rule: a rules file's value first, then
/// the seed's, then the defaults of SPEC §3. After loading, every field a
/// rule reads is `Some`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Seeded {
    pub(crate) requests_per_minute: Option<u32>,
    pub(crate) burst_limit: Option<u32>,
    pub(crate) interval_days: Option<u32>,
    pub(crate) notify_before_days: Option<u32>,
    pub(crate) after: Option<Millis>,
}

/// Every rule, indexed by `RuleName as usize`.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSet {
    pub(crate) rules: Vec<RuleConfig>,
}

impl RuleSet {
    pub(crate) fn get(&self, name: RuleName) -> &RuleConfig {
        &self.rules[name as usize]
    }
    pub(crate) fn get_mut(&mut self, name: RuleName) -> &mut RuleConfig {
        &mut self.rules[name as usize]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// `mcpwatch.toml`, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `None`: `<dir>/../mcpwatch`.
    pub(crate) state_dir: Option<PathBuf>,
    /// `None`: metrics off.
    pub metrics_addr: Option<SocketAddr>,
    pub log_format: LogFormat,
    pub input: InputSettings,
    pub email: Vec<EmailChannel>,
    pub webhook: Vec<WebhookChannel>,
    pub routes: Vec<Route>,
    /// `[[actions]]`, in file order.
    pub(crate) actions: Vec<Action>,
    pub(crate) delivery: DeliverySettings,
    pub(crate) rotation: RotationSettings,
}

#[derive(Clone, Debug)]
pub struct InputSettings {
    pub dir: PathBuf,
    pub max_line_bytes: usize,
    pub(crate) poll_interval: Millis,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    StartTls,
    Tls,
    None,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EmailChannel {
    pub name: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: TlsMode,
    pub allow_plaintext: bool,
    pub username: Option<String>,
    /// Name of the environment variable holding the password; the password
    /// itself is read at send time and never stored in a struct that prints.
    pub password_env: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    pub max_per_hour: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct WebhookChannel {
    pub name: String,
    pub url: String,
    /// Name of the environment variable holding the HMAC secret.
    pub secret_env: Option<String>,
    pub timeout: Millis,
    pub headers: BTreeMap<String, String>,
    /// The body's shape (SPEC §5 "Where people already look").
    pub format: WebhookFormat,
    /// Headers whose values come from environment variables (header →
    /// variable name), read at each send and never stored or shown.
    pub headers_env: BTreeMap<String, String>,
    /// `format = "pagerduty"`: the variable holding the routing key.
    pub routing_key_env: Option<String>,
    /// `[[channels.alertmanager]]`: `Authorization` from a user and the
    /// variable holding the password (Basic), or from the variable holding
    /// a bearer token.
    pub basic_auth: Option<(String, String)>,
    pub bearer_token_env: Option<String>,
    /// `[[channels.alertmanager]]`: how long after it is sent an alert
    /// resolves, per rule (the rule's `realert`, else 1 h, unless the
    /// channel sets `resolve_after`); filled in when delivery starts.
    pub resolve_after: BTreeMap<String, Millis>,
}

/// What a webhook's body looks like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WebhookFormat {
    /// `{"version":"1","alerts":[…]}`.
    #[default]
    Mcpwatch,
    Slack,
    Teams,
    /// PagerDuty Events API v2: one event per alert.
    Pagerduty,
    /// An array of OCSF Detection Findings.
    Ocsf,
    /// Alertmanager's `/api/v2/alerts` (from `[[channels.alertmanager]]`).
    Alertmanager,
}

impl WebhookFormat {
    pub(crate) const ALL: [(&'static str, WebhookFormat); 5] = [
        ("mcpwatch", WebhookFormat::Mcpwatch),
        ("slack", WebhookFormat::Slack),
        ("teams", WebhookFormat::Teams),
        ("pagerduty", WebhookFormat::Pagerduty),
        ("ocsf", WebhookFormat::Ocsf),
    ];
}

#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub channels: Vec<String>,
    pub min_severity: Severity,
    /// Empty: every rule.
    pub rules: Vec<RuleName>,
    pub group_wait: Millis,
}

/// One `[[actions]]` of mcpwatch.toml (SPEC §5, the seed's incident
/// response): a command run by `sh -c` once per qualifying alert, with the
/// alert on its standard input and the firing line's fields in its
/// environment. A queue of the outbox like a channel, but never a route
/// target.
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    pub name: String,
    /// Run as `sh -c <command>`; never built from log fields.
    pub command: String,
    /// Killed (its whole process group) after this long.
    pub timeout: Millis,
    pub min_severity: Severity,
    /// Empty: every rule.
    pub rules: Vec<RuleName>,
}

#[derive(Clone, Debug)]
pub(crate) struct DeliverySettings {
    pub(crate) max_age: Millis,
}

#[derive(Clone, Debug)]
pub(crate) struct RotationSettings {
    pub(crate) max_size: u64,
    pub(crate) daily: bool,
    pub(crate) rotate_wait: Millis,
    pub(crate) level: i32,
    /// Empty: none.
    pub(crate) post_rotate: String,
    /// Create an empty live log right after renaming it (SPEC §6).
    pub(crate) create: bool,
}
