//! Incident actions (SPEC §5) through the real binary with a real shell
//! script: once per qualifying alert with the firing line's fields in the
//! environment and the alert on stdin, never for lower severities, again
//! after a `kill -9` between alert and completion, never while
//! `autoDisableOnSuspicious` is false, retried and dead-lettered with the
//! exit status and stderr tail; a hostile server name reaches the script
//! only as an environment value. Plus `check` and `test-alert` for actions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::daemon::{BIN, Project, call_line};
use crate::support::wait_until;

/// 2026-11-20T12:00:00Z: an ordinary hour, so only the planted lines alert.
const BASE: i64 = 1_795_176_000_000;

/// A server name meant to break out of anything that builds a command or a
/// log line from it: a terminal escape, a BEL, a newline, command
/// substitutions and a quote.
const EVIL_SERVER: &str = "evil\u{1b}]0;pwned\u{7}\n$(touch PWNED1)`touch PWNED2`'\"";

fn policy(auto_disable: bool) -> String {
    format!(
        r#"{{
  "approvalMode": "fine_grained",
  "rules": {{
    "autoApproved": {{ "patterns": ["*_read"], "tools": ["calendar_read"] }},
    "disabled": {{ "patterns": ["admin_*"], "tools": ["admin_delete"] }}
  }},
  "incidentResponse": {{ "autoDisableOnSuspicious": {auto_disable} }}
}}"#
    )
}

