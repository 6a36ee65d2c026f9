//! `mcpwatch report` (SPEC §7, issue 7): exact figures on the fixture in
//! `fixtures/report/basic` (see its README), through the library and through
//! the real binary.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use chrono::DateTime;
use mcpwatch::event::Millis;
use mcpwatch::ingest::merge::TimeRange;
use mcpwatch::policy::ToolClass;
use mcpwatch::report::model::Report;
use mcpwatch::report::{Caps, ReportOptions, ToolClassifier, build};
use serde_json::Value;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/report/basic")
}

fn at(s: &str) -> Millis {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

/// A copy of the fixture's audit directory (fresh mtimes, writable).
fn audit_copy() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let audit = d.path().join("audit");
    std::fs::create_dir(&audit).unwrap();
    for e in std::fs::read_dir(fixture().join("audit")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), audit.join(e.file_name())).unwrap();
    }
    (d, audit)
}

/// The seed guide's fine-grained rules, as far as the fixture needs them.
struct SeedPolicy;

impl ToolClassifier for SeedPolicy {
    fn explain_tool(&self, tool: &str) -> (ToolClass, String) {
        if tool.starts_with("admin_") {
            (ToolClass::Disabled, "pattern admin_*".into())
        } else {
            (ToolClass::RequiresApproval, "default".into())
        }
    }
}

fn day_20() -> TimeRange {
    TimeRange {
        since: Some(at("2026-11-20T00:00:00Z")),
        until: Some(at("2026-11-21T00:00:00Z")),
    }
}

fn day_report<'a>(dir: &Path, f: impl FnOnce(&mut ReportOptions<'a>)) -> Report {
    let mut o = ReportOptions::new(dir, day_20(), at("2026-11-21T12:00:00Z"));
    o.parser.now_ms = at("2026-11-23T00:00:00Z");
    f(&mut o);
    build(&o).unwrap()
}

fn tool<'r>(r: &'r Report, server: &str, tool: &str) -> &'r mcpwatch::report::model::ToolRow {
    r.tools
        .iter()
        .find(|t| t.server == server && t.tool == tool)
        .unwrap_or_else(|| panic!("no row {server}/{tool}"))
}

// ---------------------------------------------------------------- library

