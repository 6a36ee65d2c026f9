//! Writes checkpoints on a thread of their own, so the fsyncs never stall
//! detection; remembers whether the last write failed (a full or read-only
//! state directory), which stops the daemon from reading on.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::detect::EngineState;
use crate::metrics::Metrics;
use crate::metrics::server::Health;

/// One checkpoint on its way to disk.
pub(crate) struct CheckpointWrite {
    /// A snapshot of the engine state, serialized here (postcard) and
    /// written first: a clone shares the detector's nodes copy-on-write,
    /// so taking it costs detection little and serializing it nothing.
    pub(crate) engine: EngineState,
    /// Its file name in the state directory (`engine-<N>.bin`).
    pub(crate) engine_file: String,
    /// The document ([`CheckpointDoc`](super::CheckpointDoc)) naming it.
    pub(crate) doc: Vec<u8>,
    /// When the daemon took the snapshot (for the duration metric).
    pub(crate) started: Instant,
}

/// Writes checkpoints on its own thread so the fsyncs never stall
/// detection. One write in flight at most (the queue holds one): the
/// detection thread checks [`CheckpointWriter::busy`] before serializing.
/// Dropping it closes the queue; the thread finishes its write and exits.
pub(crate) struct CheckpointWriter {
    tx: Option<mpsc::SyncSender<CheckpointWrite>>,
    busy: Arc<AtomicBool>,
    /// Set by the thread when its last write failed (disk full, read-only,
    /// state directory deleted), cleared by the next one that succeeds.
    failed: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CheckpointWriter {
    pub(crate) fn start(
        state_dir: PathBuf,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> CheckpointWriter {
        let (tx, rx) = mpsc::sync_channel::<CheckpointWrite>(1);
        let busy = Arc::new(AtomicBool::new(false));
        let flag = busy.clone();
        let failed = Arc::new(AtomicBool::new(false));
        let failed_flag = failed.clone();
        let thread = std::thread::Builder::new()
            .name("mcpwatch-checkpoint".into())
            .spawn(move || {
                for w in rx {
                    match write_checkpoint(&state_dir, &w) {
                        Ok(()) => {
                            metrics.inc("mcpwatch_checkpoint_writes_total", &[], 1);
                            metrics.observe_seconds(
                                "mcpwatch_checkpoint_seconds",
                                &[],
                                w.started.elapsed().as_secs_f64(),
                            );
                            health
                                .last_checkpoint_ms
                                .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
                            if failed_flag.swap(false, Ordering::AcqRel) {
                                tracing::info!("checkpoint written again; going on");
                            }
                        }
                        Err(e) => {
                            metrics.inc("mcpwatch_checkpoint_failures_total", &[], 1);
                            tracing::error!(
                                "checkpoint not written: {e}; reading stops until it can be written"
                            );
                            failed_flag.store(true, Ordering::Release);
                        }
                    }
                    flag.store(false, Ordering::Release);
                }
            })
            .ok();
        CheckpointWriter {
            tx: Some(tx),
            busy,
            failed,
            thread,
        }
    }

    /// Whether the last write failed.
    pub(crate) fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    pub(crate) fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    pub(crate) fn send(&self, w: CheckpointWrite) {
        if let Some(tx) = &self.tx {
            self.busy.store(true, Ordering::Release);
            if tx.send(w).is_err() {
                self.busy.store(false, Ordering::Release);
            }
        }
    }

    pub(crate) fn wait_idle(&self, at_most: Duration) {
        let until = Instant::now() + at_most;
        while self.busy() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for CheckpointWriter {
    fn drop(&mut self) {
        self.tx = None;
        // A write still running past the shutdown budget is left to the
        // process's end: the checkpoint on disk is then the previous one,
        // and the lines after it are read again (their alert ids are in
        // `alerts.log`, so nothing is raised twice).
        if let Some(t) = self.thread.take()
            && !self.busy()
        {
            let _ = t.join();
        }
    }
}

/// Engine file first (fsynced), then the document naming it (atomic
/// rename), then older engine files go.
fn write_checkpoint(state_dir: &Path, w: &CheckpointWrite) -> std::io::Result<()> {
    let engine =
        (w.engine.to_file()).map_err(|e| std::io::Error::other(format!("engine state: {e}")))?;
    super::write_atomic(&state_dir.join(&w.engine_file), &engine)?;
    super::write_atomic(&state_dir.join(super::CHECKPOINT_FILE), &w.doc)?;
    if let Ok(rd) = std::fs::read_dir(state_dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("engine-") && name.ends_with(".bin") && name != w.engine_file {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}
