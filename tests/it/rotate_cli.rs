//! `mcpwatch rotate` end to end: the real binary over a temp directory.
//! These runs use the wall clock (the binary reads it once per pass), so
//! file names and mtimes are placed relative to `Utc::now()` with margins of
//! hours, never seconds.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use assert_cmd::Command;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use mcpwatch::state::StateLock;

fn set_mtime(p: &Path, t: DateTime<Utc>) {
    let f = fs::File::options().write(true).open(p).unwrap();
    f.set_modified(SystemTime::from(t)).unwrap();
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d-%H%M%S").to_string()
}

/// Every file under `root`: bytes and mtime, by relative path.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
            }
            let bytes = if m.is_file() {
                fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            out.insert(
                p.strip_prefix(root).unwrap().to_path_buf(),
                (bytes, m.modified().unwrap()),
            );
        }
    }
    out
}

fn lines(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| {
            format!("{{\"ts\":\"2026-11-23T14:03:07.412Z\",\"request_id\":\"r-{i}\"}}\n")
                .into_bytes()
        })
        .collect()
}

struct Site {
    tmp: tempfile::TempDir,
}

impl Site {
    fn dir(&self) -> PathBuf {
        self.tmp.path().join("audit")
    }
    fn state(&self) -> PathBuf {
        self.tmp.path().join("mcpwatch")
    }
    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("mcpwatch").unwrap();
        // No ./security-config.json, ./rules or ./mcpwatch.toml here.
        c.current_dir(self.tmp.path()).env_remove("RUST_LOG");
        c
    }
}

/// A log directory where a pass has something of every kind to do:
/// - `tool-usage.log`: consumed by the checkpoint, last rotated 2 days ago
///   (daily rotation due);
/// - `approvals.log`: same, but not in the checkpoint (left alone);
/// - `errors.log.1`: idle 2 days (compress);
/// - archives 89 and 91 days old (verify, delete).
fn site() -> (Site, DateTime<Utc>) {
    let s = Site {
        tmp: tempfile::tempdir().unwrap(),
    };
    let now = Utc::now();
    let old = now - Duration::days(2);
    fs::create_dir_all(s.dir()).unwrap();
    fs::create_dir_all(s.state()).unwrap();
    let d = s.dir();
    for (name, data) in [
        ("tool-usage.log", lines(50)),
        ("approvals.log", lines(5)),
        ("errors.log", Vec::new()),
        ("errors.log.1", lines(20)),
        ("notes.txt", b"unrelated\n".to_vec()),
    ] {
        fs::write(d.join(name), data).unwrap();
        set_mtime(&d.join(name), old);
    }
    let z = zstd::encode_all(&lines(3)[..], 3).unwrap();
    for days in [89, 91] {
        let p = d.join(format!(
            "tool-usage.log.{}.zst",
            stamp(now - Duration::days(days))
        ));
        fs::write(&p, &z).unwrap();
        set_mtime(&p, old);
    }
    let m = fs::metadata(d.join("tool-usage.log")).unwrap();
    let ck = serde_json::json!({"tail": {"files": [{
        "base": "tool-usage.log", "name": "tool-usage.log",
        "dev": m.dev(), "ino": m.ino(), "head_hash": 0, "head_len": 0,
        "offset": m.len(), "line": 50
    }]}});
    fs::write(s.state().join("checkpoint.json"), ck.to_string()).unwrap();
    let last = old.to_rfc3339_opts(SecondsFormat::Millis, true);
    let st = serde_json::json!({"last_rotation": {
        "tool-usage.log": last, "approvals.log": last, "errors.log": last
    }});
    fs::write(s.state().join("rotation.json"), st.to_string()).unwrap();
    (s, now)
}

#[test]
fn dry_run_prints_every_planned_action_and_changes_no_byte_or_mtime() {
    let (s, now) = site();
    let before = snapshot(s.tmp.path());
    let out = s
        .cmd()
        .args(["rotate", "--dry-run", "--dir"])
        .arg(s.dir())
        .arg("--state-dir")
        .arg(s.state())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let after = snapshot(s.tmp.path());
    for (k, v) in &before {
        assert!(after.get(k) == Some(v), "dry run changed {}", k.display());
    }
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    assert!(stdout.starts_with("dry run: planned actions"), "{stdout}");
    for want in [
        "rotate tool-usage.log -> tool-usage.log.".to_string(),
        "bytes; first pass after UTC midnight)".into(),
        "skip approvals.log: daily rotation due but left alone: not in the checkpoint".into(),
        "compress errors.log.1 -> errors.log.".into(),
        "compress tool-usage.log.".into(),
        "idle 2d00h".into(),
        format!(
            "delete tool-usage.log.{}.zst",
            stamp(now - Duration::days(91))
        ),
        "91d00h old, retention 90d".into(),
        format!(
            "verify tool-usage.log.{}.zst",
            stamp(now - Duration::days(89))
        ),
    ] {
        assert!(stdout.contains(&want), "missing {want:?} in:\n{stdout}");
    }
}

