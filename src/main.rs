//! The `ipsec-server` binary: its commands (README "Commands"; docs/DESIGN.md §1b).
#![allow(clippy::disallowed_methods)] // the binary owns the clocks and OS randomness, like `daemon`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use ipsec_server::daemon::{Answer, ReloadOutcome, Request, SaStatus, Selector, Status};
use ipsec_server::io::host::host_networks_excluding;
use ipsec_server::secret::SecretBytes;
use ipsec_server::{config, daemon, onboard};

mod generate;
mod loadgen;
mod logging;

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
    /// Log format on stderr: text, json (one object per line) or journal (sd-daemon `<N>`
    /// priority prefixes); default: journal when stderr is the journal, else text.
    #[arg(long, global = true, value_enum)]
    log_format: Option<logging::LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway in the foreground (needs root: TUN, UDP 500/4500).
    Run {
        #[arg(long, short, default_value = config::DEFAULT_CONFIG)]
        config: PathBuf,
        /// Take over from the process that started this one (`ipsec-server upgrade` starts
        /// the new process with it; not for use by hand).
        #[arg(long = "takeover-fd", value_name = "FD", hide = true)]
        takeover_fd: Option<i32>,
    },
    /// Validate a configuration file: every error, host condition and warning on stderr as
    /// `FILE:LINE: key.path: CODE: message` (`host: CODE` for what depends on this host:
    /// ports in use, host networks, an existing TUN, a running daemon); exits non-zero on
    /// any error or host condition, else prints `OK: FILE is valid`.
    Check {
        #[arg(long, short, default_value = config::DEFAULT_CONFIG)]
        config: PathBuf,
        /// Skip the host conditions (for a file meant for another machine).
        #[arg(long)]
        no_host: bool,
    },
    /// Connect to a gateway as a road-warrior client (needs root: TUN, UDP 4500).
    Client(daemon::ClientArgs),
    /// Show the clients of a running daemon, like `swanctl --list-sas` (needs root).
    Status {
        /// Print JSON (stable field names, raw numbers) instead of text.
        #[arg(long)]
        json: bool,
        /// Only the client with this identity.
        #[arg(long)]
        id: Option<String>,
        /// Only the client with this virtual IP.
        #[arg(long)]
        vip: Option<Ipv4Addr>,
        #[command(flatten)]
        at: SocketArgs,
    },
    /// Disconnect one client: DELETE of its IKE SA, its Child SAs removed (needs root).
    #[command(group(clap::ArgGroup::new("client").required(true).args(["vip", "id"])))]
    Terminate {
        /// The client with this virtual IP.
        #[arg(long)]
        vip: Option<Ipv4Addr>,
        /// The client with this identity (every IKE SA of it).
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        at: SocketArgs,
    },
    /// Make the running daemon apply its config file, as SIGHUP does, and print the outcome
    /// (needs root).
    Reload {
        #[command(flatten)]
        at: SocketArgs,
    },
    /// Replace the running daemon by a new process of `gateway.upgrade_binary` (default: the
    /// daemon's own binary path) without dropping a tunnel: sockets, SAs and the TUN device
    /// are handed over; on failure the old process serves on and this says why (needs root).
    Upgrade {
        #[command(flatten)]
        at: SocketArgs,
    },
    /// Print the PSK the daemon of this config file uses: the configured one, or the one it
    /// generated and keeps in state_dir (needs root: the files are 0600).
    ShowPsk {
        #[arg(long, short, default_value = config::DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Print a client configuration for the configured suite, identities and PSK, with a
    /// compatibility verdict on stderr (a refusal exits with status 1).
    ClientConfig(ClientConfigArgs),
    /// Handshake load generator: COUNT IKEv2 clients (PSK, virtual IP) against a responder
    /// over UDP 500/4500; keeps every IKE SA until the hold time ends or SIGINT/SIGTERM.
    Loadgen(LoadgenArgs),
    /// Write shell completions or the man pages, generated from this command line (packaging).
    Generate {
        #[command(subcommand)]
        what: generate::What,
    },
}

