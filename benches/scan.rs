//! Detection throughput (issue: detectors and `scan`).
//!
//! Over a generated file of 1,000,000 `tool_call` lines (~250 bytes each):
//! (a) `parse`: line framing + parsing alone into events;
//! (b) `scan`: the full scan path — framing, parsing, the ts merge and the
//!     engine with all seven rules on (fine-grained policy loaded);
//! and, to show where (a) and (b) part, `merge` ((b) without the engine)
//! and `engine` (the engine alone, over events parsed beforehand);
//! `scan_pipelined`, (b) as `mcpwatch scan` runs it when it has two cores
//! (a helper thread reads and frames lines, both threads parse, the calling
//! thread merges and runs the engine); and
//! `serde_baseline`, the issue's point of reference: a minimal serde_json
//! reader of the same lines; and `scan_without_<rule>` (and
//! `scan_without_beyond_thresholds`, all three off), (b) with a rule of
//! SPEC §3 "Rules beyond fixed thresholds" switched off by a rules file,
//! so each rule's cost is `scan` − `scan_without_<rule>` in the same run
//! (the issue asks for at most 5 % each). The bench lines carry no
//! `tool_hash`, so `tool_definition_drift` costs only its check for one.
//! The goal is (b) ≥ 0.8 × (a) and ≥ 1,000,000 lines/s on one core.
//!
//! `seeded/scan_first_seven` and `seeded/scan_all_rules` compare `scan`
//! with the first seven rules of SPEC §3 and with every rule on, over the
//! bench set with a token per user (SPEC §3's seed-driven rules included).
//!
//! `cargo bench --bench scan`; `MCPWATCH_BENCH_LINES` changes the size.
//! The data file is cached under `target/bench-data/`.

#[path = "common/seeded.rs"]
mod seeded;

use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcpwatch::config::{RuleName, Sources, load};
use mcpwatch::detect::Engine;
use mcpwatch::event::LineRef;
use mcpwatch::event::{Event, Kind};
use mcpwatch::ingest::input::{InputFile, discover};
use mcpwatch::ingest::lines::{LineReader, open_log};
use mcpwatch::ingest::merge::{Merge, Reading, merge_files, merge_files_pipelined};
use mcpwatch::ingest::parse::Parser;

/// `target/bench-data/<n>/audit/tool-usage.log` and a policy beside it.
fn data(n: usize) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-data")
        .join(n.to_string());
    let log = root.join("audit/tool-usage.log");
    if !log.exists() {
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        mcpwatch::testkit::write_bench_log(&log, n, 5_000, 200, 42).unwrap();
        // The generated tools are auto-approved by pattern (so no bypass
        // floods), named in no list (so each pair is new once), and admin
        // tools are disabled: every rule is on and evaluated.
        std::fs::write(
            root.join("security-config.json"),
            r#"{"approvalMode":"fine_grained","rules":{"autoApproved":{"patterns":["tool_*"]},"requiresApproval":{"patterns":["*_send"]},"disabled":{"patterns":["admin_*"]}}}"#,
        )
        .unwrap();
    }
    root
}

/// The memory scenario of the issue: 1,000,000 lines from 1,000,000
/// distinct users and 20,000 distinct tools, generated beside the other
/// data set so `/usr/bin/time -v target/release/mcpwatch scan
/// target/bench-data/distinct-1000000/audit` can measure peak RSS.
fn distinct_data(n: usize) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-data")
        .join(format!("distinct-{n}"));
    let log = root.join("audit/tool-usage.log");
    if !log.exists() {
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        mcpwatch::testkit::write_bench_log(&log, n, n, 20_000, 7).unwrap();
    }
    root
}

/// The bench's configuration with the rules `off` switched off by a
/// rules directory of their own (`<root>/<name>/rules/`).
fn config_without(root: &Path, name: &str, off: &[&str]) -> mcpwatch::config::Config {
    let rules = root.join(name).join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    for rule in off {
        std::fs::write(rules.join(format!("{rule}.toml")), "enabled = false\n").unwrap();
    }
    load(&Sources {
        config: Some(root.join("security-config.json")),
        rules: Some(rules),
        settings: None,
        dir: Some(root.join("audit")),
    })
    .unwrap()
}

