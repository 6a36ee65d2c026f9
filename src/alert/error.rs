//! The errors of alert delivery's channels in one place: what one attempt
//! on a channel (email, webhook) failed with, and a channel named that does
//! not exist. The outbox's and the alert log's own errors stay with them.

/// One failed attempt: what to show (secrets already removed) and whether
/// trying again may help.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub(crate) message: String,
    pub(crate) retryable: bool,
}

impl SendError {
    pub(crate) fn retryable(message: String) -> SendError {
        SendError {
            message,
            retryable: true,
        }
    }
    pub(crate) fn permanent(message: String) -> SendError {
        SendError {
            message,
            retryable: false,
        }
    }
}

/// An error and its sources as one line, without repeats.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    // Libraries often print their source inside their own message too:
    // drop segments that repeat the one before.
    let joined = parts.join(": ");
    let mut segs: Vec<&str> = Vec::new();
    for seg in joined.split(": ") {
        if segs.last().is_none_or(|l| !l.eq_ignore_ascii_case(seg)) {
            segs.push(seg);
        }
    }
    segs.join(": ")
}

/// `--channel` named no configured channel.
#[derive(Debug, thiserror::Error)]
#[error("unknown channel {name:?}; configured channels: {}", if .known.is_empty() { "none".to_string() } else { .known.join(", ") })]
pub struct UnknownChannel {
    pub(crate) name: String,
    pub(crate) known: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_drops_repeated_segments() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let e = E(
            "Connection error: Connection error: bad record",
            Some(Box::new(E("bad record", None))),
        );
        assert_eq!(chain(&e), "Connection error: bad record");
        let e = E(
            "error sending request",
            Some(Box::new(E("connection refused", None))),
        );
        assert_eq!(chain(&e), "error sending request: connection refused");
    }
}
