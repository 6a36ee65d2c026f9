//! The integration tests, as one crate: one binary to link instead of one
//! per file. Each module is one former `tests/<name>.rs`, and a test is
//! named `<module>::<test>` (`cargo test --test it golden::` runs a file's
//! worth; `--exact delivery_crash::kill_9_…` one test). A new test file
//! belongs here as one more `mod`: a file at `tests/<name>.rs` would be a
//! crate (and a binary) of its own again.
//!
//! What being one process changes, and how each module copes:
//! - environment variables a test sets (`std::env::set_var`) are seen by
//!   every test: each module sets only its own `MCPWATCH_TEST_*` names,
//!   once, and no other test reads them;
//! - `delivery_crash` re-runs this binary as its child and names its test
//!   by the full module path (`--exact`);
//! - proptest finds its seeds by the source file's place under this
//!   directory: `tests/proptest-regressions/<module>.txt`.
//!
//! `MCPWATCH_BLESS=1` makes the tests that compare against committed files
//! (`golden`, `fixtures_gen`) rewrite them instead; review the diff.

mod support;

mod actions;
mod alertmanager;
mod bad_luck;
mod check;
mod delivery;
mod delivery_cli;
mod delivery_crash;
mod delivery_daemon;
mod example;
mod fixtures_gen;
mod golden;
mod nats;
mod nats_group;
mod outbox_cli;
mod packaging;
mod parse_props;
mod report;
mod report_beyond;
mod report_html;
mod rotate;
mod rotate_cli;
mod run_beyond;
mod run_daemon;
mod run_logrotate;
mod run_rotation;
mod run_seeded;
mod seeded_input;
mod service;
mod small_fixes;
mod tail_cases;
mod tail_model;
mod timeline;