#[test]
fn day_report_counts_calls_outcomes_approvals_errors_per_tool() {
    let (_d, audit) = audit_copy();
    let r = day_report(&audit, |_| {});
    assert_eq!(r.totals.tool_calls, 10);
    assert_eq!(r.totals.approvals, 5);
    assert_eq!(r.totals.errors, 3);
    assert_eq!(
        (r.totals.servers, r.totals.tools, r.totals.users),
        (3, 5, 3)
    );
    let names: Vec<(&str, &str)> = r
        .tools
        .iter()
        .map(|t| (t.server.as_str(), t.tool.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("admin", "admin_reset"),
            ("calendar", "calendar_create"),
            ("calendar", "calendar_read"),
            ("gmail", "email_read"),
            ("gmail", "email_send"),
        ]
    );

    let read = tool(&r, "gmail", "email_read");
    assert_eq!(read.calls, 5);
    assert_eq!(
        (
            read.outcomes.success,
            read.outcomes.error,
            read.outcomes.denied
        ),
        (4, 1, 0)
    );
    assert_eq!(read.errors.total, 2);
    assert_eq!(read.errors.by_type["upstream_timeout"], 2);
    // 10, 20, 30 (latency_ms alias), 40, 50: all below 256, exact.
    let l = &read.latency_ms;
    assert_eq!(
        (l.count, l.p50, l.p95, l.p99, l.max),
        (5, Some(30), Some(50), Some(50), Some(50))
    );

    let send = tool(&r, "gmail", "email_send");
    assert_eq!(send.calls, 2);
    assert_eq!(send.outcomes.denied, 1);
    let a = &send.approvals;
    assert_eq!((a.decisions, a.approve, a.deny, a.timeout), (2, 1, 1, 0));
    assert_eq!(
        (a.approve_rate, a.deny_rate, a.timeout_rate),
        (Some(0.5), Some(0.5), Some(0.0))
    );
    // require_approval_all is the API name of always_ask.
    assert_eq!(a.by_mode.len(), 1);
    assert_eq!(a.by_mode[0].mode, "always_ask");
    assert_eq!(
        (send.latency_ms.p50, send.latency_ms.max),
        (Some(5), Some(150))
    );

    let admin = tool(&r, "admin", "admin_reset");
    let a = &admin.approvals;
    // "result": "rejected" is a deny; a timeout is its own decision.
    assert_eq!((a.approve, a.deny, a.timeout), (0, 1, 1));
    assert_eq!(a.by_mode[0].mode, "fine_grained");
    assert_eq!(a.timeout_rate, Some(0.5));

    // tool_latency_secs 0.2 is 200 ms.
    let create = tool(&r, "calendar", "calendar_create");
    assert_eq!(create.latency_ms.max, Some(200));
    assert_eq!(create.errors.by_type["rate_limited"], 1);
    // No duration: no percentiles.
    let cread = tool(&r, "calendar", "calendar_read");
    assert_eq!(cread.latency_ms.count, 0);
    assert_eq!(cread.latency_ms.p50, None);
    assert_eq!(cread.approvals.approve_rate, None);

    let gmail = r.servers.iter().find(|s| s.server == "gmail").unwrap();
    assert_eq!((gmail.tools, gmail.calls, gmail.errors.total), (2, 7, 2));
    // 5, 10, 20, 30, 40, 50, 150.
    assert_eq!(
        (
            gmail.latency_ms.count,
            gmail.latency_ms.p50,
            gmail.latency_ms.p95,
            gmail.latency_ms.max
        ),
        (7, Some(30), Some(150), Some(150))
    );
    assert!(r.other.is_none());
    assert_eq!(r.limits.pairs_overflow_events, 0);
}

#[test]
fn day_report_users_hours_new_tools_alerts_rejects() {
    let (_d, audit) = audit_copy();
    let r = day_report(&audit, |_| {});
    let users: Vec<(&str, u64, u64, u64, u64, u64, u64)> = r
        .users
        .iter()
        .map(|u| {
            (
                u.user.as_str(),
                u.calls,
                u.denied_calls,
                u.approvals,
                u.denials,
                u.timeouts,
                u.errors,
            )
        })
        .collect();
    assert_eq!(
        users,
        [
            ("u-1", 5, 0, 0, 0, 0, 0),
            ("u-2", 3, 1, 1, 1, 0, 2),
            ("u-3", 2, 0, 1, 1, 1, 1),
        ]
    );
    assert_eq!(
        r.users[0].first_seen.as_deref(),
        Some("2026-11-20T09:00:00.000Z")
    );
    assert_eq!(
        r.users[0].last_seen.as_deref(),
        Some("2026-11-20T23:59:59.999Z")
    );
    // u-3's first event is an approval, before their first call.
    assert_eq!(
        r.users[2].first_seen.as_deref(),
        Some("2026-11-20T13:59:00.000Z")
    );

    let mut hours = [0u64; 24];
    hours[9] = 4;
    hours[10] = 2;
    hours[14] = 2;
    hours[15] = 1;
    hours[23] = 1;
    assert_eq!(r.hour_of_day, hours);

    // gmail's tools were called on 2026-11-10 (in the rotated file).
    let new: Vec<(&str, &str, &str, u64)> = r
        .new_tools
        .listed
        .iter()
        .map(|n| {
            (
                n.tool.as_str(),
                n.user.as_str(),
                n.evidence.file.as_str(),
                n.evidence.line,
            )
        })
        .collect();
    assert_eq!(
        new,
        [
            ("calendar_create", "u-3", "tool-usage.log", 7),
            ("admin_reset", "u-3", "tool-usage.log", 8),
            ("calendar_read", "u-1", "tool-usage.log", 11),
        ]
    );
    assert_eq!(r.new_tools.total, 3);
    assert!(!r.new_tools.approximate);

    // Without a policy, disabled tools are not judged.
    assert!(r.disabled_tool_invocations.is_none());

    assert_eq!(r.alerts.total, 3);
    assert_eq!(r.alerts.unreadable_lines, 1);
    assert_eq!(
        r.alerts.by_severity.values().copied().collect::<Vec<_>>(),
        // critical, high, low, medium (map order)
        [1, 1, 0, 1]
    );
    let rules: Vec<&str> = r.alerts.by_rule.iter().map(|a| a.rule.as_str()).collect();
    assert_eq!(
        rules,
        ["approval_bypass", "disabled_tool", "rapid_tool_usage"]
    );
    assert_eq!(r.approval_bypasses.total, 1);
    let b = &r.approval_bypasses.listed[0];
    assert_eq!(b.request_id.as_deref(), Some("r-30"));
    assert_eq!(b.evidence.as_ref().map(|e| e.line), Some(8));

    // The garbage line and the empty line after the 14:30 call.
    assert_eq!(r.rejected.total, 2);
    assert_eq!(r.rejected.by_reason["not_json"], 1);
    assert_eq!(r.rejected.by_reason["empty"], 1);
    assert_eq!(r.rejected.by_reason.len(), 7);

    assert_eq!(
        r.coverage.oldest_record.as_deref(),
        Some("2026-11-10T09:00:00.000Z")
    );
    assert_eq!(r.coverage.oldest_record_age_days, Some(11));
    assert_eq!(r.coverage.retention_status, "shorter_than_retention");
    assert!(r.coverage.days_without_logs.is_empty());
}