#[test]
fn pass_rotates_compresses_and_prunes_with_default_state_dir() {
    let (s, now) = site();
    // Default state dir: <dir>/../mcpwatch, which is where site() put it.
    let out = s
        .cmd()
        .args(["rotate", "--dir"])
        .arg(s.dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let mut names: Vec<String> = fs::read_dir(s.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(!names.contains(&"tool-usage.log".to_string()), "{names:?}");
    assert!(names.contains(&"approvals.log".to_string()));
    assert!(names.contains(&"notes.txt".to_string()));
    assert!(!names.contains(&"errors.log.1".to_string()));
    assert!(
        !names
            .iter()
            .any(|n| n.contains(&stamp(now - Duration::days(91))))
    );
    assert!(
        names
            .iter()
            .any(|n| n.contains(&stamp(now - Duration::days(89))))
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("errors.log.") && n.ends_with(".zst")),
        "{names:?}"
    );
    // errors.log.1, and the rotated tool-usage.log at once: consumed and
    // idle for 2 days (more than 24 h).
    assert!(stdout.contains("rotated 1, compressed 2"), "{stdout}");
    // The state file moved on: a second pass rotates nothing more today.
    let out = s
        .cmd()
        .args(["rotate", "--dir"])
        .arg(s.dir())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rotated 0"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn without_checkpoint_live_logs_are_left_alone_unless_no_consumer() {
    let (s, _) = site();
    fs::remove_file(s.state().join("checkpoint.json")).unwrap();
    let out = s
        .cmd()
        .args(["rotate", "--dir"])
        .arg(s.dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout.contains("skip tool-usage.log: daily rotation due but left alone: no checkpoint in"),
        "{stdout}"
    );
    assert!(s.dir().join("tool-usage.log").exists());
    let out = s
        .cmd()
        .args(["rotate", "--no-consumer", "--dir"])
        .arg(s.dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // Renamed, and (no reader waits for the writer) a fresh empty log
    // created under the name at once.
    for log in ["tool-usage.log", "approvals.log"] {
        assert_eq!(fs::metadata(s.dir().join(log)).unwrap().len(), 0, "{log}");
    }
    let renamed = fs::read_dir(s.dir())
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            n.to_string_lossy().starts_with("tool-usage.log.2")
        })
        .count();
    assert!(renamed >= 1);
}

#[test]
fn no_consumer_creates_the_new_log_so_compression_waits_for_the_writer_not_a_day() {
    use std::os::unix::fs::PermissionsExt;
    let (s, now) = site();
    fs::remove_file(s.state().join("checkpoint.json")).unwrap();
    let live = s.dir().join("tool-usage.log");
    fs::set_permissions(&live, fs::Permissions::from_mode(0o640)).unwrap();
    // Written two hours ago: idle past rotate_wait, far from the 24 h rule.
    set_mtime(&live, now - Duration::hours(2));
    let pass = || {
        let out = s
            .cmd()
            .args(["rotate", "--no-consumer", "--dir"])
            .arg(s.dir())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = pass();
    assert!(first.contains("create empty tool-usage.log"), "{first}");
    let m = fs::metadata(&live).unwrap();
    assert_eq!((m.len(), m.permissions().mode() & 0o777), (0, 0o640));
    assert!(
        first.contains("waiting: no new tool-usage.log yet"),
        "an empty new log means the writer has not moved on: {first}"
    );
    let rotated: Vec<String> = fs::read_dir(s.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tool-usage.log.2") && !n.ends_with(".zst"))
        .collect();
    assert_eq!(rotated.len(), 1, "renamed, not compressed: {rotated:?}");

    // The writer appends to the new file: the rotated one is compressed.
    fs::write(&live, lines(1)).unwrap();
    let second = pass();
    assert!(
        second.contains(&format!("compress {}", rotated[0])),
        "{second}"
    );
    assert!(!s.dir().join(&rotated[0]).exists());
    assert!(s.dir().join(format!("{}.zst", rotated[0])).exists());
    assert_eq!(
        fs::read(&live).unwrap(),
        lines(1),
        "the new log is left as written"
    );
}

#[test]
fn a_dry_run_says_why_each_log_stays_when_nothing_is_due() {
    let (s, _) = site();
    let st = serde_json::json!({"last_rotation": {
        "tool-usage.log": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
    }});
    fs::write(s.state().join("rotation.json"), st.to_string()).unwrap();
    let out = s
        .cmd()
        .args(["rotate", "--dry-run", "--dir"])
        .arg(s.dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("skip tool-usage.log: not due: 2690 bytes, max_size 104857600 bytes; daily rotation after UTC midnight (last "),
        "{stdout}"
    );
}

#[test]
fn exits_2_while_the_daemon_holds_the_state_lock() {
    let (s, _) = site();
    let _held = StateLock::acquire(&s.state()).unwrap();
    let before = snapshot(s.tmp.path());
    for dry in [false, true] {
        let mut c = s.cmd();
        c.args(["rotate", "--dir"]).arg(s.dir());
        if dry {
            c.arg("--dry-run");
        }
        let out = c.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("is locked by another mcpwatch"), "{stderr}");
    }
    assert!(snapshot(s.tmp.path()) == before, "nothing touched");
}

#[test]
fn missing_log_directory_is_a_usage_error() {
    let s = Site {
        tmp: tempfile::tempdir().unwrap(),
    };
    let out = s.cmd().args(["rotate", "--dir", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("log directory nope"));
}
