//! Loading edge cases: defaults equal the shipped files, precedence between
//! sources, and one test per validation rule with the exact message.

use std::path::{Path, PathBuf};

use super::*;
use crate::event::{ApprovalMode, Field, Severity};
use crate::policy::ToolClass;

pub(super) struct Dir(tempfile::TempDir);

impl Dir {
    pub(super) fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")))
    }
    pub(super) fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
        p
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    /// Sources inside this directory only (so the working directory's
    /// files never leak in): `--dir` points at `audit/`.
    fn sources(&self) -> Sources {
        Sources {
            config: Some(self.path("security-config.json")).filter(|p| p.exists()),
            rules: Some(self.path("rules")).filter(|p| p.exists()),
            settings: Some(self.path("mcpwatch.toml")).filter(|p| p.exists()),
            dir: Some(self.path("audit")),
        }
    }
    fn load(&self) -> Result<Config, ConfigErrors> {
        load(&self.sources())
    }
    /// `line:col: field: message` of each error (the file is a temp path).
    pub(super) fn errors(&self) -> Vec<String> {
        match self.load() {
            Ok(_) => Vec::new(),
            Err(e) => {
                e.0.iter()
                    .map(|e| format!("{}:{}: {}: {}", e.line, e.col, e.field, e.message))
                    .collect()
            }
        }
    }
}

