//! The control socket: a Unix socket at `gateway.control_socket` (default
//! `/run/ipsec-server/control.sock`) that `ipsec-server status`, `terminate` and `reload`
//! talk to, one request per connection.
//!
//! Protocol: the client writes one request, a line of JSON (`{"command":"status"}`,
//! `{"command":"terminate","select":{"vip":"10.0.0.1"}}`, `{"command":"reload"}`: the
//! [`Request`] enum), and reads one answer, a line of JSON ([`Answer`]): `{"status":"ok",
//! "result":…}` or `{"status":"error","code":…,"message":…}`; then the daemon closes the
//! connection. A further command is a variant of [`Request`] and an arm of [`handle`].
//!
//! Bounds: the socket is root's (below), so its clients are trusted, but a stuck or broken
//! one must not stall the daemon nor grow it: a request is at most [`MAX_REQUEST`] bytes and
//! must arrive whole within [`REQUEST_DEADLINE`] of the accept, else it is answered with an
//! error (`Control.RequestTooLarge`, `Control.RequestTimeout`, `Control.BadRequest` for
//! anything that is not a request) and the connection closed; the answer must be taken
//! within [`WRITE_DEADLINE`]. Connections are served one at a time, so at most one request's
//! buffer exists.
//!
//! The socket lives as long as the daemon, not as one serving stack: `reload` may restart
//! the stack, and a gateway with `[api]` but no server yet still answers `status`.
//!
//! The report names every client, so only the daemon's user (root) may read it: [`listen`]
//! checks the socket's directory ([`crate::io::fs::private_dir`]: created 0700 if missing;
//! ours, not writable by others, never a symbolic link — readable by others is only warned
//! about) and makes the socket mode 0600. A stale socket
//! of an earlier run is removed, but only if it is a socket nobody listens on: whatever else
//! sits at the path (a symbolic link, a file, a running daemon's socket) is left alone and
//! the stack does not start.

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use std::thread::JoinHandle;

use super::control_plane::ControlMsg;
use super::manager::StackManager;
use super::reload;
use super::status::{SaStatus, Selector, ServerStatus, Status};
use super::{supervise, DaemonError};
use crate::config::Config;
use crate::io::fs::{private_dir, PrivateDir};
/// What sits at the control socket's path: what [`listen`] acts on, and what `check`
/// reports (`host_check.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AtPath {
    Nothing,
    /// A socket nobody listens on (an earlier run's): [`listen`] replaces it.
    Stale,
    /// A socket a running daemon listens on: never taken over.
    Running,
    /// Anything else (a file, a directory, a symbolic link): left alone.
    InTheWay,
}

pub(crate) fn at_path(path: &Path) -> std::io::Result<AtPath> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => Ok(if UnixStream::connect(path).is_ok() {
            AtPath::Running
        } else {
            AtPath::Stale
        }),
        Ok(_) => Ok(AtPath::InTheWay),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AtPath::Nothing),
        Err(e) => Err(e),
    }
}

