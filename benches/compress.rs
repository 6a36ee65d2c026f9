//! Compression throughput of the rotator (SPEC §6): zstd streaming
//! compression plus verification by decompression, the work one rotation
//! does per byte, on a generated log of realistic JSON lines.
//!
//! ```text
//! cargo bench --bench compress                                   # 1 GiB
//! MCPWATCH_BENCH_BYTES=64MiB cargo bench --bench compress        # quick
//! MCPWATCH_BENCH_LEVEL=9 MCPWATCH_BENCH_DIR=/var/tmp cargo bench --bench compress
//! ```
//!
//! Criterion reports the throughput (MiB/s of plain input). Before the timed
//! runs, one compression runs alone and the bench prints the peak RSS it
//! reached (`VmHWM` from `/proc/self/status`, reset first through
//! `/proc/self/clear_refs`), which shows memory stays bounded whatever the
//! file size. To measure the whole command instead:
//!
//! ```text
//! /usr/bin/time -v mcpwatch rotate --no-consumer --dir D   # "Maximum resident set size"
//! ```
//! over a directory holding a 1 GiB `tool-usage.log.1` idle for a day.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcpwatch::rotate::compress_copy;

/// Parses `1073741824`, `64MiB`, `1GiB`, `500KiB`.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("GiB") {
        (n, 1 << 30)
    } else if let Some(n) = s.strip_suffix("MiB") {
        (n, 1 << 20)
    } else if let Some(n) = s.strip_suffix("KiB") {
        (n, 1 << 10)
    } else {
        (s, 1)
    };
    num.trim().parse::<u64>().ok().map(|n| n * mult)
}

/// Writes about `bytes` of tool-call lines: varied users, tools, request
/// ids, durations and timestamps, as the audit logs hold them (so the ratio
/// is realistic, not that of a repeated line).
fn generate(path: &Path, bytes: u64) -> std::io::Result<u64> {
    const TOOLS: [(&str, &str); 8] = [
        ("gmail", "email_send"),
        ("gmail", "email_read"),
        ("drive", "file_search"),
        ("drive", "file_read"),
        ("github", "create_issue"),
        ("github", "list_pulls"),
        ("slack", "post_message"),
        ("crm", "contact_lookup"),
    ];
    const OUTCOMES: [&str; 4] = ["success", "success", "success", "error"];
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut rng = fastrand::Rng::with_seed(7);
    let mut written = 0u64;
    let mut ms: i64 = 1_795_400_000_000;
    let mut i = 0u64;
    while written < bytes {
        ms += rng.i64(1..400);
        let ts = chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ");
        let (server, tool) = TOOLS[rng.usize(..TOOLS.len())];
        let line = format!(
            "{{\"ts\":\"{ts}\",\"request_id\":\"r-{i:x}{:08x}\",\"user_id\":\"u-{}\",\"agent_id\":\"ag-{}\",\"conversation_id\":\"c-{:012x}\",\"server_name\":\"{server}\",\"tool_name\":\"{tool}\",\"outcome\":\"{}\",\"duration_ms\":{},\"args_bytes\":{}}}\n",
            rng.u32(..),
            rng.u32(..5000),
            rng.u32(..40),
            rng.u64(..1 << 40),
            OUTCOMES[rng.usize(..OUTCOMES.len())],
            rng.u32(5..30_000),
            rng.u32(10..8192),
        );
        w.write_all(line.as_bytes())?;
        written += line.len() as u64;
        i += 1;
    }
    w.flush()?;
    Ok(written)
}

/// Peak RSS of this process in KiB since the last reset.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn bench(c: &mut Criterion) {
    let bytes = std::env::var("MCPWATCH_BENCH_BYTES")
        .ok()
        .and_then(|s| parse_size(&s))
        .unwrap_or(1 << 30);
    let level: i32 = std::env::var("MCPWATCH_BENCH_LEVEL")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let base = std::env::var_os("MCPWATCH_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).expect("temp dir for the bench log");
    let src = dir.path().join("tool-usage.log.20261123-000000");
    let out = dir.path().join("tool-usage.log.20261123-000000.zst");
    let size = generate(&src, bytes).expect("generate the bench log");

    // One run alone: ratio, wall time, peak RSS.
    let rss_before = peak_rss_kib();
    let reset = reset_peak_rss();
    let t0 = Instant::now();
    let stats = compress_copy(&src, &out, level).expect("compress");
    let secs = t0.elapsed().as_secs_f64();
    let rss_peak = peak_rss_kib();
    eprintln!(
        "compress+verify level {level}: {size} bytes -> {} bytes (ratio {:.1}), {:.2} s, {:.1} MiB/s",
        stats.bytes_out,
        size as f64 / stats.bytes_out.max(1) as f64,
        secs,
        size as f64 / (1 << 20) as f64 / secs
    );
    match (reset, rss_peak) {
        (true, Some(kib)) => eprintln!(
            "peak RSS during compress+verify: {:.1} MiB (process before: {:.1} MiB)",
            kib as f64 / 1024.0,
            rss_before.unwrap_or(0) as f64 / 1024.0
        ),
        _ => eprintln!("peak RSS: unavailable (no /proc/self/clear_refs)"),
    }
    if std::env::var_os("MCPWATCH_BENCH_PARTS").is_some() {
        parts(&src, &out, level, size);
    }
    std::fs::remove_file(&out).expect("remove archive");

    let mut g = c.benchmark_group("rotate");
    g.throughput(Throughput::Bytes(size));
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(1));
    g.measurement_time(Duration::from_secs_f64((secs * 12.0).max(1.0)));
    g.bench_function(format!("compress_verify_level{level}"), |b| {
        b.iter(|| {
            let s = compress_copy(&src, &out, level).expect("compress");
            std::fs::remove_file(&out).expect("remove archive");
            s
        })
    });
    g.finish();
}

/// Where the time goes: each stage alone, once (`MCPWATCH_BENCH_PARTS=1`).
fn parts(src: &Path, archive: &Path, level: i32, size: u64) {
    use sha2::Digest;
    let rate = |what: &str, t: Instant| {
        let s = t.elapsed().as_secs_f64();
        eprintln!(
            "  {what}: {s:.2} s, {:.0} MiB/s",
            size as f64 / (1 << 20) as f64 / s
        );
    };
    let t = Instant::now();
    let mut f = std::fs::File::open(src).expect("open");
    let mut enc = zstd::stream::write::Encoder::new(std::io::sink(), level).expect("encoder");
    std::io::copy(&mut f, &mut enc).expect("compress");
    enc.finish().expect("finish");
    rate("zstd compress only", t);
    let t = Instant::now();
    let mut dec = zstd::stream::read::Decoder::new(std::fs::File::open(archive).expect("open"))
        .expect("decoder");
    std::io::copy(&mut dec, &mut std::io::sink()).expect("decompress");
    rate("zstd decompress only", t);
    let t = Instant::now();
    let mut h = sha2::Sha256::new();
    let mut f = std::fs::File::open(src).expect("open");
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).expect("read");
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let _ = h.finalize();
    rate("sha256 only", t);
}

criterion_group!(benches, bench);
criterion_main!(benches);
