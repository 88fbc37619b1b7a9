//! The `ipsec-server` binary: `run`, `check`, `status` (DESIGN.md §1b).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use ipsec_server::{config, daemon};

#[derive(Parser)]
#[command(
    name = "ipsec-server",
    version,
    about = "IKEv2/IPsec road-warrior VPN responder"
)]
struct Cli {
    /// Log level when RUST_LOG is not set (error, warn, info, debug, trace).
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway in the foreground (needs root: TUN, UDP 500/4500).
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration file; prints the error code and message.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Connect to a gateway as a road-warrior client (needs root: TUN, UDP 4500).
    Client(daemon::ClientArgs),
    /// Show the online clients of a running daemon.
    Status {
        /// The daemon's config file (for its state_dir).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cli.log_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        Command::Check { config } => match config::load(&config) {
            Ok(cfg) => {
                for w in cfg.warnings() {
                    println!("warning: {w}");
                }
                println!("OK: {} is valid", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("{}: {}", e.code, e.message);
                ExitCode::FAILURE
            }
        },
        Command::Run { config } => {
            let cfg = match config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{}: {}", e.code, e.message);
                    return ExitCode::FAILURE;
                }
            };
            for w in cfg.warnings() {
                tracing::warn!("{w}");
            }
            match daemon::run(cfg, &config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Client(args) => match daemon::run_client(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Status { config } => {
            let state_dir = match config {
                Some(path) => match config::load(&path) {
                    Ok(c) => c.gateway().state_dir().to_path_buf(),
                    Err(e) => {
                        eprintln!("{}: {}", e.code, e.message);
                        return ExitCode::FAILURE;
                    }
                },
                None => daemon::default_state_dir(),
            };
            match daemon::query_status(&daemon::socket_path(&state_dir)) {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("cannot reach the daemon under {}: {e}", state_dir.display());
                    ExitCode::FAILURE
                }
            }
        }
    }
}
