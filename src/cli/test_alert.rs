//! `mcpwatch test-alert` (SPEC §7).

use clap::Args;

use super::CommonArgs;

#[derive(Args, Debug)]
pub struct TestAlertArgs {
    /// Only this channel (by its name in mcpwatch.toml)
    #[arg(long, value_name = "NAME")]
    pub channel: Option<String>,
}

pub fn run(_common: &CommonArgs, _args: TestAlertArgs) -> anyhow::Result<u8> {
    super::not_yet("test-alert")
}
