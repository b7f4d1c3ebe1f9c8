//! `smds config show`: the configuration `serve` would run with, from the same file and flags.

use super::serve::ServeArgs;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration as TOML: the defaults, then --config FILE (its relative
    /// paths resolved from its directory), then the flags, exactly as `serve` would use them.
    /// A store URL is shown without its password.
    Show(ServeArgs),
}

pub fn run(c: ConfigCommand) -> Result<(), String> {
    match c {
        ConfigCommand::Show(a) => {
            print!("{}", a.config()?.to_toml());
            Ok(())
        }
    }
}
