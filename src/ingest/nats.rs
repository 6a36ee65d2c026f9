//! The audit lines on NATS JetStream (SPEC §10): what `forward` publishes
//! and `run --input nats://…` reads. Subjects, headers, the `Nats-Msg-Id`
//! that names a line for good, the stream's configuration, and connecting
//! with retries until a deadline. Nothing here tails or detects.

use std::time::{Duration, Instant};

use async_nats::jetstream::stream;

use crate::event::Kind;

/// Subjects are `mcpwatch.audit.<kind>` (`tool_call`, `approval`, `error`).
pub(crate) const SUBJECT_PREFIX: &str = "mcpwatch.audit.";
pub(crate) const HEADER_HOST: &str = "Mcpwatch-Host";
pub(crate) const HEADER_FILE: &str = "Mcpwatch-File";
pub(crate) const HEADER_LINE: &str = "Mcpwatch-Line";
/// How long the stream keeps messages (SPEC §10: `max_age`, 7 days).
pub(crate) const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The subject of a line of `kind`.
pub(crate) fn subject(kind: Kind) -> String {
    format!("{SUBJECT_PREFIX}{}", kind.as_str())
}

/// The kind a subject names, if it is one of the three.
pub(crate) fn kind_of_subject(subject: &str) -> Option<Kind> {
    let k = subject.strip_prefix(SUBJECT_PREFIX)?;
    Kind::ALL.into_iter().find(|kind| kind.as_str() == k)
}

/// `Nats-Msg-Id: <host>/<file identity>/<byte offset>` (SPEC §10): the
/// identity is the first 8 bytes of the file's fingerprint in hex, the same
/// under any name the file is rotated to, so a line re-read after a crash
/// gets the id it was first published with.
pub(crate) fn msg_id(host: &str, file_id: u64, offset: u64) -> String {
    format!("{host}/{file_id:016x}/{offset}")
}

/// Splits a `Nats-Msg-Id` into host, file identity and offset; `None` for
/// anything else. The host may not contain `/` (the last two parts are
/// taken from the right).
pub(crate) fn parse_msg_id(id: &str) -> Option<(&str, &str, u64)> {
    let mut parts = id.rsplitn(3, '/');
    let offset = parts.next()?.parse().ok()?;
    let file = parts.next().filter(|f| !f.is_empty())?;
    let host = parts.next().filter(|h| !h.is_empty() && !h.contains('/'))?;
    Some((host, file, offset))
}

/// The stream's configuration when `forward` creates it: the three
/// subjects, file storage, `replicas` copies, the duplicate window and
/// `max_age` of SPEC §10.
pub(crate) fn stream_config(
    name: &str,
    replicas: usize,
    duplicate_window: Duration,
) -> stream::Config {
    stream::Config {
        name: name.to_string(),
        subjects: vec![format!("{SUBJECT_PREFIX}*")],
        storage: stream::StorageType::File,
        num_replicas: replicas.max(1),
        duplicate_window,
        max_age: MAX_AGE,
        ..Default::default()
    }
}

/// Runs of missing lines remembered per file; beyond, the oldest run is
/// given up (its lines would then count as sent again). A run is a publish
/// lost while later ones were stored, seconds before it is sent again.
const MAX_GAPS: usize = 64;

/// What a detector has taken of one host's file (SPEC §10): a line at or
/// below the highest offset taken is one sent again, and dropped; except
/// a line inside a run of missing line numbers below it. Such a run opens
/// when a forwarder's publish was lost while later ones were stored (a
/// JetStream leader lost mid-flight): the forwarder sends the lost line
/// again, and it must be taken, not dropped. Each gap is
/// `[offset, line, offset, line]` of the taken lines around the run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FileTaken {
    pub(crate) offset: u64,
    pub(crate) line: u64,
    pub(crate) gaps: Vec<[u64; 4]>,
}

impl FileTaken {
    /// Whether the line at `offset`, numbered `line`, is taken for the
    /// first time (and notes it).
    pub(crate) fn take(&mut self, offset: u64, line: u64) -> bool {
        if self.line == 0 || offset > self.offset {
            if self.line > 0 && line > self.line + 1 {
                if self.gaps.len() >= MAX_GAPS {
                    self.gaps.remove(0);
                }
                self.gaps.push([self.offset, self.line, offset, line]);
            }
            (self.offset, self.line) = (offset, line);
            return true;
        }
        let Some(i) = self
            .gaps
            .iter()
            .position(|g| g[0] < offset && offset < g[2] && g[1] < line && line < g[3])
        else {
            return false;
        };
        let g = self.gaps.remove(i);
        if g[3] > line + 1 {
            self.gaps.insert(i, [offset, line, g[2], g[3]]);
        }
        if line > g[1] + 1 {
            self.gaps.insert(i, [g[0], g[1], offset, line]);
        }
        true
    }
}

