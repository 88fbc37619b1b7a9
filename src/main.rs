//! The `ipsec-server` binary: `run`, `check`, `status`, `client-config` (DESIGN.md §1b).
#![allow(clippy::disallowed_methods)] // the binary owns the clocks and OS randomness, like `daemon`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use std::net::SocketAddr;
use std::time::Duration;

use ipsec_server::io::host::host_networks_excluding;
use ipsec_server::secret::SecretBytes;
use ipsec_server::{config, daemon, onboard};

mod loadgen;

/// `IP` or `IP:PORT` (port 500 by default).
fn parse_target(s: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let ip: std::net::IpAddr = s
        .parse()
        .map_err(|_| anyhow::anyhow!("--target {s:?}: expected IP or IP:PORT"))?;
    Ok(SocketAddr::new(ip, 500))
}

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
        #[arg(long, short, default_value = config::DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Validate a configuration file; prints the error code and message.
    Check {
        #[arg(long, short, default_value = config::DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Connect to a gateway as a road-warrior client (needs root: TUN, UDP 4500).
    Client(daemon::ClientArgs),
    /// Show the online clients of a running daemon (needs the daemon's user: root).
    Status {
        /// The daemon's config file (for its `gateway.control_socket`).
        #[arg(long, short, conflicts_with = "socket")]
        config: Option<PathBuf>,
        /// The daemon's control socket (default: /run/ipsec-server/control.sock).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Print a client configuration for the configured suite, identities and PSK, with a
    /// compatibility verdict on stderr (a refusal exits with status 1).
    ClientConfig(ClientConfigArgs),
    /// Handshake load generator: COUNT IKEv2 clients (PSK, virtual IP) against a responder
    /// over UDP 500/4500; keeps every IKE SA until the hold time ends or SIGINT/SIGTERM.
    Loadgen(LoadgenArgs),
}

#[derive(clap::Args)]
struct ClientConfigArgs {
    /// swanctl, networkmanager, apple, windows or android.
    #[arg(long, value_parser = parse_format)]
    format: onboard::Format,
    /// The address or DNS name clients dial (required unless the gateway listens on a
    /// specific address).
    #[arg(long)]
    server: Option<String>,
    /// The client's identity (IDi); the configured remote_id when set.
    #[arg(long)]
    id: Option<String>,
    /// Write to this file instead of stdout (mode 0600 when it holds the PSK).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Include the PSK (otherwise a placeholder, and stderr says where to get it).
    #[arg(long)]
    with_secret: bool,
    #[arg(long, short, default_value = config::DEFAULT_CONFIG)]
    config: PathBuf,
}

fn parse_format(s: &str) -> Result<onboard::Format, String> {
    onboard::Format::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = onboard::Format::ALL.iter().map(|f| f.name()).collect();
        format!("expected one of {}", names.join(", "))
    })
}