/// Binds the control socket at `path` (see the module docs): non-blocking, mode 0600, in a
/// private directory.
pub(crate) fn listen(path: &Path) -> std::io::Result<UnixListener> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| std::io::Error::other("the socket path names no directory"))?;
    if let PrivateDir::Readable(mode) = private_dir(dir)? {
        warn!(
            "{} (the control socket's directory) has mode {mode:o}; 0700 is advised",
            dir.display()
        );
    }
    // The directory is ours and private: nobody else can change what sits at `path`
    // between this check and bind(2), which itself never follows a link.
    match at_path(path)? {
        AtPath::Nothing => {}
        AtPath::Stale => std::fs::remove_file(path)?,
        AtPath::Running => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another daemon is listening on it",
            ))
        }
        AtPath::InTheWay => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "something other than a socket is in the way (not removed)",
            ))
        }
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// The longest request accepted, newline included.
pub const MAX_REQUEST: usize = 4096;
/// A request must arrive whole within this of the accept.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// The client must take the whole answer within this, however it paces its reads.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// How long the IKE thread may take for a status or a terminate.
const IKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Error codes of the control socket (beside the configuration's, which a refused `reload`
/// answers with: `config::codes`).
pub mod codes {
    /// Not a line of JSON naming a known command with its fields.
    pub const BAD_REQUEST: &str = "Control.BadRequest";
    /// More than [`super::MAX_REQUEST`] bytes before the newline.
    pub const REQUEST_TOO_LARGE: &str = "Control.RequestTooLarge";
    /// The request did not arrive within [`super::REQUEST_DEADLINE`].
    pub const REQUEST_TIMEOUT: &str = "Control.RequestTimeout";
    /// `terminate`: no client matches.
    pub const NOT_FOUND: &str = "Control.NotFound";
    /// `terminate`: no IPsec server runs.
    pub const NO_SERVER: &str = "Control.NoServer";
    /// The IKE thread did not answer in time.
    pub const BUSY: &str = "Control.Busy";
    /// `reload` with `[api]`: the server is changed through the API, not the file.
    pub const RELOAD_API_MODE: &str = "OperationUnsupported.Reload";
    /// `reload`: the file is valid but its server could not be applied (the stack did not
    /// start).
    pub const APPLY_FAILED: &str = "OperationFailed.Apply";
    /// `upgrade`: the new process did not take over; this one serves on (the message says
    /// why).
    pub const UPGRADE_FAILED: &str = "OperationFailed.Upgrade";
}

/// One request on the control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// The [`Status`] (JSON); `select` keeps only the matching IKE SAs.
    Status {
        #[serde(default)]
        select: Selector,
    },
    /// Deletes the IKE SAs `select` (not empty) matches: DELETE to the client, Child SAs
    /// removed. Answers the [`SaStatus`] of each, as they were.
    Terminate { select: Selector },
    /// Applies the config file as SIGHUP does; answers a
    /// [`ReloadOutcome`](super::reload::ReloadOutcome).
    Reload,
    /// Hands the running server over to a new process of `gateway.upgrade_binary`
    /// (`upgrade.rs`); answers an [`Upgraded`](super::upgrade::Upgraded), after which
    /// this daemon exits, or an error after which it serves on.
    Upgrade,
    /// Renders a client configuration of the server being served (`onboard::render`, with the
    /// PSK the daemon holds, even a generated one); answers a [`ClientConfig`].
    ClientConfig {
        /// `swanctl`, `networkmanager`, `apple`, `windows` or `android`.
        format: String,
        #[serde(default)]
        server: Option<String>,
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        with_secret: bool,
    },
}

/// The answer to [`Request::ClientConfig`]: the configuration (empty when refused) and the
/// verdict, one item per line, as `client-config` prints it on stderr.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientConfig {
    pub text: String,
    pub verdict: String,
    pub refused: bool,
    pub contains_secret: bool,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Answer {
    Ok { result: serde_json::Value },
    Error { code: String, message: String },
}

/// A refused request: an error code and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlError {
    pub code: String,
    pub message: String,
}

impl ControlError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl Answer {
    fn of<T: Serialize>(r: Result<T, ControlError>) -> Answer {
        match r.and_then(|v| {
            serde_json::to_value(v).map_err(|e| ControlError::new(codes::BUSY, e.to_string()))
        }) {
            Ok(result) => Answer::Ok { result },
            Err(e) => Answer::Error {
                code: e.code,
                message: e.message,
            },
        }
    }
}