/// `scan`'s work over `files` under `config`: the merge and the engine;
/// returns the number of alerts (so nothing is optimised away).
fn scan_once(merge: Merge, files: &[InputFile], config: &mcpwatch::config::Config) -> u64 {
    let mut engine = Engine::new(config);
    let mut alerts = Vec::new();
    let mut count = 0u64;
    merge_all(merge, files, &mut |ev, line| {
        engine.process(ev, line, &mut alerts);
        count += alerts.len() as u64;
        alerts.clear();
    });
    count
}

/// What a minimal serde_json reader of these lines deserializes.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct BaselineLine<'a> {
    ts: &'a str,
    request_id: Option<&'a str>,
    user_id: Option<&'a str>,
    agent_id: Option<&'a str>,
    conversation_id: Option<&'a str>,
    server_name: Option<&'a str>,
    tool_name: Option<&'a str>,
    outcome: Option<&'a str>,
    duration_ms: Option<f64>,
    args_bytes: Option<u64>,
}

/// How many lines of `log` (framed as `scan` frames them) `accept` takes.
fn count_lines(log: &Path, mut accept: impl FnMut(&[u8]) -> bool) -> usize {
    let mut r = LineReader::new(open_log(log).unwrap(), 1 << 20);
    let mut ok = 0;
    while let Some((_, line)) = r.next_line().unwrap() {
        if line.is_ok_and(&mut accept) {
            ok += 1;
        }
    }
    ok
}