#[test]
fn disabled_tool_invocations_are_listed_with_place_when_a_policy_is_known() {
    let (_d, audit) = audit_copy();
    let policy = SeedPolicy;
    let r = day_report(&audit, |o| o.policy = Some(&policy));
    let l = r.disabled_tool_invocations.expect("policy known");
    assert_eq!(l.total, 1);
    let i = &l.listed[0];
    assert_eq!(
        (
            i.ts.as_str(),
            i.user.as_str(),
            i.server.as_str(),
            i.tool.as_str()
        ),
        ("2026-11-20T14:30:00.000Z", "u-3", "admin", "admin_reset")
    );
    assert_eq!(
        (i.outcome.as_str(), i.rule.as_str()),
        ("success", "pattern admin_*")
    );
    assert_eq!(
        (i.evidence.file.as_str(), i.evidence.line),
        ("tool-usage.log", 8)
    );
}

#[test]
fn percentiles_are_within_hdrhistogram_precision() {
    let d = tempfile::tempdir().unwrap();
    let mut lines = String::new();
    for i in 1..=100 {
        lines.push_str(&format!(
            "{{\"ts\":\"2026-11-20T10:00:00Z\",\"server_name\":\"s\",\"tool_name\":\"small\",\"duration_ms\":{i}}}\n"
        ));
    }
    for i in 0..1000 {
        lines.push_str(&format!(
            "{{\"ts\":\"2026-11-20T11:00:00Z\",\"server_name\":\"s\",\"tool_name\":\"big\",\"duration_ms\":{}}}\n",
            1000 + i
        ));
    }
    std::fs::write(d.path().join("tool-usage.log"), lines).unwrap();
    let r = day_report(d.path(), |_| {});
    let small = &tool(&r, "s", "small").latency_ms;
    assert_eq!(
        (small.count, small.p50, small.p95, small.p99, small.max),
        (100, Some(50), Some(95), Some(99), Some(100))
    );
    let big = &tool(&r, "s", "big").latency_ms;
    let near = |got: Option<u64>, want: f64| {
        let g = got.unwrap() as f64;
        assert!(
            (g - want).abs() <= want / 100.0,
            "{g} not within 1% of {want}"
        );
    };
    near(big.p50, 1499.0);
    near(big.p95, 1949.0);
    near(big.p99, 1989.0);
    // The maximum is exact, not a bucket bound.
    assert_eq!(big.max, Some(1999));
}

