//! Ingestion: bytes → lines → events.
//!
//! - [`frame`]: the framing rules every reader of lines follows (BOM,
//!   CRLF, too-long lines).
//! - [`lines`]: chunked line framing of a file or archive stream.
//! - [`parse`]: one line → one [`crate::event::Event`] or a reject reason.
//! - [`input`]: which files `scan`/`report` read, and in what order.
//! - [`merge`]: the ts-ordered merge of SPEC §3.

pub(crate) mod frame;
pub mod input;
pub mod lines;
pub mod merge;
pub mod parse;
pub mod tail;
