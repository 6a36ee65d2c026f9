//! SPEC §6 against real files in a temp directory, with an injected clock:
//! no test sleeps, midnight and 90-day ages are arguments.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use chrono::{DateTime, TimeZone, Utc};
use mcpwatch::metrics::Metrics;
use mcpwatch::rotate::{
    self, Action, CheckpointConsumption, Consumption, DaemonConsumption, NoConsumer, RotateOptions,
    Rotator, verify_archive,
};
use mcpwatch::state::{FilePosition, TailCheckpoint};

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    state: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let state = tmp.path().join("mcpwatch");
    fs::create_dir(&dir).unwrap();
    Fixture {
        _tmp: tmp,
        dir,
        state,
    }
}

impl Fixture {
    fn opts(&self) -> RotateOptions {
        RotateOptions::new(&self.dir, &self.state)
    }
    fn p(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    /// Writes `data` to `name` and dates its last write at `mtime`.
    fn write(&self, name: &str, data: &[u8], mtime: DateTime<Utc>) -> PathBuf {
        let p = self.p(name);
        fs::write(&p, data).unwrap();
        set_mtime(&p, mtime);
        p
    }
    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }
}

fn set_mtime(p: &Path, t: DateTime<Utc>) {
    let f = fs::File::options().write(true).open(p).unwrap();
    f.set_modified(SystemTime::from(t)).unwrap();
}