#[test]
fn pairs_beyond_the_cap_fold_into_other_and_are_counted() {
    let (_d, audit) = audit_copy();
    let r = day_report(&audit, |o| {
        o.caps = Caps {
            max_pairs: 2,
            ..Caps::default()
        }
    });
    assert_eq!(r.tools.len(), 2);
    let other = r.other.as_ref().expect("overflow row");
    assert_eq!(other.server, "(other)");
    let in_rows: u64 = r.tools.iter().map(|t| t.calls).sum();
    assert_eq!(in_rows + other.calls, 10);
    assert!(r.limits.pairs_overflow_events > 0);
    assert_eq!(r.limits.max_pairs, 2);
}

#[test]
fn files_written_before_the_period_give_the_same_report() {
    let (_d, audit) = audit_copy();
    let plain = day_report(&audit, |_| {});
    // The rotated file was last written on 2026-11-11: read outside the merge.
    let f = std::fs::File::options()
        .write(true)
        .open(audit.join("tool-usage.log.20261111-000000"))
        .unwrap();
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(at("2026-11-11T00:00:00Z") as u64);
    f.set_modified(t).unwrap();
    drop(f);
    let old = day_report(&audit, |_| {});
    assert_eq!(plain, old);
}

#[test]
fn filters_select_events_by_their_own_fields() {
    let (_d, audit) = audit_copy();
    let r = day_report(&audit, |o| o.token = Some("tok-b".into()));
    assert_eq!(
        (r.totals.tool_calls, r.totals.approvals, r.totals.errors),
        (3, 2, 1)
    );
    assert_eq!(r.users.len(), 1);
    assert_eq!(r.users[0].user, "u-2");
    assert_eq!(r.filters.token_requests, Some(2));
    // Alert keys carry no token: alerts stay, except the bypass of r-30,
    // which is not one of tok-b's requests.
    assert_eq!(r.alerts.total, 2);
    assert_eq!(r.approval_bypasses.total, 0);

    // tok-c's approvals carry no token_id: they join through request ids.
    let r = day_report(&audit, |o| o.token = Some("tok-c".into()));
    assert_eq!(
        (r.totals.tool_calls, r.totals.approvals, r.totals.errors),
        (2, 2, 1)
    );
    assert_eq!(tool(&r, "admin", "admin_reset").approvals.timeout, 1);
    assert_eq!(tool(&r, "admin", "admin_reset").approvals.deny, 0);
    assert_eq!(r.approval_bypasses.total, 1);
    assert!(r.filters.token_requests_complete);

    let r = day_report(&audit, |o| o.user = Some("u-1".into()));
    assert_eq!(
        (r.totals.tool_calls, r.totals.approvals, r.totals.errors),
        (5, 0, 0)
    );
    // disabled_tool is keyed by u-3: dropped; the bypass has no user key: kept.
    assert_eq!(r.alerts.total, 2);

    let r = day_report(&audit, |o| o.server = Some("gmail".into()));
    assert_eq!(r.totals.tool_calls, 7);
    assert!(r.tools.iter().all(|t| t.server == "gmail"));
    assert_eq!(r.limits.events_filtered_out, 18 - (7 + 2 + 2));
}

#[test]
fn policy_info_counts_each_list() {
    let raw = std::fs::read_to_string(fixture().join("security-config.json")).unwrap();
    let p =
        mcpwatch::report::policy_info(Some(mcpwatch::event::ApprovalMode::FineGrained), Some(&raw));
    assert!(p.known);
    assert_eq!(p.approval_mode.as_deref(), Some("fine_grained"));
    let c = |k: &str| (p.lists[k].patterns, p.lists[k].tools);
    assert_eq!(c("auto_approved"), (3, 2));
    assert_eq!(c("requires_approval"), (3, 2));
    assert_eq!(c("disabled"), (2, 2));
    assert!(!mcpwatch::report::policy_info(None, Some(&raw)).known);
}

// ----------------------------------------------------------------- binary

