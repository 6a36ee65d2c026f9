//! A real `kill -9` of a process in the middle of delivery retries: the
//! outbox on disk is all that survives, and it is enough.
//!
//! The test re-runs its own test binary as the child (selected by an
//! environment variable): the child starts the delivery core against a
//! receiver answering 503, submits alerts and waits to be killed. The parent
//! then restarts delivery on the same state directory with the receiver
//! healthy and checks that every alert arrives, once, in its original group.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::delivery::{Receiver, Script};
use mcpwatch::alert::delivery::{Delivery, DeliveryOptions};
use mcpwatch::alert::outbox::Backoff;
use mcpwatch::alert::router::DeliveryConfig;
use mcpwatch::alert::{Alert, Evidence, alert_id};
use mcpwatch::config::{Route, WebhookChannel};
use mcpwatch::event::Severity;
use mcpwatch::metrics::Metrics;

const CHILD_STATE: &str = "MCPWATCH_TEST_CRASH_CHILD_STATE";
const CHILD_URL: &str = "MCPWATCH_TEST_CRASH_CHILD_URL";
const SECRET_ENV: &str = "MCPWATCH_TEST_CRASH_SECRET";
const SECRET: &str = "crash-whsec-5Tn1";
const TEST: &str = "kill_9_during_retries_loses_nothing_and_delivers_once";

/// The test's name as the harness lists it, `delivery_crash::<TEST>` (the
/// module path without the crate's name), for the child's `--exact`.
fn test_name() -> String {
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    format!("{module}::{TEST}")
}

fn cfg(url: &str) -> DeliveryConfig {
    DeliveryConfig {
        webhook: vec![WebhookChannel {
            name: "siem".to_string(),
            url: url.to_string(),
            secret_env: Some(SECRET_ENV.to_string()),
            timeout: 2_000,
            headers: BTreeMap::new(),
            format: mcpwatch::config::WebhookFormat::Mcpwatch,
            headers_env: BTreeMap::new(),
            routing_key_env: None,
            basic_auth: None,
            bearer_token_env: None,
            resolve_after: Default::default(),
        }],
        routes: vec![Route {
            channels: vec!["siem".to_string()],
            min_severity: Severity::Low,
            rules: vec![],
            group_wait: 300,
        }],
        ..Default::default()
    }
}

fn alerts() -> Vec<Alert> {
    (1..=3u64)
        .map(|i| {
            let key: BTreeMap<String, String> = [("user_id".to_string(), "u-9".to_string())].into();
            let line = format!("{{\"ts\":\"2026-11-23T14:03:0{i}.000Z\",\"user_id\":\"u-9\"}}");
            Alert {
                id: alert_id("rapid_tool_usage", &key, line.as_bytes()),
                rule: "rapid_tool_usage".to_string(),
                severity: Severity::Medium,
                ts: format!("2026-11-23T14:03:0{i}.000Z"),
                key,
                value: None,
                threshold: None,
                window: None,
                suppressed: 0,
                message: format!("alert {i}"),
                evidence: vec![Evidence {
                    file: "tool-usage.log".to_string(),
                    line: i,
                    request_id: None,
                }],
                line_fields: Default::default(),
            }
        })
        .collect()
}

fn opts() -> DeliveryOptions {
    DeliveryOptions {
        backoff: Backoff {
            base: 100,
            max: 300,
        },
        ..Default::default()
    }
}

/// The child: deliver until killed.
fn child(state: String, url: String) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let (h, _j) = Delivery::start_with(
            &cfg(&url),
            std::path::Path::new(&state),
            Arc::new(Metrics::new()),
            opts(),
        )
        .expect("start");
        for a in alerts() {
            h.submit(&a).expect("submit");
        }
        println!("SUBMITTED");
        tokio::time::sleep(Duration::from_secs(120)).await;
    });
}

#[test]
fn kill_9_during_retries_loses_nothing_and_delivers_once() {
    if let (Ok(state), Ok(url)) = (std::env::var(CHILD_STATE), std::env::var(CHILD_URL)) {
        return child(state, url);
    }
    // Set before any other thread of this process reads the environment.
    unsafe { std::env::set_var(SECRET_ENV, SECRET) };
    let rx = Receiver::start(
        Some(SECRET),
        Script {
            status: 503,
            ..Default::default()
        },
    );
    let state = tempfile::tempdir().unwrap();
    let mut proc = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &test_name(), "--nocapture", "--test-threads=1"])
        .env(CHILD_STATE, state.path())
        .env(CHILD_URL, rx.url())
        .env(SECRET_ENV, SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = proc.stdout.take().unwrap();
    let (tx, rxl) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("SUBMITTED") {
                let _ = tx.send(());
            }
        }
    });
    rxl.recv_timeout(Duration::from_secs(30))
        .expect("child submitted");
    let refused = rx.wait_hits(3, Duration::from_secs(10));
    assert!(refused.len() >= 3, "the child is retrying");
    proc.kill().unwrap(); // SIGKILL
    let _ = proc.wait();
    let before = rx.hits().len();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rx.hits().len(), before, "the child is gone");

    rx.set_script(Script::default());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (h, _j) = Delivery::start_with(
            &cfg(&rx.url()),
            state.path(),
            Arc::new(Metrics::new()),
            opts(),
        )
        .unwrap();
        // The daemon may hand over the same alerts again after its restart.
        for a in alerts() {
            h.submit(&a).unwrap();
        }
        let end = Instant::now() + Duration::from_secs(10);
        while rx.accepted().is_empty() && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        let ok = rx.accepted();
        assert_eq!(ok.len(), 1, "delivered once");
        let want: Vec<String> = alerts().into_iter().map(|a| a.id).collect();
        assert_eq!(ok[0].ids(), want, "every alert, in its original group");
        assert_eq!(ok[0].header("idempotency-key"), Some(want[0].as_str()));
        assert_eq!(
            refused[0].header("idempotency-key"),
            Some(want[0].as_str()),
            "same key before and after the crash"
        );
        assert_eq!(ok[0].signature_ok, Some(true));
        assert_eq!(h.pending(), 0);
        h.shutdown().await;
    });
}