/// Parses one request line (without or with its newline).
pub fn parse_request(line: &[u8]) -> Result<Request, ControlError> {
    let text = std::str::from_utf8(line)
        .map_err(|_| ControlError::new(codes::BAD_REQUEST, "the request is not UTF-8"))?;
    let req: Request = serde_json::from_str(text.trim_end_matches(['\n', '\r']))
        .map_err(|e| ControlError::new(codes::BAD_REQUEST, format!("not a request: {e}")))?;
    match &req {
        Request::Terminate { select } if select.is_empty() => Err(ControlError::new(
            codes::BAD_REQUEST,
            "terminate needs a virtual IP or an identity",
        )),
        Request::Status { select } | Request::Terminate { select }
            if select.id.as_deref() == Some("") =>
        {
            Err(ControlError::new(codes::BAD_REQUEST, "an empty identity"))
        }
        _ => Ok(req),
    }
}

/// Reads one request from `stream`: up to the first newline (or the end of the stream),
/// at most [`MAX_REQUEST`] bytes, within `deadline` from now.
pub(crate) fn read_request(
    stream: &mut UnixStream,
    deadline: Duration,
) -> Result<Request, ControlError> {
    let until = Instant::now() + deadline;
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let timeout = || {
            ControlError::new(
                codes::REQUEST_TIMEOUT,
                format!("no whole request within {deadline:?}"),
            )
        };
        if left.is_zero() {
            return Err(timeout());
        }
        let _ = stream.set_read_timeout(Some(left));
        if len == buf.len() {
            return Err(ControlError::new(
                codes::REQUEST_TOO_LARGE,
                format!("a request is at most {MAX_REQUEST} bytes"),
            ));
        }
        match stream.read(&mut buf[len..]) {
            Ok(0) => return parse_request(&buf[..len]),
            Ok(n) => {
                if let Some(nl) = buf[len..len + n].iter().position(|&b| b == b'\n') {
                    return parse_request(&buf[..len + nl]);
                }
                len += n;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(timeout())
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ControlError::new(codes::BAD_REQUEST, e.to_string())),
        }
    }
}