fn mcpwatch(cwd: &Path, now: &str) -> Command {
    let mut c = Command::cargo_bin("mcpwatch").unwrap();
    c.current_dir(cwd)
        .env("MCPWATCH_NOW", now)
        .env_remove("RUST_LOG");
    c
}

fn json_of(cmd: &mut Command) -> Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn report_json(audit: &Path, now: &str, args: &[&str]) -> Value {
    let cwd = audit.parent().unwrap();
    let mut c = mcpwatch(cwd, now);
    c.arg("report")
        .arg("--dir")
        .arg(audit)
        .args(["--format", "json"])
        .args(args);
    json_of(&mut c)
}

#[test]
fn cli_daily_period_is_yesterday() {
    let (_d, audit) = audit_copy();
    let j = report_json(&audit, "2026-11-21T12:00:00Z", &["--period", "daily"]);
    assert_eq!(j["period"]["name"], "daily");
    assert_eq!(j["period"]["since"], "2026-11-20T00:00:00.000Z");
    assert_eq!(j["period"]["until"], "2026-11-21T00:00:00.000Z");
    assert_eq!(j["totals"]["tool_calls"], 10);
    assert_eq!(j["generated_at"], "2026-11-21T12:00:00.000Z");
    // At 00:00:00 of the 21st the 20th is complete: same report.
    let k = report_json(&audit, "2026-11-21T00:00:00Z", &["--period", "daily"]);
    assert_eq!(k["totals"], j["totals"]);
}

#[test]
fn cli_weekly_period_is_the_last_full_iso_week_with_gaps() {
    let (_d, audit) = audit_copy();
    // Monday 2026-11-23: the week Mon 16 to Mon 23.
    let j = report_json(&audit, "2026-11-23T08:00:00Z", &["--period", "weekly"]);
    assert_eq!(j["period"]["since"], "2026-11-16T00:00:00.000Z");
    assert_eq!(j["period"]["until"], "2026-11-23T00:00:00.000Z");
    assert_eq!(j["totals"]["tool_calls"], 11);
    assert_eq!(j["totals"]["errors"], 4);
    assert_eq!(
        j["coverage"]["days_without_logs"],
        serde_json::json!(["2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19"])
    );
    assert_eq!(j["coverage"]["first_day"], "2026-11-16");
    assert_eq!(j["coverage"]["last_day"], "2026-11-22");
}

#[test]
fn cli_monthly_period_is_the_last_calendar_month() {
    let (_d, audit) = audit_copy();
    let j = report_json(&audit, "2026-12-05T10:00:00Z", &["--period", "monthly"]);
    assert_eq!(j["period"]["since"], "2026-11-01T00:00:00.000Z");
    assert_eq!(j["period"]["until"], "2026-12-01T00:00:00.000Z");
    // Everything on disk is in November.
    assert_eq!(j["totals"]["tool_calls"], 13);
    assert_eq!(j["totals"]["approvals"], 6);
    assert_eq!(j["new_tools"]["total"], 5);
    assert_eq!(j["limits"]["events_outside_period"], 0);
    // 30 days, data on the 10th, 20th, 21st, 22nd.
    assert_eq!(j["coverage"]["days_without_logs_total"], 26);
    // In October there is nothing.
    let k = report_json(&audit, "2026-11-05T10:00:00Z", &["--period", "monthly"]);
    assert_eq!(k["totals"]["tool_calls"], 0);
    assert_eq!(k["coverage"]["days_without_logs_total"], 31);
}

#[test]
fn cli_since_24h_counts_back_from_now_inclusive() {
    let (_d, audit) = audit_copy();
    let j = report_json(&audit, "2026-11-21T09:00:00Z", &["--since", "24h"]);
    assert_eq!(j["period"]["since"], "2026-11-20T09:00:00.000Z");
    assert_eq!(j["period"]["until"], Value::Null);
    // The 09:00:00 call is in; so are the 21st and the error of the 22nd.
    assert_eq!(j["totals"]["tool_calls"], 11);
    assert_eq!(j["totals"]["errors"], 4);
    let k = report_json(&audit, "2026-11-21T09:00:00.001Z", &["--since", "24h"]);
    assert_eq!(k["totals"]["tool_calls"], 10);
}

