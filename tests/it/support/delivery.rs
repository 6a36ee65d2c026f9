//! Real servers on 127.0.0.1 for delivery tests: an SMTP server (Debian's
//! `python3-aiosmtpd`, driven through `smtp_server.py` beside this file)
//! that stores every message it accepts, and an HTTP webhook receiver
//! (axum) that verifies `Mcpwatch-Signature` and records every request.
//!
//! Both can be used from plain `#[test]`s (the daemon end-to-end tests) and
//! from `#[tokio::test]`s: the receiver runs on its own thread and runtime.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// A port on 127.0.0.1 that refuses connections for as long as this lives:
/// a socket bound to it that never listens. (Binding a listener, noting its
/// port and closing it leaves the port free for the next server a test in
/// parallel starts, which then answers, or resets, instead of refusing.)
pub struct RefusingPort {
    _held: tokio::net::TcpSocket,
    pub addr: SocketAddr,
}

impl RefusingPort {
    pub fn new() -> RefusingPort {
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind 127.0.0.1:0");
        let addr = socket.local_addr().expect("the bound address");
        RefusingPort {
            _held: socket,
            addr,
        }
    }
}

/// The Python that Debian's python3-aiosmtpd installs for (not the pyenv
/// `python3` that may come first on PATH).
pub const PYTHON: &str = "/usr/bin/python3";
pub const SMTP_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/it/support/smtp_server.py"
);

/// Fails the test, loudly, when aiosmtpd is not installed: CI installs it
/// (`.ci/run`), so a missing module is a broken machine, not a reason to skip.
pub fn require_aiosmtpd() {
    let ok = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "the SMTP delivery tests need Debian's python3-aiosmtpd for {PYTHON}: \
         run `apt-get install -y python3-aiosmtpd` (the CI script .ci/run does)"
    );
}

#[derive(Clone, Debug, Default)]
pub struct SmtpOptions {
    /// Require AUTH with this user and password (over plain SMTP).
    pub auth: Option<(String, String)>,
    /// Answer the first N DATA commands with `fail_reply`.
    pub fail_first: u32,
    /// e.g. `"451 4.3.0 Try again later"`, `"554 5.7.1 Rejected"`.
    pub fail_reply: Option<String>,
}

