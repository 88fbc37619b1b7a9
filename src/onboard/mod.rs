//! Client configuration for the gateway's one suite (`ipsec-server client-config`): a
//! `swanctl.conf` for Linux strongSwan, a NetworkManager keyfile for its strongSwan plugin, an
//! Apple `.mobileconfig`, the settings of Android's built-in IKEv2/IPSec PSK profile, and a
//! refusal for Windows' built-in client (which takes no PSK for IKEv2), each with a
//! compatibility verdict.
//!
//! Why it exists: the gateway accepts exactly the suite, identities and PSK it is configured
//! with, and the usual failure of a hand-written client is a silent proposal or identity
//! mismatch. Everything a client must match is derived here from one [`ServerView`] — the
//! validated server plus the gateway facts that shape the tunnel (listen addresses, ports,
//! DPD, UDP encapsulation) — so the daemon can serve the same rendering on its control socket
//! that the command line prints.
//!
//! What each client accepts is taken from its source or documentation, cited where it is
//! checked ([`clients`]); a format the configured suite cannot work with is *refused* (no
//! text, a verdict naming the setting to change), never rendered into something that cannot
//! connect. The remote identity written for the client is exactly the IDr the responder sends
//! (`ike/auth.rs`: `local_id`, else the local address the client's request arrived at).
//!
//! Secrets: the PSK is written only when asked ([`Options::with_secret`]); the rendered text
//! is then held in a [`Zeroizing`] string and [`Rendered::contains_secret`] tells the caller to
//! write it with mode 0600. Nothing here logs; no `Debug` output carries the PSK.
//!
//! This module renders; it reads no clock and no randomness (the profile UUIDs are derived
//! from the server and client, so re-rendering replaces an installed profile). [`source`]
//! finds the server to render: the file's `[ipsec_server]` or the API-created one.

mod apple;
mod clients;
mod networkmanager;
pub mod source;
mod swanctl;
mod text;
mod windows_android;

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::config::{GatewayConfig, Identity, IpsecServerConfig};

pub use source::{load, LoadError};

/// A client format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Swanctl,
    NetworkManager,
    Apple,
    Windows,
    Android,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Swanctl,
        Format::NetworkManager,
        Format::Apple,
        Format::Windows,
        Format::Android,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Swanctl => "swanctl",
            Format::NetworkManager => "networkmanager",
            Format::Apple => "apple",
            Format::Windows => "windows",
            Format::Android => "android",
        }
    }

    /// Parses a command-line name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The client this format is for, as the verdict names it.
    pub fn client(self) -> &'static str {
        match self {
            Format::Swanctl => "strongSwan 5.9+ (swanctl.conf)",
            Format::NetworkManager => "NetworkManager with its strongSwan plugin",
            Format::Apple => "macOS/iOS built-in IKEv2 (.mobileconfig)",
            Format::Windows => "Windows built-in IKEv2 client",
            Format::Android => "Android built-in IKEv2/IPSec PSK",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a client gets the PSK when it is not written into the output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PskSource {
    /// The PSK is known (configured, in a file, or in the API state; for the daemon rendering
    /// its live server, always — it holds even a generated PSK); `hint` says where an operator
    /// reads it, e.g. "`psk` of [ipsec_server] in /etc/ipsec-server/ipsec-server.toml".
    Known { hint: String },
    /// No PSK is configured and none is known yet: the daemon generates one at its first
    /// start and keeps it in `state_dir` (the binary's `client-config` then reads it there).
    GeneratedAtStart,
}

/// The server as a client must see it: the validated server and the gateway facts that shape
/// the tunnel.
#[derive(Clone, Debug)]
pub struct ServerView {
    pub server: IpsecServerConfig,
    pub listen_addrs: Vec<IpAddr>,
    pub ike_port: u16,
    pub nat_t_port: u16,
    /// The gateway's own liveness checks (`dpd_interval`); `None`: disabled.
    pub dpd_interval: Option<Duration>,
    pub force_udp_encap: bool,
    /// The gateway's `state_dir` (where a generated PSK is kept).
    pub state_dir: std::path::PathBuf,
    /// Where the server came from, for the header of the output ("[ipsec_server] of F").
    pub source: String,
    pub psk: PskSource,
}

impl ServerView {
    /// The view of `server` served by `gateway` (the daemon builds it from its live
    /// configuration; [`load`] from the files).
    pub fn new(
        gateway: &GatewayConfig,
        server: &IpsecServerConfig,
        source: String,
        psk: PskSource,
    ) -> Self {
        Self {
            server: server.clone(),
            listen_addrs: gateway.listen_addrs().to_vec(),
            ike_port: gateway.ike_port().get(),
            nat_t_port: gateway.nat_t_port().get(),
            dpd_interval: gateway.dpd_interval(),
            force_udp_encap: gateway.force_udp_encap(),
            state_dir: gateway.state_dir().to_path_buf(),
            source,
            psk,
        }
    }
}

/// What the caller asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The address or DNS name clients dial; required unless the gateway listens on a
    /// specific address (the first one is taken, with a note, when there are several).
    pub server: Option<String>,
    /// The client's identity (IDi); must equal `remote_id` when that is configured.
    pub client_id: Option<String>,
    /// Write the PSK into the output.
    pub with_secret: bool,
}

