//! Throughput of `mcpwatch report`'s library over 1,000,000 `tool_call`
//! lines (about 250 bytes each), from a plain log and from a zstd archive of
//! the same data; and the whole report as `--format json` and as
//! `--format html` (build and render) over the plain log, with the size of
//! each (printed before the timed runs). The data is generated here,
//! deterministically, so the bench needs no fixture; `MCPWATCH_BENCH_LINES`
//! changes the line count.
//!
//! Run: `cargo bench --bench report`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::Write as _;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcpwatch::ingest::merge::TimeRange;
use mcpwatch::report::render::{Format, render};
use mcpwatch::report::{ReportOptions, build};

/// 2026-11-01T00:00:00Z.
const START_MS: i64 = 1_793_491_200_000;

/// A small deterministic generator (xorshift), so runs compare.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Writes `n` tool-call lines, 20 servers × 10 tools, 1,000 users, one
/// call every ~2.6 s (a month for a million lines).
fn generate(path: &Path, n: u64) -> u64 {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let outcomes = [
        "success", "success", "success", "success", "error", "denied",
    ];
    let mut line = String::with_capacity(320);
    let mut bytes = 0;
    for i in 0..n {
        line.clear();
        let ts = START_MS + (i as i64) * 2_600;
        let d = chrono::DateTime::from_timestamp_millis(ts).unwrap();
        let server = rng.below(20);
        let tool = rng.below(10);
        let user = rng.below(1000);
        let _ = writeln!(
            line,
            "{{\"ts\":\"{}\",\"request_id\":\"req-{i:010}\",\"user_id\":\"user-{user:04}\",\"agent_id\":\"agent-{:03}\",\"conversation_id\":\"conv-{:08}\",\"server_name\":\"server-{server:02}\",\"tool_name\":\"tool_{tool:02}_op\",\"token_id\":\"tok-{:04}\",\"outcome\":\"{}\",\"duration_ms\":{},\"args_bytes\":{}}}",
            d.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            rng.below(100),
            rng.below(100_000_000),
            user,
            outcomes[rng.below(outcomes.len() as u64) as usize],
            1 + rng.below(5000),
            rng.below(10_000),
        );
        bytes += line.len() as u64;
        out.write_all(line.as_bytes()).unwrap();
    }
    out.flush().unwrap();
    bytes
}

fn bench(c: &mut Criterion) {
    let n: u64 = std::env::var("MCPWATCH_BENCH_LINES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let root = tempfile::tempdir().unwrap();
    let plain = root.path().join("plain");
    let packed = root.path().join("zstd");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::create_dir_all(&packed).unwrap();
    let log = plain.join("tool-usage.log");
    let bytes = generate(&log, n);
    eprintln!(
        "report bench: {n} lines, {bytes} bytes ({} bytes/line)",
        bytes / n.max(1)
    );
    let input = std::fs::File::open(&log).unwrap();
    let archive = std::fs::File::create(packed.join("tool-usage.log.20261201-000000.zst")).unwrap();
    zstd::stream::copy_encode(input, archive, 3).unwrap();

    let now = START_MS + 40 * 86_400_000;
    let mut group = c.benchmark_group("report");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n));
    for (name, dir) in [("plain", &plain), ("zstd", &packed)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let opts = ReportOptions::new(dir.as_path(), TimeRange::default(), now);
                let r = build(&opts).unwrap();
                assert_eq!(r.totals.tool_calls, n);
                black_box(r)
            })
        });
    }
    // The report as a file, in each format: read, build and render.
    for (name, format) in [("json", Format::Json), ("html", Format::Html)] {
        let opts = ReportOptions::new(plain.as_path(), TimeRange::default(), now);
        let mut out = Vec::new();
        render(&mut out, &build(&opts).unwrap(), format).unwrap();
        eprintln!("report bench: --format {name} is {} bytes", out.len());
        group.bench_function(format!("plain_{name}"), |b| {
            b.iter(|| {
                let opts = ReportOptions::new(plain.as_path(), TimeRange::default(), now);
                let mut out = Vec::with_capacity(1 << 20);
                render(&mut out, &build(&opts).unwrap(), format).unwrap();
                black_box(out)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