/// One running SMTP server; killed on drop.
pub struct SmtpServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl SmtpServer {
    pub fn start(opts: SmtpOptions) -> SmtpServer {
        require_aiosmtpd();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cmd = Command::new(PYTHON);
        cmd.arg(SMTP_SCRIPT).arg("--dir").arg(dir.path());
        if let Some((u, p)) = &opts.auth {
            cmd.args(["--user", u, "--password", p]);
        }
        if opts.fail_first > 0 {
            cmd.args(["--fail-first", &opts.fail_first.to_string()]);
        }
        if let Some(r) = &opts.fail_reply {
            cmd.args(["--fail-reply", r]);
        }
        let log = std::fs::File::create(dir.path().join("server.log")).expect("server log");
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn /usr/bin/python3 smtp_server.py");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("SMTP server did not print READY within 20 s");
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected SMTP server output {line:?}"));
        SmtpServer { port, dir, child }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Messages accepted so far, in arrival order.
    pub fn messages(&self) -> Vec<Mail> {
        let mut out = Vec::new();
        for n in 1.. {
            let json = self.path().join(format!("{n}.json"));
            let Ok(text) = std::fs::read_to_string(&json) else {
                break;
            };
            let raw = std::fs::read(self.path().join(format!("{n}.eml"))).unwrap_or_default();
            out.push(Mail {
                json: serde_json::from_str(&text).expect("server writes JSON"),
                raw: String::from_utf8_lossy(&raw).into_owned(),
            });
        }
        out
    }

    /// Waits until at least `n` messages arrived.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        let end = Instant::now() + timeout;
        loop {
            let m = self.messages();
            if m.len() >= n || Instant::now() > end {
                return m;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// DATA commands seen, accepted or refused.
    pub fn data_commands(&self) -> u32 {
        std::fs::read_to_string(self.path().join("data_commands"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// While set, every DATA is answered with this reply.
    #[allow(
        dead_code,
        reason = "smtp_server.py's `fail` switch; no test turns it on mid-run yet"
    )]
    pub fn set_failing(&self, reply: Option<&str>) {
        let f = self.path().join("fail");
        match reply {
            Some(r) => std::fs::write(f, r).expect("write fail file"),
            None => {
                let _ = std::fs::remove_file(f);
            }
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One received message: `raw` as on the wire, `json` as the server parsed
/// it (headers decoded by Python's email package).
#[derive(Clone, Debug)]
pub struct Mail {
    pub json: serde_json::Value,
    pub raw: String,
}

impl Mail {
    /// Decoded values of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Vec<String> {
        self.json["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|h| h[0].as_str().is_some_and(|k| k.eq_ignore_ascii_case(name)))
            .filter_map(|h| h[1].as_str().map(str::to_string))
            .collect()
    }

    pub fn header_names(&self) -> Vec<String> {
        self.json["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h[0].as_str().map(str::to_string))
            .collect()
    }

    pub fn subject(&self) -> String {
        self.header("Subject").join("")
    }

    pub fn body(&self) -> String {
        self.json["body"].as_str().unwrap_or_default().to_string()
    }

    pub fn rcpt_tos(&self) -> Vec<String> {
        self.json["rcpt_tos"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    }

    /// Unix seconds when the server stored it.
    pub fn received(&self) -> f64 {
        self.json["received"].as_f64().unwrap_or(0.0)
    }

    /// The raw header block (up to the first empty line).
    pub fn raw_head(&self) -> &str {
        let end = self
            .raw
            .find("\r\n\r\n")
            .or_else(|| self.raw.find("\n\n"))
            .unwrap_or(self.raw.len());
        &self.raw[..end]
    }
}

/// How the receiver answers. Changeable while it runs.
#[derive(Clone, Debug)]
pub struct Script {
    /// Answer the first N requests with `fail_status`.
    pub fail_first: u32,
    pub fail_status: u16,
    /// Answer `fail_status` until this moment.
    pub fail_until: Option<Instant>,
    /// Wait this long before answering.
    pub delay: Duration,
    /// The answer otherwise.
    pub status: u16,
    /// The body of every answer.
    pub answer: String,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            fail_first: 0,
            fail_status: 503,
            fail_until: None,
            delay: Duration::ZERO,
            status: 200,
            answer: String::new(),
        }
    }
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Hit {
    /// Unix seconds when the request arrived (before any delay).
    pub at: f64,
    pub status: u16,
    #[allow(
        dead_code,
        reason = "shown by Debug in failure messages; no test asserts on it yet"
    )]
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `None` when the receiver has no secret; else whether
    /// `Mcpwatch-Signature` is valid and fresh (within 5 minutes).
    pub signature_ok: Option<bool>,
}

impl Hit {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// Ids of the alerts in the body.
    pub fn ids(&self) -> Vec<String> {
        self.json()["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["id"].as_str().map(str::to_string))
            .collect()
    }
}

/// Checks `t=<secs>,v1=<hex>` against HMAC-SHA256(secret, "<t>.<body>").
pub fn verify_signature(secret: &[u8], header: &str, body: &[u8], now_secs: i64) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        if let Some(x) = part.strip_prefix("t=") {
            t = x.parse::<i64>().ok();
        } else if let Some(x) = part.strip_prefix("v1=") {
            v1 = hex::decode(x).ok();
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if (now_secs - t).abs() > 300 {
        return false;
    }
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&v1).is_ok()
}

struct ReceiverState {
    script: Mutex<Script>,
    hits: Mutex<Vec<Hit>>,
    secret: Option<Vec<u8>>,
}

/// An HTTP receiver on 127.0.0.1; stops on drop.
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Receiver {
    pub fn start(secret: Option<&str>, script: Script) -> Receiver {
        let state = Arc::new(ReceiverState {
            script: Mutex::new(script),
            hits: Mutex::new(Vec::new()),
            secret: secret.map(|s| s.as_bytes().to_vec()),
        });
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("receiver runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind 127.0.0.1:0");
                let _ = addr_tx.send(listener.local_addr().expect("local addr"));
                let app = axum::Router::new().fallback(
                    move |uri: axum::http::Uri,
                          headers: axum::http::HeaderMap,
                          body: axum::body::Bytes| {
                        let st = st.clone();
                        async move { handle(st, uri, headers, body).await }
                    },
                );
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("receiver did not start");
        Receiver {
            addr,
            state,
            stop: Some(stop_tx),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.state
            .hits
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default()
    }

    /// Requests answered 2xx.
    pub fn accepted(&self) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| (200..300).contains(&h.status))
            .collect()
    }

    pub fn set_script(&self, s: Script) {
        if let Ok(mut g) = self.state.script.lock() {
            *g = s;
        }
    }

    /// Waits until `n` requests were answered 2xx.
    pub fn wait_accepted(&self, n: usize, timeout: Duration) -> Vec<Hit> {
        let end = Instant::now() + timeout;
        loop {
            let a = self.accepted();
            if a.len() >= n || Instant::now() > end {
                return a;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `n` requests arrived, whatever the answer.
    pub fn wait_hits(&self, n: usize, timeout: Duration) -> Vec<Hit> {
        let end = Instant::now() + timeout;
        loop {
            let a = self.hits();
            if a.len() >= n || Instant::now() > end {
                return a;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

async fn handle(
    st: Arc<ReceiverState>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> (axum::http::StatusCode, String) {
    let at = unix_now();
    let (status, delay, answer) = {
        let mut s = match st.script.lock() {
            Ok(s) => s,
            Err(_) => return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, String::new()),
        };
        let failing = s.fail_first > 0 || s.fail_until.is_some_and(|u| Instant::now() < u);
        if s.fail_first > 0 {
            s.fail_first -= 1;
        }
        (
            if failing { s.fail_status } else { s.status },
            s.delay,
            s.answer.clone(),
        )
    };
    let signature_ok = st.secret.as_ref().map(|secret| {
        headers
            .get("mcpwatch-signature")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|sig| verify_signature(secret, sig, &body, at as i64))
    });
    let hit = Hit {
        at,
        status,
        path: uri.path().to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        signature_ok,
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Ok(mut h) = st.hits.lock() {
        h.push(hit);
    }
    (
        axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK),
        answer,
    )
}

/// `[[channels.email]]` for a test SMTP server (plain SMTP on loopback);
/// `auth` is (username, name of the password's environment variable).
pub fn email_toml(name: &str, port: u16, auth: Option<(&str, &str)>, to: &str) -> String {
    let mut s = format!(
        "[[channels.email]]\nname = \"{name}\"\nsmtp_host = \"127.0.0.1\"\n\
         smtp_port = {port}\ntls = \"none\"\nallow_plaintext = true\n\
         from = \"mcpwatch@example.com\"\nto = [\"{to}\"]\n"
    );
    if let Some((user, env)) = auth {
        s.push_str(&format!(
            "username = \"{user}\"\npassword_env = \"{env}\"\n"
        ));
    }
    s.push('\n');
    s
}

/// `[[channels.webhook]]` for a receiver; `secret_env` names the variable.
pub fn webhook_toml(name: &str, url: &str, secret_env: Option<&str>, timeout: &str) -> String {
    let mut s = format!(
        "[[channels.webhook]]\nname = \"{name}\"\nurl = \"{url}\"\ntimeout = \"{timeout}\"\n"
    );
    if let Some(env) = secret_env {
        s.push_str(&format!("secret_env = \"{env}\"\n"));
    }
    s.push('\n');
    s
}

/// `[[routes]]` sending every alert to `channels` after `group_wait`.
pub fn route_toml(channels: &[&str], group_wait: &str) -> String {
    let list: Vec<String> = channels.iter().map(|c| format!("\"{c}\"")).collect();
    format!(
        "[[routes]]\nchannels = [{}]\nmin_severity = \"low\"\ngroup_wait = \"{group_wait}\"\n\n",
        list.join(", ")
    )
}

/// The credentials of the delivery tests (the library's, through
/// `tests/it/delivery.rs`, and `test-alert`'s in the binary): the values
/// and the names of the environment variables that carry them.
pub const SMTP_USER: &str = "alerts@example.com";
pub const SMTP_PASS: &str = "smtp-pass-Zq81xQ";
pub const SMTP_PASS_ENV: &str = "MCPWATCH_TEST_SMTP_PASSWORD";
pub const WRONG_PASS_ENV: &str = "MCPWATCH_TEST_SMTP_WRONG_PASSWORD";
pub const WRONG_PASS: &str = "wrong-pass-Pq77rT";
pub const HOOK_SECRET: &str = "whsec-Kd93kqLm";
pub const HOOK_SECRET_ENV: &str = "MCPWATCH_TEST_WEBHOOK_SECRET";

/// Every test sets the environment through this, before any thread reads
/// it (setting variables while another thread reads them is unsound).
pub fn init_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| unsafe {
        std::env::set_var(SMTP_PASS_ENV, SMTP_PASS);
        std::env::set_var(WRONG_PASS_ENV, WRONG_PASS);
        std::env::set_var(HOOK_SECRET_ENV, HOOK_SECRET);
    });
}

pub fn email_channel(name: &str, port: u16, password_env: &str) -> mcpwatch::config::EmailChannel {
    mcpwatch::config::EmailChannel {
        name: name.to_string(),
        smtp_host: "127.0.0.1".to_string(),
        smtp_port: port,
        tls: mcpwatch::config::TlsMode::None,
        allow_plaintext: true,
        username: Some(SMTP_USER.to_string()),
        password_env: Some(password_env.to_string()),
        from: "mcpwatch@example.com".to_string(),
        to: vec!["security@example.com".to_string()],
        max_per_hour: 30,
    }
}

pub fn webhook_channel(name: &str, url: &str, timeout_ms: i64) -> mcpwatch::config::WebhookChannel {
    mcpwatch::config::WebhookChannel {
        name: name.to_string(),
        url: url.to_string(),
        secret_env: Some(HOOK_SECRET_ENV.to_string()),
        timeout: timeout_ms,
        headers: [("X-Team".to_string(), "secops".to_string())].into(),
        format: mcpwatch::config::WebhookFormat::Mcpwatch,
        headers_env: Default::default(),
        routing_key_env: None,
        basic_auth: None,
        bearer_token_env: None,
        resolve_after: Default::default(),
    }
}
