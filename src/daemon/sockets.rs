//! The UDP sockets of one port on every listen address, and which of them a datagram from a
//! given local address leaves through: every address in `gateway.listen_addrs` is a full
//! gateway, so a reply (IKE or ESP) leaves from the address and port its peer talks to.
//!
//! Validation (`InvalidConfig.ListenAddrs`) guarantees at most one wildcard and never a
//! wildcard beside a specific address, so the choice is unambiguous: the socket bound to
//! exactly that address, else the wildcard one (which sends from any local address through
//! `IP_PKTINFO`).

use std::net::{IpAddr, UdpSocket};

/// Sockets of one UDP port, one per listen address.
pub(crate) struct BoundSockets {
    sockets: Vec<(IpAddr, UdpSocket)>,
}

impl BoundSockets {
    pub(crate) fn new(sockets: Vec<(IpAddr, UdpSocket)>) -> Self {
        BoundSockets { sockets }
    }

    /// The index of the socket that serves `local`: bound to it, else the wildcard of its
    /// family. `None`: no listen address covers it.
    pub(crate) fn index_for(&self, local: IpAddr) -> Option<usize> {
        self.sockets
            .iter()
            .position(|(ip, _)| *ip == local)
            .or_else(|| {
                self.sockets
                    .iter()
                    .position(|(ip, _)| ip.is_unspecified() && ip.is_ipv4() == local.is_ipv4())
            })
    }

    /// The socket that serves `local` (see [`Self::index_for`]).
    pub(crate) fn for_local(&self, local: IpAddr) -> Option<&UdpSocket> {
        self.index_for(local).map(|i| &self.sockets[i].1)
    }

    pub(crate) fn get(&self, i: usize) -> Option<&(IpAddr, UdpSocket)> {
        self.sockets.get(i)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &(IpAddr, UdpSocket)> {
        self.sockets.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Duplicates of every socket (the IKE thread sends through the workers' UDP 4500).
    pub(crate) fn try_clone(&self) -> std::io::Result<BoundSockets> {
        let sockets = self
            .sockets
            .iter()
            .map(|(ip, s)| Ok((*ip, s.try_clone()?)))
            .collect::<std::io::Result<_>>()?;
        Ok(BoundSockets { sockets })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sockets(addrs: &[&str]) -> BoundSockets {
        BoundSockets::new(
            addrs
                .iter()
                .map(|a| {
                    let ip: IpAddr = a.parse().unwrap();
                    // Port 0 on loopback: any socket will do, only its position is checked.
                    (ip, UdpSocket::bind("127.0.0.1:0").unwrap())
                })
                .collect(),
        )
    }

    #[test]
    fn a_reply_leaves_through_the_socket_of_its_local_address() {
        let two = sockets(&["198.18.0.1", "198.18.0.9"]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(two.index_for(ip("198.18.0.1")), Some(0));
        assert_eq!(two.index_for(ip("198.18.0.9")), Some(1));
        assert_eq!(two.index_for(ip("198.18.0.5")), None);
        let wild = sockets(&["0.0.0.0"]);
        assert_eq!(wild.index_for(ip("198.18.0.9")), Some(0));
        assert_eq!(wild.index_for(ip("2001:db8::1")), None);
    }
}
