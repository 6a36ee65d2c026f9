//! SPEC §2/§3: the seed's sections that switch rules on, their
//! validation by `check` (`file:line:col` errors) and the order of their
//! settings: a rules file's value, then the seed's, then the defaults.

use super::*;

/// Every rule's name as error messages list them.
pub(super) fn all_rules() -> String {
    let names: Vec<&str> = RuleName::ALL.iter().map(|r| r.as_str()).collect();
    tree::one_of(&names)
}

/// The rules a section of the seed's security-config.json switches on.
pub(super) const SEED_SWITCHED: [RuleName; 5] = [
    RuleName::RateLimitExceeded,
    RuleName::TokenRotationDue,
    RuleName::TokenRotationOverdue,
    RuleName::ServerSilence,
    RuleName::AuditSilence,
];

#[test]
fn seeded_rules_have_spec_defaults() {
    let d = Dir::new();
    d.write(
        "security-config.json",
        r#"{"rateLimiting": {}, "authentication": {"tokenRotation": {}}, "monitoring": {}}"#,
    );
    let c = ok(&d);
    for r in SEED_SWITCHED {
        assert!(c.rule_active(r), "{}", r.as_str());
    }
    let r = c.rules.get(RuleName::RateLimitExceeded);
    assert_eq!(
        (r.severity, r.key.as_slice(), r.realert),
        (Severity::Medium, &[Field::UserId][..], Some(600_000))
    );
    assert_eq!(
        (r.seeded.requests_per_minute, r.seeded.burst_limit),
        (Some(60), Some(10))
    );
    let r = c.rules.get(RuleName::TokenShared);
    assert_eq!(
        (
            r.severity,
            r.key.as_slice(),
            r.by,
            r.threshold,
            r.window,
            r.realert
        ),
        (
            Severity::High,
            &[Field::TokenId][..],
            Field::AgentId,
            1.0,
            3_600_000,
            Some(3_600_000)
        )
    );
    let r = c.rules.get(RuleName::TokenRotationDue);
    assert_eq!((r.severity, r.realert), (Severity::Low, None));
    assert_eq!(
        (r.seeded.interval_days, r.seeded.notify_before_days),
        (Some(30), Some(7))
    );
    let r = c.rules.get(RuleName::TokenRotationOverdue);
    assert_eq!((r.severity, r.realert), (Severity::High, Some(86_400_000)));
    let r = c.rules.get(RuleName::ServerSilence);
    assert_eq!(
        (r.severity, r.key.as_slice(), r.min_events, r.seeded.after),
        (
            Severity::Medium,
            &[Field::ServerName][..],
            30,
            Some(600_000)
        )
    );
    let r = c.rules.get(RuleName::AuditSilence);
    assert_eq!(
        (r.severity, r.min_events, r.seeded.after),
        (Severity::High, 60, Some(600_000))
    );
}

#[test]
fn a_rules_file_comes_before_the_seed_and_the_seed_before_the_defaults() {
    let d = Dir::new();
    d.write(
        "security-config.json",
        r#"{"rateLimiting": {"enabled": false, "requestsPerMinute": 7, "burstLimit": 3},
            "monitoring": {"healthCheckInterval": 30}}"#,
    );
    d.write(
        "rules/rate_limit_exceeded.toml",
        "enabled = true\nburst_limit = 5\n",
    );
    d.write("rules/server_silence.toml", "enabled = false\n");
    d.write("rules/audit_silence.toml", "after = \"90s\"\n");
    let c = ok(&d);
    let r = c.rules.get(RuleName::RateLimitExceeded);
    assert!(c.rule_active(RuleName::RateLimitExceeded));
    assert_eq!(
        (r.seeded.requests_per_minute, r.seeded.burst_limit),
        (Some(7), Some(5))
    );
    assert!(!c.rule_active(RuleName::ServerSilence));
    assert_eq!(
        c.rules.get(RuleName::ServerSilence).seeded.after,
        Some(300_000)
    );
    assert!(c.rule_active(RuleName::AuditSilence));
    assert_eq!(
        c.rules.get(RuleName::AuditSilence).seeded.after,
        Some(90_000)
    );
    assert!(!c.rule_active(RuleName::TokenRotationDue));
}

