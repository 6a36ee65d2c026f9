//! Ingestion: bytes → lines → events.

pub mod parse;
