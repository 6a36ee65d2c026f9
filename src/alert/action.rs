//! Incident actions (SPEC §5): `sh -c <command>` once per alert, as a queue
//! of the outbox like a channel.
//!
//! Nothing from a log line reaches the command line: the command is the
//! configured text, run as it is; the alert comes on standard input (its
//! JSON) and the firing line's fields in environment variables
//! (`MCPWATCH_SERVER_NAME`, …), which a shell expands as data
//! (`"$MCPWATCH_SERVER_NAME"`), never as code. A value over
//! [`MAX_ENV_VALUE`] bytes or holding a NUL is left out.
//!
//! The child runs in its own process group, killed whole after `timeout`.
//! A non-zero exit, a signal or the timeout is a retryable failure whose
//! message carries the exit status and the tail of standard error (what
//! the dead letter keeps once `max_age` passes). Inherited `MCPWATCH_*`
//! variables and the variables that hold the channels' secrets are taken
//! out of the environment, so a secret never reaches a script and a field
//! the line lacks is never filled by a stale value.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Alert;
use super::delivery::fmt_millis;
use super::error::SendError;
use crate::config::Action;

/// Largest environment value passed (SPEC §5: 4 KiB).
pub(crate) const MAX_ENV_VALUE: usize = 4096;
/// Bytes of standard error kept for the error message: enough for the last
/// few lines a script printed, small enough for a log line.
const STDERR_TAIL: usize = 1024;
/// After the command exits, how long to wait for its standard error to
/// close (a background child of the script may hold it open).
const STDERR_GRACE: Duration = Duration::from_millis(500);
/// Longest pause between checks of whether the command has exited.
const MAX_POLL: Duration = Duration::from_millis(50);

/// Prefix of every variable mcpwatch sets for an action.
const ENV_PREFIX: &str = "MCPWATCH_";

/// One configured action, ready to run.
#[derive(Clone, Debug)]
pub(crate) struct ActionRunner {
    action: Action,
    /// Names of variables holding secrets (the channels' `*_env`).
    hide: Vec<String>,
}

impl ActionRunner {
    pub(crate) fn new(action: Action, hide: Vec<String>) -> ActionRunner {
        ActionRunner { action, hide }
    }

    /// Runs the command for each alert in turn (a group of an action holds
    /// one); the first failure ends the attempt. Dropping the future (the
    /// worker abandons the attempt at shutdown or reload) kills the
    /// command's process group: the run stays pending and is made again,
    /// never twice at once.
    pub(crate) async fn run(&self, alerts: &[Alert]) -> Result<(), SendError> {
        for alert in alerts {
            let (action, alert, hide) = (self.action.clone(), alert.clone(), self.hide.clone());
            let running = Running::default();
            let guard = KillOnDrop(running.clone());
            let r =
                tokio::task::spawn_blocking(move || run_blocking(&action, &alert, &hide, &running))
                    .await;
            drop(guard);
            r.unwrap_or_else(|e| Err(SendError::retryable(format!("action task failed: {e}"))))?;
        }
        Ok(())
    }
}

/// The process group of the command while it runs (0: none).
type Running = Arc<std::sync::atomic::AtomicI32>;

/// Kills the running command's process group when the attempt is dropped
/// before the command ended.
struct KillOnDrop(Running);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let pgid = self.0.swap(0, std::sync::atomic::Ordering::SeqCst);
        if pgid > 0 {
            #[cfg(unix)]
            // SAFETY: kill(2) on a process group; touches no memory of ours.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// The variables an action gets for `alert` (SPEC §5).
pub(crate) fn env_of(alert: &Alert) -> Vec<(String, String)> {
    let mut env = vec![
        ("MCPWATCH_ALERT_ID".to_string(), alert.id.clone()),
        ("MCPWATCH_RULE".to_string(), alert.rule.clone()),
        (
            "MCPWATCH_SEVERITY".to_string(),
            alert.severity.as_str().to_string(),
        ),
    ];
    for (k, v) in &alert.line_fields {
        if v.len() > MAX_ENV_VALUE || v.contains('\0') {
            continue;
        }
        env.push((format!("{ENV_PREFIX}{}", k.to_ascii_uppercase()), v.clone()));
    }
    env
}

fn run_blocking(
    action: &Action,
    alert: &Alert,
    hide: &[String],
    running: &Running,
) -> Result<(), SendError> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(&action.command);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with(ENV_PREFIX) {
            cmd.env_remove(k);
        }
    }
    for h in hide {
        cmd.env_remove(h);
    }
    cmd.envs(env_of(alert));
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| SendError::retryable(format!("cannot start sh -c: {e}")))?;
    let pgid = i32::try_from(child.id()).unwrap_or(0);
    running.store(pgid, std::sync::atomic::Ordering::SeqCst);
    // Whatever way this returns, the group is no longer ours to kill.
    struct Clear<'a>(&'a Running);
    impl Drop for Clear<'_> {
        fn drop(&mut self) {
            self.0.store(0, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let _clear = Clear(running);

    // Standard input and error each on a thread of their own, so neither a
    // script that reads nothing nor one that writes a lot blocks the other.
    let mut body = serde_json::to_vec(alert).unwrap_or_default();
    body.push(b'\n');
    if let Some(mut stdin) = child.stdin.take() {
        std::thread::spawn(move || {
            // A script that does not read its input closes the pipe: fine.
            let _ = stdin.write_all(&body);
        });
    }
    let tail = Arc::new(Mutex::new(Vec::<u8>::new()));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    if let Some(mut stderr) = child.stderr.take() {
        let tail = tail.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut t) = tail.lock() {
                    t.extend_from_slice(&buf[..n]);
                    if t.len() > STDERR_TAIL {
                        let cut = t.len() - STDERR_TAIL;
                        t.drain(..cut);
                    }
                }
            }
            let _ = done_tx.send(());
        });
    }

    let timeout = Duration::from_millis(action.timeout.max(1) as u64);
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    let outcome = loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                // Reaped: its pid may be reused from now on.
                running.store(0, std::sync::atomic::Ordering::SeqCst);
                break Ok(status);
            }
            Ok(None) if Instant::now() >= deadline => {
                kill_group(&mut child);
                let _ = child.wait();
                break Err(format!(
                    "timed out after {}; killed",
                    fmt_millis(action.timeout)
                ));
            }
            Ok(None) => {
                std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                pause = (pause * 2).min(MAX_POLL);
            }
            Err(e) => {
                kill_group(&mut child);
                let _ = child.wait();
                break Err(format!("cannot wait for the command: {e}"));
            }
        }
    };
    let _ = done_rx.recv_timeout(STDERR_GRACE);
    let stderr = tail
        .lock()
        .map(|t| String::from_utf8_lossy(&t).trim().to_string())
        .unwrap_or_default();
    let failure = match outcome {
        Ok(status) if status.success() => return Ok(()),
        Ok(status) => match status.code() {
            Some(code) => format!("exit status {code}"),
            None => {
                #[cfg(unix)]
                {
                    use std::os::unix::process::ExitStatusExt;
                    format!("killed by signal {}", status.signal().unwrap_or(0))
                }
                #[cfg(not(unix))]
                {
                    "killed".to_string()
                }
            }
        },
        Err(m) => m,
    };
    let message = if stderr.is_empty() {
        failure
    } else {
        // Escaped: the tail may echo a log field into the daemon's log.
        format!("{failure}; stderr: {}", crate::text::escape(&stderr))
    };
    Err(SendError::retryable(message))
}

