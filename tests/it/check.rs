//! `mcpwatch check` end to end on the fixtures: the seed's configurations
//! load, broken ones print every error as `file:line:col: field: message`
//! and exit 2, a syntax error is reported alone, and `--tool` explains.

use assert_cmd::Command;

fn mcpwatch() -> Command {
    let mut c = Command::cargo_bin("mcpwatch").unwrap_or_else(|e| panic!("binary: {e}"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = mcpwatch()
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_seed_config_passes_check() {
    for f in [
        "security-config.json",
        "always_ask.json",
        "fine_grained.json",
        "no_approval.json",
        "risk_low.json",
        "risk_medium.json",
        "risk_high.json",
        "risk_critical.json",
    ] {
        let path = format!("fixtures/seed/{f}");
        let (code, out, err) = run(&["check", "--config", &path, "--dir", "fixtures/seed"]);
        assert_eq!(code, 0, "{f}: {err}");
        assert!(out.contains("configuration OK"), "{f}: {out}");
        assert!(
            out.contains("audit config: fixtures/seed/config.json"),
            "{f}: {out}"
        );
    }
}

#[test]
fn seed_summary_names_mode_and_warns_about_missing_email_channel() {
    let (code, out, err) = run(&[
        "check",
        "--config",
        "fixtures/seed/security-config.json",
        "--dir",
        "fixtures/seed",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains(
        "security-config: fixtures/seed/security-config.json (approvalMode fine_grained; 0 named tools, 0 patterns)"
    ));
    assert!(out.contains("retention: 90 days, compress true"));
    assert_eq!(
        err,
        "warning: incidentResponse.autoDisableOnSuspicious is true but mcpwatch.toml has no \
[[actions]] to run\n\
warning: incidentResponse.notificationEmails is set but mcpwatch.toml has no \
[[channels.email]] to send critical alerts through\n"
    );
}

#[test]
fn three_mistakes_print_three_lines_and_exit_2() {
    let (code, out, err) = run(&["check", "--config", "fixtures/config/three-mistakes.json"]);
    assert_eq!(code, 2);
    assert_eq!(out, "");
    let f = "fixtures/config/three-mistakes.json";
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        [
            format!(
                "{f}:2:19: approvalMode: unknown value \"fine-grained\"; expected always_ask, fine_grained or no_approval"
            ),
            format!(
                "{f}:5:30: rules.autoApproved.patterns[1]: expected a string (a shell glob such as \"admin_*\"), got a number"
            ),
            format!(
                "{f}:16:15: auditLogging.retention.days: -30 is out of range; expected a whole number of days from 1 to 36500"
            ),
        ]
    );
}

#[test]
fn broken_rules_dir_prints_every_error_and_exit_2() {
    let (code, _, err) = run(&["check", "--rules", "fixtures/config/rules"]);
    assert_eq!(code, 2);
    let f = "fixtures/config/rules/rapid_tool_usage.toml";
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        [
            format!(
                "{f}:3:13: severity: unknown value \"urgent\"; expected low, medium, high or critical"
            ),
            format!("{f}:5:13: window: missing unit in \"60\"; expected ms, s, m, h or d"),
            format!(
                "{f}:7:1: treshold: unknown key \"treshold\"; expected enabled, severity, key, realert, max_keys, window or threshold"
            ),
        ]
    );
}

#[test]
fn syntax_error_is_reported_alone() {
    // The file also has a bad fallbackOnTimeout; the parser stops first.
    let (code, _, err) = run(&["check", "--config", "fixtures/config/syntax-error.json"]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "fixtures/config/syntax-error.json:5:28: syntax: expected comma\n"
    );
}

#[test]
fn syntax_error_hides_other_files_errors() {
    let (code, _, err) = run(&[
        "check",
        "--config",
        "fixtures/config/three-mistakes.json",
        "--settings",
        "fixtures/config/syntax-error.toml",
    ]);
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("fixtures/config/syntax-error.toml:2:"),
        "{err}"
    );
}

#[test]
fn tool_prints_class_and_deciding_rule() {
    let (code, out, _) = run(&[
        "check",
        "--config",
        "fixtures/seed/fine_grained.json",
        "--tool",
        "email_send",
        "--tool",
        "admin_reset",
        "--tool",
        "admin_read",
        "--tool",
        "docs_search",
        "--tool",
        "frobnicate",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "email_send: requires_approval (tool email_send)\n\
admin_reset: disabled (pattern admin_*)\n\
admin_read: disabled (pattern admin_*)\n\
docs_search: auto_approved (pattern *_search)\n\
frobnicate: requires_approval (no matching rule)\n"
    );
}

#[test]
fn tool_under_always_ask_and_no_approval_names_the_mode() {
    let (_, out, _) = run(&[
        "check",
        "--config",
        "fixtures/seed/always_ask.json",
        "--tool",
        "weather_get",
    ]);
    assert_eq!(
        out,
        "weather_get: requires_approval (approvalMode always_ask)\n"
    );
    let (_, out, _) = run(&[
        "check",
        "--config",
        "fixtures/seed/no_approval.json",
        "--tool",
        "user_delete",
    ]);
    assert_eq!(
        out,
        "user_delete: auto_approved (approvalMode no_approval)\n"
    );
}

#[test]
fn tool_without_security_config_says_policy_unknown() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = mcpwatch()
        .current_dir(dir.path())
        .args(["check", "--tool", "email_send"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "email_send: unknown (no security-config.json: the policy is unknown)\n"
    );
}

#[test]
fn no_files_at_all_is_valid() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = mcpwatch()
        .current_dir(dir.path())
        .arg("check")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("rules: built-in\n"), "{stdout}");
    assert!(
        stdout.contains("rules active: 9 of 16 (rapid_tool_usage, unusual_hours, high_denial_rate, new_tool_usage, error_spike, token_shared, exfil_sequence, tool_definition_drift, usage_baseline_spike)"),
        "{stdout}"
    );
    assert!(stdout.contains("log dir: .elevenlabs/audit\n"), "{stdout}");
}