fn t(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn lines(n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..n {
        v.extend_from_slice(
            format!(
                "{{\"ts\":\"2026-11-23T14:03:{:02}.412Z\",\"request_id\":\"r-{i}\",\"user_id\":\"u-{}\",\"server_name\":\"gmail\",\"tool_name\":\"email_send\",\"outcome\":\"success\",\"duration_ms\":{}}}\n",
                i % 60,
                i % 13,
                i % 500
            )
            .as_bytes(),
        );
    }
    v
}

fn pass(opts: &RotateOptions, now: DateTime<Utc>, c: &dyn Consumption) -> rotate::PassReport {
    let m = Metrics::new();
    Rotator::new(opts.clone()).pass(now, c, &m).unwrap()
}

/// `zstd -t` from Debian's `zstd` package; a missing binary fails the test
/// (CI installs it), it does not skip it.
fn zstd_t(p: &Path) -> bool {
    let out = Command::new("zstd")
        .arg("-q")
        .arg("-t")
        .arg(p)
        .output()
        .expect("the `zstd` CLI is required by this test: apt-get install zstd");
    out.status.success()
}

fn rotations(m: &Metrics, file: &str) -> u64 {
    m.counter("mcpwatch_rotations_total", &[("file", file)])
}

// ---------------------------------------------------------------- rotation

#[test]
fn rotates_when_larger_than_max_size_only() {
    let f = fixture();
    let now = t(2026, 11, 23, 14, 0, 0);
    let big = lines(10);
    f.write("tool-usage.log", &big, now);
    f.write("errors.log", &big[..100], now);
    let mut o = f.opts();
    o.max_size = 100; // errors.log is exactly 100 bytes: not "larger than"
    let m = Metrics::new();
    let r = Rotator::new(o).pass(now, &NoConsumer, &m).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(
        f.names(),
        vec!["errors.log", "tool-usage.log.20261123-140000"]
    );
    assert_eq!(
        fs::read(f.p("tool-usage.log.20261123-140000")).unwrap(),
        big
    );
    assert_eq!(rotations(&m, "tool-usage.log"), 1);
    assert_eq!(rotations(&m, "errors.log"), 0);
    assert_eq!(r.rotated.len(), 1);
    assert_eq!(r.rotated[0].0, "tool-usage.log");
}

#[test]
fn daily_rotation_happens_at_first_pass_after_utc_midnight_only_once() {
    let f = fixture();
    let o = f.opts();
    let evening = t(2026, 11, 23, 23, 59, 0);
    f.write("approvals.log", b"{\"ts\":1}\n", evening);
    // First sight starts the clock: no rotation of a log of unknown age.
    let r = pass(&o, evening, &NoConsumer);
    assert!(r.rotated.is_empty());
    let r = pass(&o, t(2026, 11, 23, 23, 59, 59), &NoConsumer);
    assert!(r.rotated.is_empty(), "same day");

    let after = t(2026, 11, 24, 0, 0, 30);
    let r = pass(&o, after, &NoConsumer);
    assert_eq!(r.rotated.len(), 1);
    assert_eq!(
        r.rotated[0].1,
        f.p("approvals.log.20261124-000030"),
        "named by the UTC time of rotation"
    );
    f.write("approvals.log", b"{\"ts\":2}\n", after);
    // Later the same day, and after a restart (fresh Rotator, state on disk).
    for now in [t(2026, 11, 24, 0, 1, 30), t(2026, 11, 24, 23, 59, 59)] {
        let r = pass(&o, now, &NoConsumer);
        assert!(r.rotated.is_empty(), "rotated twice on one day at {now}");
    }
    // The next midnight again.
    let r = pass(&o, t(2026, 11, 25, 0, 0, 1), &NoConsumer);
    assert_eq!(r.rotated.len(), 1);
}

#[test]
fn daily_rotation_skips_empty_logs_and_can_be_turned_off() {
    let f = fixture();
    let mut o = f.opts();
    let d1 = t(2026, 11, 23, 12, 0, 0);
    f.write("errors.log", b"", d1);
    pass(&o, d1, &NoConsumer);
    assert!(
        pass(&o, t(2026, 11, 24, 0, 0, 5), &NoConsumer)
            .rotated
            .is_empty()
    );
    // Its first line at noon does not trigger the day's rotation late.
    f.write("errors.log", b"{}\n", t(2026, 11, 24, 12, 0, 0));
    assert!(
        pass(&o, t(2026, 11, 24, 12, 0, 5), &NoConsumer)
            .rotated
            .is_empty()
    );
    o.daily = false;
    assert!(
        pass(&o, t(2026, 11, 26, 0, 0, 5), &NoConsumer)
            .rotated
            .is_empty()
    );
    assert_eq!(f.names(), vec!["errors.log"]);
}

#[test]
fn collision_gets_dash_n_suffix() {
    let f = fixture();
    let now = t(2026, 11, 24, 0, 0, 30);
    let mut o = f.opts();
    o.max_size = 0;
    f.write("tool-usage.log.20261124-000030", b"older\n", now);
    f.write("tool-usage.log.20261124-000030-1.zst", b"x", now);
    f.write("tool-usage.log", b"new\n", now);
    let r = pass(&o, now, &NoConsumer);
    assert_eq!(r.rotated[0].1, f.p("tool-usage.log.20261124-000030-2"));
    assert_eq!(
        fs::read(f.p("tool-usage.log.20261124-000030")).unwrap(),
        b"older\n"
    );
    assert_eq!(
        fs::read(f.p("tool-usage.log.20261124-000030-2")).unwrap(),
        b"new\n"
    );
}

#[test]
fn alerts_log_is_rotated_the_same_way() {
    let f = fixture();
    let now = t(2026, 11, 23, 14, 0, 0);
    f.write("alerts.log", &lines(5), now);
    let mut o = f.opts();
    o.max_size = 10;
    // alerts.log is our own output: no checkpoint consumes it.
    let r = pass(&o, now, &CheckpointConsumption::absent("none"));
    assert_eq!(
        r.rotated,
        vec![("alerts.log", f.p("alerts.log.20261123-140000"))]
    );
}

#[test]
fn post_rotate_runs_after_each_rotation_and_failure_is_reported() {
    let f = fixture();
    let now = t(2026, 11, 23, 14, 0, 0);
    let marker = f.dir.parent().unwrap().join("hook.txt");
    f.write("tool-usage.log", b"a\n", now);
    f.write("errors.log", b"b\n", now);
    let mut o = f.opts();
    o.max_size = 0;
    o.post_rotate = Some(format!(
        "echo \"$MCPWATCH_ROTATED\" >> '{}'",
        marker.display()
    ));
    let r = pass(&o, now, &NoConsumer);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let log = fs::read_to_string(&marker).unwrap();
    assert_eq!(log.lines().count(), 2);
    assert!(log.contains("errors.log.20261123-140000"));

    f.write("errors.log", b"c\n", now);
    o.post_rotate = Some("exit 7".into());
    let r = pass(&o, t(2026, 11, 23, 14, 0, 1), &NoConsumer);
    assert_eq!(r.rotated.len(), 1, "the rotation itself stands");
    assert_eq!(r.problems.len(), 1);
    assert!(r.problems[0].contains("post_rotate"), "{:?}", r.problems);
}

// ------------------------------------------------------------- compression

#[test]
fn consumed_idle_rotated_file_is_compressed_verified_and_passes_zstd_t() {
    let f = fixture();
    let now = t(2026, 11, 24, 0, 5, 0);
    let data = lines(20_000);
    let rotated = f.write(
        "tool-usage.log.20261124-000030",
        &data,
        t(2026, 11, 24, 0, 0, 29),
    );
    f.write("tool-usage.log", b"", now);
    let m = Metrics::new();
    let r = Rotator::new(f.opts()).pass(now, &NoConsumer, &m).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let zst = f.p("tool-usage.log.20261124-000030.zst");
    assert_eq!(
        f.names(),
        vec!["tool-usage.log", "tool-usage.log.20261124-000030.zst"]
    );
    assert!(!rotated.exists());
    assert_eq!(
        zstd::decode_all(fs::File::open(&zst).unwrap()).unwrap(),
        data
    );
    assert!(zstd_t(&zst), "zstd -t rejects our archive");
    assert_eq!(verify_archive(&zst).unwrap().len, data.len() as u64);
    assert_eq!(m.counter_total(rotate::M_COMPRESSED), 1);
    assert_eq!(m.counter_total(rotate::M_BYTES_IN), data.len() as u64);
    assert_eq!(
        m.counter_total(rotate::M_BYTES_OUT),
        fs::metadata(&zst).unwrap().len()
    );
    assert!(m.render().contains("mcpwatch_verify_failures_total 0"));
}

/// Says "not consumed" for every file, like a tailer that is behind.
struct Behind;
impl Consumption for Behind {
    fn consumed(&self, _: &Path, _: &fs::Metadata) -> bool {
        false
    }
    fn may_rename(&self, _: &Path, _: &fs::Metadata) -> bool {
        true
    }
}

#[test]
fn compression_waits_for_consumption_idleness_and_a_new_live_file() {
    let f = fixture();
    let rot_at = t(2026, 11, 24, 0, 0, 30);
    let name = "errors.log.20261124-000030";
    f.write(name, &lines(50), rot_at);
    let o = f.opts();
    let skip_reason = |r: &rotate::PassReport| -> String {
        r.actions
            .iter()
            .find_map(|a| match a {
                Action::Skip { path, reason } if path.ends_with(name) => Some(reason.clone()),
                _ => None,
            })
            .unwrap_or_default()
    };
    // Idle 59 s < rotate_wait, new live file present.
    f.write("errors.log", b"", rot_at);
    let r = pass(&o, rot_at + chrono::Duration::seconds(59), &NoConsumer);
    assert!(
        skip_reason(&r).contains("rotate_wait"),
        "{}",
        skip_reason(&r)
    );
    // Idle long enough but the writer has not moved on (no live file).
    fs::remove_file(f.p("errors.log")).unwrap();
    let r = pass(&o, rot_at + chrono::Duration::hours(23), &NoConsumer);
    assert!(
        skip_reason(&r).contains("not moved on"),
        "{}",
        skip_reason(&r)
    );
    // Not consumed.
    f.write("errors.log", b"", rot_at);
    let r = pass(&o, rot_at + chrono::Duration::hours(1), &Behind);
    assert!(skip_reason(&r).contains("waiting"), "{}", skip_reason(&r));
    assert!(f.p(name).exists());
    // Idle 24 h: compressed even for a tailer that is behind (SPEC §6) ...
    fs::remove_file(f.p("errors.log")).unwrap();
    let r = pass(&o, rot_at + chrono::Duration::hours(24), &Behind);
    assert!(r.problems.is_empty());
    assert_eq!(f.names(), vec![format!("{name}.zst")]);
}

#[test]
fn stopped_daemon_checkpoint_keeps_unconsumed_files_even_after_24h() {
    let f = fixture();
    let rot_at = t(2026, 11, 24, 0, 0, 30);
    let p = f.write("errors.log.20261124-000030", &lines(50), rot_at);
    let meta = fs::metadata(&p).unwrap();
    let pos = FilePosition {
        base: "errors.log".into(),
        name: "errors.log".into(),
        dev: meta.dev(),
        ino: meta.ino(),
        head_hash: 0,
        head_len: 0,
        offset: meta.len() - 1,
        line: 49,
        fingerprint: None,
    };
    let ck = CheckpointConsumption::new(TailCheckpoint {
        files: vec![pos.clone()],
        ..Default::default()
    });
    let r = pass(&f.opts(), rot_at + chrono::Duration::days(3), &ck);
    assert!(p.exists());
    assert!(
        r.actions
            .iter()
            .any(|a| matches!(a, Action::Skip { reason, .. }
        if reason.contains(&format!("consumed {} of its {} bytes", meta.len() - 1, meta.len()))))
    );
    // Consumed to the end: compressed.
    let ck = CheckpointConsumption::new(TailCheckpoint {
        files: vec![FilePosition {
            offset: meta.len(),
            ..pos
        }],
        ..Default::default()
    });
    pass(&f.opts(), rot_at + chrono::Duration::days(3), &ck);
    assert_eq!(f.names(), vec!["errors.log.20261124-000030.zst"]);
}

#[test]
fn checkpoint_gates_rotation_of_live_logs() {
    let f = fixture();
    let now = t(2026, 11, 23, 14, 0, 0);
    let p = f.write("tool-usage.log", &lines(10), now);
    let meta = fs::metadata(&p).unwrap();
    let mut o = f.opts();
    o.max_size = 10;
    let behind = FilePosition {
        base: "tool-usage.log".into(),
        name: "tool-usage.log".into(),
        dev: meta.dev(),
        ino: meta.ino(),
        head_hash: 7,
        head_len: 64,
        offset: 100,
        line: 1,
        fingerprint: None,
    };
    let r = pass(
        &o,
        now,
        &CheckpointConsumption::new(TailCheckpoint {
            files: vec![behind.clone()],
            ..Default::default()
        }),
    );
    assert!(r.rotated.is_empty());
    assert!(
        r.actions
            .iter()
            .any(|a| matches!(a, Action::Skip { reason, .. }
        if reason.contains("larger than max_size") && reason.contains("consumed 100 of")))
    );
    // Not in the checkpoint at all: the daemon has not read it yet.
    let r = pass(
        &o,
        now,
        &CheckpointConsumption::new(TailCheckpoint::default()),
    );
    assert!(r.rotated.is_empty());
    // No checkpoint at all: left alone, saying why.
    let r = pass(
        &o,
        now,
        &CheckpointConsumption::absent("no checkpoint in X"),
    );
    assert!(r.rotated.is_empty());
    assert!(
        r.actions
            .iter()
            .any(|a| matches!(a, Action::Skip { reason, .. }
        if reason.contains("no checkpoint in X")))
    );
    let r = pass(
        &o,
        now,
        &CheckpointConsumption::new(TailCheckpoint {
            files: vec![FilePosition {
                offset: meta.len(),
                ..behind
            }],
            ..Default::default()
        }),
    );
    assert_eq!(r.rotated.len(), 1);
}

#[test]
fn daemon_renames_only_logs_its_tailer_follows_and_compresses_what_it_consumed() {
    let f = fixture();
    let now = t(2026, 11, 23, 14, 0, 0);
    let p = f.write("tool-usage.log", &lines(10), now);
    let meta = fs::metadata(&p).unwrap();
    let mut o = f.opts();
    o.max_size = 10;
    // Not opened by the tailer yet: renaming would hide it from the tailer.
    let r = pass(&o, now, &DaemonConsumption::new(vec![]));
    assert!(r.rotated.is_empty());
    assert!(
        r.actions
            .iter()
            .any(|a| matches!(a, Action::Skip { reason, .. }
        if reason.contains("the tailer has not opened it yet")))
    );
    // Followed, even if behind: the tailer keeps reading it by inode.
    let pos = FilePosition {
        base: "tool-usage.log".into(),
        name: "tool-usage.log".into(),
        dev: meta.dev(),
        ino: meta.ino(),
        head_hash: 0,
        head_len: 0,
        offset: 5,
        line: 0,
        fingerprint: None,
    };
    let behind = DaemonConsumption::new(vec![pos.clone()]);
    let r = pass(&o, now, &behind);
    assert_eq!(r.rotated.len(), 1);
    let rotated = r.rotated[0].1.clone();
    f.write("tool-usage.log", b"", now);
    // Behind: not compressed after rotate_wait ...
    pass(&o, now + chrono::Duration::minutes(5), &behind);
    assert!(rotated.exists());
    // ... but consumed, it is.
    let done = DaemonConsumption::new(vec![FilePosition {
        offset: meta.len(),
        ..pos
    }]);
    pass(&o, now + chrono::Duration::minutes(5), &done);
    assert!(!rotated.exists());
    assert!(f.p("tool-usage.log.20261123-140000.zst").exists());
}

#[test]
fn numbered_file_from_another_tool_is_compressed_once_idle() {
    let f = fixture();
    let now = t(2026, 11, 24, 3, 0, 0);
    let data = lines(300);
    f.write("errors.log.1", &data, now - chrono::Duration::seconds(30));
    f.write("errors.log", b"", now);
    let o = f.opts();
    pass(&o, now, &NoConsumer);
    assert_eq!(
        f.names(),
        vec!["errors.log", "errors.log.1"],
        "idle 30 s < 60 s"
    );
    let later = now + chrono::Duration::seconds(31);
    let r = pass(&o, later, &NoConsumer);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    // Named by the time of compression.
    let zst = f.p("errors.log.20261124-030031.zst");
    assert_eq!(
        f.names(),
        vec!["errors.log", "errors.log.20261124-030031.zst"]
    );
    assert_eq!(
        zstd::decode_all(fs::File::open(&zst).unwrap()).unwrap(),
        data
    );
    assert!(zstd_t(&zst));
}

#[test]
fn uncompressed_retention_keeps_the_renamed_file_as_archive() {
    let f = fixture();
    let now = t(2026, 11, 24, 3, 0, 0);
    let mut o = f.opts();
    o.compress = false;
    f.write(
        "errors.log.20261124-000000",
        b"x\n",
        now - chrono::Duration::hours(30),
    );
    f.write("errors.log.1", b"y\n", now - chrono::Duration::hours(30));
    f.write("errors.log", b"", now);
    pass(&o, now, &NoConsumer);
    assert_eq!(
        f.names(),
        vec!["errors.log", "errors.log.1", "errors.log.20261124-000000"]
    );
    // ... and retention prunes it by the time in its name.
    pass(&o, t(2027, 2, 23, 0, 0, 1), &NoConsumer);
    assert_eq!(f.names(), vec!["errors.log", "errors.log.1"]);
}

#[test]
fn writer_still_writing_into_renamed_file_is_warned_about() {
    let f = fixture();
    let rot_at = t(2026, 11, 24, 0, 0, 30);
    let now = rot_at + chrono::Duration::minutes(5);
    f.write(
        "tool-usage.log.20261124-000030",
        &lines(3),
        now - chrono::Duration::seconds(2),
    );
    let r = pass(&f.opts(), now, &NoConsumer);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0].contains("keeps writing into tool-usage.log.20261124-000030"));
    assert!(f.p("tool-usage.log.20261124-000030").exists());
}

