//! Parsing throughput (issue 3, measure (a)): `Parser::parse` over generated
//! tool_call lines of ~250 bytes, alone and behind the `LineReader`.
//!
//! `MCPWATCH_BENCH_LINES` sets the line count (default 1,000,000; the input
//! is generated once, in memory, by `testkit::write_bench_log`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcpwatch::event::Kind;
use mcpwatch::ingest::lines::LineReader;
use mcpwatch::ingest::parse::Parser;
use mcpwatch::testkit::{EXAMPLE_DAY_MS, write_bench_log};

fn input() -> (Vec<u8>, usize) {
    let lines = std::env::var("MCPWATCH_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tool-usage.log");
    write_bench_log(&path, lines, 10_000, 200, 42).expect("generate bench log");
    (std::fs::read(&path).expect("read bench log"), lines)
}

fn parse(c: &mut Criterion) {
    let (data, lines) = input();
    let parser = Parser {
        max_line_bytes: 1 << 20,
        now_ms: EXAMPLE_DAY_MS + 2 * 86_400_000,
    };
    let split: Vec<&[u8]> = data
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let mut g = c.benchmark_group("parse");
    g.sample_size(10);
    // One iteration parses the whole input (~0.7 s for 1M lines).
    g.measurement_time(std::time::Duration::from_secs(20));
    g.throughput(Throughput::Elements(lines as u64));
    g.bench_function("parse_only", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for line in &split {
                ok += usize::from(parser.parse(Kind::ToolCall, black_box(line)).is_ok());
            }
            assert_eq!(ok, lines);
        })
    });
    g.bench_function("lines_and_parse", |b| {
        b.iter(|| {
            let mut r = LineReader::new(&data[..], 1 << 20);
            let mut ok = 0usize;
            while let Some((_, line)) = r.next_line().expect("in-memory read") {
                if let Ok(line) = line {
                    ok += usize::from(parser.parse(Kind::ToolCall, line).is_ok());
                }
            }
            assert_eq!(ok, lines);
        })
    });
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
