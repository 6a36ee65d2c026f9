//! Opening the daemon: the checkpoint, the engine file it names, the alert
//! log and the tailer resumed where the checkpoint left off.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

impl Daemon {
    pub(super) fn new(
        opts: &RunOptions,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        delivery: DeliveryHandle,
    ) -> Result<Daemon, RunError> {
        let cp_path = opts.state_dir.join(state::CHECKPOINT_FILE);
        // In a group the checkpoint is the group's (SPEC §10), restored
        // by the term that takes the lease; the state directory's is not
        // read.
        let grouped = opts.nats.as_ref().is_some_and(|n| n.group.is_some());
        let loaded = if grouped {
            None
        } else {
            CheckpointDoc::load(&opts.state_dir).map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => {
                    RunError::Checkpoint(cp_path.display().to_string(), e.to_string())
                }
                _ => RunError::Io(cp_path.display().to_string(), e),
            })?
        };
        let restart = loaded.is_some();
        let doc = loaded.unwrap_or_default();
        let settings = &opts.config.settings;
        let rotate_wait = Duration::from_millis(settings.rotation.rotate_wait.max(0) as u64);
        let mut tailer = Tailer::new(
            &opts.dir,
            settings.input.max_line_bytes,
            // A restart (any checkpoint) also reads the rotated copies it
            // has not finished; a first start reads only the live files.
            restart.then_some(doc.tail),
        )
        .with_rotate_wait(rotate_wait)
        .with_since(chrono::Utc::now().timestamp_millis());
        tailer.set_read_limit(opts.read_limit);
        let mut engine = Engine::new(&opts.config);
        let doc_generation = doc
            .engine_file
            .as_deref()
            .and_then(|f| {
                f.strip_prefix("engine-")?
                    .strip_suffix(".bin")?
                    .parse()
                    .ok()
            })
            .unwrap_or(0);
        let engine_state = match &doc.engine_file {
            Some(name) => {
                let path = opts.state_dir.join(name);
                let bytes = std::fs::read(&path)
                    .map_err(|e| RunError::Io(path.display().to_string(), e))?;
                Some(
                    EngineState::from_file(&bytes).map_err(|e| {
                        RunError::Checkpoint(path.display().to_string(), e.to_string())
                    })?,
                )
            }
            None => doc
                .engine
                .map(serde_json::from_value::<EngineState>)
                .transpose()
                .map_err(|e| RunError::Checkpoint(cp_path.display().to_string(), e.to_string()))?,
        };
        let exported = match engine_state {
            Some(state) => {
                let stats = state.stats.clone();
                engine.restore(state);
                stats
            }
            None => Stats::default(),
        };
        let alert_log = AlertLog::open(&opts.dir.join(crate::logs::ALERTS_LOG))?;
        let writer = Writer::Local(CheckpointWriter::start(
            opts.state_dir.clone(),
            metrics.clone(),
            health.clone(),
        ));
        // In a group, an alert raised again is dropped by the alerts
        // stream's duplicate window instead.
        let written_ids = if grouped {
            HashSet::new()
        } else {
            alert_log.ids_since(doc.alerts_log)
        };
        if !written_ids.is_empty() {
            tracing::info!(
                "{} alerts written after the last checkpoint will not be written again",
                written_ids.len()
            );
        }
        Ok(Daemon {
            dir: opts.dir.clone(),
            state_dir: opts.state_dir.clone(),
            tailer,
            parser: Parser {
                max_line_bytes: settings.input.max_line_bytes,
                now_ms: 0,
            },
            engine,
            alert_log,
            delivery,
            metrics,
            health,
            written_ids,
            exported,
            dirty: false,
            last_checkpoint: Instant::now(),
            checkpoint_cost: Duration::ZERO,
            generation: doc_generation,
            writer,
            alerts: Vec::new(),
            rotator: Arc::new(std::sync::Mutex::new(Rotator::new(
                RotateOptions::from_config(&opts.config, &opts.dir, &opts.state_dir),
            ))),
            rotating: None,
            carry: Default::default(),
            gate: BypassGate::new(),
            held: Vec::new(),
            held_queued: false,
            next_rotation: None,
            stream: None,
            alerts_out: None,
        })
        .map(|mut d| {
            if d.engine.bypass_pending() {
                // Calls pending from before the restart were read just now,
                // as far as the wall clock can tell.
                d.gate.calls_read(Instant::now(), Millis::MIN);
            }
            d
        })
    }
}

impl Daemon {
    /// Takes the detector state of a group's checkpoint (the engine file's
    /// bytes) in place of the empty one `new` started with.
    pub(super) fn restore_engine(&mut self, bytes: &[u8]) -> Result<(), RunError> {
        let state = EngineState::from_file(bytes)
            .map_err(|e| RunError::Checkpoint("the group's checkpoint".into(), e.to_string()))?;
        self.exported = state.stats.clone();
        self.engine.restore(state);
        if self.engine.bypass_pending() {
            self.gate.calls_read(Instant::now(), Millis::MIN);
        }
        Ok(())
    }
}