/// The compatibility verdict of one format: notes (information and warnings) and refusals
/// (each naming the setting to change). Printed to stderr by the command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub notes: Vec<String>,
    pub refusals: Vec<String>,
}

impl Verdict {
    pub fn refused(&self) -> bool {
        !self.refusals.is_empty()
    }
    fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }
    fn refuse(&mut self, s: impl Into<String>) {
        self.refusals.push(s.into());
    }
}

/// A rendering: the text (empty when refused) and its verdict.
pub struct Rendered {
    pub format: Format,
    /// The configuration; empty when the verdict refuses. Wiped on drop (it may hold the PSK).
    pub text: Zeroizing<String>,
    /// The PSK is in `text`: write it with mode 0600.
    pub contains_secret: bool,
    pub verdict: Verdict,
}

impl Rendered {
    /// The verdict as the command prints it on stderr, one item per line.
    pub fn verdict_text(&self) -> String {
        let v = &self.verdict;
        let mut out = if v.refused() {
            format!("{}: REFUSED for {}\n", self.format, self.format.client())
        } else {
            format!(
                "{}: compatible with {}\n",
                self.format,
                self.format.client()
            )
        };
        for r in &v.refusals {
            out.push_str(&format!("  refused: {r}\n"));
        }
        for n in &v.notes {
            out.push_str(&format!("  note: {n}\n"));
        }
        out
    }
}

/// A request that cannot be rendered at all (before any client is considered).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OnboardError(pub String);

/// Renders `format` for the server in `view`.
///
/// Errors: `--server` missing where no specific listen address gives it, an unusable
/// `--server` or `--id`, `--id` different from the configured `remote_id`, no IDr to write
/// (no `local_id`, a wildcard listen address and a DNS name as `--server`), `--with-secret`
/// for a generated PSK not known yet. A client that cannot work with the configured suite is
/// not an error: the [`Rendered::verdict`] refuses it.
pub fn render(view: &ServerView, format: Format, opts: &Options) -> Result<Rendered, OnboardError> {
    let plan = Plan::new(view, opts)?;
    let mut verdict = Verdict::default();
    let text = match format {
        Format::Swanctl => swanctl::render(&plan, &mut verdict),
        Format::NetworkManager => networkmanager::render(&plan, &mut verdict),
        Format::Apple => apple::render(&plan, &mut verdict),
        Format::Windows => windows_android::windows(&plan, &mut verdict),
        Format::Android => windows_android::android(&plan, &mut verdict),
    };
    plan.common_notes(format, &mut verdict);
    let refused = verdict.refused();
    let contains_secret = !refused && plan.psk.is_some();
    Ok(Rendered {
        format,
        text: Zeroizing::new(if refused { String::new() } else { text }),
        contains_secret,
        verdict,
    })
}

