//! `ipsec-server check`'s host conditions: what would make `run` fail on this host although
//! the file itself is valid. The configuration layer is sans-IO and judges the file alone
//! (plus the host networks it is handed); binding ports, looking at interfaces and at the
//! control socket is OS work, so it lives here beside the code that does the same at start.
//!
//! Each probe is what `run` itself will do, undone at once: a UDP port is bound (without
//! `SO_REUSEPORT`, so a socket of a running daemon counts as taken) and released; the API's
//! TCP port likewise; the control socket is connected to, as `run` does before it removes a
//! stale one. Nothing is created: a missing state directory is fine (`run` creates it).
//! While the daemon itself runs, its own ports, TUN and socket are reported: `check
//! --no-host` skips all of this (for a file meant for another machine or a running daemon).

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;

use super::control::{at_path, AtPath};
use crate::config::{codes, Config, ConfigError, Finding, FindingKind};
use crate::io::fs::inspect_private_dir;
use crate::io::host::interface_exists;

/// Every host condition of `config`, each under the key it concerns.
pub fn conditions(config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    let gw = config.gateway();
    for ip in gw.listen_addrs() {
        for (key, port) in [
            ("gateway.ike_port", gw.ike_port()),
            ("gateway.nat_t_port", gw.nat_t_port()),
        ] {
            let addr = SocketAddr::new(*ip, port.get());
            if let Err(e) = UdpSocket::bind(addr) {
                out.push(bind_failure(key, "UDP", addr, &e));
            }
        }
    }
    if let Some(api) = config.api() {
        if let Err(e) = TcpListener::bind(api.listen()) {
            out.push(bind_failure("api.listen", "TCP", api.listen(), &e));
        }
        if let Err(e) = inspect_private_dir(gw.state_dir()) {
            out.push(host(
                "gateway.state_dir",
                codes::HOST_PRIVATE_DIR,
                format!("state_dir cannot be used: {e}"),
            ));
        }
    }
    if interface_exists(gw.tun_name()) {
        out.push(host(
            "gateway.tun_name",
            codes::HOST_INTERFACE_EXISTS,
            format!(
                "an interface named {:?} already exists (another daemon's TUN?)",
                gw.tun_name()
            ),
        ));
    }
    out.extend(control_socket(gw.control_socket()));
    out
}

fn control_socket(path: &Path) -> Option<Finding> {
    const KEY: &str = "gateway.control_socket";
    // What `run` finds there (`control::listen`): it replaces only a stale socket.
    match at_path(path) {
        Ok(AtPath::Running) => {
            return Some(host(
                KEY,
                codes::HOST_DAEMON_RUNNING,
                format!("a daemon already answers on {}", path.display()),
            ))
        }
        Ok(AtPath::InTheWay) => {
            return Some(host(
                KEY,
                codes::HOST_CONTROL_SOCKET,
                format!(
                    "{} is in the way: not a socket (a file or a link; `run` removes only a \
                     stale socket)",
                    path.display()
                ),
            ))
        }
        // A path `run` cannot inspect: the directory check below names why.
        Ok(AtPath::Nothing | AtPath::Stale) | Err(_) => {}
    }
    let dir = path.parent()?;
    inspect_private_dir(dir).err().map(|e| {
        host(
            KEY,
            codes::HOST_PRIVATE_DIR,
            format!("the control socket's directory cannot be used: {e}"),
        )
    })
}

fn bind_failure(key: &str, proto: &str, addr: SocketAddr, e: &io::Error) -> Finding {
    if e.kind() == io::ErrorKind::AddrInUse {
        host(
            key,
            codes::HOST_PORT_IN_USE,
            format!("{proto} {addr} is in use"),
        )
    } else {
        host(
            key,
            codes::HOST_BIND,
            format!("{proto} {addr} cannot be bound: {e}"),
        )
    }
}

fn host(key: &str, code: &'static str, message: String) -> Finding {
    Finding::new(key, FindingKind::Host(ConfigError::new(code, message)))
}
