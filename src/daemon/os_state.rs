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