pub(super) fn ok(d: &Dir) -> Config {
    d.load().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn builtin_defaults_equal_the_shipped_rule_files() {
    let shipped = load(&Sources {
        rules: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")),
        config: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/seed/fine_grained.json")),
        settings: None,
        dir: Some(PathBuf::from("/nonexistent")),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(shipped.sources.rule_files.len(), RuleName::COUNT);
    assert_eq!(shipped.rules, Config::defaults().rules);
}

#[test]
fn embedded_rule_files_parse_without_errors() {
    for (name, text) in BUILTIN_RULES {
        let root =
            tree::parse_toml(text).unwrap_or_else(|e| panic!("{}: {}", name.as_str(), e.message));
        let mut r = Config::defaults().rules.get(name).clone();
        let mut cx = Ctx::new(name.as_str(), "a table");
        rules::apply(&root, &mut r, &mut cx);
        assert!(cx.errors.is_empty(), "{:?}", cx.errors);
    }
}

#[test]
fn builtin_rules_have_spec_defaults() {
    let rs = Config::defaults().rules;
    let r = rs.get(RuleName::RapidToolUsage);
    assert_eq!(
        (
            r.severity,
            r.key.as_slice(),
            r.window,
            r.threshold,
            r.realert,
            r.max_keys
        ),
        (
            Severity::Medium,
            &[Field::UserId][..],
            60_000,
            10.0,
            Some(600_000),
            1_000_000
        )
    );
    let r = rs.get(RuleName::UnusualHours);
    assert_eq!(
        (
            r.severity,
            r.key.as_slice(),
            r.hours.as_slice(),
            r.timezone,
            r.realert
        ),
        (
            Severity::Low,
            &[Field::UserId][..],
            &[0, 1, 2, 3, 4, 5][..],
            chrono_tz::UTC,
            Some(3_600_000)
        )
    );
    let r = rs.get(RuleName::HighDenialRate);
    assert_eq!(
        (
            r.severity,
            r.key.as_slice(),
            r.window,
            r.threshold,
            r.min_decisions,
            r.realert
        ),
        (
            Severity::Medium,
            &[Field::UserId][..],
            3_600_000,
            0.5,
            5,
            Some(1_800_000)
        )
    );
    let r = rs.get(RuleName::NewToolUsage);
    assert_eq!(
        (r.severity, r.key.as_slice(), r.realert, r.learning_period),
        (
            Severity::Low,
            &[Field::ServerName, Field::ToolName][..],
            None,
            0
        )
    );
    let r = rs.get(RuleName::DisabledTool);
    assert_eq!(
        (r.severity, r.key.as_slice(), r.realert),
        (
            Severity::Critical,
            &[Field::UserId, Field::ServerName, Field::ToolName][..],
            Some(60_000)
        )
    );
    let r = rs.get(RuleName::ApprovalBypass);
    assert_eq!(
        (r.severity, r.key.as_slice(), r.realert, r.grace, r.horizon),
        (
            Severity::High,
            &[Field::RequestId][..],
            None,
            5_000,
            3_600_000
        )
    );
    let r = rs.get(RuleName::ErrorSpike);
    assert_eq!(
        (
            r.severity,
            r.key.as_slice(),
            r.window,
            r.threshold,
            r.realert
        ),
        (
            Severity::Medium,
            &[Field::ServerName][..],
            300_000,
            5.0,
            Some(900_000)
        )
    );
    for r in &rs.rules {
        assert!(r.max_keys == 1_000_000, "{:?}", r.name);
        // With no security-config.json the seed's sections are absent, so
        // the rules they switch on are off.
        assert_eq!(r.enabled, !SEED_SWITCHED.contains(&r.name), "{:?}", r.name);
    }
    assert_eq!(
        rs.rules.iter().map(|r| r.name).collect::<Vec<_>>(),
        RuleName::ALL
    );
}

#[test]
fn no_files_means_defaults_and_unknown_policy() {
    let d = Dir::new();
    let c = ok(&d);
    assert!(c.policy.is_none());
    assert!(!c.rule_active(RuleName::DisabledTool));
    assert!(!c.rule_active(RuleName::ApprovalBypass));
    assert!(c.rule_active(RuleName::RapidToolUsage));
    assert_eq!(
        c.retention,
        Retention {
            days: 90,
            compress: true
        }
    );
    assert!(c.security.timeout_is_denial && c.security.anomaly_detection);
    assert_eq!(c.settings.input.dir, PathBuf::from(".elevenlabs/audit"));
    assert_eq!(c.settings.metrics_addr, "127.0.0.1:9464".parse().ok());
    assert_eq!(c.settings.rotation.max_size, 100 << 20);
    assert_eq!(c.warnings.len(), 1);
}

#[test]
fn approval_mode_accepts_spec_and_api_names_and_defaults_to_always_ask() {
    for (text, mode) in [
        ("always_ask", ApprovalMode::AlwaysAsk),
        ("fine_grained", ApprovalMode::FineGrained),
        ("no_approval", ApprovalMode::NoApproval),
        ("require_approval_all", ApprovalMode::AlwaysAsk),
        ("require_approval_per_tool", ApprovalMode::FineGrained),
        ("auto_approve_all", ApprovalMode::NoApproval),
    ] {
        let d = Dir::new();
        d.write(
            "security-config.json",
            &format!("{{\"approvalMode\": \"{text}\"}}"),
        );
        assert_eq!(ok(&d).policy.map(|p| p.mode), Some(mode), "{text}");
    }
    let d = Dir::new();
    d.write("security-config.json", "{}");
    assert_eq!(ok(&d).policy.map(|p| p.mode), Some(ApprovalMode::AlwaysAsk));
}

#[test]
fn approval_mode_of_wrong_type_names_allowed_values() {
    let d = Dir::new();
    d.write("security-config.json", "{\"approvalMode\": 3}");
    assert_eq!(
        d.errors(),
        [
            "1:18: approvalMode: expected a string: always_ask, fine_grained or no_approval, got a number"
        ]
    );
}

#[test]
fn fine_grained_rules_build_the_policy() {
    let d = Dir::new();
    d.write(
        "security-config.json",
        r#"{"approvalMode": "fine_grained",
            "rules": {"autoApproved": {"patterns": ["*_read"]},
                      "disabled": {"patterns": ["admin_*"], "tools": ["user_delete"]}}}"#,
    );
    let p = ok(&d).policy.unwrap_or_else(|| panic!("policy"));
    assert_eq!(p.classify("admin_read"), ToolClass::Disabled);
    assert_eq!(p.classify("doc_read"), ToolClass::AutoApproved);
    assert_eq!(p.classify("user_delete"), ToolClass::Disabled);
    assert_eq!(p.classify("email_send"), ToolClass::RequiresApproval);
}

#[test]
fn invalid_glob_is_reported_at_the_pattern() {
    let d = Dir::new();
    d.write(
        "security-config.json",
        "{\"rules\": {\"disabled\": {\"patterns\": [\"ok_*\", \"bad[\"]}}}",
    );
    let e = d.errors();
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("1:46: rules.disabled.patterns[1]: invalid glob \"bad[\": "),
        "{e:?}"
    );
}

#[test]
fn unknown_rules_list_is_a_warning_not_an_error() {
    let d = Dir::new();
    d.write(
        "security-config.json",
        "{\"rules\": {\"autoApprove\": {}, \"disabled\": {\"pattern\": [\"admin_*\"]}}}",
    );
    let c = ok(&d);
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(
        c.warnings[1].ends_with(
            ":1:44: rules.disabled.pattern: unknown key ignored; expected patterns or tools"
        ),
        "{:?}",
        c.warnings
    );
    assert!(
        c.warnings[0].ends_with(
            "rules.autoApprove: unknown list ignored; expected autoApproved, requiresApproval or disabled"
        ),
        "{:?}",
        c.warnings
    );
}

#[test]
fn audit_logging_string_means_default_retention() {
    let d = Dir::new();
    d.write("security-config.json", "{\"auditLogging\": \"required\"}");
    let c = ok(&d);
    assert_eq!(c.retention, Retention::default());
    assert!(c.security.audit_logging);
}

#[test]
fn audit_config_json_retention_wins_over_security_config() {
    let d = Dir::new();
    d.write(
        "security-config.json",
        "{\"auditLogging\": {\"retention\": {\"days\": 30, \"compress\": false}}}",
    );
    d.write("audit/config.json", "{\"retention\": {\"days\": 7}}");
    let c = ok(&d);
    // days from config.json, compress from security-config.json (only
    // config.json's own fields win).
    assert_eq!(
        c.retention,
        Retention {
            days: 7,
            compress: false
        }
    );
    assert_eq!(c.sources.audit_config, Some(d.path("audit/config.json")));
}

#[test]
fn retention_days_zero_and_fractional_are_errors() {
    let d = Dir::new();
    d.write(
        "audit/config.json",
        "{\"retention\": {\"days\": 0, \"compress\": \"yes\"}}",
    );
    assert_eq!(
        d.errors(),
        [
            "1:24: retention.days: 0 is out of range; expected a whole number of days from 1 to 36500",
            "1:39: retention.compress: expected true or false, got a string",
        ]
    );
    let d = Dir::new();
    d.write("audit/config.json", "{\"retention\": {\"days\": 1.5}}");
    assert_eq!(
        d.errors(),
        ["1:24: retention.days: expected a whole number of days from 1 to 36500, got 1.5"]
    );
}

#[test]
fn fallback_on_timeout_allow_and_bad_value() {
    let d = Dir::new();
    d.write("security-config.json", "{\"fallbackOnTimeout\": \"allow\"}");
    assert!(!ok(&d).security.timeout_is_denial);
    d.write("security-config.json", "{\"fallbackOnTimeout\": \"maybe\"}");
    assert_eq!(
        d.errors(),
        ["1:23: fallbackOnTimeout: unknown value \"maybe\"; expected deny or allow"]
    );
}

#[test]
fn other_known_keys_are_validated_and_kept() {
    let d = Dir::new();
    d.write(
        "security-config.json",
        r#"{"approvalTimeout": 30, "rateLimiting": {"enabled": true, "requestsPerMinute": 60, "burstLimit": 10},
            "incidentResponse": {"notificationEmails": ["sec@example.com"], "escalationWebhook": "https://x.example/h"},
            "somethingElse": {"ignored": [1, 2]}}"#,
    );
    let c = ok(&d);
    assert_eq!(c.security.approval_timeout, Some(30_000));
    assert_eq!(
        c.security.rate_limiting,
        Some(RateLimiting {
            enabled: true,
            requests_per_minute: Some(60),
            burst_limit: Some(10)
        })
    );
    assert_eq!(c.security.notification_emails, ["sec@example.com"]);
    assert_eq!(
        c.security.escalation_webhook.as_deref(),
        Some("https://x.example/h")
    );
    d.write(
        "security-config.json",
        r#"{"approvalTimeout": -1, "rateLimiting": {"requestsPerMinute": "many"},
"incidentResponse": {"notificationEmails": ["nobody"], "escalationWebhook": "ftp://x"}}"#,
    );
    assert_eq!(
        d.errors(),
        [
            "1:21: approvalTimeout: -1 is out of range; expected a positive number of seconds",
            "1:63: rateLimiting.requestsPerMinute: expected a whole number from 1 to 1000000, got a string",
            "2:45: incidentResponse.notificationEmails[0]: \"nobody\" is not an email address",
            "2:77: incidentResponse.escalationWebhook: \"ftp://x\" is not a URL; expected http://... or https://...",
        ]
    );
}

