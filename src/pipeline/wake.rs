//! What wakes the detection loop: file notifications on the audit
//! directory (or its nearest existing ancestor until it exists) and the
//! stop signals. The periodic poll backs both up.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// Why the loop was woken.
pub(super) enum Wake {
    Files,
    Reload,
    Shutdown,
}

/// Watches the audit directory (or, until it exists, its nearest existing
/// ancestor) and turns every event into a wake-up. The periodic poll backs
/// it up: a missed or overflowed notification costs at most one interval.
pub(super) fn watch(dir: &Path, tx: mpsc::SyncSender<Wake>) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let mut watcher = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
        let _ = tx.try_send(Wake::Files);
    })
    .map_err(|e| tracing::warn!("file notifications unavailable ({e}); polling only"))
    .ok()?;
    let mut target = dir.to_path_buf();
    let mode = if dir.exists() {
        RecursiveMode::NonRecursive
    } else {
        // Watch the nearest existing ancestor recursively so the
        // directory's creation wakes us.
        while !target.exists() {
            match target.parent() {
                Some(p) if !p.as_os_str().is_empty() => target = p.to_path_buf(),
                _ => {
                    target = PathBuf::from(".");
                    break;
                }
            }
        }
        RecursiveMode::Recursive
    };
    if let Err(e) = watcher.watch(&target, mode) {
        tracing::warn!("cannot watch {} ({e}); polling only", target.display());
        return None;
    }
    Some(watcher)
}

/// Turns signals into wake-ups until the first stop signal: `SIGTERM` and
/// `SIGINT` stop the daemon, `SIGHUP` reloads its configuration, and
/// `SIGUSR1`/`SIGUSR2` (which would otherwise end the process) are logged
/// and ignored: no other signal ends it (SPEC §9).
pub(super) async fn wait_for_signals(tx: mpsc::SyncSender<Wake>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup), Ok(mut usr1), Ok(mut usr2)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::user_defined2()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the daemon with SIGKILL");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration");
                // Blocking send: a reload must not be dropped as a surplus
                // file wake-up would be.
                let tx = tx.clone();
                let _ = tokio::task::spawn_blocking(move || tx.send(Wake::Reload)).await;
            }
            _ = usr1.recv() => tracing::info!("SIGUSR1 ignored"),
            _ = usr2.recv() => tracing::info!("SIGUSR2 ignored"),
        }
    }
    let _ = tokio::task::spawn_blocking(move || tx.send(Wake::Shutdown)).await;
}
