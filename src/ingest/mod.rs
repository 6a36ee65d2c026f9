//! Ingestion: bytes → lines → events.

pub mod checkpoint;
pub mod input;
pub mod merge;
pub mod parse;
