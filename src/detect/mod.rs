//! Detection: the tool policy and the pure event-time engine (SPEC §3).

pub mod policy;