/// Writes `bytes` to `stream` within `deadline` from now, in total: a client that reads
/// slowly is cut off, not waited for.
fn write_answer(stream: &mut UnixStream, bytes: &[u8], deadline: Duration) -> std::io::Result<()> {
    let until = Instant::now() + deadline;
    let mut rest = bytes;
    while !rest.is_empty() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        stream.set_write_timeout(Some(left))?;
        match stream.write(rest) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What the control socket answers with: the daemon's header, its serving stack, and how
/// to reload.
pub(crate) struct Control {
    pub started: Instant,
    pub config: Config,
    pub manager: Arc<StackManager>,
    /// The config file `reload` applies; `None` with `[api]` (refused).
    pub reload_from: Option<PathBuf>,
    pub upgrader: super::upgrade::Upgrader,
    /// Set when an `upgrade` succeeded: the process exits once the answer is written.
    pub upgraded: std::sync::Mutex<Option<super::upgrade::Upgraded>>,
}

/// Binds the control socket of `config` and answers it on a supervised thread until `stop`
/// (then the socket file is removed).
/// The control socket is the one a previous process handed over, if it did (`upgrade.rs`).
pub(crate) fn start(
    config: &Config,
    manager: Arc<StackManager>,
    reload_from: Option<PathBuf>,
    stop: &Arc<AtomicBool>,
    upgrader: super::upgrade::Upgrader,
) -> Result<JoinHandle<()>, DaemonError> {
    use super::handover::Listener;
    let path = config.gateway().control_socket().to_path_buf();
    let failed = |source| DaemonError::ControlSocket {
        path: path.clone(),
        source,
    };
    let listener = match upgrader.listeners.inherited(Listener::Control) {
        Some(fd) => {
            let l = UnixListener::from(fd);
            l.set_nonblocking(true).map_err(failed)?;
            l
        }
        None => listen(&path).map_err(failed)?,
    };
    upgrader
        .listeners
        .keep(Listener::Control, std::os::fd::AsFd::as_fd(&listener))
        .map_err(failed)?;
    let control = Control {
        started: Instant::now(),
        config: config.clone(),
        manager,
        reload_from,
        upgrader,
        upgraded: std::sync::Mutex::new(None),
    };
    let stop2 = stop.clone();
    supervise::spawn("control".into(), stop, move || {
        let served = serve(listener, control, stop2);
        let _ = std::fs::remove_file(&path);
        served
    })
}

/// Answers clients until `stop`, one connection at a time.
pub(crate) fn serve(
    listener: UnixListener,
    control: Control,
    stop: Arc<AtomicBool>,
) -> Result<(), String> {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let answer = match read_request(&mut stream, REQUEST_DEADLINE) {
                    Ok(req) => handle(&control, req),
                    Err(e) => {
                        debug!("control socket: {}: {}", e.code, e.message);
                        Answer::of::<()>(Err(e))
                    }
                };
                let mut line = serde_json::to_vec(&answer).unwrap_or_default();
                line.push(b'\n');
                if let Err(e) = write_answer(&mut stream, &line, WRITE_DEADLINE) {
                    debug!("control socket client: {e}");
                }
                match control.upgraded.lock().map(|u| u.clone()) {
                    // The new process serves: this one leaves without a DELETE, without
                    // undoing routes or tables, without revoking a cluster lease.
                    Ok(Some(u)) if !u.restarted => {
                        info!("handed over; exiting");
                        std::process::exit(0);
                    }
                    // The new process cannot read the snapshot: an orderly stop, then it
                    // starts afresh.
                    Ok(Some(_)) => control
                        .upgrader
                        .stop_for_restart(control.config.gateway().control_socket()),
                    _ => {}
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => {
                debug!("control socket accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    Ok(())
}

/// Carries out one request.
fn handle(control: &Control, req: Request) -> Answer {
    match req {
        Request::Status { select } => Answer::of(status(control, &select)),
        Request::Terminate { select } => Answer::of(terminate(control, select)),
        Request::Reload => Answer::of(match &control.reload_from {
            Some(path) => {
                info!("reload requested on the control socket");
                reload::reload(&control.manager, path)
            }
            None => Err(ControlError::new(
                codes::RELOAD_API_MODE,
                "with [api] the server is changed through the API; the file's \
                 [ipsec_server] is not applied",
            )),
        }),
        Request::Upgrade => {
            info!("upgrade requested on the control socket");
            let upgraded = control.upgrader.upgrade();
            if let (Ok(u), Ok(mut slot)) = (&upgraded, control.upgraded.lock()) {
                *slot = Some(u.clone());
            }
            Answer::of(upgraded.map_err(|e| ControlError::new(codes::UPGRADE_FAILED, e)))
        }
        Request::ClientConfig {
            format,
            server,
            id,
            with_secret,
        } => Answer::of(client_config(control, &format, server, id, with_secret)),
    }
}

fn client_config(
    control: &Control,
    format: &str,
    server: Option<String>,
    client_id: Option<String>,
    with_secret: bool,
) -> Result<ClientConfig, ControlError> {
    let format = crate::onboard::Format::from_name(format).ok_or_else(|| {
        ControlError::new(codes::BAD_REQUEST, format!("unknown format {format:?}"))
    })?;
    let served = control
        .manager
        .served()
        .ok_or_else(|| ControlError::new(codes::NO_SERVER, "no IPsec server is being served"))?;
    let view = crate::onboard::ServerView::new(
        control.config.gateway(),
        &served,
        "the running daemon".into(),
        crate::onboard::PskSource::Known {
            hint: "`ipsec-server show-psk` (root)".into(),
        },
    );
    let opts = crate::onboard::Options {
        server,
        client_id,
        with_secret,
    };
    let r = crate::onboard::render(&view, format, &opts)
        .map_err(|e| ControlError::new(codes::BAD_REQUEST, e.to_string()))?;
    Ok(ClientConfig {
        text: r.text.to_string(),
        verdict: r.verdict_text(),
        refused: r.verdict.refused(),
        contains_secret: r.contains_secret,
    })
}

/// Asks the running stack's IKE thread: `msg` with the reply channel.
fn ask<T>(
    control: &Control,
    msg: impl FnOnce(mpsc::Sender<T>) -> ControlMsg,
) -> Result<Option<T>, ControlError> {
    let Some(postbox) = control.manager.postbox() else {
        return Ok(None);
    };
    let (tx, rx) = mpsc::channel();
    let busy = || ControlError::new(codes::BUSY, "the IKE thread did not answer");
    postbox.control(msg(tx)).map_err(|_| busy())?;
    rx.recv_timeout(IKE_TIMEOUT).map(Some).map_err(|_| busy())
}

fn status(control: &Control, select: &Selector) -> Result<Status, ControlError> {
    let server: Option<ServerStatus> = ask(control, ControlMsg::Status)?;
    let gw = control.config.gateway();
    let mut s = Status {
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_secs: control.started.elapsed().as_secs(),
        listen_addrs: gw.listen_addrs().to_vec(),
        ike_port: gw.ike_port().get(),
        nat_t_port: gw.nat_t_port().get(),
        server,
    };
    s.retain(select);
    Ok(s)
}

fn terminate(control: &Control, select: Selector) -> Result<Vec<SaStatus>, ControlError> {
    let what = serde_json::to_string(&select).unwrap_or_default();
    let gone: Vec<SaStatus> = ask(control, |reply| ControlMsg::Terminate { select, reply })?
        .ok_or_else(|| ControlError::new(codes::NO_SERVER, "no IPsec server is running"))?;
    if gone.is_empty() {
        return Err(ControlError::new(
            codes::NOT_FOUND,
            format!("no client matches {what}"),
        ));
    }
    for sa in &gone {
        info!(identity = sa.identity.as_deref().unwrap_or("-"), vip = ?sa.vip, remote = %sa.remote,
            "terminated on the control socket");
    }
    Ok(gone)
}

/// Sends `req` to the daemon at `path` and returns its answer, waiting at most `timeout`
/// for it.
pub fn request(path: &Path, req: &Request, timeout: Duration) -> std::io::Result<Answer> {
    let mut s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    s.write_all(&line)?;
    let mut out = Vec::new();
    // The daemon's answer; bounded all the same (a status of 100,000 clients is ~100 MiB).
    s.take(512 << 20).read_to_end(&mut out)?;
    Ok(serde_json::from_slice(&out)?)
}

/// The socket a command talks to: `socket`; else `gateway.control_socket` of `config` (read
/// leniently: only that key, so a file that is otherwise invalid, or being edited, does not
/// stop `status`); else that of [`crate::config::DEFAULT_CONFIG`] if it is readable; else
/// [`crate::config::DEFAULT_CONTROL_SOCKET`].
pub fn socket_path(config: Option<&Path>, socket: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(s) = socket {
        return Ok(s.to_path_buf());
    }
    let default = || PathBuf::from(crate::config::DEFAULT_CONTROL_SOCKET);
    let (path, must_read) = match config {
        Some(c) => (c.to_path_buf(), true),
        None => (PathBuf::from(crate::config::DEFAULT_CONFIG), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if must_read => return Err(format!("reading {}: {e}", path.display())),
        Err(_) => return Ok(default()),
    };
    Ok(control_socket_of(&text).unwrap_or_else(default))
}

/// `gateway.control_socket` of a config file's text, if it can be read from it.
fn control_socket_of(text: &str) -> Option<PathBuf> {
    let table: toml::Table = text.parse().ok()?;
    let s = table.get("gateway")?.get("control_socket")?.as_str()?;
    Some(PathBuf::from(s)).filter(|p| p.is_absolute())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn requests_parse_and_print_back() {
        let vip = Ipv4Addr::new(10, 0, 0, 7);
        for (line, want) in [
            (
                r#"{"command":"status"}"#,
                Request::Status {
                    select: Selector::default(),
                },
            ),
            (
                r#"{"command":"status","select":{"id":"client1.example"}}"#,
                Request::Status {
                    select: Selector {
                        id: Some("client1.example".into()),
                        vip: None,
                    },
                },
            ),
            (
                "{\"command\":\"terminate\",\"select\":{\"vip\":\"10.0.0.7\"}}\r\n",
                Request::Terminate {
                    select: Selector {
                        id: None,
                        vip: Some(vip),
                    },
                },
            ),
            (r#"{"command":"reload"}"#, Request::Reload),
        ] {
            assert_eq!(parse_request(line.as_bytes()), Ok(want.clone()), "{line}");
            let again = serde_json::to_vec(&want).unwrap();
            assert_eq!(parse_request(&again), Ok(want));
        }
    }

    #[test]
    fn garbage_requests_are_answered_with_an_error() {
        for bad in [
            &b""[..],
            b"status",
            b"\xff\xfe{}",
            b"{}",
            b"[]",
            b"null",
            br#"{"command":"reboot"}"#,
            br#"{"command":"status","extra":1}"#,
            br#"{"command":"status","select":{"vip":"10.0.0.300"}}"#,
            br#"{"command":"status","select":{"name":"x"}}"#,
            br#"{"command":"terminate"}"#,
            br#"{"command":"terminate","select":{}}"#,
            br#"{"command":"terminate","select":{"id":""}}"#,
            br#"{"command":"reload"} trailing"#,
            &[b'['; 3000][..],
        ] {
            let e = parse_request(bad).unwrap_err();
            assert_eq!(
                e.code,
                codes::BAD_REQUEST,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// What the daemon reads from a client that writes `input` (and keeps the connection
    /// open unless `close`).
    fn read_from(input: &[u8], close: bool, deadline: Duration) -> Result<Request, ControlError> {
        let (mut server, mut client) = UnixStream::pair().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            // A client that sends more than we read sees its writes fail: ignored.
            let _ = client.write_all(&input);
            if close {
                drop(client);
                None
            } else {
                Some(client)
            }
        });
        let got = read_request(&mut server, deadline);
        drop(server);
        let _ = writer.join();
        got
    }

    #[test]
    fn oversized_slow_or_partial_requests_are_bounded() {
        let ok = br#"{"command":"reload"}"#;
        // Newline-terminated (the rest of the line is ignored) or ended by closing.
        assert_eq!(
            read_from(&[&ok[..], b"\nignored"].concat(), false, REQUEST_DEADLINE),
            Ok(Request::Reload)
        );
        assert_eq!(read_from(ok, true, REQUEST_DEADLINE), Ok(Request::Reload));
        // Longer than MAX_REQUEST without a newline: refused after MAX_REQUEST bytes.
        let e = read_from(&vec![b' '; 10 * MAX_REQUEST], false, REQUEST_DEADLINE).unwrap_err();
        assert_eq!(e.code, codes::REQUEST_TOO_LARGE);
        // Exactly at the bound with its newline: still a request.
        let mut padded = ok.to_vec();
        padded.resize(MAX_REQUEST - 1, b' ');
        padded.push(b'\n');
        assert_eq!(
            read_from(&padded, false, REQUEST_DEADLINE),
            Ok(Request::Reload)
        );
        // Half a request and then silence: cut at the deadline, not waited for.
        let started = Instant::now();
        let e = read_from(&ok[..5], false, Duration::from_millis(300)).unwrap_err();
        assert_eq!(e.code, codes::REQUEST_TIMEOUT);
        assert!(started.elapsed() < Duration::from_secs(2));
        // Nothing at all, closed: not a request.
        assert_eq!(
            read_from(b"", true, REQUEST_DEADLINE).unwrap_err().code,
            codes::BAD_REQUEST
        );
    }

    #[test]
    fn a_client_that_does_not_read_is_cut_off() {
        let (mut server, client) = UnixStream::pair().unwrap();
        let started = Instant::now();
        // Far more than the socket buffers hold, and nobody reads.
        let e = write_answer(
            &mut server,
            &vec![b'x'; 64 << 20],
            Duration::from_millis(300),
        );
        assert!(e.is_err());
        assert!(started.elapsed() < Duration::from_secs(3));
        drop(client);
    }

    #[test]
    fn answers_are_one_json_object_with_a_status() {
        let ok = Answer::of::<u32>(Ok(3));
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"status":"ok","result":3}"#
        );
        let err = Answer::of::<u32>(Err(ControlError::new(codes::NOT_FOUND, "no client")));
        assert_eq!(
            serde_json::to_string(&err).unwrap(),
            r#"{"status":"error","code":"Control.NotFound","message":"no client"}"#
        );
    }

    #[test]
    fn the_socket_is_found_from_a_file_even_an_invalid_one() {
        assert_eq!(
            control_socket_of("[gateway]\ncontrol_socket = \"/run/x/c.sock\"\nbogus_key = 1\n"),
            Some(PathBuf::from("/run/x/c.sock"))
        );
        assert_eq!(control_socket_of("[gateway]\nvpn_gateway_id = 3\n"), None);
        assert_eq!(
            control_socket_of("[gateway]\ncontrol_socket = \"rel.sock\""),
            None
        );
        assert_eq!(control_socket_of("not toml ["), None);
        let dir = std::env::temp_dir().join(format!("control-find-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("cfg.toml");
        // Invalid as a config (ipsec_server missing its keys, a wrong type), yet the key is read.
        std::fs::write(
            &file,
            "[gateway]\ncontrol_socket = \"/tmp/elsewhere.sock\"\nworkers = \"many\"\n[ipsec_server]\n",
        )
        .unwrap();
        assert_eq!(
            socket_path(Some(&file), None),
            Ok(PathBuf::from("/tmp/elsewhere.sock"))
        );
        assert_eq!(
            socket_path(Some(&file), Some(Path::new("/x.sock"))),
            Ok(PathBuf::from("/x.sock"))
        );
        std::fs::write(&file, "[gateway]\n").unwrap();
        assert_eq!(
            socket_path(Some(&file), None),
            Ok(PathBuf::from(crate::config::DEFAULT_CONTROL_SOCKET))
        );
        assert!(socket_path(Some(&dir.join("missing.toml")), None).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn socket_is_private_and_never_replaces_a_link_or_a_file() {
        let base = std::env::temp_dir().join(format!("control-sock-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("run");
        let path = dir.join("control.sock");
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;

        let l = listen(&path).unwrap();
        assert_eq!(mode(&dir), 0o700, "the directory is created private");
        assert_eq!(mode(&path) & 0o777, 0o600, "the socket is owner-only");
        // A stale socket of an earlier run (its listener gone) is replaced.
        drop(l);
        let l = listen(&path).unwrap();
        assert!(UnixStream::connect(&path).is_ok());
        // A socket somebody listens on is not taken over.
        let e = listen(&path).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
        assert!(
            UnixStream::connect(&path).is_ok(),
            "the running one still answers"
        );
        drop(l);

        // A symbolic link at the path is neither followed nor removed.
        std::fs::remove_file(&path).unwrap();
        let target = base.join("target");
        std::fs::write(&target, b"keep").unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let e = listen(&path).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "{e}");
        assert!(std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");

        // Nor is a regular file.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"x").unwrap();
        assert!(listen(&path).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"x");

        // A socket directory that is a link, or writable by others, is refused; one only
        // readable by others is used as it is (the socket itself is 0600).
        std::fs::remove_file(&path).unwrap();
        let link_dir = base.join("linkdir");
        std::os::unix::fs::symlink(&dir, &link_dir).unwrap();
        assert!(listen(&link_dir.join("control.sock")).is_err());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(listen(&path).is_err());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        drop(listen(&path).unwrap());
        assert_eq!(mode(&path) & 0o777, 0o600);
        assert_eq!(mode(&dir), 0o755);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
