//! mcpwatch: watches the audit logs of AI agents calling MCP tools and raises
//! the alarm when something looks wrong.
//!
//! # Layout
//!
//! The folders follow an event's way through the program. The ground floor,
//! used by every stage and using none of them:
//!
//! - [`event`]: the one `Event` type every stage speaks, and where a line
//!   was read ([`event::LineRef`]).
//! - [`policy`]: the tool policy (which tools are auto-approved, need
//!   approval, are disabled); `config` builds it, `detect` uses it.
//! - [`state`]: the state directory: atomic writes, its lock, the one
//!   checkpoint document and its writer.
//! - [`metrics`]: the counters, gauges and histograms, and the
//!   `/metrics`/`/healthz` server.
//! - [`text`]: the escaping of log text for terminals, spreadsheets and
//!   mail bodies that every human-facing output shares (SPEC §8).
//!
//! The stages:
//!
//! - [`config`]: the four optional sources (SPEC §2) → one validated
//!   [`config::Config`], every error reported at once with `file:line:col`.
//! - [`ingest`]: bytes → lines → events: line framing, the JSON parser, file
//!   inputs for `scan`, the tailer for `run`, and the ts-ordered merge.
//! - [`detect`]: the pure, event-time detection engine (one file per rule).
//!   No clock, no I/O.
//! - [`alert`]: the `Alert` type, the alert log, router, durable outbox,
//!   email, webhook and incident actions.
//! - [`rotate`]: rotation, zstd compression and retention of the logs.
//! - [`report`]: audit reports over logs and archives, and the
//!   investigation timeline of one subject.
//! - [`pipeline`]: the daemon, the only place stages are wired together.
//!
//! The commands of SPEC §7 are the binary's (`src/main.rs`, `src/cli/`),
//! on top of the above.

pub mod alert;
mod catalog;
pub mod config;
pub mod detect;
pub mod event;
pub mod ingest;
pub(crate) mod logs;
pub mod metrics;
pub mod pipeline;
pub mod policy;
pub mod report;
pub mod rotate;
pub mod state;
mod swar;
#[cfg(feature = "testkit")]
#[doc(hidden)]
pub mod testkit;
pub mod text;
