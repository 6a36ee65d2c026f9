//! Ingestion: bytes → lines → events.
//!
//! - [`lines`]: chunked line framing (BOM, CRLF, too-long lines).
//! - [`parse`]: one line → one [`crate::event::Event`] or a reject reason.
//! - [`input`]: which files `scan`/`report` read, and in what order.
//! - [`merge`]: the ts-ordered merge of SPEC §3.

pub mod input;
pub mod lines;
pub mod merge;
pub mod parse;
pub mod tail;
