//! Rotation, zstd compression and retention (SPEC §6).