#[test]
fn interrupted_compression_is_finished_only_when_the_archive_matches() {
    let f = fixture();
    let now = t(2026, 11, 24, 3, 0, 0);
    let old = now - chrono::Duration::hours(2);
    let data = lines(100);
    f.write("errors.log", b"", now);
    f.write("errors.log.20261124-000000", &data, old);
    fs::write(
        f.p("errors.log.20261124-000000.zst"),
        zstd::encode_all(&data[..], 3).unwrap(),
    )
    .unwrap();
    f.write("approvals.log", b"", now);
    f.write("approvals.log.20261124-000000", &data, old);
    fs::write(
        f.p("approvals.log.20261124-000000.zst"),
        zstd::encode_all(&data[..10], 3).unwrap(),
    )
    .unwrap();
    let m = Metrics::new();
    let r = Rotator::new(f.opts()).pass(now, &NoConsumer, &m).unwrap();
    assert!(!f.p("errors.log.20261124-000000").exists());
    assert!(
        f.p("approvals.log.20261124-000000").exists(),
        "differs: kept"
    );
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert_eq!(m.counter_total("mcpwatch_verify_failures_total"), 1);
}

// --------------------------------------------------- verification, retention

#[test]
fn corrupt_archive_is_detected_and_reported_not_pruned_as_done() {
    let f = fixture();
    let now = t(2026, 11, 24, 3, 0, 0);
    let good = zstd::encode_all(&lines(2000)[..], 3).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x5a;
    let bad_path = f.p("tool-usage.log.20261120-000000.zst");
    fs::write(&bad_path, &bad).unwrap();
    let trunc_path = f.p("errors.log.20261120-000000.zst");
    fs::write(&trunc_path, &good[..good.len() / 3]).unwrap();
    fs::write(f.p("approvals.log.20261120-000000.zst"), &good).unwrap();
    let m = Metrics::new();
    let mut rot = Rotator::new(f.opts());
    let r = rot.pass(now, &NoConsumer, &m).unwrap();
    assert_eq!(r.verify_failures, 2, "{:?}", r.problems);
    assert_eq!(m.counter_total("mcpwatch_verify_failures_total"), 2);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("tool-usage.log.20261120-000000.zst"))
    );
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("errors.log.20261120-000000.zst"))
    );
    assert!(
        bad_path.exists() && trunc_path.exists(),
        "left for an operator"
    );
    assert!(verify_archive(&bad_path).is_err());
    assert!(!zstd_t(&bad_path), "zstd -t agrees it is corrupt");
    // The daemon keeps one Rotator: the same archives are not re-verified
    // every minute.
    let r = rot
        .pass(now + chrono::Duration::minutes(1), &NoConsumer, &m)
        .unwrap();
    assert_eq!(r.verify_failures, 0);
}

