//! The `post_rotate` hook: a shell command run after each rotation, like
//! logrotate's `postrotate`, typically to make a writer reopen its log
//! (`kill -HUP $(cat /run/agent.pid)`).
//!
//! It runs as `sh -c <command>` with the environment variables
//! `MCPWATCH_LOG` (the log's path) and `MCPWATCH_ROTATED` (the path it was
//! renamed to). A hook that hangs is killed after [`HOOK_TIMEOUT`] so it
//! cannot stall the daemon's rotation pass; failures are logged and
//! reported, never fatal.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a hook may run. Reopening a log is a matter of milliseconds;
/// a minute leaves room for a slow service manager.
pub(crate) const HOOK_TIMEOUT: Duration = Duration::from_secs(60);

/// How much of the hook's stderr is kept for the failure message.
const STDERR_KEEP: usize = 2048;

/// Runs the hook; `Err` carries a one-line description of the failure.
pub(crate) fn run_post_rotate(command: &str, log: &Path, rotated: &Path) -> Result<(), String> {
    run_with_timeout(command, log, rotated, HOOK_TIMEOUT)
}

pub(crate) fn run_with_timeout(
    command: &str,
    log: &Path,
    rotated: &Path,
    timeout: Duration,
) -> Result<(), String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("MCPWATCH_LOG", log)
        .env("MCPWATCH_ROTATED", rotated)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills the whole hook and not
        // only `sh` (an orphaned grandchild would hold stderr open).
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start `sh -c`: {e}"))?;
    // Drain stderr on a thread so a chatty hook cannot block on a full pipe.
    let stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut kept = Vec::new();
        if let Some(mut s) = stderr {
            let mut buf = [0u8; 4096];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let room = STDERR_KEEP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
        kept
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Ok(s),
            Ok(None) if started.elapsed() >= timeout => {
                // SAFETY: plain syscall on the group we created above.
                unsafe {
                    libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
                }
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "timed out after {}s and was killed",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => break Err(format!("cannot wait for it: {e}")),
        }
    };
    let err_text = reader.join().unwrap_or_default();
    let err_text = String::from_utf8_lossy(&err_text);
    let err_text = err_text.trim();
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(if err_text.is_empty() {
            format!("exited with {s}")
        } else {
            format!("exited with {s}: {}", err_text.replace('\n', " | "))
        }),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_sees_paths_and_failure_is_reported() {
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("marker");
        let cmd = format!(
            "printf '%s %s' \"$MCPWATCH_LOG\" \"$MCPWATCH_ROTATED\" > '{}'",
            marker.display()
        );
        run_post_rotate(&cmd, Path::new("/x/a.log"), Path::new("/x/a.log.1")).unwrap();
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap(),
            "/x/a.log /x/a.log.1"
        );
        let err =
            run_post_rotate("echo boom >&2; exit 3", Path::new("a"), Path::new("b")).unwrap_err();
        assert!(
            err.contains("exit status: 3") && err.contains("boom"),
            "{err}"
        );
    }

    #[test]
    fn hanging_hook_is_killed() {
        let err = run_with_timeout(
            "sleep 30",
            Path::new("a"),
            Path::new("b"),
            Duration::from_millis(100),
        )
        .unwrap_err();
        assert!(err.contains("timed out"), "{err}");
    }
}
