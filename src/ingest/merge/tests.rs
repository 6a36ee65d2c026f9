//! Unit tests of the merges: ts order and ties, and every merge
//! (one-core chunked, pipelined) handing out exactly what the line-by-line
//! [`reference`](super::reference) merge does, on fixed and arbitrary
//! input, read errors and long lines included.

use super::*;
use crate::ingest::input::discover;

#[test]
fn files_merge_by_ts_with_ties_in_file_order() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("errors.log"),
        "{\"ts\":\"2026-11-23T10:00:00Z\",\"server\":\"e1\"}\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("tool-usage.log"),
        "{\"ts\":\"2026-11-23T10:00:01Z\",\"tool\":\"t2\"}\n{\"ts\":\"2026-11-23T10:00:00Z\",\"tool\":\"t1\"}\nnot json\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("approvals.log"),
        "{\"ts\":\"2026-11-23T10:00:00Z\",\"tool\":\"a1\"}\n",
    )
    .unwrap();
    let files = discover(&[d.path().to_path_buf()], d.path()).unwrap();
    let parser = test_parser();
    let mut seen = Vec::new();
    let mut rejects = Vec::new();
    let stats = merge_files(
        Reading::all(&files, &parser),
        &mut |r| rejects.push((r.file.to_string(), r.line, r.reason)),
        &mut |ev, l| {
            let name = ev
                .tool_name
                .as_deref()
                .or(ev.server_name.as_deref())
                .unwrap_or("?")
                .to_string();
            seen.push((name, l.line));
        },
    )
    .unwrap();
    // tool-usage's next line is 10:00:01 first, so approvals (10:00:00)
    // and errors (10:00:00) go before it; its own 10:00:00 line follows
    // it, in file order.
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a1", "e1", "t2", "t1"]);
    assert_eq!(
        rejects,
        [("tool-usage.log".to_string(), 3, RejectReason::NotJson)]
    );
    assert_eq!(stats.events.values().sum::<u64>(), 4);
}

/// Lines up to 1 MiB, no event in the future.
fn test_parser() -> Parser {
    Parser {
        max_line_bytes: 1 << 20,
        now_ms: i64::MAX / 2,
    }
}

/// Every event of `files` with its line reference, as `merge` hands
/// them out, plus the rejects (each with the number of events handed
/// out before it) and stats.
type Seen = (
    Vec<(Event, String, u64, Vec<u8>)>,
    Vec<(String, u64, usize)>,
    ReadStats,
);

