//! The tailer's edge cases, one test each (SPEC §1 framing, §6 rotation,
//! §8 guarantees): BOM, CRLF, too-long lines, partial lines, rotation, inode
//! reuse, files and directories appearing later.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use mcpwatch::event::{Kind, RejectReason};
use mcpwatch::ingest::tail::{Batch, Tailer};

const MAX: usize = 1024;

fn append(dir: &Path, name: &str, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// (file, line_no, text) of every line of a batch.
fn lines(b: &Batch) -> Vec<(String, u64, String)> {
    b.iter()
        .map(|(l, bytes)| {
            (
                l.file.to_string(),
                l.line_no,
                String::from_utf8_lossy(bytes).into_owned(),
            )
        })
        .collect()
}

fn texts(b: &Batch) -> Vec<String> {
    lines(b).into_iter().map(|(_, _, t)| t).collect()
}

fn tailer(dir: &Path) -> Tailer {
    Tailer::new(dir, MAX, None).with_rotate_wait(Duration::from_secs(60))
}

#[test]
fn bom_at_file_start_is_stripped_and_only_there() {
    let d = tempfile::tempdir().unwrap();
    append(
        d.path(),
        "tool-usage.log",
        b"\xEF\xBB\xBFfirst\n\xEF\xBB\xBFsecond\n",
    );
    let mut t = tailer(d.path());
    let b = t.poll(Instant::now()).unwrap();
    assert_eq!(
        lines(&b),
        vec![
            ("tool-usage.log".into(), 1, "first".into()),
            ("tool-usage.log".into(), 2, "\u{feff}second".into()),
        ]
    );
    assert_eq!(b.lines[0].kind, Kind::ToolCall);
}

#[test]
fn crlf_endings_lose_the_cr_and_lone_cr_stays() {
    let d = tempfile::tempdir().unwrap();
    append(d.path(), "approvals.log", b"a\r\nb\nc\rd\r\n\r\n");
    let mut t = tailer(d.path());
    let b = t.poll(Instant::now()).unwrap();
    assert_eq!(texts(&b), vec!["a", "b", "c\rd", ""]);
    assert!(b.lines.iter().all(|l| l.kind == Kind::Approval));
}

#[test]
fn too_long_line_is_skipped_with_its_number_and_neighbours_intact() {
    let d = tempfile::tempdir().unwrap();
    let mut content = b"before\n".to_vec();
    content.extend(vec![b'x'; 5 * 1024 * 1024]);
    content.extend(b"\nafter\n");
    // exactly at the limit is fine, one over is not (the \r does not count)
    let at_max = vec![b'y'; MAX];
    content.extend(&at_max);
    content.extend(b"\r\n");
    content.extend(vec![b'z'; MAX + 1]);
    content.extend(b"\nlast\n");
    append(d.path(), "errors.log", &content);
    let mut t = tailer(d.path());
    let b = t.poll(Instant::now()).unwrap();
    let got = lines(&b);
    assert_eq!(got.len(), 4);
    assert_eq!(got[0], ("errors.log".into(), 1, "before".into()));
    assert_eq!(got[1], ("errors.log".into(), 3, "after".into()));
    assert_eq!(got[2].1, 4);
    assert_eq!(got[2].2.len(), MAX);
    assert_eq!(got[3], ("errors.log".into(), 6, "last".into()));
    let rej: Vec<(u64, RejectReason, u64)> = b
        .rejected
        .iter()
        .map(|r| (r.line_no, r.reason, r.len))
        .collect();
    assert_eq!(
        rej,
        vec![
            (2, RejectReason::TooLong, 5 * 1024 * 1024 + 1),
            (5, RejectReason::TooLong, MAX as u64 + 2),
        ]
    );
    assert_eq!(t.checkpoint().files[0].offset, content.len() as u64);
    assert_eq!(t.checkpoint().files[0].line, 6);
}

#[test]
fn too_long_line_arriving_in_pieces_is_not_buffered() {
    let d = tempfile::tempdir().unwrap();
    let mut t = tailer(d.path());
    append(d.path(), "errors.log", b"ok\n");
    let now = Instant::now();
    assert_eq!(texts(&t.poll(now).unwrap()), vec!["ok"]);
    for _ in 0..4 {
        append(d.path(), "errors.log", &vec![b'x'; 3 * MAX]);
        let b = t.poll(now).unwrap();
        assert!(b.is_empty());
    }
    append(d.path(), "errors.log", b"x\nnext\n");
    let b = t.poll(now).unwrap();
    assert_eq!(lines(&b), vec![("errors.log".into(), 3, "next".into())]);
    assert_eq!(b.rejected.len(), 1);
    assert_eq!(b.rejected[0].line_no, 2);
    assert_eq!(b.rejected[0].len, 12 * MAX as u64 + 2);
}

#[test]
fn partial_line_is_held_until_its_newline_and_not_checkpointed() {
    let d = tempfile::tempdir().unwrap();
    let mut t = tailer(d.path());
    let now = Instant::now();
    append(d.path(), "tool-usage.log", b"one\ntw");
    assert_eq!(texts(&t.poll(now).unwrap()), vec!["one"]);
    assert_eq!(t.checkpoint().files[0].offset, 4);
    assert!(t.poll(now).unwrap().is_empty());
    append(d.path(), "tool-usage.log", b"o\r");
    assert!(t.poll(now).unwrap().is_empty());
    assert_eq!(t.checkpoint().files[0].offset, 4);
    append(d.path(), "tool-usage.log", b"\nthree\n");
    let b = t.poll(now).unwrap();
    assert_eq!(
        lines(&b),
        vec![
            ("tool-usage.log".into(), 2, "two".into()),
            ("tool-usage.log".into(), 3, "three".into()),
        ]
    );
    assert_eq!(t.checkpoint().files[0].offset, 15);
    assert_eq!(t.checkpoint().files[0].line, 3);
    // a live file's partial line is held however long it waits
    append(d.path(), "tool-usage.log", b"four");
    assert!(
        t.poll(now + Duration::from_secs(86_400))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn partial_line_of_a_rotated_file_is_released_after_rotate_wait() {
    let d = tempfile::tempdir().unwrap();
    let mut t = tailer(d.path());
    let t0 = Instant::now();
    append(d.path(), "tool-usage.log", b"a\nhalf");
    assert_eq!(texts(&t.poll(t0).unwrap()), vec!["a"]);
    fs::rename(
        d.path().join("tool-usage.log"),
        d.path().join("tool-usage.log.20261123-000000"),
    )
    .unwrap();
    append(d.path(), "tool-usage.log", b"new\n");
    let b = t.poll(t0 + Duration::from_secs(1)).unwrap();
    assert_eq!(lines(&b), vec![("tool-usage.log".into(), 1, "new".into())]);
    // still waiting at 59 s of idleness
    assert!(t.poll(t0 + Duration::from_secs(59)).unwrap().is_empty());
    let cp = t.checkpoint();
    let rotated = cp
        .files
        .iter()
        .find(|f| f.name == "tool-usage.log.20261123-000000")
        .unwrap();
    assert_eq!(rotated.offset, 2);
    let b = t.poll(t0 + Duration::from_secs(60)).unwrap();
    assert_eq!(
        lines(&b),
        vec![("tool-usage.log.20261123-000000".into(), 2, "half".into())]
    );
    // drained, idle, writer moved on: let go
    assert_eq!(t.followed_files().len(), 1);
    assert_eq!(t.checkpoint().files.len(), 1);
}

#[test]
fn rename_rotation_drains_the_old_file_before_the_new_one() {
    let d = tempfile::tempdir().unwrap();
    let mut t = tailer(d.path());
    let now = Instant::now();
    append(d.path(), "approvals.log", b"1\n");
    assert_eq!(texts(&t.poll(now).unwrap()), vec!["1"]);
    append(d.path(), "approvals.log", b"2\n");
    fs::rename(
        d.path().join("approvals.log"),
        d.path().join("approvals.log.1"),
    )
    .unwrap();
    append(d.path(), "approvals.log", b"3\n");
    let b = t.poll(now).unwrap();
    assert_eq!(
        lines(&b),
        vec![
            ("approvals.log.1".into(), 2, "2".into()),
            ("approvals.log".into(), 1, "3".into()),
        ]
    );
}

#[test]
fn rename_then_delete_still_drains_through_the_open_descriptor() {
    let d = tempfile::tempdir().unwrap();
    let mut t = tailer(d.path());
    let now = Instant::now();
    append(d.path(), "errors.log", b"1\n");
    t.poll(now).unwrap();
    append(d.path(), "errors.log", b"2\n");
    fs::rename(d.path().join("errors.log"), d.path().join("errors.log.1")).unwrap();
    fs::remove_file(d.path().join("errors.log.1")).unwrap();
    let b = t.poll(now).unwrap();
    assert_eq!(texts(&b), vec!["2"]);
}

#[test]
fn copytruncate_drains_the_copy_then_restarts_at_zero() {
    let d = tempfile::tempdir().unwrap();
    let mut t = tailer(d.path());
    let now = Instant::now();
    let log = d.path().join("tool-usage.log");
    append(d.path(), "tool-usage.log", b"{\"ts\":1,\"n\":1}\n");
    t.poll(now).unwrap();
    append(
        d.path(),
        "tool-usage.log",
        b"{\"ts\":2,\"n\":2}\n{\"ts\":3,\"n\":3}\n",
    );
    fs::copy(&log, d.path().join("tool-usage.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    // the writer (O_APPEND) writes more than was consumed: only the head
    // tells the truncation apart
    append(
        d.path(),
        "tool-usage.log",
        b"{\"ts\":4,\"n\":4,\"pad\":\"...............\"}\n",
    );
    let b = t.poll(now).unwrap();
    assert_eq!(
        lines(&b),
        vec![
            ("tool-usage.log.1".into(), 2, "{\"ts\":2,\"n\":2}".into()),
            ("tool-usage.log.1".into(), 3, "{\"ts\":3,\"n\":3}".into()),
            (
                "tool-usage.log".into(),
                1,
                "{\"ts\":4,\"n\":4,\"pad\":\"...............\"}".into()
            ),
        ]
    );
}

#[test]
fn delete_and_recreate_reads_the_new_file_from_zero() {
    let d = tempfile::tempdir().unwrap();
    let mut t = tailer(d.path());
    let now = Instant::now();
    append(d.path(), "errors.log", b"old line\n");
    t.poll(now).unwrap();
    fs::remove_file(d.path().join("errors.log")).unwrap();
    append(d.path(), "errors.log", b"new\n");
    let b = t.poll(now).unwrap();
    assert_eq!(lines(&b), vec![("errors.log".into(), 1, "new".into())]);
}

#[test]
fn inode_reuse_is_detected_by_the_head_hash_after_restart() {
    let d = tempfile::tempdir().unwrap();
    let mut t = tailer(d.path());
    append(
        d.path(),
        "tool-usage.log",
        b"{\"gen\":1}\n{\"gen\":1,\"n\":2}\n",
    );
    t.poll(Instant::now()).unwrap();
    let mut cp = t.checkpoint();
    drop(t);
    // Simulate the inode being reused by a new file: same dev+ino in the
    // checkpoint, different content (rewrite in place keeps the inode).
    fs::write(d.path().join("tool-usage.log"), b"{\"gen\":2}\n").unwrap();
    let md = fs::metadata(d.path().join("tool-usage.log")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(cp.files[0].ino, md.ino());
    // also make the size alone not give it away
    cp.files[0].offset = 5;
    let mut t = Tailer::new(d.path(), MAX, Some(cp));
    let b = t.poll(Instant::now()).unwrap();
    assert_eq!(
        lines(&b),
        vec![("tool-usage.log".into(), 1, "{\"gen\":2}".into())]
    );
}

#[test]
fn restart_resumes_at_the_checkpoint_with_line_numbers() {
    let d = tempfile::tempdir().unwrap();
    let mut t = tailer(d.path());
    append(d.path(), "approvals.log", b"a\nb\nc");
    t.poll(Instant::now()).unwrap();
    let cp = t.checkpoint();
    drop(t);
    append(d.path(), "approvals.log", b"\nd\n");
    let mut t = Tailer::new(d.path(), MAX, Some(cp));
    let b = t.poll(Instant::now()).unwrap();
    assert_eq!(
        lines(&b),
        vec![
            ("approvals.log".into(), 3, "c".into()),
            ("approvals.log".into(), 4, "d".into()),
        ]
    );
}

#[test]
fn restart_finds_a_file_renamed_while_down() {
    let d = tempfile::tempdir().unwrap();
    let mut t = tailer(d.path());
    append(d.path(), "approvals.log", b"a\n");
    t.poll(Instant::now()).unwrap();
    let cp = t.checkpoint();
    drop(t);
    append(d.path(), "approvals.log", b"b\n");
    fs::rename(
        d.path().join("approvals.log"),
        d.path().join("approvals.log.20261123-010203"),
    )
    .unwrap();
    append(d.path(), "approvals.log", b"c\n");
    let mut t = Tailer::new(d.path(), MAX, Some(cp));
    let b = t.poll(Instant::now()).unwrap();
    assert_eq!(
        lines(&b),
        vec![
            ("approvals.log.20261123-010203".into(), 2, "b".into()),
            ("approvals.log".into(), 1, "c".into()),
        ]
    );
}

#[test]
fn file_appearing_later_is_read_from_its_beginning() {
    let d = tempfile::tempdir().unwrap();
    let mut t = tailer(d.path());
    assert!(t.poll(Instant::now()).unwrap().is_empty());
    assert!(t.followed_files().is_empty());
    append(d.path(), "errors.log", b"e1\ne2\n");
    let b = t.poll(Instant::now()).unwrap();
    assert_eq!(texts(&b), vec!["e1", "e2"]);
    assert_eq!(b.lines_of(Kind::Error).len(), 2);
    assert_eq!(b.lines_of(Kind::ToolCall).len(), 0);
}

#[test]
fn directory_appearing_later_is_followed() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("audit");
    let mut t = tailer(&dir);
    let b = t.poll(Instant::now()).unwrap();
    assert!(b.is_empty());
    assert!(b.errors.is_empty(), "a missing directory is not an error");
    fs::create_dir(&dir).unwrap();
    append(&dir, "tool-usage.log", b"t\n");
    append(&dir, "approvals.log", b"a\n");
    let b = t.poll(Instant::now()).unwrap();
    assert_eq!(texts(&b), vec!["t", "a"]);
    assert_eq!(b.lines[0].kind, Kind::ToolCall);
    assert_eq!(b.lines[1].kind, Kind::Approval);
}

#[test]
fn nul_bytes_and_invalid_utf8_are_returned_as_lines() {
    let d = tempfile::tempdir().unwrap();
    append(d.path(), "tool-usage.log", b"\0\0\n\xff\xfe\n{}\n");
    let mut t = tailer(d.path());
    let b = t.poll(Instant::now()).unwrap();
    let got: Vec<&[u8]> = b.iter().map(|(_, bytes)| bytes).collect();
    assert_eq!(got, vec![&b"\0\0"[..], &b"\xff\xfe"[..], &b"{}"[..]]);
}

#[test]
fn lag_and_followed_files_show_what_is_unconsumed() {
    let d = tempfile::tempdir().unwrap();
    append(d.path(), "tool-usage.log", b"abc\nde");
    let mut t = tailer(d.path());
    t.poll(Instant::now()).unwrap();
    assert_eq!(t.lag_bytes(), 2);
    let f = &t.followed_files()[0];
    assert_eq!((f.offset, f.read_pos, f.size, f.line), (4, 6, 6, 1));
    assert!(!f.consumed());
    assert!(!f.rotated);
}

#[test]
fn read_limit_splits_a_backlog_across_polls() {
    let d = tempfile::tempdir().unwrap();
    let mut content = Vec::new();
    for i in 0..200_000 {
        content.extend(format!("line {i}\n").as_bytes());
    }
    append(d.path(), "tool-usage.log", &content);
    let mut t = tailer(d.path());
    t.set_read_limit(1 << 20);
    let mut n = 0u64;
    let mut polls = 0;
    loop {
        let b = t.poll(Instant::now()).unwrap();
        polls += 1;
        for (l, bytes) in b.iter() {
            assert_eq!(bytes, format!("line {n}").as_bytes());
            assert_eq!(l.line_no, n + 1);
            n += 1;
        }
        if b.caught_up {
            break;
        }
    }
    assert_eq!(n, 200_000);
    assert!(polls >= 2);
}

#[test]
fn restart_inside_a_too_long_line_skips_it_again_once() {
    let d = tempfile::tempdir().unwrap();
    let mut t = tailer(d.path());
    append(d.path(), "errors.log", b"a\n");
    append(d.path(), "errors.log", &vec![b'x'; 4 * MAX]);
    let b = t.poll(Instant::now()).unwrap();
    assert_eq!(texts(&b), vec!["a"]);
    let cp = t.checkpoint();
    assert_eq!(cp.files[0].offset, 2);
    drop(t);
    append(d.path(), "errors.log", b"\nb\n");
    let mut t = Tailer::new(d.path(), MAX, Some(cp));
    let b = t.poll(Instant::now()).unwrap();
    assert_eq!(lines(&b), vec![("errors.log".into(), 3, "b".into())]);
    assert_eq!(b.rejected.len(), 1);
    assert_eq!(b.rejected[0].line_no, 2);
}

#[test]
fn copytruncate_then_rename_before_the_next_poll_still_drains_the_copy() {
    let d = tempfile::tempdir().unwrap();
    let mut t = tailer(d.path());
    let now = Instant::now();
    let log = d.path().join("tool-usage.log");
    append(d.path(), "tool-usage.log", b"first line\n");
    t.poll(now).unwrap();
    append(d.path(), "tool-usage.log", b"second line\n");
    fs::copy(&log, d.path().join("tool-usage.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    fs::rename(&log, d.path().join("tool-usage.log.2")).unwrap();
    append(d.path(), "tool-usage.log", b"third line\n");
    let b = t.poll(now).unwrap();
    assert_eq!(
        lines(&b),
        vec![
            ("tool-usage.log.1".into(), 2, "second line".into()),
            ("tool-usage.log".into(), 1, "third line".into()),
        ]
    );
    let stats = t.stats();
    assert_eq!(stats[0].0, Kind::ToolCall);
    assert_eq!(stats[0].1.rotations, 1);
    assert_eq!(stats[0].1.truncations, 1);
    assert_eq!(stats[0].1.copies_drained, 1);
}

#[test]
fn restart_finds_the_copy_of_a_copytruncate_made_while_down() {
    let d = tempfile::tempdir().unwrap();
    let mut t = tailer(d.path());
    let log = d.path().join("approvals.log");
    append(d.path(), "approvals.log", b"{\"n\":1}\n");
    t.poll(Instant::now()).unwrap();
    let cp = t.checkpoint();
    drop(t);
    append(d.path(), "approvals.log", b"{\"n\":2}\n");
    fs::copy(&log, d.path().join("approvals.log.20261124-000000")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(d.path(), "approvals.log", b"{\"n\":3,\"new\":true}\n");
    let mut t = Tailer::new(d.path(), MAX, Some(cp));
    let b = t.poll(Instant::now()).unwrap();
    assert_eq!(
        lines(&b),
        vec![
            (
                "approvals.log.20261124-000000".into(),
                2,
                "{\"n\":2}".into()
            ),
            ("approvals.log".into(), 1, "{\"n\":3,\"new\":true}".into()),
        ]
    );
}

#[test]
fn rotated_files_held_are_bounded() {
    use mcpwatch::ingest::tail::MAX_ROTATED_PER_BASE;
    let d = tempfile::tempdir().unwrap();
    let mut t = tailer(d.path());
    let now = Instant::now();
    for i in 0..MAX_ROTATED_PER_BASE + 5 {
        append(d.path(), "errors.log", format!("{i}\n").as_bytes());
        t.poll(now).unwrap();
        // a writer that never reopens keeps them busy: no new base file
        fs::rename(
            d.path().join("errors.log"),
            d.path().join(format!("errors.log.{i}")),
        )
        .unwrap();
        t.poll(now).unwrap();
    }
    assert_eq!(t.followed_files().len(), MAX_ROTATED_PER_BASE);
    // all were read to the end before being let go
    assert_eq!(t.stats()[2].1.dropped_unread, 0);
}

#[test]
fn poll_into_reuses_the_batch() {
    let d = tempfile::tempdir().unwrap();
    let mut t = tailer(d.path());
    let mut b = Batch::default();
    append(d.path(), "tool-usage.log", b"a\n");
    t.poll_into(Instant::now(), &mut b).unwrap();
    assert_eq!(texts(&b), vec!["a"]);
    assert!(b.caught_up);
    append(d.path(), "tool-usage.log", b"b\n");
    t.poll_into(Instant::now(), &mut b).unwrap();
    assert_eq!(texts(&b), vec!["b"]);
    t.poll_into(Instant::now(), &mut b).unwrap();
    assert!(b.is_empty());
}

/// Regression: after a restart, a checkpointed empty file (no head yet) that
/// had been deleted had its inode reused by a copytruncate's copy, and the
/// copy was read again as its continuation.
#[test]
fn restart_does_not_follow_a_reused_inode_for_a_position_without_head() {
    use mcpwatch::state::{FilePosition, TailCheckpoint};
    use std::os::unix::fs::MetadataExt;
    let d = tempfile::tempdir().unwrap();
    append(d.path(), "errors.log.1", b"already read elsewhere\n");
    let md = fs::metadata(d.path().join("errors.log.1")).unwrap();
    let cp = TailCheckpoint {
        files: vec![FilePosition {
            base: "errors.log".into(),
            name: "errors.log".into(),
            dev: md.dev(),
            ino: md.ino(),
            // FNV-1a 64 of no bytes (its offset basis): the head of an empty file.
            head_hash: 0xcbf2_9ce4_8422_2325,
            head_len: 0,
            offset: 0,
            line: 0,
            fingerprint: None,
        }],
        ..Default::default()
    };
    let mut t = Tailer::new(d.path(), MAX, Some(cp));
    let b = t.poll(Instant::now()).unwrap();
    assert!(b.is_empty(), "{:?}", lines(&b));
    assert!(t.followed_files().is_empty());
}

#[test]
fn a_checkpoint_with_absurd_values_is_ignored_without_panic() {
    use mcpwatch::state::{FilePosition, TailCheckpoint};
    use std::os::unix::fs::MetadataExt;
    let d = tempfile::tempdir().unwrap();
    append(d.path(), "tool-usage.log", b"a\n");
    let md = fs::metadata(d.path().join("tool-usage.log")).unwrap();
    let cp = TailCheckpoint {
        files: vec![FilePosition {
            base: "tool-usage.log".into(),
            name: "tool-usage.log".into(),
            dev: md.dev(),
            ino: md.ino(),
            head_hash: 1,
            head_len: u64::MAX,
            offset: u64::MAX,
            line: u64::MAX,
            fingerprint: None,
        }],
        ..Default::default()
    };
    let mut t = Tailer::new(d.path(), MAX, Some(cp));
    let b = t.poll(Instant::now()).unwrap();
    assert_eq!(lines(&b), vec![("tool-usage.log".into(), 1, "a".into())]);
}

#[test]
/// A log replaced by a copy of itself while the tailer is behind (a read
/// limit, a restart) goes on in the copy: every line once.
fn a_log_replaced_by_a_copy_while_behind_is_read_once() {
    use std::time::Duration;
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("approvals.log");
    let mut lines = String::from("\u{feff}");
    for i in 0..13 {
        lines.push_str(&format!("g0000-s{i:04}-xxxxxxxxxxx\n"));
    }
    std::fs::write(&p, &lines).unwrap();
    let mut t = Tailer::new(d.path(), MAX, None);
    t.set_read_limit(9);
    let mut got = Vec::new();
    let mut now = Instant::now();
    for _ in 0..3 {
        got.extend(lines_of(&t.poll(now).unwrap()));
    }
    let cp = t.checkpoint();
    let mut t = Tailer::new(d.path(), MAX, Some(cp));
    t.set_read_limit(9);
    got.extend(lines_of(&t.poll(now).unwrap()));
    let tmp = d.path().join(".x");
    std::fs::copy(&p, &tmp).unwrap();
    std::fs::rename(&tmp, &p).unwrap();
    for _ in 0..200 {
        now += Duration::from_secs(1);
        got.extend(lines_of(&t.poll(now).unwrap()));
    }
    let want: Vec<(String, u64)> = (0..13)
        .map(|i| (format!("g0000-s{i:04}-xxxxxxxxxxx"), i + 1))
        .collect();
    assert_eq!(got, want);
}

fn lines_of(b: &mcpwatch::ingest::tail::Batch) -> Vec<(String, u64)> {
    b.iter()
        .map(|(l, bytes)| (String::from_utf8_lossy(bytes).into_owned(), l.line_no))
        .collect()
}

/// One framer: whatever the bytes and however they arrive, the tailer
/// frames a file exactly as the file reader of `scan` does (same lines,
/// same numbers, same `too_long` rejects), BOM, `\r` and long lines
/// included.
mod same_framing {
    use super::*;
    use mcpwatch::ingest::lines::LineReader;
    use proptest::prelude::*;

    type Framed = Vec<(u64, Result<Vec<u8>, RejectReason>)>;

    fn piece() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                4 => Just(b"a".to_vec()),
                2 => Just(b"\n".to_vec()),
                1 => Just(b"\r".to_vec()),
                1 => Just(b"\r\n".to_vec()),
                1 => Just(b"\xEF\xBB\xBF".to_vec()),
                1 => Just(b"\xEF".to_vec()),
                1 => Just(b"bbbbbbbbbb".to_vec()),
            ],
            0..6,
        )
        .prop_map(|v| v.concat())
    }

    fn by_file_reader(path: &Path, max: usize) -> Framed {
        let mut r = LineReader::new(fs::File::open(path).unwrap(), max);
        let mut out = Vec::new();
        while let Some((n, l)) = r.next_line().unwrap() {
            out.push((n, l.map(<[u8]>::to_vec)));
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn the_tailer_frames_any_bytes_as_the_file_reader_does(
            pieces in prop::collection::vec(piece(), 1..12),
            max in 0usize..12,
        ) {
            let d = tempfile::tempdir().unwrap();
            let mut t = Tailer::new(d.path(), max, None).with_rotate_wait(Duration::from_secs(60));
            let mut got: Framed = Vec::new();
            // The last piece ends the last line, so neither holds one back.
            for p in pieces.iter().chain([&b"\n".to_vec()]) {
                append(d.path(), "tool-usage.log", p);
                let b = t.poll(Instant::now()).unwrap();
                got.extend(b.iter().map(|(l, bytes)| (l.line_no, Ok(bytes.to_vec()))));
                got.extend(b.rejected.iter().map(|r| (r.line_no, Err(r.reason))));
            }
            got.sort_by_key(|(n, _)| *n);
            prop_assert_eq!(got, by_file_reader(&d.path().join("tool-usage.log"), max));
        }
    }
}
