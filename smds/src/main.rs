//! The `smds` command line: one binary whose subcommands are a lab's workflow (run the server,
//! inspect its events, act as an SM-DP+, act as a device). One file per subcommand in `cli/`.

mod cli;

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

/// SM-DS (SGP.22 discovery server) for eSIM labs, and the lab's client tools.
#[derive(Parser)]
#[command(name = "smds", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the SM-DS: ES11 (device discovery) and ES12 (SM-DP+ event registration, mutual TLS) on one HTTPS port.
    ///
    /// With no arguments it listens on 127.0.0.1:8443, keeps its database in ./smds-data, and on first
    /// start mints a development PKI in ./smds-data/pki (its own CI, CERT.DSauth, CERT.DS.TLS for
    /// "localhost", plus SM-DP+ and eUICC credentials for lab clients), printing where they are and
    /// how to use them. --pki DIR uses a `pki-tool init` directory instead, e.g. one minted under the
    /// GSMA Test CI with `pki-tool init --profile sgp26-v1.5 --keys ...`, which test eUICCs trust.
    ///
    /// /metrics (Prometheus) and /admin/events are served over plain HTTP on --admin-listen
    /// (127.0.0.1:8444 by default; loopback only unless you say otherwise).
    Serve(cli::serve::ServeArgs),
    /// Inspect stored events (reads the database, or asks the running server's admin listener).
    #[command(subcommand)]
    Events(cli::events::EventsCommand),
    /// Act as an SM-DP+: register or delete an event over ES12 (mutually authenticated TLS).
    #[command(subcommand)]
    Event(cli::event::EventCommand),
    /// Act as a device (LPA + software eUICC): ask the SM-DS for pending events over ES11.
    ///
    /// The eUICC's certificate and key, its EUM certificate and CI come from --certdir (a `pki-tool
    /// init` directory or an SGP.26 set). Like a real eUICC it verifies CERT.DSauth against its CI
    /// and serverSignature1, and refuses a server that fails; then it signs euiccSigned1 with
    /// EUICCInfo2 and DeviceInfo and prints the events.
    Discover(cli::discover::DiscoverArgs),
    /// SGP.22 v3 Event Checking: ask, with the ecId of the last `discover --v3`, whether anything
    /// is pending (no eUICC involved; the SM-DS answers only yes or no).
    CheckEvent(cli::check_event::CheckEventArgs),
    /// The effective server configuration.
    #[command(subcommand)]
    Config(cli::config::ConfigCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// E.g. `smds completions bash > /etc/bash_completion.d/smds`, or for zsh into a directory of
    /// your $fpath as _smds.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages (smds.1 and one per subcommand) into a directory.
    Man {
        /// Where to write them (created if needed).
        #[arg(long, value_name = "DIR", default_value = "man")]
        out: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // The server's configuration is read before its runtime exists: it sizes the runtime.
    let serve_config = match &cli.command {
        Command::Serve(a) => match a.config() {
            Ok(cfg) => {
                builder.worker_threads(cfg.worker_threads);
                Some(cfg)
            }
            Err(e) => {
                eprintln!("smds: error: {e}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("smds: error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(a) => match serve_config {
                Some(cfg) => cli::serve::run(&a.log_format, cfg).await.map(|_| true),
                None => Err("the configuration was not read".into()),
            },
            Command::Events(c) => cli::events::run(c).await.map(|_| true),
            Command::Event(c) => cli::event::run(c).await,
            Command::Discover(a) => cli::discover::run(a).await,
            Command::CheckEvent(a) => cli::check_event::run(a).await,
            Command::Config(c) => cli::config::run(c).map(|_| true),
            Command::Completions { shell } => {
                pki_tool::cli_docs::print_completions(shell, Cli::command());
                Ok(true)
            }
            Command::Man { out } => pki_tool::cli_docs::write_man_pages(Cli::command(), &out)
                .map(|w| {
                    println!("{} man pages written to {}", w.len(), out.display());
                    true
                })
                .map_err(|e| format!("{}: {e}", out.display())),
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("smds: error: {e}");
            ExitCode::from(2)
        }
    }
}
