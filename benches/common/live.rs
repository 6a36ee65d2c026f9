//! Helpers of the benches that drive a live daemon (`soak`, `nats`): the
//! lines they write, their settings and what they read back.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{SystemTime, UNIX_EPOCH};

/// A setting from the environment, or `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A `tool_call` line at `ts` of `user`, the `seq`-th written.
pub fn line(ts: i64, user: &str, seq: u64) -> String {
    let t = chrono::DateTime::from_timestamp_millis(ts)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ");
    format!(
        "{{\"ts\":\"{t}\",\"request_id\":\"r-{seq}\",\"user_id\":\"{user}\",\"agent_id\":\"ag-{}\",\"conversation_id\":\"c-{}\",\"server_name\":\"calendar\",\"tool_name\":\"calendar_read\",\"outcome\":\"success\",\"duration_ms\":{}}}\n",
        seq % 17,
        seq % 9973,
        seq % 900
    )
}

/// The q-quantile of sorted samples (nearest rank).
pub fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

/// The body of `GET path` from the daemon at `addr` (empty when it does
/// not answer).
pub fn get(addr: &str, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return String::new();
    };
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut r = String::new();
    let _ = s.read_to_string(&mut r);
    r.split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default()
}
