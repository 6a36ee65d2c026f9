//! `run` as a service (SPEC §9), through the real binary: `SIGHUP` reloads
//! the configuration in the running process (or refuses it whole), the
//! service manager hears READY/RELOADING/STOPPING/WATCHDOG on
//! `NOTIFY_SOCKET`, and no signal but `SIGTERM`/`SIGINT` ends the daemon.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::support::daemon::{Daemon, POLICY, Project, call_line, signal};
use crate::support::delivery::{Receiver, Script, route_toml, webhook_toml};
use crate::support::wait_until;

/// 2026-11-20T12:00:00Z: an ordinary hour in the past.
const BASE: i64 = 1_795_176_000_000;

fn calls(user: &str, t: i64, n: i64, seq: &mut u64) -> Vec<String> {
    (0..n)
        .map(|i| {
            *seq += 1;
            call_line(t + i * 1000, user, *seq)
        })
        .collect()
}

fn write_settings(p: &Project, channel: &str, url: &str, extra: &str) {
    let settings =
        webhook_toml(channel, url, None, "5s") + &route_toml(&[channel], "200ms") + extra;
    std::fs::write(p.path().join("mcpwatch.toml"), settings).unwrap();
}

fn write_rapid(p: &Project, body: &str) {
    std::fs::create_dir_all(p.path().join("rules")).unwrap();
    std::fs::write(p.path().join("rules/rapid_tool_usage.toml"), body).unwrap();
}

