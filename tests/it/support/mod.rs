//! Helpers shared by the integration tests. They are one crate with the
//! tests now, so `dead_code` sees every use: a helper no test calls is
//! reported (or kept with an `allow` that says why).

pub mod daemon;
pub mod delivery;
pub mod nats;

/// The one switch that makes a test rewrite the committed files it compares
/// against (golden outputs, the generated example) instead of failing:
/// `MCPWATCH_BLESS=1`. Review the diff before committing it.
pub const BLESS_ENV: &str = "MCPWATCH_BLESS";

/// Whether this run rewrites expected outputs (`MCPWATCH_BLESS=1`).
pub fn blessing() -> bool {
    std::env::var_os(BLESS_ENV).is_some_and(|v| v == "1")
}

/// Waits until the log `stderr` returns holds `needle`; fails showing the
/// log if it does not within `timeout`.
#[track_caller]
pub fn assert_logs(timeout: std::time::Duration, needle: &str, stderr: impl Fn() -> String) {
    assert!(
        wait_until(timeout, || stderr().contains(needle)),
        "no {needle:?} within {timeout:?} in:\n{}",
        stderr()
    );
}

/// Polls `f` every 50 ms until it holds or `timeout` has passed; the last
/// answer.
pub fn wait_until(timeout: std::time::Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    f()
}