#[derive(clap::Args)]
struct LoadgenArgs {
    /// Responder IP[:PORT] (port 500 by default).
    #[arg(long)]
    target: String,
    /// The responder's NAT-T port.
    #[arg(long, default_value_t = 4500)]
    nat_t_port: u16,
    #[arg(long, default_value_t = 100)]
    count: u64,
    /// Handshake starts per second.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Handshakes in flight at most (the responder asks one source for cookies above its
    /// `[limits] cookie_threshold_ip`, 3 by default: raise it for load tests).
    #[arg(long, default_value_t = 8)]
    window: usize,
    #[arg(long)]
    psk: String,
    /// Client identities are FQDNs PREFIX0, PREFIX1, ….
    #[arg(long, default_value = "client")]
    id_prefix: String,
    /// IKE proposal ENCR-INTEG-DH; the ESP proposal uses the same ENCR and INTEG.
    #[arg(long, default_value = "aes128-sha1-modp1024")]
    proposal: String,
    /// Seconds to wait for each answer before retransmitting.
    #[arg(long, default_value_t = 2.0)]
    timeout: f64,
    #[arg(long, default_value_t = 3)]
    retries: u32,
    /// Seconds to keep the SAs after the run (default: until SIGINT/SIGTERM).
    #[arg(long)]
    hold: Option<f64>,
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
    // A panic on any thread ends the process (status 70, one log line): a daemon with a dead
    // thread would otherwise keep running half alive, and no supervisor would restart it.
    daemon::install_panic_hook();
    match cli.command {
        Command::Loadgen(args) => cmd_loadgen(args),
        Command::Check { config } => cmd_check(&config),
        Command::Run { config } => cmd_run(&config),
        Command::Client(args) => match daemon::run_client(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Status { config, socket } => cmd_status(config, socket),
        Command::ClientConfig(args) => cmd_client_config(args),
    }
}

fn cmd_client_config(args: ClientConfigArgs) -> ExitCode {
    let view = match onboard::load(
        &args.config,
        &host_networks_excluding,
        &mut rand::thread_rng(),
    ) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("client-config: {e}");
            return ExitCode::from(2);
        }
    };
    let opts = onboard::Options {
        server: args.server,
        client_id: args.id,
        with_secret: args.with_secret,
    };
    let rendered = match onboard::render(&view, args.format, &opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("client-config: {e}");
            return ExitCode::from(2);
        }
    };
    eprint!("{}", rendered.verdict_text());
    if rendered.verdict.refused() {
        return ExitCode::FAILURE;
    }
    let written = match &args.out {
        Some(path) => write_private(path, rendered.text.as_bytes(), rendered.contains_secret),
        None => {
            use std::io::Write;
            std::io::stdout().write_all(rendered.text.as_bytes())
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("client-config: cannot write the configuration: {e}");
            ExitCode::from(2)
        }
    }
}

/// Writes `bytes` to `path`, mode 0600 when they hold a secret (also when the file existed).
fn write_private(path: &Path, bytes: &[u8], secret: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)?;
    if secret {
        // Before the secret goes in: an existing file keeps its mode through open().
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(bytes)?;
    f.sync_all()
}

fn cmd_loadgen(args: LoadgenArgs) -> ExitCode {
    let run = || -> anyhow::Result<loadgen::LoadgenReport> {
        let target = parse_target(&args.target)?;
        let (ike, esp) = loadgen::parse_proposal(&args.proposal)?;
        if !(args.timeout > 0.0 && args.timeout <= 60.0) {
            anyhow::bail!("--timeout must be in (0, 60] seconds");
        }
        loadgen::run(loadgen::LoadgenConfig {
            target,
            nat_t_port: args.nat_t_port,
            count: args.count,
            rate: args.rate,
            window: args.window,
            psk: SecretBytes::from_slice(args.psk.as_bytes()),
            id_prefix: args.id_prefix,
            ike,
            esp,
            timeout: Duration::from_secs_f64(args.timeout),
            retries: args.retries,
            hold: args.hold.map(Duration::from_secs_f64),
        })
    };
    match run() {
        Ok(r) if r.failed == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn cmd_check(config: &Path) -> ExitCode {
    match config::load(config, &host_networks_excluding, &mut rand::thread_rng()) {
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
    }
}

fn cmd_run(config: &Path) -> ExitCode {
    let cfg = match config::load(config, &host_networks_excluding, &mut rand::thread_rng()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: {}", e.code, e.message);
            return ExitCode::FAILURE;
        }
    };
    for w in cfg.warnings() {
        tracing::warn!("{w}");
    }
    match daemon::run(cfg, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn cmd_status(config: Option<PathBuf>, socket: Option<PathBuf>) -> ExitCode {
    let socket = match (config, socket) {
        (_, Some(socket)) => socket,
        (Some(path), None) => {
            match config::load(&path, &host_networks_excluding, &mut rand::thread_rng()) {
                Ok(c) => c.gateway().control_socket().to_path_buf(),
                Err(e) => {
                    eprintln!("{}: {}", e.code, e.message);
                    return ExitCode::FAILURE;
                }
            }
        }
        (None, None) => PathBuf::from(config::DEFAULT_CONTROL_SOCKET),
    };
    match daemon::query_status(&socket) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot reach the daemon at {}: {e}", socket.display());
            ExitCode::FAILURE
        }
    }
}