/// (rule, user, value, threshold) of every alert a receiver accepted.
fn received(rx: &Receiver) -> Vec<(String, String, i64, i64)> {
    rx.accepted()
        .iter()
        .flat_map(|h| h.json()["alerts"].as_array().cloned().unwrap_or_default())
        .map(|a| {
            (
                a["rule"].as_str().unwrap_or_default().to_string(),
                a["key"]["user_id"].as_str().unwrap_or_default().to_string(),
                a["value"].as_i64().unwrap_or(-1),
                a["threshold"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

fn reloads(d: &Daemon, result: &str) -> f64 {
    d.metric(&format!(
        "mcpwatch_config_reloads_total{{result=\"{result}\"}}"
    ))
}

fn alive(d: &mut Daemon) -> bool {
    d.child.try_wait().unwrap().is_none()
}

#[test]
fn sighup_applies_a_new_threshold_and_channel_in_the_running_process_keeping_rule_state() {
    let (rx_a, rx_b) = (
        Receiver::start(None, Script::default()),
        Receiver::start(None, Script::default()),
    );
    let p = Project::new();
    std::fs::write(p.path().join("security-config.json"), POLICY).unwrap();
    write_settings(&p, "a", &rx_a.url(), "");
    write_rapid(&p, "threshold = 10\n");
    let mut seq = 0;
    // u-1: eleven calls, an alert under threshold 10; u-3: three calls, none.
    p.append("tool-usage.log", &calls("u-1", BASE, 11, &mut seq));
    p.append("tool-usage.log", &calls("u-3", BASE + 20_000, 3, &mut seq));
    let mut d = p.start(&[]);
    let pid = d.child.id();
    assert!(
        wait_until(Duration::from_secs(20), || received(&rx_a).len() == 1),
        "the first alert reaches channel a: {:?}\n{}",
        received(&rx_a),
        d.stderr()
    );
    assert_eq!(reloads(&d, "ok"), 0.0, "known at 0 from the start");

    write_settings(&p, "b", &rx_b.url(), "");
    write_rapid(&p, "threshold = 3\n");
    signal(pid, "HUP");
    d.wait_metric("mcpwatch_config_reloads_total{result=\"ok\"}", 1.0, 20);

    // One more call by u-3 within the minute: its fourth. Over the new
    // threshold only because the rule kept its window across the reload.
    p.append("tool-usage.log", &calls("u-3", BASE + 23_000, 1, &mut seq));
    assert!(
        wait_until(Duration::from_secs(20), || received(&rx_b).len() == 1),
        "the next alert reaches channel b: {:?}\n{}",
        received(&rx_b),
        d.stderr()
    );
    assert_eq!(
        received(&rx_b),
        vec![("rapid_tool_usage".into(), "u-3".into(), 4, 3)]
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        received(&rx_a),
        vec![("rapid_tool_usage".into(), "u-1".into(), 11, 10)],
        "channel a got nothing after the reload"
    );
    assert_eq!(p.alerts().len(), 2, "no alert lost or repeated");
    assert!(alive(&mut d), "the process never restarted");
    assert_eq!(d.child.id(), pid);
    assert!(
        d.stderr().contains("configuration reloaded"),
        "{}",
        d.stderr()
    );
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn an_invalid_reload_is_refused_whole_with_every_reason_and_the_running_configuration_stays() {
    let rx = Receiver::start(None, Script::default());
    let p = Project::new();
    std::fs::write(p.path().join("security-config.json"), POLICY).unwrap();
    write_settings(&p, "a", &rx.url(), "");
    let mut d = p.start(&[]);

    // Two errors in a rules file, and a setting that needs a restart.
    write_rapid(
        &p,
        "threshold = 3\nseverity = \"urgent\"\nwindow = \"soon\"\n",
    );
    write_settings(&p, "a", &rx.url(), "[input]\ndir = \"elsewhere\"\n");
    signal(d.child.id(), "HUP");
    d.wait_metric("mcpwatch_config_reloads_total{result=\"refused\"}", 1.0, 20);
    let log = d.stderr();
    for want in [
        "severity",
        "urgent",
        "window",
        "soon",
        "rapid_tool_usage.toml:2:",
    ] {
        assert!(log.contains(want), "the refusal names {want:?}:\n{log}");
    }
    // The config errors come first; the input.dir change is only checked
    // on a configuration that loads.
    write_rapid(&p, "threshold = 3\n");
    signal(d.child.id(), "HUP");
    d.wait_metric("mcpwatch_config_reloads_total{result=\"refused\"}", 2.0, 20);
    assert!(
        d.stderr().contains("input.dir changed"),
        "names the setting that needs a restart:\n{}",
        d.stderr()
    );
    assert_eq!(reloads(&d, "ok"), 0.0);

    // Still threshold 10: four calls do nothing, eleven alert.
    let mut seq = 0;
    p.append("tool-usage.log", &calls("u-4", BASE, 4, &mut seq));
    p.append("tool-usage.log", &calls("u-5", BASE + 60_000, 11, &mut seq));
    assert!(
        wait_until(Duration::from_secs(20), || received(&rx).len() == 1),
        "{:?}\n{}",
        received(&rx),
        d.stderr()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        received(&rx),
        vec![("rapid_tool_usage".into(), "u-5".into(), 11, 10)]
    );
    assert!(alive(&mut d));
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
}

/// Every datagram the daemon sends to `sock` until `until` holds or `secs`
/// pass.
fn notifications(
    sock: &UnixDatagram,
    got: &mut Vec<String>,
    secs: u64,
    until: impl Fn(&[String]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut buf = [0u8; 4096];
    while !until(got) && Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
}

#[test]
fn the_service_manager_hears_ready_reloading_stopping_and_the_watchdog() {
    let p = Project::new();
    let sock_path = p.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let sock_env = sock_path.to_str().unwrap();
    let mut d = p.start_with_env(
        &[],
        &[("NOTIFY_SOCKET", sock_env), ("WATCHDOG_USEC", "400000")],
    );
    let mut got = Vec::new();
    notifications(&sock, &mut got, 20, |g| {
        g.iter().any(|m| m == "READY=1\n") && g.iter().filter(|m| *m == "WATCHDOG=1\n").count() >= 2
    });
    assert_eq!(
        got.first().map(String::as_str),
        Some("READY=1\n"),
        "{got:?}"
    );
    assert!(
        got.iter().filter(|m| *m == "WATCHDOG=1\n").count() >= 2,
        "the watchdog is pinged: {got:?}"
    );

    // Signals that would end a process by default do not end this one.
    signal(d.child.id(), "USR1");
    signal(d.child.id(), "USR2");
    signal(d.child.id(), "HUP");
    got.clear();
    notifications(&sock, &mut got, 20, |g| g.iter().any(|m| m == "READY=1\n"));
    let reloading = got
        .iter()
        .position(|m| m.starts_with("RELOADING=1\nMONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("RELOADING=1 with MONOTONIC_USEC: {got:?}"));
    let ready = got.iter().position(|m| m == "READY=1\n").unwrap();
    assert!(reloading < ready, "{got:?}");
    assert!(alive(&mut d), "{}", d.stderr());

    got.clear();
    let pid = d.child.id();
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    notifications(&sock, &mut got, 2, |g| {
        g.iter().any(|m| m == "STOPPING=1\n")
    });
    assert!(
        got.iter().any(|m| m == "STOPPING=1\n"),
        "pid {pid}: {got:?}"
    );
}

#[test]
fn metrics_follow_prometheus_conventions_and_promtool_accepts_them() {
    let rx = Receiver::start(None, Script::default());
    let p = Project::new();
    std::fs::write(p.path().join("security-config.json"), POLICY).unwrap();
    write_settings(&p, "siem", &rx.url(), "");
    let d = p.start(&[]);
    // The endpoint listens before delivery has started its channels.
    assert!(wait_until(Duration::from_secs(20), || {
        d.get("/metrics").1.contains("channel=\"siem\"")
    }));
    let (_, body) = d.get("/metrics");

    // Every family has HELP and TYPE, and every sample belongs to one.
    let mut typed: Vec<(String, String)> = Vec::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                body.contains(&format!("# HELP {name} ")),
                "{name} has no HELP"
            );
            typed.push((name.to_string(), kind.to_string()));
        }
    }
    for line in (body.lines()).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        let family = typed.iter().find(|(f, kind)| {
            name == f
                || (kind == "histogram"
                    && ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| name.strip_suffix(s) == Some(f.as_str())))
        });
        assert!(family.is_some(), "{name} is in no family");
    }
    // Latencies are histograms with buckets, not lifetime quantiles.
    for family in [
        "mcpwatch_alert_latency_seconds",
        "mcpwatch_checkpoint_seconds",
        "mcpwatch_delivery_latency_seconds",
    ] {
        assert!(
            typed.contains(&(family.into(), "histogram".into())),
            "{family}"
        );
    }
    assert!(!body.contains("quantile="));
    // Known label sets exist from the start, at 0.
    for series in [
        "mcpwatch_alerts_total{rule=\"rapid_tool_usage\",severity=\"medium\"} 0",
        "mcpwatch_alerts_total{rule=\"disabled_tool\",severity=\"critical\"} 0",
        "mcpwatch_lines_rejected_total{file=\"errors.log\",reason=\"not_utf8\"} 0",
        "mcpwatch_deliveries_total{channel=\"siem\",result=\"dead\"} 0",
        "mcpwatch_delivery_latency_seconds_bucket{channel=\"siem\",le=\"+Inf\"} 0",
        "mcpwatch_config_reloads_total{result=\"refused\"} 0",
        "mcpwatch_rotations_total{file=\"alerts.log\"} 0",
    ] {
        assert!(body.lines().any(|l| l == series), "{series} in\n{body}");
    }
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        body.lines()
            .any(|l| l == format!("mcpwatch_build_info{{version=\"{version}\"}} 1"))
    );
    for family in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(body.contains(&format!("\n{family} ")), "{family}");
    }

    match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Err(_) => eprintln!("promtool is not installed here; the conventions are checked above"),
        Ok(mut child) => {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(body.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            let said = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && said.trim().is_empty(),
                "promtool: {said}"
            );
        }
    }
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
}