#[test]
fn retention_keeps_89_days_and_90_days_deletes_91() {
    let f = fixture();
    let now = t(2026, 11, 24, 12, 0, 0);
    let z = zstd::encode_all(&b"{}\n"[..], 3).unwrap();
    let name = |d: i64| {
        format!(
            "tool-usage.log.{}.zst",
            (now - chrono::Duration::days(d)).format("%Y%m%d-%H%M%S")
        )
    };
    for d in [89, 90, 91] {
        fs::write(f.p(&name(d)), &z).unwrap();
    }
    // The age is read from the name, not the mtime.
    set_mtime(&f.p(&name(89)), now - chrono::Duration::days(400));
    set_mtime(&f.p(&name(91)), now);
    fs::write(f.p("errors.log.20200101-000000-3"), b"plain, consumed\n").unwrap();
    let m = Metrics::new();
    let r = Rotator::new(f.opts()).pass(now, &NoConsumer, &m).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(
        f.names(),
        vec![name(90), name(89)],
        "sorted by name: 90 days first"
    );
    assert_eq!(m.counter_total(rotate::M_PRUNED), 2);
    // One second past 90 days.
    let r = Rotator::new(f.opts())
        .pass(now + chrono::Duration::seconds(1), &NoConsumer, &m)
        .unwrap();
    assert!(r.problems.is_empty());
    assert_eq!(f.names(), vec![name(89)]);
}