#[test]
fn anomaly_detection_false_turns_off_four_rules_unless_explicitly_enabled() {
    let d = Dir::new();
    d.write(
        "security-config.json",
        "{\"monitoring\": {\"anomalyDetection\": false}}",
    );
    d.write("rules/unusual_hours.toml", "enabled = true\n");
    d.write("rules/new_tool_usage.toml", "severity = \"high\"\n");
    let c = ok(&d);
    let on: Vec<&str> = RuleName::ALL
        .into_iter()
        .filter(|r| c.rule_active(*r))
        .map(RuleName::as_str)
        .collect();
    assert_eq!(
        on,
        [
            "unusual_hours",
            "disabled_tool",
            "approval_bypass",
            "error_spike",
            "token_shared",
            "server_silence",
            "audit_silence",
            "exfil_sequence",
            "tool_definition_drift",
            "usage_baseline_spike"
        ]
    );
    assert_eq!(c.rules.get(RuleName::NewToolUsage).severity, Severity::High);
}

#[test]
fn rule_file_overrides_only_the_keys_it_sets() {
    let d = Dir::new();
    d.write(
        "rules/rapid_tool_usage.toml",
        "threshold = 20\nrealert = \"never\"\nkey = [\"agent_id\", \"tool_name\"]\nmax_keys = 1_000\n",
    );
    d.write(
        "rules/unusual_hours.toml",
        "hours = [23, 0, 1]\ntimezone = \"Europe/Berlin\"\n",
    );
    let c = ok(&d);
    let r = c.rules.get(RuleName::RapidToolUsage);
    assert_eq!((r.threshold, r.realert, r.window), (20.0, None, 60_000));
    assert_eq!(r.key, [Field::AgentId, Field::ToolName]);
    assert_eq!(r.max_keys, 1_000);
    let r = c.rules.get(RuleName::UnusualHours);
    assert_eq!(r.hours, [0, 1, 23]);
    assert_eq!(r.timezone, chrono_tz::Europe::Berlin);
    assert_eq!(
        c.sources.rule_files,
        [RuleName::RapidToolUsage, RuleName::UnusualHours]
    );
}

