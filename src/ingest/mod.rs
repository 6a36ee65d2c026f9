//! Ingestion: bytes → lines → events.

pub mod checkpoint;
pub mod parse;
pub mod tail;