#[test]
fn check_validates_the_seed_settings_at_their_place() {
    let d = Dir::new();
    d.write(
        "security-config.json",
        r#"{"rateLimiting": {"requestsPerMinute": 0, "burstLimit": 1.5},
"authentication": {"tokenRotation": {"intervalDays": 7, "notifyBeforeDays": 7}},
"monitoring": {"healthCheckInterval": 0}}"#,
    );
    assert_eq!(
        d.errors(),
        [
            "1:40: rateLimiting.requestsPerMinute: 0 is out of range; expected a whole number from 1 to 1000000",
            "1:57: rateLimiting.burstLimit: expected a whole number from 1 to 1000000, got 1.5",
            "2:77: authentication.tokenRotation.notifyBeforeDays: notifyBeforeDays (7) must be less than intervalDays (7); expected intervalDays > notifyBeforeDays ≥ 0",
            "3:39: monitoring.healthCheckInterval: 0 is out of range; expected a number of seconds > 0 (up to 1000000000)",
        ]
    );
    d.write(
        "security-config.json",
        r#"{"rateLimiting": {"requestsPerMinute": 1000001},
"authentication": {"tokenRotation": {"notifyBeforeDays": -1, "intervalDays": 0}}}"#,
    );
    assert_eq!(
        d.errors(),
        [
            "1:40: rateLimiting.requestsPerMinute: 1000001 is out of range; expected a whole number from 1 to 1000000",
            "2:58: authentication.tokenRotation.notifyBeforeDays: -1 is out of range; expected a whole number of days from 0 to 36500",
            "2:78: authentication.tokenRotation.intervalDays: 0 is out of range; expected a whole number of days from 1 to 36500",
        ]
    );
    // notifyBeforeDays alone is compared with the default interval (30).
    d.write(
        "security-config.json",
        r#"{"authentication": {"tokenRotation": {"notifyBeforeDays": 30}}}"#,
    );
    assert_eq!(
        d.errors(),
        [
            "1:59: authentication.tokenRotation.notifyBeforeDays: notifyBeforeDays (30) must be less than intervalDays (30); expected intervalDays > notifyBeforeDays ≥ 0"
        ]
    );
    d.write(
        "security-config.json",
        r#"{"authentication": {"tokenRotation": {"notifyBeforeDays": 0, "intervalDays": 1}}}"#,
    );
    assert!(d.errors().is_empty());
}

#[test]
fn check_validates_the_rules_files_of_the_seeded_rules() {
    let d = Dir::new();
    d.write(
        "security-config.json",
        r#"{"authentication": {"tokenRotation": {"intervalDays": 10, "notifyBeforeDays": 2}}}"#,
    );
    d.write(
        "rules/rate_limit_exceeded.toml",
        "requests_per_minute = 0\nburst_limit = \"ten\"\n",
    );
    d.write("rules/token_shared.toml", "by = \"agent\"\n");
    d.write("rules/token_rotation_due.toml", "notify_before_days = 10\n");
    d.write(
        "rules/server_silence.toml",
        "after = \"0s\"\nmin_events = -1\n",
    );
    assert_eq!(
        d.errors(),
        [
            "1:23: requests_per_minute: 0 is out of range; expected a whole number from 1 to 1000000",
            "2:15: burst_limit: expected a whole number from 1 to 1000000, got a string",
            "1:9: after: duration \"0s\" must be more than 0",
            "2:14: min_events: -1 is out of range; expected a whole number ≥ 0",
            "1:22: notify_before_days: notify_before_days (10) must be less than interval_days (10); expected 0 ≤ notify_before_days < interval_days",
            "1:6: by: unknown field \"agent\"; expected request_id, user_id, agent_id, conversation_id, server_name, tool_name or token_id",
        ]
    );
}

#[test]
fn a_silence_refuses_the_common_settings_it_would_ignore() {
    let d = Dir::new();
    d.write(
        "rules/audit_silence.toml",
        "key = [\"user_id\"]\nrealert = \"1h\"\n",
    );
    d.write(
        "rules/server_silence.toml",
        "key = [\"server_name\"]\nrealert = \"1h\"\n",
    );
    let (audit, server) = (
        "expected enabled, severity, max_keys, after or min_events",
        "expected enabled, severity, key, max_keys, after or min_events",
    );
    assert_eq!(
        d.errors(),
        [
            format!("1:1: key: unknown key \"key\"; {audit}"),
            format!("2:1: realert: unknown key \"realert\"; {audit}"),
            format!("2:1: realert: unknown key \"realert\"; {server}"),
        ]
    );
}