/// What every format derives from the view and options.
struct Plan<'a> {
    view: &'a ServerView,
    /// What clients dial (validated: an IP literal or a DNS name).
    server_addr: String,
    /// The client's IDi.
    client_id: Identity,
    /// The IDr the gateway sends.
    idr: Identity,
    /// The PSK as text, when it is to be written.
    psk: Option<Zeroizing<String>>,
    /// Notes about how the server address and the identities were chosen.
    id_notes: Vec<String>,
}

/// The client identity used when neither `remote_id` nor `--id` gives one.
pub const DEFAULT_CLIENT_ID: &str = "client1";
/// The placeholder written instead of the PSK without `--with-secret`.
pub const PSK_PLACEHOLDER: &str = "REPLACE-WITH-THE-PSK";

impl<'a> Plan<'a> {
    fn new(view: &'a ServerView, opts: &Options) -> Result<Self, OnboardError> {
        let mut id_notes = Vec::new();
        let specific: Vec<IpAddr> = view
            .listen_addrs
            .iter()
            .copied()
            .filter(|a| !a.is_unspecified())
            .collect();
        let server_addr = match &opts.server {
            Some(s) => text::check_host(s).map_err(OnboardError)?,
            None => match specific.first() {
                Some(a) => {
                    if specific.len() > 1 {
                        id_notes.push(format!(
                            "the gateway listens on {} addresses; this configuration uses {a} \
                             (--server to choose another)",
                            specific.len()
                        ));
                    }
                    a.to_string()
                }
                None => {
                    return Err(OnboardError(
                        "--server HOST is required: the gateway listens on every address \
                         (listen_addrs = [\"0.0.0.0\"]), so the address clients dial cannot be \
                         known here; give the public address or DNS name of the gateway"
                            .into(),
                    ))
                }
            },
        };
        let ike = view.server.ike();
        let client_id = match (ike.remote_id(), &opts.client_id) {
            (Some(required), Some(given)) => {
                let given =
                    Identity::parse(given).map_err(|e| OnboardError(format!("--id: {e}")))?;
                if &given != required {
                    return Err(OnboardError(format!(
                        "--id {given} is not the identity the gateway requires: remote_id = \
                         \"{required}\" (omit --id to use it)"
                    )));
                }
                given
            }
            (Some(required), None) => required.clone(),
            (None, Some(given)) => {
                Identity::parse(given).map_err(|e| OnboardError(format!("--id: {e}")))?
            }
            (None, None) => {
                id_notes.push(format!(
                    "remote_id is not set, so the gateway accepts any client identity; this \
                     configuration uses \"{DEFAULT_CLIENT_ID}\" (--id to choose another)"
                ));
                Identity::Fqdn(DEFAULT_CLIENT_ID.into())
            }
        };
        let idr = match (ike.local_id(), specific.as_slice()) {
            (Some(id), _) => id.clone(),
            // auth.rs: without local_id the IDr is the local address the request arrived at.
            (None, [one]) => {
                let idr = ip_identity(*one);
                if server_addr != one.to_string() {
                    id_notes.push(format!(
                        "local_id is not set, so the gateway identifies itself with the address \
                         the client reaches it at, {one}; clients dial {server_addr}, so behind \
                         a 1:1 NAT the gateway still sends {one} (the private address, not the \
                         public one): this configuration expects {one}. Set local_id (e.g. the \
                         gateway's DNS name) to make the identity independent of addresses"
                    ));
                }
                idr
            }
            (None, _) => match server_addr.parse::<IpAddr>() {
                Ok(a) => {
                    id_notes.push(format!(
                        "local_id is not set, so the gateway identifies itself with the address \
                         the client's packets arrive at: {a} when clients reach it directly. \
                         Behind a 1:1 NAT that is the gateway's private address, not {a}, and \
                         the client will refuse the gateway: set local_id (e.g. the gateway's \
                         DNS name) and render again"
                    ));
                    ip_identity(a)
                }
                Err(_) => {
                    return Err(OnboardError(format!(
                        "the gateway has no local_id and listens on every address, so the \
                         identity it sends (IDr) is whichever local address a client's packets \
                         arrive at, which the name {server_addr} does not tell: set local_id in \
                         the configuration, or pass --server as the IP address clients reach"
                    )))
                }
            },
        };
        for (what, id) in [("client identity", &client_id), ("gateway identity", &idr)] {
            text::check_identity(&id.to_string())
                .map_err(|e| OnboardError(format!("{what} {id}: {e}")))?;
        }
        let psk = if opts.with_secret {
            match &view.psk {
                PskSource::Known { .. } => Some(Zeroizing::new(
                    String::from_utf8_lossy(view.server.psk().expose()).into_owned(),
                )),
                PskSource::GeneratedAtStart => {
                    return Err(OnboardError(
                        "--with-secret: no PSK is configured and the daemon has not generated \
                         one yet (it does at its first start and keeps it in state_dir); start \
                         it once, or set psk or psk_file in [ipsec_server]"
                            .into(),
                    ))
                }
            }
        } else {
            None
        };
        Ok(Self {
            view,
            server_addr,
            client_id,
            idr,
            psk,
            id_notes,
        })
    }