/// Records each run as a directory `runs/<n>/` holding the environment
/// values (byte for byte) and stdin; with `gate`, waits for the file
/// `gate` before finishing (at most 30 s), writing `done` after.
const RECORDER: &str = r#"#!/bin/sh
d="$RUNS/$(date +%s%N)-$$"
mkdir -p "$d"
printf '%s' "$MCPWATCH_ALERT_ID" > "$d/id"
printf '%s' "$MCPWATCH_RULE" > "$d/rule"
printf '%s' "$MCPWATCH_SEVERITY" > "$d/severity"
printf '%s' "$MCPWATCH_SERVER_NAME" > "$d/server"
printf '%s' "$MCPWATCH_USER_ID" > "$d/user"
printf '%s' "$MCPWATCH_TOOL_NAME" > "$d/tool"
cat > "$d/stdin"
if [ -n "$GATE" ]; then
  i=0
  while [ ! -e "$GATE" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
fi
touch "$d/done"
"#;

/// A project with the recording script as action `disable` (default
/// `min_severity` high), `RUNS` (and `GATE`) in the daemon's environment.
fn project(auto_disable: bool, extra_settings: &str) -> Project {
    let p = Project::new();
    std::fs::write(p.path().join("security-config.json"), policy(auto_disable)).unwrap();
    std::fs::write(p.path().join("disable.sh"), RECORDER).unwrap();
    std::fs::write(
        p.path().join("mcpwatch.toml"),
        format!(
            "[[actions]]\nname = \"disable\"\ncommand = 'sh ./disable.sh \"$MCPWATCH_SERVER_NAME\"'\ntimeout = \"60s\"\n{extra_settings}"
        ),
    )
    .unwrap();
    p
}

fn runs_dir(p: &Project) -> PathBuf {
    p.path().join("runs")
}

/// Each run's recorded files, by run directory name (start order).
fn runs(p: &Project) -> Vec<BTreeMap<String, String>> {
    let Ok(rd) = std::fs::read_dir(runs_dir(p)) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    dirs.sort();
    dirs.iter()
        .map(|d| {
            let mut m = BTreeMap::new();
            for f in ["id", "rule", "severity", "server", "user", "tool", "stdin"] {
                if let Ok(s) = std::fs::read_to_string(d.join(f)) {
                    m.insert(f.to_string(), s);
                }
            }
            m.insert("done".to_string(), d.join("done").exists().to_string());
            m
        })
        .collect()
}

fn disabled_call(ts_ms: i64, user: &str, server: &str, seq: u64) -> String {
    let ts = chrono::DateTime::from_timestamp_millis(ts_ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ");
    serde_json::json!({
        "ts": ts.to_string(), "request_id": format!("r-{seq}"), "user_id": user,
        "agent_id": "ag-1", "server_name": server, "tool_name": "admin_delete",
        "outcome": "success",
    })
    .to_string()
}

fn env_for(p: &Project, gate: Option<&Path>) -> Vec<(String, String)> {
    let mut v = vec![("RUNS".to_string(), runs_dir(p).display().to_string())];
    if let Some(g) = gate {
        v.push(("GATE".to_string(), g.display().to_string()));
    }
    v
}

fn start(p: &Project, env: &[(String, String)]) -> crate::support::daemon::Daemon {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    p.start_with_env(&[], &env)
}

/// A project whose one disabled-tool alert has started the action, which
/// now waits for `gate` to exist: (project, gate, environment, daemon).
fn run_held_by_its_gate() -> (
    Project,
    PathBuf,
    Vec<(String, String)>,
    crate::support::daemon::Daemon,
) {
    let p = project(true, "");
    let gate = p.path().join("gate");
    p.append("tool-usage.log", &[disabled_call(BASE, "u-1", "gmail", 1)]);
    let env = env_for(&p, Some(&gate));
    let d = start(&p, &env);
    assert!(
        // The run's directory appears before the files the action writes
        // into it: wait for its id.
        wait_until(Duration::from_secs(20), || {
            let r = runs(&p);
            r.len() == 1 && r[0].contains_key("id")
        }),
        "the action started: {}",
        d.stderr()
    );
    (p, gate, env, d)
}

fn alerts_of(p: &Project, rule: &str) -> Vec<serde_json::Value> {
    p.alerts()
        .into_iter()
        .filter(|a| a["rule"] == rule)
        .collect()
}

#[test]
fn action_runs_once_per_qualifying_alert_with_fields_in_env_and_never_injects() {
    let p = project(true, "");
    let mut lines = vec![
        disabled_call(BASE, "u-1", "gmail", 1),
        disabled_call(BASE + 1000, "u-2", EVIL_SERVER, 2),
    ];
    // Eleven calls in 10 s: a medium rapid_tool_usage, below the action's
    // min_severity (high).
    lines.extend((0..11).map(|i| call_line(BASE + 60_000 + i * 1000, "u-3", 10 + i as u64)));
    p.append("tool-usage.log", &lines);
    let d = start(&p, &env_for(&p, None));
    assert!(
        wait_until(Duration::from_secs(20), || runs(&p).len() >= 2
            && runs(&p).iter().all(|r| r["done"] == "true")
            && alerts_of(&p, "rapid_tool_usage").len() == 1),
        "two runs: {:?}\n{}",
        runs(&p),
        d.stderr()
    );
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    let critical = alerts_of(&p, "disabled_tool");
    assert_eq!(critical.len(), 2);
    let r = runs(&p);
    assert_eq!(r.len(), 2, "once per qualifying alert: {r:?}");
    let by_id: BTreeMap<&str, &BTreeMap<String, String>> =
        r.iter().map(|r| (r["id"].as_str(), r)).collect();
    for (a, (user, server)) in critical
        .iter()
        .zip([("u-1", "gmail"), ("u-2", EVIL_SERVER)])
    {
        let id = a["id"].as_str().unwrap();
        let run = by_id
            .get(id)
            .unwrap_or_else(|| panic!("no run for {id}: {r:?}"));
        assert_eq!(run["rule"], "disabled_tool");
        assert_eq!(run["severity"], "critical");
        assert_eq!(
            run["server"], server,
            "the exact value, as an environment variable"
        );
        assert_eq!(run["user"], user);
        assert_eq!(run["tool"], "admin_delete");
        let stdin: serde_json::Value = serde_json::from_str(&run["stdin"]).unwrap();
        assert_eq!(&stdin, a, "the alert's JSON on stdin");
    }
    let rapid = &alerts_of(&p, "rapid_tool_usage")[0];
    assert!(!by_id.contains_key(rapid["id"].as_str().unwrap()));
    for f in ["PWNED1", "PWNED2"] {
        assert!(
            !p.path().join(f).exists(),
            "{f}: a log field was run as code"
        );
    }
}

#[test]
fn action_interrupted_by_kill_9_runs_again_after_restart() {
    let (p, gate, env, d) = run_held_by_its_gate();
    let id = runs(&p)[0]["id"].clone();
    d.kill9();
    // The orphaned first run may finish now; the outbox never heard of it.
    std::fs::write(&gate, "").unwrap();
    let d = start(&p, &env);
    assert!(
        wait_until(Duration::from_secs(20), || {
            let r = runs(&p);
            r.len() == 2 && r.iter().all(|r| r["done"] == "true")
        }),
        "run again after the restart: {:?}\n{}",
        runs(&p),
        d.stderr()
    );
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    let r = runs(&p);
    assert_eq!(r.len(), 2, "at least once, and not more: {r:?}");
    assert!(r.iter().all(|r| r["id"] == id));
    assert_eq!(p.alerts().len(), 1, "the alert itself was not raised twice");
}

#[test]
fn action_never_runs_while_auto_disable_is_false_and_run_says_what_it_would_run() {
    let p = project(false, "");
    p.append(
        "tool-usage.log",
        &[disabled_call(BASE, "u-2", EVIL_SERVER, 1)],
    );
    let d = start(&p, &env_for(&p, None));
    assert!(
        wait_until(Duration::from_secs(20), || {
            p.alerts().len() == 1 && d.stderr().contains("would run")
        }),
        "{}",
        d.stderr()
    );
    let err = d.stderr();
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    assert!(runs(&p).is_empty(), "{:?}", runs(&p));
    let id = p.alerts()[0]["id"].as_str().unwrap().to_string();
    let line = err
        .lines()
        .find(|l| l.contains("would run"))
        .unwrap_or_default();
    assert!(
        line.contains("action \"disable\" would run for alert"),
        "{line}"
    );
    assert!(line.contains(&id), "{line}");
    assert!(
        line.contains("server evil\\u{1b}]0;pwned\\u{7}\\n$(touch PWNED1)"),
        "{line}"
    );
    assert!(
        !err.contains('\u{1b}') && !err.contains('\u{7}'),
        "raw controls in the log"
    );
}

#[test]
fn failing_action_is_retried_then_dead_lettered_with_exit_status_and_stderr_tail() {
    let p = Project::new();
    std::fs::write(p.path().join("security-config.json"), policy(true)).unwrap();
    std::fs::write(
        p.path().join("fail.sh"),
        "#!/bin/sh\necho attempt >> \"$RUNS.attempts\"\necho \"starting\" >&2\necho \"cannot disable $MCPWATCH_SERVER_NAME: 403\" >&2\nexit 7\n",
    )
    .unwrap();
    std::fs::write(
        p.path().join("mcpwatch.toml"),
        "[delivery]\nmax_age = \"3s\"\n\n[[actions]]\nname = \"disable\"\ncommand = \"sh ./fail.sh\"\nmin_severity = \"critical\"\nrules = [\"disabled_tool\"]\n",
    )
    .unwrap();
    p.append("tool-usage.log", &[disabled_call(BASE, "u-1", "gmail", 1)]);
    let attempts = || {
        std::fs::read_to_string(format!("{}.attempts", runs_dir(&p).display()))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let dead_path = p.state().join("dead-letter.ndjson");
    let dead = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&dead_path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let d = start(&p, &env_for(&p, None));
    assert!(
        wait_until(Duration::from_secs(20), || !dead().is_empty()),
        "dead-lettered after max_age: {} attempts\n{}",
        attempts(),
        d.stderr()
    );
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    let dl = dead();
    assert_eq!(dl.len(), 1, "{dl:?}");
    let e = &dl[0];
    assert_eq!(e["channel"], "disable");
    assert_eq!(e["reason"], "max_age");
    assert_eq!(
        e["error"],
        "exit status 7; stderr: starting\\ncannot disable gmail: 403"
    );
    assert_eq!(e["alerts"][0]["id"], p.alerts()[0]["id"]);
    let n = e["attempts"].as_u64().unwrap();
    assert!(n >= 2, "retried before giving up: {n}");
    assert_eq!(attempts() as u64, n, "each attempt ran the script once");
}

fn mcpwatch(p: &Project, args: &[&str], env: &[(String, String)]) -> (i32, String, String) {
    let out = std::process::Command::new(BIN)
        .current_dir(p.path())
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_lists_actions_and_whether_they_run() {
    let p = project(true, "");
    let (code, out, err) = mcpwatch(&p, &["check"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("actions: 1, will run (incidentResponse.autoDisableOnSuspicious is true)\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "action disable: will run for high and above, every rule, timeout 60s: sh ./disable.sh \"$MCPWATCH_SERVER_NAME\"\n"
        ),
        "{out}"
    );
    std::fs::write(p.path().join("security-config.json"), policy(false)).unwrap();
    let (code, out, _) = mcpwatch(&p, &["check"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("actions: 1, will not run (incidentResponse.autoDisableOnSuspicious is not true; run logs what it would have run)\n"), "{out}");
    assert!(out.contains("action disable: would run for high"), "{out}");
}

#[test]
fn check_reports_empty_command_bad_timeout_and_action_as_route_target_at_once() {
    let p = project(true, "");
    std::fs::write(
        p.path().join("mcpwatch.toml"),
        r#"[[channels.webhook]]
name = "siem"
url = "http://127.0.0.1:9/hook"

[[actions]]
name = "disable"
command = "  "
timeout = "soon"

[[actions]]
name = "siem"
command = "true"
min_severity = "severe"

[[routes]]
channels = ["disable"]
"#,
    )
    .unwrap();
    let (code, out, err) = mcpwatch(&p, &["check"], &[]);
    assert_eq!(code, 2, "{out}");
    let want = [
        "mcpwatch.toml:7:11: actions[0].command: must not be empty; expected a shell command such as \"disable-mcp-server.sh \\\"$MCPWATCH_SERVER_NAME\\\"\"",
        "mcpwatch.toml:8:11: actions[0].timeout: ",
        "mcpwatch.toml:11:8: actions[1].name: \"siem\" is already a channel's name; actions and channels share one namespace",
        "mcpwatch.toml:13:16: actions[1].min_severity: unknown value \"severe\"; expected low, medium, high or critical",
        "mcpwatch.toml:16:13: routes[0].channels[0]: \"disable\" is an action; actions are not route targets",
    ];
    for w in want {
        assert!(err.contains(w), "missing {w:?} in:\n{err}");
    }
}

#[test]
fn test_alert_runs_an_action_only_when_named() {
    let p = project(false, "");
    let env = env_for(&p, None);
    let (code, out, err) = mcpwatch(&p, &["test-alert"], &env);
    assert_eq!(code, 2, "no channel: actions do not count\n{out}{err}");
    assert!(
        err.ends_with("(an action runs only when named: --channel NAME)\n"),
        "{err}"
    );
    assert!(runs(&p).is_empty());
    let (code, out, err) = mcpwatch(&p, &["test-alert", "--channel", "disable"], &env);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "disable: ok\n");
    let r = runs(&p);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["rule"], "test_alert");
    assert_eq!(r[0]["severity"], "low");
    assert_eq!(r[0]["server"], "", "the test alert has no firing line");
}

#[test]
fn pending_run_is_dead_lettered_when_restarted_with_actions_off() {
    let (p, gate, env, d) = run_held_by_its_gate();
    d.kill9();
    std::fs::write(&gate, "").unwrap();
    std::fs::write(p.path().join("security-config.json"), policy(false)).unwrap();
    let dead_path = p.state().join("dead-letter.ndjson");
    let d = start(&p, &env);
    assert!(
        wait_until(Duration::from_secs(20), || dead_path.exists()),
        "{}",
        d.stderr()
    );
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    let dl: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&dead_path).unwrap().trim()).unwrap();
    assert_eq!(dl["channel"], "disable");
    assert_eq!(dl["reason"], "actions_off");
    assert_eq!(
        dl["error"],
        "the action does not run: incidentResponse.autoDisableOnSuspicious is not true"
    );
    assert_eq!(runs(&p).len(), 1, "not run again while actions are off");
}
