//! Benchmark logs: many ~250-byte `tool_call` lines with realistic fields,
//! written fast (the benches generate millions), same bytes for the same
//! seed.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::{EXAMPLE_DAY_MS, Rng, push_rfc3339_ms};
use crate::event::Millis;

/// Writes `lines` tool_call lines of about 250 bytes with realistic fields,
/// `users` distinct users and `tools` distinct tools (over `tools / 8 + 1`
/// servers), ts increasing evenly over 24 h from 2026-11-23T00:00:00Z.
pub fn write_bench_log(
    path: &Path,
    lines: usize,
    users: usize,
    tools: usize,
    seed: u64,
) -> io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, fs::File::create(path)?);
    let mut rng = Rng::new(seed);
    let users = users.max(1) as u64;
    let tools = tools.max(1) as u64;
    let step = 86_400_000.0 / lines.max(1) as f64;
    let mut line = String::with_capacity(320);
    for i in 0..lines {
        let ts = EXAMPLE_DAY_MS + (i as f64 * step) as Millis;
        let user = rng.next_u64() % users;
        let tool = rng.next_u64() % tools;
        let r = rng.next_u64();
        let outcome = match r % 100 {
            0 => "error",
            1 => "denied",
            _ => "success",
        };
        line.clear();
        line.push_str(r#"{"ts":""#);
        push_rfc3339_ms(&mut line, ts);
        let _ = write!(
            line,
            r#"","request_id":"r-{:012x}","user_id":"user-{user:07}","agent_id":"ag-{:02}","conversation_id":"c-{:012x}","server_name":"srv-{:04}","tool_name":"tool_{tool:05}","outcome":"{outcome}","duration_ms":{},"args_bytes":{}}}"#,
            r >> 16,
            user % 17,
            (r >> 20) % 0xffff_ffff_ffff,
            tool / 8,
            10 + (r >> 8) % 2000,
            60 + (r >> 24) % 4000,
        );
        line.push('\n');
        w.write_all(line.as_bytes())?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_lines_are_about_250_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tool-usage.log");
        write_bench_log(&path, 1000, 100, 50, 7).expect("write");
        let text = fs::read_to_string(&path).expect("read");
        let n = text.lines().count();
        assert_eq!(n, 1000);
        let avg = text.len() / n;
        assert!((230..=270).contains(&avg), "average line {avg} bytes");
    }
}