#[test]
fn defaults_are_found_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = env!("CARGO_MANIFEST_DIR");
    std::fs::copy(
        format!("{root}/fixtures/config/three-mistakes.json"),
        dir.path().join("security-config.json"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = mcpwatch()
        .current_dir(dir.path())
        .arg("check")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("security-config.json:2:19: approvalMode: unknown value \"fine-grained\""),
        "{err}"
    );
}

#[test]
fn example_settings_with_every_option_validate() {
    let (code, out, err) = run(&[
        "check",
        "--settings",
        "fixtures/config/mcpwatch.example.toml",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("channels: 1 email, 1 webhook; routes: 1"),
        "{out}"
    );
}

#[test]
fn bad_settings_print_every_error() {
    let (code, _, err) = run(&["check", "--settings", "fixtures/config/bad-settings.toml"]);
    assert_eq!(code, 2);
    let f = "fixtures/config/bad-settings.toml";
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        [
            format!(
                "{f}:1:16: metrics_addr: invalid address \"everywhere\"; expected \"off\" or ip:port such as \"127.0.0.1:9464\" or \"[::1]:9464\" (port 0 picks one)"
            ),
            format!(
                "{f}:6:13: channels.email[0].tls: \"none\" sends mail and credentials in plain text; set allow_plaintext = true to allow it, or use starttls or tls"
            ),
            format!(
                "{f}:7:1: channels.email[0].password: secrets are not written in mcpwatch.toml; set password_env to the name of an environment variable holding it"
            ),
            format!("{f}:12:27: routes[0].channels[1]: unknown channel \"pager\"; expected secops"),
            format!(
                "{f}:13:16: routes[0].min_severity: unknown value \"urgent\"; expected low, medium, high or critical"
            ),
            format!(
                "{f}:16:12: rotation.max_size: invalid size \"100 megs\"; expected e.g. \"100MiB\", \"1GiB\" or \"500KB\" (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
            ),
        ]
    );
    // The inline password itself is never echoed.
    assert!(!err.contains("hunter2"));
}

#[test]
fn missing_explicit_file_is_an_error() {
    let (code, _, err) = run(&["check", "--config", "fixtures/config/nope.json"]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("fixtures/config/nope.json:1:1: file: cannot read: "),
        "{err}"
    );
}