/// SIGKILL to the command's whole process group (the shell and whatever it
/// started), then to the child itself should the group be gone.
fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill(2) with a negative pid signals that process
            // group; it touches no memory of ours.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
    let _ = child.kill();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::router::tests::alert;
    use crate::event::Severity;

    fn action(command: &str, timeout: i64) -> Action {
        Action {
            name: "a".to_string(),
            command: command.to_string(),
            timeout,
            min_severity: Severity::High,
            rules: vec![],
        }
    }

    fn run(a: &Action, al: &Alert) -> Result<(), SendError> {
        run_blocking(a, al, &[], &Running::default())
    }

    #[test]
    fn environment_carries_alert_and_line_fields_but_not_nul_or_huge_values() {
        let mut a = alert("disabled_tool", Severity::Critical, "id-1");
        a.line_fields = vec![
            ("server_name", "gmail\u{1b}[31m".into()),
            ("user_id", "u\0x".into()),
            ("tool_name", "t".repeat(MAX_ENV_VALUE + 1)),
            ("token_id", "t".repeat(MAX_ENV_VALUE)),
        ];
        let env = env_of(&a);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("MCPWATCH_ALERT_ID"), Some("id-1"));
        assert_eq!(get("MCPWATCH_RULE"), Some("disabled_tool"));
        assert_eq!(get("MCPWATCH_SEVERITY"), Some("critical"));
        assert_eq!(get("MCPWATCH_SERVER_NAME"), Some("gmail\u{1b}[31m"));
        assert_eq!(get("MCPWATCH_USER_ID"), None);
        assert_eq!(get("MCPWATCH_TOOL_NAME"), None);
        assert_eq!(get("MCPWATCH_TOKEN_ID").map(str::len), Some(MAX_ENV_VALUE));
    }

    #[test]
    fn failure_reports_exit_status_and_stderr_tail() {
        let a = alert("disabled_tool", Severity::Critical, "id-1");
        let e = run(
            &action("echo early >&2; echo 'no such server' >&2; exit 3", 10_000),
            &a,
        )
        .unwrap_err();
        assert!(e.retryable);
        assert_eq!(e.message, "exit status 3; stderr: early\\nno such server");
        assert!(run(&action("cat >/dev/null", 10_000), &a).is_ok());
    }

    #[test]
    fn command_is_killed_after_its_timeout() {
        let a = alert("disabled_tool", Severity::Critical, "id-1");
        let started = Instant::now();
        let e = run(&action("sleep 30", 200), &a).unwrap_err();
        assert_eq!(e.message, "timed out after 200ms; killed");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn abandoned_attempt_kills_the_command() {
        let d = tempfile::tempdir().unwrap();
        let pid_file = d.path().join("pid");
        let runner = ActionRunner::new(
            action(
                &format!(
                    "echo $$ > '{}.tmp'; mv '{0}.tmp' '{0}'; sleep 30",
                    pid_file.display()
                ),
                60_000,
            ),
            vec![],
        );
        let a = alert("disabled_tool", Severity::Critical, "id-1");
        let attempt = runner.run(std::slice::from_ref(&a));
        let started = async {
            loop {
                if let Some(pid) = std::fs::read_to_string(&pid_file)
                    .ok()
                    .and_then(|s| s.trim().parse::<i32>().ok())
                {
                    return pid;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        let pid = tokio::select! {
            _ = attempt => panic!("the command finished"),
            pid = started => pid,
        };
        // The attempt was dropped with the select: the shell (its group's
        // leader) is killed and reaped, long before its sleep would end.
        let mut gone = false;
        for _ in 0..500 {
            // SAFETY: signal 0 only checks that the process exists.
            if unsafe { libc::kill(pid, 0) } != 0 {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(gone, "the command still runs after its attempt was dropped");
    }
}