#[test]
fn cli_token_user_server_filters() {
    let (_d, audit) = audit_copy();
    let now = "2026-11-21T12:00:00Z";
    let j = report_json(&audit, now, &["--period", "daily", "--token", "tok-b"]);
    assert_eq!(j["filters"]["token"], "tok-b");
    assert_eq!(j["totals"]["tool_calls"], 3);
    assert_eq!(j["totals"]["approvals"], 2);
    assert_eq!(j["totals"]["errors"], 1);
    assert_eq!(j["users"][0]["user"], "u-2");
    let j = report_json(&audit, now, &["--period", "daily", "--token", "tok-c"]);
    assert_eq!(j["totals"]["approvals"], 2);
    assert_eq!(j["filters"]["token_requests"], 2);
    assert_eq!(j["approval_bypasses"]["listed"][0]["request_id"], "r-30");
    let j = report_json(&audit, now, &["--period", "daily", "--user", "u-3"]);
    assert_eq!(j["totals"]["tool_calls"], 2);
    assert_eq!(j["totals"]["approvals"], 3);
    assert_eq!(j["alerts"]["total"], 2); // disabled_tool (u-3) and the bypass
    let j = report_json(&audit, now, &["--period", "daily", "--server", "calendar"]);
    assert_eq!(j["totals"]["tool_calls"], 2);
    assert_eq!(j["servers"].as_array().unwrap().len(), 1);
    assert_eq!(j["alerts"]["total"], 2); // rapid (no server key) and the bypass
}

#[test]
fn cli_csv_reads_back_and_its_totals_equal_the_json_report() {
    let (_d, audit) = audit_copy();
    let now = "2026-11-21T12:00:00Z";
    let j = report_json(&audit, now, &["--period", "daily"]);
    let out = mcpwatch(audit.parent().unwrap(), now)
        .arg("report")
        .arg("--dir")
        .arg(&audit)
        .args(["--period", "daily", "--format", "csv"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut rd = csv::Reader::from_reader(&out.stdout[..]);
    let header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "server",
            "tool",
            "calls",
            "success",
            "error",
            "denied",
            "approvals",
            "denials",
            "timeouts",
            "errors",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "max_ms"
        ]
    );
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 5);
    let sum = |col: usize| -> u64 { rows.iter().map(|r| r[col].parse::<u64>().unwrap()).sum() };
    let tools = j["tools"].as_array().unwrap();
    let jsum = |f: &dyn Fn(&Value) -> &Value| -> u64 {
        tools.iter().map(|t| f(t).as_u64().unwrap()).sum()
    };
    assert_eq!(sum(2), j["totals"]["tool_calls"].as_u64().unwrap());
    assert_eq!(sum(3), jsum(&|t| &t["outcomes"]["success"]));
    assert_eq!(sum(4), jsum(&|t| &t["outcomes"]["error"]));
    assert_eq!(sum(5), jsum(&|t| &t["outcomes"]["denied"]));
    assert_eq!(sum(6), jsum(&|t| &t["approvals"]["approve"]));
    assert_eq!(sum(7), jsum(&|t| &t["approvals"]["deny"]));
    assert_eq!(sum(8), jsum(&|t| &t["approvals"]["timeout"]));
    assert_eq!(sum(9), j["totals"]["errors"].as_u64().unwrap());
    let read = rows.iter().find(|r| &r[1] == "email_read").unwrap();
    assert_eq!(
        read.iter().collect::<Vec<_>>(),
        [
            "gmail",
            "email_read",
            "5",
            "4",
            "1",
            "0",
            "0",
            "0",
            "0",
            "2",
            "30",
            "50",
            "50",
            "50"
        ]
    );
    let cread = rows.iter().find(|r| &r[1] == "calendar_read").unwrap();
    assert_eq!(&cread[10], "");
}