/// Every event of `files`, merged by `merge` as `scan` merges them.
fn merge_all(merge: Merge, files: &[InputFile], on_event: &mut dyn FnMut(&Event, LineRef<'_>)) {
    merge(Reading::all(files, &parser()), &mut |_| {}, on_event).unwrap();
}

fn parser() -> Parser {
    Parser {
        max_line_bytes: 1 << 20,
        now_ms: i64::MAX / 4,
    }
}

fn bench(c: &mut Criterion) {
    let n = seeded::bench_lines();
    let root = data(n);
    distinct_data(n);
    let log = root.join("audit/tool-usage.log");
    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.bench_function("parse", |b| {
        let p = parser();
        b.iter(|| assert_eq!(count_lines(&log, |l| p.parse(Kind::ToolCall, l).is_ok()), n))
    });
    // The issue's point of reference: a minimal single-threaded serde_json
    // line parser (borrowed fields of a derived struct, no event built), so
    // the figures above can be read against this machine's speed.
    g.bench_function("serde_baseline", |b| {
        b.iter(|| {
            let ok = count_lines(&log, |l| {
                serde_json::from_slice::<BaselineLine<'_>>(l).is_ok()
            });
            assert_eq!(ok, n)
        })
    });
    let config = load(&Sources {
        config: Some(root.join("security-config.json")),
        rules: None,
        settings: None,
        dir: Some(root.join("audit")),
    })
    .unwrap();
    let files = discover(&[root.join("audit")], &root).unwrap();
    // (a) and (b) differ by the merge and the engine: this is the merge
    // alone (framing, parsing, the ts merge, no engine), to tell them apart.
    g.bench_function("merge", |b| {
        b.iter(|| {
            let mut count = 0u64;
            merge_all(merge_files, &files, &mut |ev, _| count += ev.ts as u64 & 1);
            count
        })
    });
    // (b), and (b) as `mcpwatch scan` runs it on a machine with two cores
    // or more: reading on a helper thread, parsing on both, the merge and
    // the engine on the calling thread.
    for (name, merge) in [
        ("scan", merge_files as Merge),
        ("scan_pipelined", merge_files_pipelined),
    ] {
        g.bench_function(name, |b| b.iter(|| scan_once(merge, &files, &config)));
    }
    // (b) with some rules off (see the module doc).
    let beyond = [
        "exfil_sequence",
        "tool_definition_drift",
        "usage_baseline_spike",
    ];
    let variants: Vec<(String, Vec<&str>)> = (beyond.iter())
        .map(|r| (format!("scan_without_{r}"), vec![*r]))
        .chain([("scan_without_beyond_thresholds".into(), beyond.to_vec())])
        .collect();
    for (name, off) in variants {
        let config = config_without(&root, &name, &off);
        g.bench_function(name.as_str(), |b| {
            b.iter(|| scan_once(merge_files, &files, &config))
        });
    }
    // The engine alone, over events parsed beforehand: what (b) adds to
    // the merge. Measured last: holding a million parsed events (half a
    // gigabyte of small allocations) and freeing them leaves the allocator
    // in a state that slowed the stages measured after it by ~20 %.
    let mut parsed = Vec::with_capacity(n);
    merge_all(merge_files, &files, &mut |ev, line| {
        parsed.push((ev.clone(), line.line, line.raw.to_vec()))
    });
    let name: std::sync::Arc<str> = "tool-usage.log".into();
    g.bench_function("engine", |b| {
        b.iter(|| {
            let mut engine = Engine::new(&config);
            let mut alerts = Vec::new();
            let mut count = 0u64;
            for (ev, line, raw) in &parsed {
                let at = LineRef {
                    file: &name,
                    line: *line,
                    raw,
                };
                engine.process(ev, at, &mut alerts);
                count += alerts.len() as u64;
                alerts.clear();
            }
            count
        })
    });
    g.finish();
}

/// The bench set with a bearer token per user (`"token_id":"tk-<user>"`),
/// so the token rules keep state as they would in production, beside a
/// security-config.json that switches every seed-driven rule on, and three
/// rules directories: `first-seven/` turns off every rule after the first
/// seven of SPEC §3, `thirteen/` every rule after the seed-switched six,
/// `all/` turns every rule on.
fn seeded_data(n: usize) -> PathBuf {
    let plain = data(n).join("audit/tool-usage.log");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-data")
        .join(format!("seeded-{n}"));
    let log = root.join("audit/tool-usage.log");
    if !log.exists() {
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        let text = std::fs::read_to_string(&plain).unwrap();
        let mut out = String::with_capacity(text.len() + n * 24);
        for line in text.lines() {
            let at = line.find(r#""user_id":"user-"#).unwrap() + r#""user_id":"user-"#.len();
            let id = &line[at..at + 7];
            out.push_str(&line[..at + 8]);
            out.push_str(&format!(r#","token_id":"tk-{id}""#));
            out.push_str(&line[at + 8..]);
            out.push('\n');
        }
        std::fs::write(&log, out).unwrap();
        seeded::write_policy_and_rules(
            &root,
            &[
                ("first-seven", 7),
                ("thirteen", 13),
                ("all", RuleName::COUNT),
            ],
        );
    }
    root
}

/// The cost bounds of the rules after the first seven: `scan` with the
/// first seven, with the seed-switched six added (thirteen; #18 allows
/// 10 % more) and with all sixteen, over the same data in the same run.
/// `cargo bench --bench scan -- seeded` runs only this pair.
fn bench_seeded(c: &mut Criterion) {
    let n = seeded::bench_lines();
    let root = seeded_data(n);
    let files = discover(&[root.join("audit")], &root).unwrap();
    let mut g = c.benchmark_group("seeded");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    for (name, rules) in [
        ("scan_first_seven", "first-seven"),
        ("scan_thirteen", "thirteen"),
        ("scan_all_rules", "all"),
    ] {
        let config = load(&Sources {
            config: Some(root.join("security-config.json")),
            rules: Some(root.join(rules)),
            settings: None,
            dir: Some(root.join("audit")),
        })
        .unwrap();
        g.bench_function(name, |b| b.iter(|| scan_once(merge_files, &files, &config)));
    }
    g.finish();
}

criterion_group!(benches, bench, bench_seeded);
criterion_main!(benches);