#[test]
fn rule_specific_keys_belong_to_their_rule_only() {
    let d = Dir::new();
    d.write("rules/error_spike.toml", "grace = \"5s\"\n");
    d.write("rules/disabled_tool.toml", "window = \"1m\"\n");
    assert_eq!(
        d.errors(),
        [
            "1:1: window: unknown key \"window\"; expected enabled, severity, key, realert or max_keys",
            "1:1: grace: unknown key \"grace\"; expected enabled, severity, key, realert, max_keys, window or threshold",
        ]
    );
}

#[test]
fn rule_value_errors_name_allowed_values() {
    let d = Dir::new();
    d.write(
        "rules/unusual_hours.toml",
        "hours = [1, 24, 1]\ntimezone = \"Mars/Olympus\"\nkey = [\"user\"]\nmax_keys = 0\n",
    );
    d.write(
        "rules/high_denial_rate.toml",
        "threshold = 1.5\nmin_decisions = 0\nrealert = \"soon\"\n",
    );
    assert_eq!(
        d.errors(),
        [
            "1:13: threshold: 1.5 is out of range; expected a denial ratio from 0 up to (not including) 1, such as 0.5",
            "2:17: min_decisions: 0 is out of range; expected a whole number ≥ 1",
            "3:11: realert: invalid duration \"soon\"; expected e.g. 500ms, 60s, 10m, 1h30m, 90d",
            "1:13: hours[1]: 24 is out of range; expected an hour from 0 to 23",
            "1:17: hours[2]: hour 1 is listed twice",
            "2:12: timezone: unknown time zone \"Mars/Olympus\"; expected an IANA name such as \"UTC\", \"Europe/Berlin\" or \"America/New_York\"",
            "3:8: key[0]: unknown field \"user\"; expected request_id, user_id, agent_id, conversation_id, server_name, tool_name or token_id",
            "4:12: max_keys: 0 is out of range; expected a whole number from 1 to 100000000",
        ]
    );
}

#[test]
fn unknown_rule_file_is_an_error_and_other_files_are_ignored() {
    let d = Dir::new();
    d.write("rules/rapid_usage.toml", "");
    d.write("rules/README.md", "not a rule");
    assert_eq!(
        d.errors(),
        [format!(
            "1:1: file: unknown rule \"rapid_usage\"; expected a file named after a rule: {}",
            all_rules()
        )]
    );
}

