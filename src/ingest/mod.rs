//! Ingestion: bytes → lines → events.

pub mod checkpoint;
pub mod lines;
pub mod parse;