/// Whether looking a stream up failed because it does not exist (and not
/// because JetStream is busy, say electing a leader after a node died).
pub(crate) fn stream_missing(e: &async_nats::jetstream::context::GetStreamError) -> bool {
    matches!(
        e.kind(),
        async_nats::jetstream::context::GetStreamErrorKind::JetStream(j)
            if j.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}

/// A NATS URL list (comma-separated, as NATS clients accept) with any
/// `user:password@` shown as `***@`, for messages: a URL may carry
/// credentials, which are never printed.
pub(crate) fn shown(urls: &str) -> String {
    urls.split(',')
        .map(|u| match (u.find("://"), u.rfind('@')) {
            (Some(s), Some(at)) if at > s => format!("{}***{}", &u[..s + 3], &u[at..]),
            (None, Some(at)) => format!("***{}", &u[at..]),
            _ => u.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("{0}: not a NATS URL: {1}")]
    Url(String, String),
    #[error("cannot reach NATS at {0} for {1:?}: {2}")]
    Unreachable(String, Duration, String),
}

/// Connects to any of `urls`, trying again (with a logged reason each
/// time) until `give_up_after` has passed; then a clear error. Once
/// connected, the client reconnects by itself for as long as the process
/// runs.
pub(crate) async fn connect(
    urls: &str,
    name: &str,
    give_up_after: Duration,
) -> Result<async_nats::Client, ConnectError> {
    let addrs: Vec<async_nats::ServerAddr> = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            u.parse()
                .map_err(|e: std::io::Error| ConnectError::Url(shown(u), e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    if addrs.is_empty() {
        return Err(ConnectError::Url(String::new(), "no server given".into()));
    }
    let until = Instant::now() + give_up_after;
    let mut delay = Duration::from_millis(100);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let attempt = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(left.clamp(Duration::from_millis(100), Duration::from_secs(5)))
            // Reconnects after the first connection are the client's own.
            .max_reconnects(None)
            .connect(addrs.as_slice())
            .await;
        match attempt {
            Ok(c) => return Ok(c),
            Err(e) => {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(ConnectError::Unreachable(
                        shown(urls),
                        give_up_after,
                        e.to_string(),
                    ));
                }
                tracing::warn!(
                    "cannot reach NATS at {} ({e}); trying again for {}s",
                    shown(urls),
                    left.as_secs()
                );
                tokio::time::sleep(delay.min(left)).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_id_is_host_file_identity_and_offset_and_parses_back() {
        let id = msg_id("agent-1", 0x00ab_cdef_0123_4567, 4096);
        assert_eq!(id, "agent-1/00abcdef01234567/4096");
        assert_eq!(
            parse_msg_id(&id),
            Some(("agent-1", "00abcdef01234567", 4096))
        );
        assert_eq!(parse_msg_id("a/b/c/1"), None, "a host may not contain /");
        assert_eq!(parse_msg_id("h/f/x"), None);
        assert_eq!(parse_msg_id("h//1"), None);
        assert_eq!(parse_msg_id("/f/1"), None);
        assert_eq!(parse_msg_id("f/1"), None);
    }

    #[test]
    fn a_line_at_or_below_the_highest_offset_is_sent_again_unless_it_fills_a_gap() {
        let mut f = FileTaken::default();
        assert!(f.take(0, 1));
        assert!(f.take(10, 2));
        assert!(!f.take(10, 2), "the same line again");
        assert!(!f.take(0, 1), "an older line again");
        // Lines 3 and 4 lost, 5 stored: a gap.
        assert!(f.take(40, 5));
        assert_eq!(f.gaps, vec![[10, 2, 40, 5]]);
        assert!(f.take(20, 3), "a lost line sent again is taken");
        assert_eq!(f.gaps, vec![[20, 3, 40, 5]]);
        assert!(!f.take(20, 3), "but once");
        assert!(f.take(30, 4));
        assert!(f.gaps.is_empty());
        assert!(!f.take(30, 4));
        assert!(!f.take(40, 5));
        // A line in the middle of a longer run splits it.
        assert!(f.take(100, 10));
        assert!(f.take(70, 7));
        assert_eq!(f.gaps, vec![[40, 5, 70, 7], [70, 7, 100, 10]]);
        // A line number outside the run at an offset inside it: not a fill.
        assert!(!f.take(50, 9));
    }

    #[test]
    fn gaps_are_bounded() {
        let mut f = FileTaken::default();
        for i in 0..(MAX_GAPS as u64 + 10) {
            assert!(f.take(i * 100, i * 3 + 1));
        }
        assert_eq!(f.gaps.len(), MAX_GAPS);
        assert_eq!(f.gaps[0][1], 28, "the oldest runs were given up");
    }

    #[test]
    fn subjects_name_the_three_kinds() {
        assert_eq!(subject(Kind::ToolCall), "mcpwatch.audit.tool_call");
        assert_eq!(subject(Kind::Approval), "mcpwatch.audit.approval");
        assert_eq!(subject(Kind::Error), "mcpwatch.audit.error");
        for k in Kind::ALL {
            assert_eq!(kind_of_subject(&subject(k)), Some(k));
        }
        assert_eq!(kind_of_subject("mcpwatch.audit.other"), None);
        assert_eq!(kind_of_subject("tool_call"), None);
    }

    #[test]
    fn credentials_in_urls_are_never_shown() {
        assert_eq!(
            shown("nats://u:secret@127.0.0.1:4222,nats://127.0.0.1:4223"),
            "nats://***@127.0.0.1:4222,nats://127.0.0.1:4223"
        );
        assert_eq!(shown("tok@host:4222"), "***@host:4222");
    }

    #[test]
    fn the_stream_is_file_stored_with_a_two_minute_duplicate_window() {
        let c = stream_config("MCPWATCH_AUDIT", 3, Duration::from_secs(120));
        assert_eq!(c.name, "MCPWATCH_AUDIT");
        assert_eq!(c.subjects, vec!["mcpwatch.audit.*".to_string()]);
        assert_eq!(c.storage, stream::StorageType::File);
        assert_eq!(c.num_replicas, 3);
        assert_eq!(c.duplicate_window, Duration::from_secs(120));
        assert_eq!(c.max_age, Duration::from_secs(7 * 24 * 3600));
    }
}