#[test]
fn settings_dir_sets_the_log_directory() {
    let d = Dir::new();
    d.write("mcpwatch.toml", "[input]\ndir = \"logs\"\n");
    let c = load(&Sources {
        dir: None,
        ..d.sources()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.dir(), Path::new("logs"));
    // --dir wins over input.dir.
    assert_eq!(ok(&d).dir(), d.path("audit"));
}

#[test]
fn plaintext_smtp_needs_allow_plaintext() {
    let d = Dir::new();
    d.write(
        "mcpwatch.toml",
        "[[channels.email]]\nname = \"m\"\nsmtp_host = \"localhost\"\nsmtp_port = 25\ntls = \"none\"\nallow_plaintext = true\nfrom = \"a@b\"\nto = [\"c@d\"]\n",
    );
    let c = ok(&d);
    assert_eq!(c.settings.email[0].tls, TlsMode::None);
    assert_eq!(c.settings.email[0].smtp_port, 25);
    assert_eq!(c.settings.email[0].max_per_hour, 30);
}

#[test]
fn channels_need_required_keys_unique_names_and_env_names() {
    let d = Dir::new();
    d.write(
        "mcpwatch.toml",
        "[[channels.webhook]]\nname = \"x\"\nurl = \"https://h.example/\"\nsecret_env = \"not a name!\"\n\n[[channels.email]]\nname = \"x\"\nsmtp_host = \"h\"\nto = []\n",
    );
    assert_eq!(
        d.errors(),
        [
            "2:8: channels.webhook[0].name: channel name \"x\" is used twice",
            "4:14: channels.webhook[0].secret_env: not a valid environment variable name (letters, digits and _); expected the name of an environment variable such as \"MCPWATCH_SMTP_PASSWORD\"",
            "7:1: channels.email[0].from: missing; expected the sender's email address",
            "9:6: channels.email[0].to: must list at least one recipient",
        ]
    );
}

#[test]
fn inline_secret_is_refused_without_echoing_it() {
    let d = Dir::new();
    d.write(
        "mcpwatch.toml",
        "[[channels.webhook]]\nname = \"w\"\nurl = \"https://h.example/\"\nsecret = \"s3cr3t-value\"\n",
    );
    let e = d.errors();
    assert_eq!(
        e,
        [
            "4:1: channels.webhook[0].secret: secrets are not written in mcpwatch.toml; set secret_env to the name of an environment variable holding it"
        ]
    );
    assert!(!e[0].contains("s3cr3t"));
}

#[test]
fn routes_reference_existing_channels_and_rules() {
    let d = Dir::new();
    d.write(
        "mcpwatch.toml",
        "[[channels.webhook]]\nname = \"siem\"\nurl = \"http://127.0.0.1:9/\"\n\n[[routes]]\nchannels = [\"siem\"]\nrules = [\"disabled_tool\", \"rapid\"]\ngroup_wait = \"0s\"\n",
    );
    assert_eq!(
        d.errors(),
        [format!(
            "7:27: routes[0].rules[1]: unknown rule \"rapid\"; expected {}",
            all_rules()
        )]
    );
}

#[test]
fn unknown_settings_keys_list_allowed_keys() {
    let d = Dir::new();
    d.write(
        "mcpwatch.toml",
        "state = \"x\"\n[rotation]\nlevel = 30\nmax_size = 4096\n",
    );
    let c = d.errors();
    assert_eq!(
        c,
        [
            "1:1: state: unknown key \"state\"; expected state_dir, metrics_addr, log_format, input, channels, routes, actions, delivery or rotation",
            "3:9: rotation.level: 30 is out of range; expected a zstd level from 1 to 22",
        ]
    );
}

#[test]
fn toml_syntax_error_is_alone_with_position() {
    let d = Dir::new();
    d.write("rules/error_spike.toml", "threshold = \n");
    d.write("rules/rapid_tool_usage.toml", "severity = \"bad\"\n");
    let e = d.load().err().map(|e| e.0).unwrap_or_default();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        (e[0].line, e[0].col, e[0].field.as_str()),
        (1, 13, "syntax")
    );
    assert!(e[0].file.ends_with("error_spike.toml"));
}

#[test]
fn non_object_root_is_an_error() {
    let d = Dir::new();
    d.write("security-config.json", "[1, 2]");
    assert_eq!(
        d.errors(),
        ["1:1: (root): expected an object, got an array"]
    );
}