#[test]
fn symlinks_named_like_logs_are_never_followed_or_deleted_through() {
    let f = fixture();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.zst");
    let target_bytes = lines(5000);
    fs::write(&secret, &target_bytes).unwrap();
    let old = t(2020, 1, 1, 0, 0, 0);
    set_mtime(&secret, old);
    let now = t(2026, 11, 24, 12, 0, 0);
    let links = [
        "tool-usage.log.20200101-000000.zst", // past retention
        "tool-usage.log.20200101-000000",     // past retention, plain
        "errors.log.1",                       // "idle" numbered
        "errors.log.20261124-000000",         // "idle" rotated
        "approvals.log",                      // live, larger than max_size
    ];
    for l in links {
        std::os::unix::fs::symlink(&secret, f.p(l)).unwrap();
    }
    fs::write(f.p("errors.log"), b"").unwrap();
    let mut o = f.opts();
    o.max_size = 1;
    let r = pass(&o, now, &NoConsumer);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(fs::read(&secret).unwrap(), target_bytes);
    assert_eq!(
        fs::metadata(&secret).unwrap().modified().unwrap(),
        SystemTime::from(old)
    );
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 1);
    for l in links {
        let m = fs::symlink_metadata(f.p(l)).unwrap();
        assert!(m.file_type().is_symlink(), "{l} still a link");
    }
    assert_eq!(
        r.actions
            .iter()
            .filter(
                |a| matches!(a, Action::Skip { reason, .. } if reason.contains("symbolic link"))
            )
            .count(),
        links.len()
    );
}