fn read_all(
    read: Reading<'_>,
    merge: impl FnOnce(
        Reading<'_>,
        &mut dyn FnMut(Rejected<'_>),
        &mut dyn FnMut(&Event, LineRef<'_>),
    ) -> Result<ReadStats, InputError>,
) -> Seen {
    let (mut seen, mut rejects) = (Vec::new(), Vec::new());
    // Events handed out so far, so each reject records where it came.
    let handed = std::cell::Cell::new(0);
    let stats = merge(
        read,
        &mut |r| rejects.push((r.file.to_string(), r.line, handed.get())),
        &mut |ev, l| {
            handed.set(handed.get() + 1);
            seen.push((ev.clone(), l.file.to_string(), l.line, l.raw.to_vec()))
        },
    )
    .unwrap();
    (seen, rejects, stats)
}

/// Every merge, the line-by-line reference first.
const MERGES: [(&str, Merge); 3] = [
    ("reference", reference::merge_lines),
    ("chunked", merge_files),
    ("pipelined", merge_files_pipelined),
];

/// What each merge of [`MERGES`] hands out, in that order.
fn read_each(read: Reading<'_>) -> Vec<(&'static str, Seen)> {
    (MERGES.iter())
        .map(|&(name, merge)| (name, read_all(read.clone(), merge)))
        .collect()
}

#[test]
fn every_merge_hands_out_what_the_line_by_line_merge_does() {
    // Three files, several batches' worth of events, rejects, ties and
    // a time range: the same events, lines, rejects and stats.
    let d = tempfile::tempdir().unwrap();
    for (name, every) in [
        ("tool-usage.log", 1),
        ("approvals.log", 3),
        ("errors.log", 7),
    ] {
        let mut text = String::new();
        for i in 0..3000u64 {
            if i % 97 == 5 {
                text.push_str("not json\n");
                continue;
            }
            let s = i * every % 3600;
            text.push_str(&format!(
                "{{\"ts\":\"2026-11-23T{:02}:{:02}:{:02}Z\",\"request_id\":\"r-{i}\",\"tool\":\"t{}\",\"user\":\"u-{}\"}}\n",
                s / 3600 + 10,
                s / 60 % 60,
                s % 60,
                i % 13,
                i % 5
            ));
        }
        std::fs::write(d.path().join(name), text).unwrap();
    }
    let files = discover(&[d.path().to_path_buf()], d.path()).unwrap();
    assert_eq!(files.len(), 3);
    for range in [
        TimeRange::default(),
        TimeRange {
            since: Some(1_795_428_000_000 + 600_000),
            until: Some(1_795_428_000_000 + 1_800_000),
        },
    ] {
        let all = read_each(Reading {
            range,
            ..Reading::all(&files, &test_parser())
        });
        let reference = &all[0].1;
        assert!(reference.0.len() > 2 * 1024, "{}", reference.0.len());
        assert!(!reference.1.is_empty());
        for (name, seen) in &all[1..] {
            assert_eq!(reference.0.len(), seen.0.len(), "{name}");
            for (a, b) in reference.0.iter().zip(&seen.0) {
                assert_eq!(
                    (&a.0.ts, &a.0.request_id, &a.1, a.2, &a.3),
                    (&b.0.ts, &b.0.request_id, &b.1, b.2, &b.3),
                    "{name}"
                );
            }
            assert_eq!(reference.1, seen.1, "{name}");
            assert_eq!(reference.2, seen.2, "{name}");
        }
    }
}

#[test]
fn every_merge_hands_out_long_lines_as_the_line_by_line_merge_does() {
    // ~20 KB lines fill a batch by bytes long before 1,024 events.
    let d = tempfile::tempdir().unwrap();
    let pad = "x".repeat(20_000);
    let mut text = String::new();
    for i in 0..400 {
        text.push_str(&format!(
            "{{\"ts\":\"2026-11-23T10:{:02}:{:02}Z\",\"tool\":\"t{i}\",\"pad\":\"{pad}\"}}\n",
            i / 60,
            i % 60
        ));
    }
    std::fs::write(d.path().join("tool-usage.log"), text).unwrap();
    let files = discover(&[d.path().to_path_buf()], d.path()).unwrap();
    let all = read_each(Reading::all(&files, &test_parser()));
    let reference = &all[0].1;
    assert_eq!(reference.0.len(), 400);
    let chunk = Sizes::for_files(1).bytes;
    assert!(400 * 20_000 > 4 * chunk, "spans several chunks");
    let lines = |seen: &Seen| -> Vec<(String, u64, Vec<u8>)> {
        seen.0
            .iter()
            .map(|e| (e.1.clone(), e.2, e.3.clone()))
            .collect()
    };
    for (name, seen) in &all[1..] {
        assert_eq!(lines(reference), lines(seen), "{name}");
        assert_eq!(reference.2, seen.2, "{name}");
    }
}

/// `n` numbered lines of `kind`'s log from second `start`, every
/// `step` seconds (overlapping other files'), a reject every 11th.
fn log_text(n: u64, start: u64, step: u64, tag: &str) -> String {
    let mut text = String::new();
    for i in 0..n {
        if i % 11 == 4 {
            text.push_str("{\"ts\":\"not a time\"}\n");
            continue;
        }
        let s = start + i * step;
        text.push_str(&format!(
            "{{\"ts\":\"2026-11-23T{:02}:{:02}:{:02}Z\",\"request_id\":\"{tag}-{i}\",\"tool\":\"t\"}}\n",
            s / 3600 % 24,
            s / 60 % 60,
            s % 60,
        ));
    }
    text
}

#[test]
fn every_merge_of_many_files_hands_out_what_the_line_by_line_merge_does() {
    // Sixty generations with overlapping times (every third a zstd
    // archive), plus the other two logs: small chunks, many files in
    // flight at once, each set aside after its first chunk and resumed.
    let d = tempfile::tempdir().unwrap();
    for g in 1..=60u64 {
        let text = log_text(90, 3600 + g * 30, 7, &format!("g{g}"));
        if g % 3 == 0 {
            let z = zstd::encode_all(text.as_bytes(), 3).unwrap();
            std::fs::write(d.path().join(format!("tool-usage.log.{g}.zst")), z).unwrap();
        } else {
            std::fs::write(d.path().join(format!("tool-usage.log.{g}")), text).unwrap();
        }
    }
    std::fs::write(
        d.path().join("tool-usage.log"),
        log_text(500, 3600, 3, "live"),
    )
    .unwrap();
    std::fs::write(d.path().join("approvals.log"), log_text(300, 3601, 5, "a")).unwrap();
    std::fs::write(d.path().join("errors.log"), log_text(40, 3700, 60, "e")).unwrap();
    let files = discover(&[d.path().to_path_buf()], d.path()).unwrap();
    assert_eq!(files.len(), 63);
    assert!(
        Sizes::for_files(63).lines < 90,
        "chunks smaller than a file"
    );
    let all = read_each(Reading::all(&files, &test_parser()));
    let ids = |seen: &Seen| -> Vec<(Option<String>, String, u64)> {
        (seen.0.iter())
            .map(|e| {
                (
                    e.0.request_id.as_deref().map(str::to_string),
                    e.1.clone(),
                    e.2,
                )
            })
            .collect()
    };
    let reference = &all[0].1;
    assert_eq!(reference.0.len(), 60 * 82 + 454 + 273 + 36);
    for (name, seen) in &all[1..] {
        assert_eq!(ids(reference), ids(seen), "{name}");
        assert_eq!(reference.1, seen.1, "{name}");
        assert_eq!(reference.2, seen.2, "{name}");
    }
}

#[test]
fn a_read_error_stops_every_merge_where_it_stops_the_line_by_line_merge() {
    // A zstd archive cut short: its lines up to the cut are handed
    // out, then the read fails, with the same error either way.
    let d = tempfile::tempdir().unwrap();
    let text = log_text(5000, 0, 1, "z");
    let packed = zstd::encode_all(text.as_bytes(), 3).unwrap();
    let cut = &packed[..packed.len() * 2 / 3];
    std::fs::write(d.path().join("tool-usage.log.1.zst"), cut).unwrap();
    std::fs::write(d.path().join("approvals.log"), log_text(50, 0, 60, "a")).unwrap();
    let files = discover(&[d.path().to_path_buf()], d.path()).unwrap();
    let parser = test_parser();
    let run = |merge: Merge| {
        let (mut seen, mut rejects) = (Vec::new(), 0);
        let res = merge(
            Reading::all(&files, &parser),
            &mut |_| rejects += 1,
            &mut |ev, l| seen.push((ev.request_id.clone(), l.line)),
        );
        let err = res.expect_err("the archive is cut short").to_string();
        (seen, rejects, err)
    };
    let reference = run(MERGES[0].1);
    assert!(
        reference.0.len() > 1000,
        "{} events before the cut",
        reference.0.len()
    );
    assert!(
        reference.2.contains("tool-usage.log.1.zst"),
        "{}",
        reference.2
    );
    for (name, merge) in &MERGES[1..] {
        assert_eq!(reference, run(*merge), "{name}");
    }
}

#[test]
fn lines_in_flight_stay_bounded_whatever_the_number_of_files() {
    for n in [1, 2, 3, 8, 63, 256, 1000] {
        let s = Sizes::for_files(n);
        let in_flight = n * s.lines * (s.ahead + 1);
        assert!(s.ahead >= 2 && s.lines >= 16, "{n}: {s:?}");
        assert!(
            in_flight <= 12_288 || s.lines == 16,
            "{n} files: {in_flight} lines"
        );
        assert!(n * s.bytes * (s.ahead + 1) <= 12 << 20 || s.bytes == 64 << 10);
    }
}

#[test]
fn bytes_read_count_file_bytes_once_whichever_merge() {
    // The progress bar's total is the files' sizes on disk: the count
    // is of bytes before decompression, and a file set aside and
    // resumed is not counted twice.
    let d = tempfile::tempdir().unwrap();
    let text = log_text(20_000, 0, 1, "z");
    let z = zstd::encode_all(text.as_bytes(), 3).unwrap();
    std::fs::write(d.path().join("tool-usage.log.1.zst"), &z).unwrap();
    std::fs::write(d.path().join("tool-usage.log"), &text).unwrap();
    std::fs::write(d.path().join("errors.log"), log_text(3000, 5, 9, "e")).unwrap();
    let files = discover(&[d.path().to_path_buf()], d.path()).unwrap();
    let on_disk: u64 = (files.iter())
        .map(|f| std::fs::metadata(&f.path).unwrap().len())
        .sum();
    let parser = test_parser();
    for (name, merge) in MERGES {
        let counter = Arc::new(AtomicU64::new(0));
        let read = Reading {
            bytes_read: Some(counter.clone()),
            ..Reading::all(&files, &parser)
        };
        merge(read, &mut |_| {}, &mut |_, _| {}).unwrap();
        let read = counter.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(read, on_disk, "{name}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Tiny chunks, cut by lines or bytes, one to three ahead, up to
    /// five files of events, bad, empty and too-long lines: both
    /// chunked merges hand out what the line-by-line merge does.
    #[test]
    fn the_merges_in_tiny_chunks_hand_out_what_the_line_by_line_merge_does(
        logs in proptest::collection::vec(
            proptest::collection::vec((0u8..8, 0u32..40), 0..50), 1..=5),
        lines in 1usize..5,
        bytes in 1usize..400,
        ahead in 1usize..4,
    ) {
        let names = ["tool-usage.log", "approvals.log", "errors.log", "tool-usage.log.1", "errors.log.1"];
        let d = tempfile::tempdir().unwrap();
        for (log, name) in logs.iter().zip(names) {
            let mut text = String::new();
            for (i, &(what, s)) in log.iter().enumerate() {
                match what {
                    0 => text.push_str("not json"),
                    1 => text.push_str(&format!("{{\"ts\":\"2026-11-23T10:00:00Z\",\"pad\":\"{}\"}}", "x".repeat(300))),
                    2 => {}
                    _ => text.push_str(&format!("{{\"ts\":\"2026-11-23T10:00:{s:02}Z\",\"request_id\":\"{name}-{i}\"}}")),
                }
                text.push('\n');
            }
            std::fs::write(d.path().join(name), text).unwrap();
        }
        let files = discover(&[d.path().to_path_buf()], d.path()).unwrap();
        let parser = Parser { max_line_bytes: 200, now_ms: i64::MAX / 2 };
        let range = TimeRange { since: Some(1_795_428_000_000 + 5_000), until: None };
        let read = Reading { range, ..Reading::all(&files, &parser) };
        let reference = read_all(read.clone(), reference::merge_lines);
        let sizes = Sizes { lines, bytes, ahead };
        let chunked = read_all(read.clone(), |read, rej, ev| merge_chunked(read, sizes, rej, ev));
        let piped = read_all(read, |read, rej, ev| parallel::merge_in_chunks(read, sizes, rej, ev));
        type Line = (i64, Option<String>, String, u64, Vec<u8>);
        let lines_of = |seen: &Seen| -> Vec<Line> {
            (seen.0.iter())
                .map(|e| (e.0.ts, e.0.request_id.as_deref().map(str::to_string), e.1.clone(), e.2, e.3.clone()))
                .collect()
        };
        for seen in [&chunked, &piped] {
            proptest::prop_assert_eq!(lines_of(&reference), lines_of(seen));
            proptest::prop_assert_eq!(&reference.1, &seen.1);
            proptest::prop_assert_eq!(&reference.2, &seen.2);
        }
    }
}