#[test]
fn state_dir_defaults_next_to_the_log_dir() {
    let mut c = Config::defaults();
    assert_eq!(c.state_dir(), PathBuf::from(".elevenlabs/mcpwatch"));
    c.settings.state_dir = Some(PathBuf::from("/var/lib/mcpwatch"));
    assert_eq!(c.state_dir(), PathBuf::from("/var/lib/mcpwatch"));
}

#[test]
fn default_state_dir_is_beside_the_log_dir() {
    assert_eq!(
        default_state_dir(Path::new(".elevenlabs/audit")),
        PathBuf::from(".elevenlabs/mcpwatch")
    );
    assert_eq!(
        default_state_dir(Path::new("/var/log/audit")),
        PathBuf::from("/var/log/mcpwatch")
    );
    assert_eq!(
        default_state_dir(Path::new("audit")),
        PathBuf::from("mcpwatch")
    );
    assert_eq!(
        default_state_dir(Path::new(".")),
        PathBuf::from("./../mcpwatch")
    );
}

#[test]
fn policy_from_json_text() {
    let (p, extras) = policy_from_json(
        r#"{"approvalMode": "require_approval_per_tool", "fallbackOnTimeout": "allow",
            "rules": {"disabled": {"patterns": ["admin_*"]}}}"#,
        "inline.json",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.mode, ApprovalMode::FineGrained);
    assert_eq!(p.classify("admin_x"), ToolClass::Disabled);
    assert!(!extras.timeout_is_denial);
    let e = policy_from_json("{\"approvalMode\": \"ask\"}", "x.json").err();
    assert_eq!(
        e.map(|e| e.to_string()),
        Some("x.json:1:18: approvalMode: unknown value \"ask\"; expected always_ask, fine_grained or no_approval".into())
    );
}

#[test]
fn byte_order_mark_is_ignored() {
    let d = Dir::new();
    d.write(
        "security-config.json",
        "\u{feff}{\"approvalMode\": \"bad\"}",
    );
    assert_eq!(
        d.errors(),
        [
            "1:18: approvalMode: unknown value \"bad\"; expected always_ask, fine_grained or no_approval"
        ]
    );
}

#[test]
fn single_table_where_array_of_tables_is_expected() {
    let d = Dir::new();
    d.write("mcpwatch.toml", "[routes]\nchannels = [\"x\"]\n");
    assert_eq!(
        d.errors(),
        ["1:1: routes: expected an array of tables; write [[routes]], not [routes]"]
    );
}

#[test]
fn a_minified_policy_of_200000_tools_loads() {
    // Regression (issue #23): on a file that is one long line, every value's
    // column was counted from the start of the line, so `check` went
    // quadratic in the number of tools. No timing here: it must finish.
    let d = Dir::new();
    let names = |from: usize, to: usize| {
        (from..to)
            .map(|i| format!("\"tool_{i:06}\""))
            .collect::<Vec<_>>()
            .join(",")
    };
    d.write(
        "security-config.json",
        &format!(
            r#"{{"approvalMode":"fine_grained","rules":{{"autoApproved":{{"tools":[{}],"patterns":["*_get"]}},"disabled":{{"tools":[{}],"pattern":["x"]}}}}}}"#,
            names(0, 150_000),
            names(150_000, 200_000)
        ),
    );
    let c = ok(&d);
    let p = c.policy.as_ref().unwrap_or_else(|| panic!("a policy"));
    assert_eq!(p.named_tools().len(), 200_000);
    assert_eq!(p.classify("tool_000007"), ToolClass::AutoApproved);
    assert_eq!(p.classify("tool_199999"), ToolClass::Disabled);
    // Positions stay exact at the far end of the line.
    let w = c
        .warnings
        .iter()
        .find(|w| w.contains("rules.disabled.pattern"))
        .unwrap_or_else(|| panic!("{:?}", c.warnings));
    let col = r#"{"approvalMode":"fine_grained","rules":{"autoApproved":{"tools":["#.len()
        + (150_000 * 14 - 1)
        + r#"],"patterns":["*_get"]},"disabled":{"tools":["#.len()
        + (50_000 * 14 - 1)
        + r#"],"#.len()
        + 1;
    assert!(
        w.contains(&format!(":1:{col}: rules.disabled.pattern")),
        "{w}"
    );
}

mod seeded;
use seeded::{SEED_SWITCHED, all_rules};