#[test]
fn unrelated_files_survive() {
    let f = fixture();
    let now = t(2026, 11, 24, 12, 0, 0);
    let ancient = t(2020, 1, 1, 0, 0, 0);
    let keep = [
        "notes.txt",
        "tool-usage.log.1.gz",
        "tool-usage.log.01",
        "other.log.20200101-000000.zst",
        "tool-usage.log.20200101-000000.gz",
        "tool-usage.log.2020-01-01",
        "config.json",
        ".hidden",
    ];
    for k in keep {
        f.write(k, b"data\n", ancient);
    }
    fs::create_dir(f.p("tool-usage.log.20200101-000000.zst.d")).unwrap();
    fs::create_dir(f.p("errors.log.20200101-000000.zst")).unwrap();
    f.write("errors.log", b"", now);
    let mut o = f.opts();
    o.max_size = 0;
    let r = pass(&o, now, &NoConsumer);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    for k in keep {
        assert_eq!(fs::read(f.p(k)).unwrap(), b"data\n", "{k}");
    }
    assert!(f.p("tool-usage.log.20200101-000000.zst.d").is_dir());
    assert!(f.p("errors.log.20200101-000000.zst").is_dir());
}

#[test]
fn stale_archive_temp_is_removed_fresh_one_kept() {
    let f = fixture();
    let now = t(2026, 11, 24, 12, 0, 0);
    let stale = f.write(
        ".errors.log.20261124-000000.zst.tmp",
        b"half",
        now - chrono::Duration::hours(2),
    );
    let fresh = f.write(
        ".errors.log.20261124-100000.zst.tmp",
        b"half",
        now - chrono::Duration::minutes(2),
    );
    pass(&f.opts(), now, &NoConsumer);
    assert!(!stale.exists());
    assert!(fresh.exists());
}