#[test]
fn cli_csv_quotes_awkward_names_and_defuses_formulas() {
    let d = tempfile::tempdir().unwrap();
    let audit = d.path().join("audit");
    std::fs::create_dir(&audit).unwrap();
    std::fs::write(
        audit.join("tool-usage.log"),
        concat!(
            r#"{"ts":"2026-11-20T10:00:00Z","server_name":"a,b \"q\"","tool_name":"=HYPERLINK(1)","duration_ms":3}"#,
            "\n",
            r#"{"ts":"2026-11-20T10:00:01Z","server_name":"line\nbreak","tool_name":"t"}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = mcpwatch(d.path(), "2026-11-21T12:00:00Z")
        .arg("report")
        .arg("--dir")
        .arg(&audit)
        .args(["--format", "csv"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut rd = csv::Reader::from_reader(&out.stdout[..]);
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(&rows[0][0], "a,b \"q\"");
    assert_eq!(&rows[0][1], "'=HYPERLINK(1)");
    // SPEC §8: a CSV shows control characters from logs escaped, a line
    // break included (RFC 4180 quoting alone would keep it raw).
    assert_eq!(&rows[1][0], "line\\nbreak");
}

#[test]
fn cli_report_over_zst_archives_equals_report_over_plain_files() {
    let (_d, plain) = audit_copy();
    let (_e, packed) = audit_copy();
    for e in std::fs::read_dir(&packed).unwrap() {
        let p = e.unwrap().path();
        let data = std::fs::read(&p).unwrap();
        let mut name = p.file_name().unwrap().to_os_string();
        name.push(".zst");
        std::fs::write(
            p.with_file_name(name),
            zstd::encode_all(&data[..], 3).unwrap(),
        )
        .unwrap();
        std::fs::remove_file(&p).unwrap();
    }
    let now = "2026-11-23T08:00:00Z";
    let normalize = |mut v: Value| {
        v["inputs"]["bytes"] = Value::Null;
        v["inputs"]["dir"] = Value::Null;
        let s = serde_json::to_string(&v).unwrap().replace(".zst", "");
        serde_json::from_str::<Value>(&s).unwrap()
    };
    let a = normalize(report_json(&plain, now, &["--period", "weekly"]));
    let b = normalize(report_json(&packed, now, &["--period", "weekly"]));
    assert_eq!(a["totals"]["tool_calls"], 11);
    assert_eq!(a["alerts"]["total"], 4);
    assert_eq!(a, b);
}

#[test]
fn cli_compliance_lists_retention_gaps_policy_invocations_and_bypasses() {
    let (d, audit) = audit_copy();
    std::fs::copy(
        fixture().join("security-config.json"),
        d.path().join("security-config.json"),
    )
    .unwrap();
    let out = mcpwatch(d.path(), "2026-11-23T08:00:00Z")
        .arg("report")
        .arg("--dir")
        .arg(&audit)
        .args(["--period", "weekly", "--format", "compliance"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "Period covered:   weekly: 2026-11-16T00:00:00.000Z to 2026-11-23T00:00:00.000Z",
        "Retention setting:      90 days",
        "Oldest record on disk:  2026-11-10T09:00:00.000Z (12 days old)",
        "shorter_than_retention",
        "Days checked: 2026-11-16 to 2026-11-22",
        "  4 day(s):",
        "    2026-11-19",
        "Approval mode: fine_grained",
        "disabled           2 pattern(s), 2 tool(s)",
        "Disabled-tool invocations: 1",
        "tool-usage.log:8",
        "Approval bypasses (approval_bypass alerts): 1",
        "r-30",
        "Alerts: 4 (low 1, medium 1, high 1, critical 1)",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn cli_text_escapes_control_characters_from_logs() {
    let d = tempfile::tempdir().unwrap();
    let audit = d.path().join("audit");
    std::fs::create_dir(&audit).unwrap();
    std::fs::write(
        audit.join("tool-usage.log"),
        "{\"ts\":\"2026-11-20T10:00:00Z\",\"user_id\":\"u\\u001b[2J\",\"server_name\":\"s\",\"tool_name\":\"t\\rfake\"}\n",
    )
    .unwrap();
    let out = mcpwatch(d.path(), "2026-11-21T12:00:00Z")
        .arg("report")
        .arg("--dir")
        .arg(&audit)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\u{1b}') && !text.contains('\r'));
    assert!(text.contains("u\\u{1b}[2J"));
    assert!(text.contains("t\\rfake"));
    assert!(text.contains("Tool calls by hour of day (UTC): peak 1 at 10h"));
}

#[test]
fn cli_period_with_since_is_a_usage_error() {
    let (_d, audit) = audit_copy();
    mcpwatch(audit.parent().unwrap(), "2026-11-21T12:00:00Z")
        .arg("report")
        .arg("--dir")
        .arg(&audit)
        .args(["--period", "daily", "--since", "24h"])
        .assert()
        .code(2);
    mcpwatch(audit.parent().unwrap(), "not a time")
        .arg("report")
        .arg("--dir")
        .arg(&audit)
        .assert()
        .code(2);
    mcpwatch(audit.parent().unwrap(), "2026-11-21T12:00:00Z")
        .arg("report")
        .arg("--dir")
        .arg(audit.join("missing"))
        .assert()
        .code(2);
}

#[test]
fn rejected_lines_take_the_time_of_their_neighbours_in_the_file() {
    let d = tempfile::tempdir().unwrap();
    // Two bad lines before the first accepted one (in the period), one after
    // a line of the next day (outside).
    std::fs::write(
        d.path().join("errors.log"),
        concat!(
            "garbage\n",
            "[1,2]\n",
            r#"{"ts":"2026-11-20T08:00:00Z","error_type":"x"}"#,
            "\n",
            r#"{"ts":"2026-11-21T08:00:00Z","error_type":"x"}"#,
            "\n",
            r#"{"no_ts":1}"#,
            "\n",
        ),
    )
    .unwrap();
    // A file with no accepted line: its modification time (now) decides.
    std::fs::write(
        d.path().join("approvals.log"),
        "{\"ts\":\"1999-12-31T23:59:59Z\"}\n",
    )
    .unwrap();
    let r = day_report(d.path(), |_| {});
    assert_eq!(r.rejected.by_reason["not_json"], 1);
    assert_eq!(r.rejected.by_reason["not_object"], 1);
    assert_eq!(r.rejected.by_reason["missing_ts"], 0);
    assert_eq!(r.rejected.by_reason["bad_ts"], 0);
    assert_eq!(r.rejected.total, 2);
    let all = {
        let mut o = ReportOptions::new(d.path(), TimeRange::default(), at("2026-11-21T12:00:00Z"));
        o.parser.now_ms = at("2026-11-23T00:00:00Z");
        build(&o).unwrap()
    };
    assert_eq!(all.rejected.total, 4);
    assert_eq!(all.rejected.by_reason["bad_ts"], 1);
}

#[test]
fn cli_report_on_one_core_equals_the_report_on_two() {
    // On two cores the report reads and parses on a thread of its own;
    // pinned to one (taskset), on the calling thread. Rejected lines are
    // attributed to days by the events around them, so their order among
    // the events matters: the fixture has some.
    let (_d, audit) = audit_copy();
    let args = [
        "--since",
        "2026-11-01T00:00:00Z",
        "--until",
        "2026-12-01T00:00:00Z",
    ];
    let two = report_json(&audit, "2026-11-21T08:00:00Z", &args);
    let bin = assert_cmd::cargo::cargo_bin("mcpwatch");
    let mut one = Command::new("taskset");
    one.current_dir(audit.parent().unwrap())
        .env("MCPWATCH_NOW", "2026-11-21T08:00:00Z")
        .env_remove("RUST_LOG")
        .arg("-c")
        .arg("0")
        .arg(&bin)
        .arg("report")
        .arg("--dir")
        .arg(&audit)
        .args(["--format", "json"])
        .args(args);
    let one = json_of(&mut one);
    assert!(
        two["rejected"]["total"].as_u64().unwrap() > 0,
        "{}",
        two["rejected"]
    );
    assert_eq!(one, two);
}
