//! The gateway's changes to the host for one stack: the pool routed into the TUN device,
//! IPv4 forwarding, TCP MSS clamping and masquerade (nftables). Each change is recorded as it
//! succeeds, so [`OsState::teardown`] undoes exactly what was done, after a failed start too.

use tracing::{debug, warn};

use super::DaemonError;
use crate::config::Config;
use crate::ike::ResponderConfig;
use crate::io;

/// Routes, forwarding and nftables rules, undone on shutdown.
#[derive(Default)]
pub(crate) struct OsState {
    routes: Vec<(ipnet::Ipv4Net, String)>,
    previous_forward: Option<bool>,
    masquerade: Option<io::net::Masquerade>,
    clamp: Option<io::net::MssClamp>,
}

impl OsState {
    pub(crate) fn setup(
        &mut self,
        config: &Config,
        rcfg: &ResponderConfig,
    ) -> Result<(), DaemonError> {
        let gw = config.gateway();
        io::net::add_route(rcfg.pool, gw.tun_name())
            .map_err(DaemonError::network("routing the client pool into the TUN"))?;
        self.routes.push((rcfg.pool, gw.tun_name().to_string()));
        if gw.ip_forward() {
            self.previous_forward = Some(
                io::net::set_ip_forward(true)
                    .map_err(DaemonError::network("enabling IPv4 forwarding"))?,
            );
        }
        self.clamp = Some(
            io::net::clamp_mss(gw.tun_name(), gw.tun_name())
                .map_err(DaemonError::network("TCP MSS clamping"))?,
        );
        if gw.masquerade() {
            self.masquerade = Some(
                io::net::masquerade(gw.tun_name(), rcfg.pool, gw.tun_name())
                    .map_err(DaemonError::network("masquerade"))?,
            );
        }
        Ok(())
    }

    /// The changes a previous process made for a stack of `config` (`upgrade.rs`), taken
    /// over as they are: nothing on the host changes now; [`OsState::teardown`] undoes them
    /// at this process's orderly stop. `previous_forward`: what `ip_forward` was before the
    /// first process set it.
    pub(crate) fn adopt(
        config: &Config,
        rcfg: &ResponderConfig,
        previous_forward: Option<bool>,
    ) -> std::io::Result<OsState> {
        let gw = config.gateway();
        Ok(OsState {
            routes: vec![(rcfg.pool, gw.tun_name().to_string())],
            previous_forward: previous_forward.filter(|_| gw.ip_forward()),
            masquerade: if gw.masquerade() {
                Some(io::net::Masquerade::adopt(gw.tun_name())?)
            } else {
                None
            },
            clamp: Some(io::net::MssClamp::adopt(gw.tun_name())?),
        })
    }

    /// What is recorded: routes, the previous `ip_forward`, whether the masquerade and MSS
    /// clamp tables exist.
    pub(crate) fn record(&self) -> (Vec<(ipnet::Ipv4Net, String)>, Option<bool>, bool, bool) {
        (
            self.routes.clone(),
            self.previous_forward,
            self.masquerade.is_some(),
            self.clamp.is_some(),
        )
    }

    /// Leaves every change in place for the process that takes over (`upgrade.rs`).
    pub(crate) fn keep(mut self) {
        self.routes.clear();
        self.previous_forward = None;
        if let Some(m) = self.masquerade.take() {
            m.keep();
        }
        if let Some(c) = self.clamp.take() {
            c.keep();
        }
    }

    pub(crate) fn teardown(&mut self) {
        self.masquerade = None;
        self.clamp = None;
        for (net, dev) in self.routes.drain(..) {
            if let Err(e) = io::net::del_route(net, &dev) {
                debug!("removing route {net}: {e}");
            }
        }
        if self.previous_forward == Some(false) {
            if let Err(e) = io::net::set_ip_forward(false) {
                warn!("restoring ip_forward: {e}");
            }
        }
    }
}