#[test]
fn dry_run_plans_everything_and_changes_nothing() {
    let f = fixture();
    let now = t(2026, 11, 24, 12, 0, 0);
    let old = now - chrono::Duration::days(2);
    f.write("tool-usage.log", &lines(100), old);
    f.write("errors.log", b"", old);
    f.write("errors.log.1", &lines(10), old);
    f.write("errors.log.20261122-000000", &lines(10), old);
    fs::write(
        f.p("approvals.log.20260801-000000.zst"),
        zstd::encode_all(&b"{}\n"[..], 3).unwrap(),
    )
    .unwrap();
    fs::write(
        f.p("approvals.log.20261101-000000.zst"),
        zstd::encode_all(&b"{}\n"[..], 3).unwrap(),
    )
    .unwrap();
    f.write(".errors.log.20261124-000000.zst.tmp", b"half", old);
    let snapshot = || {
        let mut v: Vec<(String, Vec<u8>, SystemTime)> = f
            .names()
            .into_iter()
            .map(|n| {
                let p = f.p(&n);
                (
                    n,
                    fs::read(&p).unwrap(),
                    fs::metadata(&p).unwrap().modified().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = snapshot();
    let mut o = f.opts();
    o.max_size = 10;
    o.dry_run = true;
    o.post_rotate = Some("touch /nonexistent/never".into());
    let m = Metrics::new();
    let r = Rotator::new(o).pass(now, &NoConsumer, &m).unwrap();
    assert_eq!(snapshot(), before);
    assert!(!f.state.exists(), "no state written");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let text: Vec<String> = r.actions.iter().map(|a| a.to_string()).collect();
    let has = |s: &str| text.iter().any(|l| l.contains(s));
    assert!(
        has("rotate tool-usage.log -> tool-usage.log.20261124-120000"),
        "{text:#?}"
    );
    assert!(has("post_rotate `touch /nonexistent/never`"), "{text:#?}");
    // Idle for 2 days: the real pass compresses it right after renaming it.
    assert!(
        has("compress tool-usage.log.20261124-120000 -> tool-usage.log.20261124-120000.zst"),
        "{text:#?}"
    );
    assert!(
        has("compress errors.log.1 -> errors.log.20261124-120000.zst"),
        "{text:#?}"
    );
    assert!(has(
        "compress errors.log.20261122-000000 -> errors.log.20261122-000000.zst"
    ));
    assert!(has("delete approvals.log.20260801-000000.zst"), "{text:#?}");
    assert!(has("verify approvals.log.20261101-000000.zst"), "{text:#?}");
    assert!(
        has("delete .errors.log.20261124-000000.zst.tmp"),
        "{text:#?}"
    );
    assert_eq!(m.counter_total("mcpwatch_rotations_total"), 0);
}

// ------------------------------------------------------------ with logrotate

/// Debian's `logrotate` renames `errors.log` to `errors.log.1` and makes a
/// new one; our pass compresses the `.1` once idle. A missing binary fails
/// the test (CI installs the package).
#[test]
fn real_logrotate_output_is_compressed_once_idle() {
    let f = fixture();
    let data = lines(200);
    fs::write(f.p("errors.log"), &data).unwrap();
    let conf = f.dir.parent().unwrap().join("logrotate.conf");
    fs::write(
        &conf,
        format!(
            "{}/errors.log {{\n  rotate 5\n  nocompress\n  create\n  missingok\n}}\n",
            f.dir.display()
        ),
    )
    .unwrap();
    let status = f.dir.parent().unwrap().join("logrotate.status");
    let out = Command::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(&status)
        .arg(&conf)
        .output()
        .or_else(|_| {
            Command::new("/usr/sbin/logrotate")
                .arg("-f")
                .arg("-s")
                .arg(&status)
                .arg(&conf)
                .output()
        })
        .expect("the `logrotate` binary is required by this test: apt-get install logrotate");
    assert!(
        out.status.success(),
        "logrotate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(f.names(), vec!["errors.log", "errors.log.1"]);
    let wrote = DateTime::<Utc>::from(
        fs::metadata(f.p("errors.log.1"))
            .unwrap()
            .modified()
            .unwrap(),
    );
    let now = wrote + chrono::Duration::seconds(61);
    let r = pass(&f.opts(), now, &NoConsumer);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let zst = format!("errors.log.{}.zst", now.format("%Y%m%d-%H%M%S"));
    assert_eq!(f.names(), vec!["errors.log".to_string(), zst.clone()]);
    assert_eq!(
        zstd::decode_all(fs::File::open(f.p(&zst)).unwrap()).unwrap(),
        data
    );
    assert!(zstd_t(&f.p(&zst)));
    // logrotate again: the new .1 does not collide with our archive.
    fs::write(f.p("errors.log"), b"{\"ts\":1}\n").unwrap();
    let out = Command::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(&status)
        .arg(&conf)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(f.p("errors.log.1").exists() && f.p(&zst).exists());
}

#[test]
fn archives_written_by_the_zstd_cli_verify_too() {
    let f = fixture();
    let data = lines(1000);
    let plain = f.write("x", &data, t(2026, 11, 23, 0, 0, 0));
    let zst = f.p("errors.log.20261123-000000.zst");
    let out = Command::new("zstd")
        .arg("-q")
        .arg(&plain)
        .arg("-o")
        .arg(&zst)
        .output()
        .expect("the `zstd` CLI is required by this test: apt-get install zstd");
    assert!(out.status.success());
    assert_eq!(verify_archive(&zst).unwrap().len, data.len() as u64);
}
