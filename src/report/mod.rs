//! Audit reports over logs and archives (SPEC §7 report).
