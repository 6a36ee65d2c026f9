//! Ingestion: bytes → lines → events.
//!
//! - [`frame`]: the framing rules every reader of lines follows (BOM,
//!   CRLF, too-long lines).
//! - [`lines`]: chunked line framing of a file or archive stream.
//! - [`parse`]: one line → one [`crate::event::Event`] or a reject reason.
//! - [`input`]: which files `scan`/`report` read, and in what order.
//! - [`merge`]: the ts-ordered merge of SPEC §3.
//! - [`nats`]: the audit lines on NATS JetStream (SPEC §10), and
//!   [`reorder`], which puts many hosts' lines back in ts order.

pub(crate) mod frame;
pub mod input;
pub mod lines;
pub mod merge;
pub(crate) mod nats;
pub mod parse;
pub(crate) mod reorder;
pub mod tail;