    fn server(&self) -> &IpsecServerConfig {
        &self.view.server
    }

    /// The PSK or the placeholder.
    fn psk_or_placeholder(&self) -> &str {
        self.psk.as_deref().map_or(PSK_PLACEHOLDER, String::as_str)
    }

    /// Where to get the PSK when it is not in the output.
    fn psk_hint(&self, format: Format) -> String {
        let missing = if format == Format::NetworkManager {
            "the PSK is not included (NetworkManager asks for it when connecting)".to_string()
        } else {
            format!("the PSK is not included (placeholder {PSK_PLACEHOLDER})")
        };
        match &self.view.psk {
            PskSource::Known { hint } => format!(
                "{missing}: render with --with-secret, or run `ipsec-server show-psk`, or read \
                 {hint}"
            ),
            PskSource::GeneratedAtStart => format!(
                "{missing}: none is configured and the daemon has not generated one yet (it \
                 does at its first start, keeps it in state_dir, and `ipsec-server show-psk` \
                 prints it)"
            ),
        }
    }

    /// The notes every format shares.
    fn common_notes(&self, format: Format, v: &mut Verdict) {
        if v.refused() {
            return;
        }
        for n in &self.id_notes {
            v.note(n.clone());
        }
        if self.psk.is_none() && format != Format::Windows {
            v.note(self.psk_hint(format));
        }
        let s = self.server();
        for dns in s.dns() {
            if !s.local_subnets().iter().any(|n| n.contains(dns)) {
                v.note(format!(
                    "DNS server {dns} is outside local_subnet, so the client reaches it outside \
                     the tunnel (DNS queries leave unprotected): put a resolver inside \
                     local_subnet or add its network to local_subnet"
                ));
            }
        }
        if self.view.ike_port != 500 || self.view.nat_t_port != 4500 {
            v.note(format!(
                "the gateway uses UDP {}/{} instead of 500/4500: most clients cannot be told \
                 other ports (Apple and Android cannot)",
                self.view.ike_port, self.view.nat_t_port
            ));
        }
        for (what, reason) in clients::legacy(s) {
            v.note(format!("{what} is legacy: {reason}"));
        }
    }
}

fn ip_identity(a: IpAddr) -> Identity {
    match a {
        IpAddr::V4(a) => Identity::Ipv4(a),
        IpAddr::V6(a) => Identity::Ipv6(a),
    }
}

#[cfg(test)]
mod tests;
