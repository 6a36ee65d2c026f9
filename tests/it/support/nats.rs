//! A real `nats-server` (Debian's package) with JetStream for the tests of
//! SPEC §10: one node, or three clustered on 127.0.0.1, each on free ports
//! with its store in a temporary directory, killed when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server binary `.ci/run` installs (Debian puts it in /usr/sbin,
/// which a non-root PATH may lack).
/// The arguments every test node starts with: JetStream on, loopback,
/// its port and store.
fn node_args(port: u16, store: &std::path::Path) -> Vec<String> {
    [
        "-js",
        "-a",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-sd",
        &store.display().to_string(),
    ]
    .map(String::from)
    .to_vec()
}

fn nats_server() -> &'static str {
    if Path::new("/usr/sbin/nats-server").exists() {
        "/usr/sbin/nats-server"
    } else {
        "nats-server"
    }
}

/// A port nobody listens on now (the kernel's pick, released at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `nats-server -js` process. Dropping it kills it.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    store: PathBuf,
    log: PathBuf,
    args: Vec<String>,
    _dir: Option<tempfile::TempDir>,
}

impl NatsServer {
    /// A single node with JetStream, its store in a temporary directory.
    pub fn start() -> NatsServer {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let store = dir.path().join("js");
        let log = dir.path().join("nats.log");
        let mut s = NatsServer {
            child: None,
            port,
            store: store.clone(),
            log,
            args: node_args(port, &store),
            _dir: Some(dir),
        };
        s.spawn();
        s
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Where JetStream keeps its files.
    pub fn store(&self) -> &Path {
        &self.store
    }

    /// The server's own log (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn spawn(&mut self) {
        let child = Command::new(nats_server())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&self.log).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start nats-server (installed by .ci/run: apt-get install nats-server): {e}")
            });
        self.child = Some(child);
        self.wait_ready();
    }

    /// Waits until the client port accepts and JetStream is up (the server
    /// logs "Server is ready" after JetStream has started).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && self.log().contains("Server is ready")
            {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("nats-server exited ({status}): {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("nats-server did not get ready: {}", self.log());
    }

    /// `kill -9` (the store stays, for [`NatsServer::restart`]).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the same node again on the same ports and store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three nodes clustered on 127.0.0.1 (routes on free ports), for the
/// failure tests: a stream with 3 replicas survives one node's death.
pub struct NatsCluster {
    pub nodes: Vec<NatsServer>,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    pub fn start() -> NatsCluster {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let routes = ports
            .iter()
            .map(|(_, c)| format!("nats://127.0.0.1:{c}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes: Vec<NatsServer> = ports
            .iter()
            .enumerate()
            .map(|(i, &(port, cport))| {
                let store = dir.path().join(format!("n{i}"));
                NatsServer {
                    child: None,
                    port,
                    store: store.clone(),
                    log: dir.path().join(format!("n{i}.log")),
                    args: [
                        node_args(port, &store),
                        vec![
                            "-n".into(),
                            format!("n{i}"),
                            "--cluster_name".into(),
                            "mcpwatch".into(),
                            "--cluster".into(),
                            format!("nats://127.0.0.1:{cport}"),
                            "--routes".into(),
                            routes.clone(),
                        ],
                    ]
                    .concat(),
                    _dir: None,
                }
            })
            .collect();
        // Started together: a node's JetStream waits for a quorum of peers,
        // so "ready" is awaited only once all three run.
        for n in &mut nodes {
            let child = Command::new(nats_server())
                .args(&n.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&n.log).unwrap())
                .spawn()
                .expect("start nats-server");
            n.child = Some(child);
        }
        for n in &mut nodes {
            n.wait_ready();
        }
        NatsCluster { nodes, _dir: dir }
    }

    /// Every node's URL, comma-separated (SPEC §10).
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}
