//! `mcpwatch rotate` (SPEC §7): one rotation, compression and pruning pass
//! over the log directory, for hosts that run it from cron or by hand while
//! the daemon is stopped (the daemon rotates on its own, every minute).
//!
//! It takes the state directory's lock (exit 2 while `run` holds it) and
//! asks the checkpoint in that state directory what has been consumed: a
//! live log is renamed only once the checkpoint has read it to its end, so
//! the stopped daemon loses nothing when it resumes. With no checkpoint at
//! all a future `mcpwatch run` would read the live logs from their
//! beginning, so they are left alone too (each skip says why);
//! `--no-consumer` declares that no daemon reads these logs.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::{CommonArgs, EXIT_FAILURE, EXIT_OK, EXIT_USAGE};
use mcpwatch::metrics::Metrics;
use mcpwatch::rotate::{
    CheckpointConsumption, Consumption, NoConsumer, PassReport, RotateOptions, Rotator,
};
use mcpwatch::state::{self, LockError, StateLock};

#[derive(Args, Debug)]
pub(crate) struct RotateArgs {
    /// The audit log directory [default: .elevenlabs/audit]
    #[arg(long, value_name = "D")]
    pub(crate) dir: Option<PathBuf>,
    /// The daemon's state directory [default: <dir>/../mcpwatch]
    #[arg(long, value_name = "D")]
    pub(crate) state_dir: Option<PathBuf>,
    /// Print every planned action and change nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// No mcpwatch daemon reads these logs: rotate live logs without waiting
    /// for a checkpoint to consume them
    #[arg(long)]
    pub(crate) no_consumer: bool,
}

pub(crate) fn run(common: &CommonArgs, args: RotateArgs) -> anyhow::Result<u8> {
    let cfg = match super::load_config(common, args.dir.as_deref()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let (dir, state_dir) = cfg.dirs(args.dir.as_deref(), args.state_dir.as_deref());
    let mut opts = RotateOptions::from_config(&cfg, &dir, &state_dir);
    opts.dry_run = args.dry_run;
    // Nobody reads these logs, so nobody waits for the writer to create
    // the next one: make it at once (SPEC §6).
    opts.create |= args.no_consumer;
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    execute(
        &opts,
        args.no_consumer,
        chrono::Utc::now(),
        &mut stdout.lock(),
        &mut stderr.lock(),
    )
}

/// The command once options are known; `now` is the wall clock of this
/// pass. Separate from [`run`] so it can be driven without a configuration.
pub(crate) fn execute(
    opts: &RotateOptions,
    no_consumer: bool,
    now: chrono::DateTime<chrono::Utc>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<u8> {
    match std::fs::symlink_metadata(&opts.dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            writeln!(
                err,
                "mcpwatch rotate: {} is not a directory",
                opts.dir.display()
            )?;
            return Ok(EXIT_USAGE);
        }
        Err(e) => {
            writeln!(
                err,
                "mcpwatch rotate: log directory {}: {e}",
                opts.dir.display()
            )?;
            return Ok(EXIT_USAGE);
        }
    }
    // Held for the whole pass. A dry run must not create anything, so it
    // only probes an existing lock file (read-only) instead of creating one.
    let _lock = if opts.dry_run {
        match probe_lock(&opts.state_dir) {
            Ok(l) => l.map(Lock::Probe),
            Err(e) => return lock_failed(e, err),
        }
    } else {
        match StateLock::acquire(&opts.state_dir) {
            Ok(l) => Some(Lock::Held(l)),
            Err(e) => return lock_failed(e, err),
        }
    };

    let consumption: Box<dyn Consumption> = if no_consumer {
        Box::new(NoConsumer)
    } else {
        match state::load_tail(&opts.state_dir) {
            Ok(Some(tail)) => Box::new(CheckpointConsumption::new(tail)),
            Ok(None) => Box::new(CheckpointConsumption::absent(format!(
                "no checkpoint in {}: a future `mcpwatch run` would read it from its \
                 beginning (pass --no-consumer if no daemon reads these logs)",
                opts.state_dir.display()
            ))),
            Err(e) => {
                writeln!(
                    err,
                    "mcpwatch rotate: warning: unreadable checkpoint ({e}); live logs are left alone"
                )?;
                Box::new(CheckpointConsumption::absent(format!(
                    "the checkpoint in {} is unreadable",
                    opts.state_dir.display()
                )))
            }
        }
    };

    let metrics = Metrics::new();
    let mut rotator = Rotator::new(opts.clone());
    let report = rotator
        .pass(now, consumption.as_ref(), &metrics)
        .context("rotation pass")?;
    print_report(&report, &metrics, out, err)?;
    Ok(if report.problems.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILURE
    })
}

enum Lock {
    Held(#[allow(dead_code)] StateLock),
    Probe(#[allow(dead_code)] std::fs::File),
}

fn lock_failed(e: LockError, err: &mut dyn Write) -> anyhow::Result<u8> {
    match e {
        LockError::Held(_) => {
            writeln!(
                err,
                "mcpwatch rotate: {e}; the daemon rotates the logs itself, stop it first \
                 or let it do the work"
            )?;
            Ok(EXIT_USAGE)
        }
        LockError::Io(..) => {
            writeln!(err, "mcpwatch rotate: {e}")?;
            Ok(EXIT_FAILURE)
        }
    }
}

/// Takes the lock through an existing lock file opened read-only; `None`
/// when there is no lock file (then no daemon can hold it).
fn probe_lock(state_dir: &Path) -> Result<Option<std::fs::File>, LockError> {
    let shown = state_dir.display().to_string();
    let f = match std::fs::File::open(state_dir.join(state::LOCK_FILE)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LockError::Io(shown, e)),
    };
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Held(shown)),
        Err(std::fs::TryLockError::Error(e)) => Err(LockError::Io(shown, e)),
    }
}

fn print_report(
    report: &PassReport,
    metrics: &Metrics,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<()> {
    use mcpwatch::rotate::{M_BYTES_IN, M_BYTES_OUT, M_COMPRESSED, M_PRUNED};
    if report.dry_run {
        writeln!(out, "dry run: planned actions (nothing is changed)")?;
    }
    for a in &report.actions {
        writeln!(out, "{a}")?;
    }
    for w in &report.warnings {
        writeln!(err, "mcpwatch rotate: warning: {w}")?;
    }
    for p in &report.problems {
        writeln!(err, "mcpwatch rotate: error: {p}")?;
    }
    if !report.dry_run {
        writeln!(
            out,
            "rotated {}, compressed {} ({} -> {} bytes), pruned {}, verify failures {}",
            report.rotated.len(),
            metrics.counter_total(M_COMPRESSED),
            metrics.counter_total(M_BYTES_IN),
            metrics.counter_total(M_BYTES_OUT),
            metrics.counter_total(M_PRUNED),
            report.verify_failures
        )?;
    }
    Ok(())
}