#[test]
fn check_says_where_critical_alerts_go_and_names_unset_secret_variables() {
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("mcpwatch.toml");
    std::fs::write(
        &settings,
        r#"
[[channels.email]]
name = "secops"
smtp_host = "127.0.0.1"
from = "mcpwatch@example.com"
to = ["security@example.com"]
username = "alerts@example.com"
password_env = "MCPWATCH_TEST_CHECK_UNSET_PASSWORD"

[[channels.webhook]]
name = "siem"
url = "https://siem.example.com/hook"
secret_env = "MCPWATCH_TEST_CHECK_UNSET_SECRET"

[[routes]]
channels = ["siem"]
rules = ["disabled_tool"]
min_severity = "high"
"#,
    )
    .unwrap();
    let (code, out, err) = run(&[
        "check",
        "--config",
        "fixtures/seed/security-config.json",
        "--settings",
        settings.to_str().unwrap(),
        "--dir",
        "fixtures/seed",
    ]);
    assert_eq!(code, 0, "{err}");
    // The seed sets notificationEmails and an escalation webhook: every
    // critical alert goes to both; disabled_tool's also to siem.
    assert!(
        out.contains("critical alerts of disabled_tool go to: siem, escalation_webhook, notification_emails\n"),
        "{out}"
    );
    let others = out
        .lines()
        .find(|l| l.starts_with("critical alerts of rapid_tool_usage, unusual_hours, "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        others.ends_with(" go to: escalation_webhook, notification_emails")
            && !others.contains("disabled_tool"),
        "every other rule: {others}"
    );
    assert!(
        err.contains("warning: email \"secops\": password_env MCPWATCH_TEST_CHECK_UNSET_PASSWORD is not set in this environment"),
        "{err}"
    );
    assert!(
        err.contains("warning: webhook \"siem\": secret_env MCPWATCH_TEST_CHECK_UNSET_SECRET is not set in this environment"),
        "{err}"
    );
}

#[test]
fn the_seed_limits_that_switch_rules_on_are_checked_at_their_place() {
    let f = "fixtures/config/seeded-mistakes.json";
    let (code, out, err) = run(&["check", "--config", f]);
    assert_eq!(code, 2);
    assert_eq!(out, "");
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        [
            format!(
                "{f}:4:80: authentication.tokenRotation.notifyBeforeDays: notifyBeforeDays (7) must be less than intervalDays (7); expected intervalDays > notifyBeforeDays ≥ 0"
            ),
            format!(
                "{f}:6:59: monitoring.healthCheckInterval: 0 is out of range; expected a number of seconds > 0 (up to 1000000000)"
            ),
            format!(
                "{f}:7:59: rateLimiting.requestsPerMinute: 0 is out of range; expected a whole number from 1 to 1000000"
            ),
            format!(
                "{f}:7:76: rateLimiting.burstLimit: expected a whole number from 1 to 1000000, got 2.5"
            ),
        ]
    );
}

#[test]
fn alertmanager_channels_are_checked_and_one_per_url_takes_the_routes() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[channels.alertmanager]]\nname = \"am\"\nurls = [\"am-1:9093\"]\nbasic_auth_user = \"ops\"\nresolve_after = \"soon\"\n",
    )
    .unwrap();
    let (code, _, err) = run(&["check", "--settings", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    for want in [
        "bad.toml:3:9: channels.alertmanager[0].urls[0]: \"am-1:9093\" is not a URL",
        "bad.toml:5:17: channels.alertmanager[0].resolve_after: ",
        "bad.toml:4:19: channels.alertmanager[0].basic_auth_user: basic_auth_user and password_env go together",
    ] {
        assert!(err.contains(want), "{want} in\n{err}");
    }
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[[channels.alertmanager]]\nname = \"am\"\nurls = [\"http://am-1:9093\", \"http://am-2:9093/\"]\n\n\
         [[routes]]\nchannels = [\"am\"]\nrules = [\"disabled_tool\"]\n",
    )
    .unwrap();
    let (code, out, err) = run(&["check", "--settings", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("critical alerts of disabled_tool go to: am[0], am[1]"),
        "{out}"
    );
}
