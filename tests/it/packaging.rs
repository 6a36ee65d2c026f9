//! What ships beside the binary (SPEC §9): the systemd unit, the
//! container definition, completions and manual pages.

use std::path::Path;
use std::process::Command;

use crate::support::daemon::{BIN, Project};

fn shipped(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

/// `key=value` lines of a unit file (comments and sections left out).
fn directives(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn value<'a>(d: &'a [(String, String)], key: &str) -> &'a str {
    d.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("the unit sets {key}"))
}

#[test]
fn the_systemd_unit_is_a_hardened_notify_service_that_reloads_on_sighup() {
    let d = directives(&shipped("dist/mcpwatch.service"));
    assert_eq!(value(&d, "Type"), "notify");
    assert_eq!(value(&d, "StateDirectory"), "mcpwatch");
    assert_eq!(value(&d, "ExecReload"), "/bin/kill -HUP $MAINPID");
    assert!(value(&d, "ExecStart").contains(" run "));
    assert!(value(&d, "ExecStart").ends_with("--state-dir ${STATE_DIRECTORY}"));
    assert_eq!(value(&d, "NoNewPrivileges"), "yes");
    assert_eq!(value(&d, "ProtectSystem"), "strict");
    assert!(value(&d, "WatchdogSec").ends_with('s'));
    let audit = value(&d, "ExecStart")
        .split_whitespace()
        .skip_while(|a| *a != "--dir")
        .nth(1)
        .unwrap();
    assert_eq!(
        value(&d, "ReadWritePaths"),
        audit,
        "the followed directory is writable"
    );
}

#[test]
fn the_units_command_line_starts_the_daemon() {
    let d = directives(&shipped("dist/mcpwatch.service"));
    let p = Project::new();
    let state = p.state();
    let audit = p.audit();
    let args: Vec<String> = value(&d, "ExecStart")
        .split_whitespace()
        .skip_while(|a| *a != "run")
        .skip(1)
        .map(|a| match a {
            "${STATE_DIRECTORY}" => state.display().to_string(),
            a if a.ends_with("/.elevenlabs/audit") => audit.display().to_string(),
            a => a.to_string(),
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // `start` returns once the daemon listens (it writes metrics.addr into
    // the state directory the unit names).
    let daemon = p.start(&args);
    let (code, _) = daemon.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn systemd_analyze_verifies_the_unit_where_it_is_installed() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed here; the unit's directives are checked above");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The unit as installed, its binary where this build put it.
    let unit = shipped("dist/mcpwatch.service").replace("/usr/local/bin/mcpwatch", BIN);
    let path = dir.path().join("mcpwatch.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    // Warnings that name the unit's own lines are mistakes in it.
    let own: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("mcpwatch.service:"))
        .collect();
    assert!(own.is_empty(), "{own:?}");
}

#[test]
fn the_container_image_runs_the_daemon_as_a_user_with_its_state_in_a_volume() {
    let c = shipped("dist/Containerfile");
    assert!(c.contains("cargo build --release --locked"));
    assert!(c.contains("\nUSER mcpwatch\n"));
    assert!(c.contains("VOLUME [\"/var/lib/mcpwatch\"]"));
    assert!(
        c.contains("CMD [\"run\", \"--dir\", \"/audit\", \"--state-dir\", \"/var/lib/mcpwatch\"")
    );
    assert!(shipped(".dockerignore").lines().any(|l| l == "target"));
}

#[test]
fn completions_and_man_pages_come_from_the_command_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let script = String::from_utf8_lossy(&out.stdout);
        for word in ["mcpwatch", "scan", "test-alert", "state-dir"] {
            assert!(script.contains(word), "{shell} completes {word}");
        }
    }
    let bad = Command::new(BIN)
        .args(["completions", "cmd.exe"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));

    let page = Command::new(BIN).arg("man").output().unwrap();
    assert!(page.status.success());
    let page = String::from_utf8_lossy(&page.stdout);
    assert!(page.contains(".TH mcpwatch 1"));
    assert!(
        page.contains("mcpwatch\\-run(1)"),
        "the page lists the commands"
    );
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new(BIN)
        .args(["man", "--dir"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    for name in [
        "mcpwatch.1",
        "mcpwatch-run.1",
        "mcpwatch-scan.1",
        "mcpwatch-report.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{name}");
    }
}