/// Where the daemon's control socket is.
#[derive(clap::Args)]
struct SocketArgs {
    /// A config file whose `gateway.control_socket` names it (only that key is read).
    #[arg(long, short, conflicts_with = "socket")]
    config: Option<PathBuf>,
    /// The control socket (default: that of /etc/ipsec-server/ipsec-server.toml if
    /// readable, else /run/ipsec-server/control.sock).
    #[arg(long)]
    socket: Option<PathBuf>,
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
    /// Ask the running daemon on this control socket instead of reading the files: the
    /// server it serves, with the PSK it holds.
    #[arg(long, conflicts_with = "config")]
    socket: Option<PathBuf>,
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
    /// After the handshakes every client sends UDP through its tunnel to this LAN IP:PORT
    /// (ESP from a socket of its own), then prints per-client and total bytes sent.
    #[arg(long)]
    data_to: Option<std::net::SocketAddrV4>,
    /// Seconds of data at most.
    #[arg(long, default_value_t = 10.0, requires = "data_to")]
    data_secs: f64,
    /// Packets per client at most (default: until --data-secs ends).
    #[arg(long, requires = "data_to")]
    data_packets: Option<u64>,
    /// Offered rate of all clients together in Mbit/s (inner IP bytes); 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0, requires = "data_to")]
    data_mbps: f64,
    /// Inner IP packet length in bytes (28..=1400).
    #[arg(long, default_value_t = loadgen::MAX_DATA_LEN, requires = "data_to")]
    data_len: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cli.log_level));
    logging::init(cli.log_format, filter);
    // A panic on any thread ends the process (status 70, one log line): a daemon with a dead
    // thread would otherwise keep running half alive, and no supervisor would restart it.
    daemon::install_panic_hook();
    match cli.command {
        Command::Loadgen(args) => cmd_loadgen(args),
        Command::Check { config, no_host } => cmd_check(&config, no_host),
        Command::Run {
            config,
            takeover_fd,
        } => cmd_run(&config, takeover_fd),
        Command::Client(args) => match daemon::run_client(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Status { json, id, vip, at } => cmd_status(json, Selector { id, vip }, &at),
        Command::Terminate { vip, id, at } => cmd_terminate(Selector { id, vip }, &at),
        Command::Reload { at } => cmd_reload(&at),
        Command::Upgrade { at } => cmd_upgrade(&at),
        Command::ShowPsk { config } => cmd_show_psk(&config),
        Command::ClientConfig(args) => cmd_client_config(args),
        Command::Generate { what } => match generate::run(what) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("generate: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn cmd_client_config(args: ClientConfigArgs) -> ExitCode {
    if let Some(socket) = args.socket.clone() {
        return client_config_from_daemon(&socket, args);
    }
    let mut view = match onboard::load(
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
    if view.psk == onboard::PskSource::GeneratedAtStart {
        // The PSK the daemon generated and keeps (`show-psk`), if it has started once.
        let file = daemon::kept_psk::path(&view.state_dir);
        if let Ok(Some(psk)) = daemon::kept_psk::read(&file) {
            if let Some(server) = view.server.with_kept_psk(psk) {
                view.server = server;
                view.psk = onboard::PskSource::Known {
                    hint: format!(
                        "generated by the daemon and kept in {} (`ipsec-server show-psk`)",
                        file.display()
                    ),
                };
            }
        }
    }
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
    emit_client_config(
        &daemon::ClientConfig {
            text: rendered.text.to_string(),
            verdict: rendered.verdict_text(),
            refused: rendered.verdict.refused(),
            contains_secret: rendered.contains_secret,
        },
        args.out.as_deref(),
    )
}

/// Prints the verdict on stderr and writes the configuration to `out` (0600 with the PSK)
/// or stdout; status 1 on a refusal, 2 when it cannot be written.
fn emit_client_config(c: &daemon::ClientConfig, out: Option<&Path>) -> ExitCode {
    eprint!("{}", c.verdict);
    if c.refused {
        return ExitCode::FAILURE;
    }
    let written = match out {
        Some(path) => write_private(path, c.text.as_bytes(), c.contains_secret),
        None => {
            use std::io::Write;
            std::io::stdout().write_all(c.text.as_bytes())
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
        let secs_ok = args.data_secs > 0.0 && args.data_secs <= 3600.0;
        let mbps_ok = args.data_mbps.is_finite() && args.data_mbps >= 0.0;
        if !(secs_ok && mbps_ok) {
            anyhow::bail!("--data-secs must be in (0, 3600] and --data-mbps not negative");
        }
        let data = args.data_to.map(|to| loadgen::DataConfig {
            to,
            duration: Duration::from_secs_f64(args.data_secs),
            packets: args.data_packets,
            mbps: args.data_mbps,
            len: args.data_len,
        });
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
            data,
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

fn cmd_check(config: &Path, no_host: bool) -> ExitCode {
    let (networks, conditions): config::HostChecks = if no_host {
        (&|_| Vec::new(), &|_| Vec::new())
    } else {
        (&host_networks_excluding, &daemon::host_check::conditions)
    };
    let (cfg, report) = config::check_file(config, networks, conditions, &mut rand::thread_rng());
    if !report.findings.is_empty() {
        eprintln!("{report}");
    }
    if cfg.is_none() {
        return ExitCode::FAILURE;
    }
    println!("OK: {} is valid", config.display());
    ExitCode::SUCCESS
}

fn cmd_run(config: &Path, takeover_fd: Option<i32>) -> ExitCode {
    let cfg = match config::load(config, &host_networks_excluding, &mut rand::thread_rng()) {
        Ok(c) => c,
        Err(report) => {
            eprintln!("{report}");
            return ExitCode::FAILURE;
        }
    };
    for w in cfg.warnings() {
        tracing::warn!("{w}");
    }
    match daemon::run(cfg, config, takeover_fd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Sends `req` to the daemon's control socket; `Ok` is the answer's result, `Err` the
/// message to print (the daemon's error code first).
fn control_request(
    at: &SocketArgs,
    req: &Request,
    timeout: Duration,
) -> Result<serde_json::Value, String> {
    let socket = daemon::socket_path(at.config.as_deref(), at.socket.as_deref())?;
    match daemon::request(&socket, req, timeout) {
        Ok(Answer::Ok { result }) => Ok(result),
        Ok(Answer::Error { code, message }) => Err(format!("{code}: {message}")),
        Err(e) => Err(format!(
            "cannot reach the daemon at {}: {e}",
            socket.display()
        )),
    }
}

fn cmd_show_psk(config: &Path) -> ExitCode {
    let cfg = match config::load(config, &host_networks_excluding, &mut rand::thread_rng()) {
        Ok(c) => c,
        Err(report) => {
            eprintln!("{report}");
            return ExitCode::FAILURE;
        }
    };
    let Some(server) = cfg.ipsec_server() else {
        eprintln!(
            "{} has no [ipsec_server]: the control API's servers carry their own PSK",
            config.display()
        );
        return ExitCode::FAILURE;
    };
    if cfg.api().is_some() {
        eprintln!("note: with [api], a server changed through the API has the API's PSK");
    }
    if !server.psk_generated() {
        println!("{}", String::from_utf8_lossy(server.psk().expose()));
        return ExitCode::SUCCESS;
    }
    let file = daemon::kept_psk::path(cfg.gateway().state_dir());
    match daemon::kept_psk::read(&file) {
        Ok(Some(psk)) => {
            println!("{}", String::from_utf8_lossy(psk.expose()));
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!(
                "no PSK generated yet ({} does not exist): start the daemon once",
                file.display()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            ExitCode::FAILURE
        }
    }
}

/// Prints `r`'s error on stderr and fails.
fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("{e}");
    ExitCode::FAILURE
}

fn cmd_status(json: bool, select: Selector, at: &SocketArgs) -> ExitCode {
    let req = Request::Status { select };
    let result = match control_request(at, &req, Duration::from_secs(30)) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let status = match serde_json::from_value::<Status>(result) {
        Ok(s) => s,
        Err(e) => return fail(format!("unexpected answer from the daemon: {e}")),
    };
    if json {
        // Fields in the documented order (a `Value` would sort them).
        match serde_json::to_string_pretty(&status) {
            Ok(text) => println!("{text}"),
            Err(e) => return fail(e),
        }
    } else {
        print!("{}", status.render());
    }
    ExitCode::SUCCESS
}

fn cmd_terminate(select: Selector, at: &SocketArgs) -> ExitCode {
    let req = Request::Terminate { select };
    let gone = match control_request(at, &req, Duration::from_secs(30))
        .and_then(|r| serde_json::from_value::<Vec<SaStatus>>(r).map_err(|e| e.to_string()))
    {
        Ok(g) => g,
        Err(e) => return fail(e),
    };
    for sa in gone {
        println!(
            "terminated {} (vip {}, remote {}, ike-spis {}_i {}_r)",
            sa.identity.as_deref().unwrap_or("-"),
            sa.vip.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
            sa.remote,
            sa.ike_spi_i,
            sa.ike_spi_r
        );
    }
    ExitCode::SUCCESS
}

fn cmd_reload(at: &SocketArgs) -> ExitCode {
    // A reload that restarts the stack waits for the DELETEs and a new TUN device.
    let outcome = match control_request(at, &Request::Reload, Duration::from_secs(120))
        .and_then(|r| serde_json::from_value::<ReloadOutcome>(r).map_err(|e| e.to_string()))
    {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    println!("{}", outcome.applied);
    if outcome.changed.is_empty() {
        println!("changed: nothing");
    } else {
        println!("changed: {}", outcome.changed.join(", "));
    }
    ExitCode::SUCCESS
}

fn cmd_upgrade(at: &SocketArgs) -> ExitCode {
    // The daemon waits for the new process's start and its take-over (bounded there).
    let u = match control_request(at, &Request::Upgrade, Duration::from_secs(60))
        .and_then(|r| serde_json::from_value::<daemon::Upgraded>(r).map_err(|e| e.to_string()))
    {
        Ok(u) => u,
        Err(e) => return fail(e),
    };
    if u.restarted {
        println!(
            "restarted: pid {} -> {}; the new binary cannot read this daemon's state, so {} \
             IKE SAs were deleted (clients reconnect)",
            u.old_pid, u.new_pid, u.ike_sas
        );
    } else {
        println!(
            "upgraded: pid {} -> {}, switch {} ms, {} IKE SAs kept",
            u.old_pid, u.new_pid, u.switch_ms, u.ike_sas
        );
    }
    ExitCode::SUCCESS
}

/// `client-config --socket`: the running daemon renders it (`Request::ClientConfig`).
fn client_config_from_daemon(socket: &Path, args: ClientConfigArgs) -> ExitCode {
    let req = Request::ClientConfig {
        format: args.format.name().into(),
        server: args.server,
        id: args.id,
        with_secret: args.with_secret,
    };
    let at = SocketArgs {
        config: None,
        socket: Some(socket.to_path_buf()),
    };
    let answer = match control_request(&at, &req, Duration::from_secs(30))
        .and_then(|r| serde_json::from_value::<daemon::ClientConfig>(r).map_err(|e| e.to_string()))
    {
        Ok(a) => a,
        Err(e) => {
            eprintln!("client-config: {e}");
            return ExitCode::from(2);
        }
    };
    emit_client_config(&answer, args.out.as_deref())
}
