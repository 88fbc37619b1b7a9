//! The etcd key layout of a cluster (ARCHITECTURE.md §6), in one place. Under the
//! configured prefix `P`, for a pool `N` written `10.0.0.0-24`:
//!
//! ```text
//! P/nodes/NODE_ID            this node is alive               lease: the node's
//! P/pool/N/held/IP           IP is leased (value: NODE_ID)     lease: the holder's
//! P/pool/N/last/IP           IP was last leased to this identity (SHA-256 hex)   no lease
//! P/pool/N/sticky/IDHASH     the identity's last address (value: IP)             no lease
//! P/api/server               the IPsec server and ClientToken answers (JSON)     no lease
//! P/api/applied/NODE_ID      {"generation":G,"online":N} this node reports      lease: the node's
//! ```
//!
//! `held` keys go with their node's lease: a dead node's addresses return after the TTL.
//! `last` and `sticky` are the sticky memory (an identity gets its address back while it is
//! free): one `last` per pool address and one `sticky` per `last` (a claim that moves an
//! address to another identity deletes the old identity's `sticky` in the same
//! transaction), so both are bounded by the pool's size.
//!
//! `api/server` (cluster mode with `[api]`, `src/api/shared.rs`) is one document; its
//! `mod_revision` is its generation. `api/applied/NODE_ID` is one per live node: the
//! generation it applied last and its online clients.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// The keys of one pool under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    pool: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str, pool: Ipv4Net) -> Self {
        Self {
            pool: format!("{prefix}/pool/{}-{}/", pool.network(), pool.prefix_len()),
        }
    }

    pub(crate) fn node(prefix: &str, node_id: &str) -> String {
        format!("{prefix}/nodes/{node_id}")
    }

    pub(crate) fn nodes_prefix(prefix: &str) -> String {
        format!("{prefix}/nodes/")
    }

    pub(crate) fn definition(prefix: &str) -> String {
        format!("{prefix}/api/server")
    }

    pub(crate) fn applied_prefix(prefix: &str) -> String {
        format!("{prefix}/api/applied/")
    }
    pub(crate) fn applied(prefix: &str, node_id: &str) -> String {
        format!("{prefix}/api/applied/{node_id}")
    }

    pub(crate) fn held_prefix(&self) -> String {
        format!("{}held/", self.pool)
    }
    pub(crate) fn held(&self, addr: Ipv4Addr) -> String {
        format!("{}held/{addr}", self.pool)
    }
    pub(crate) fn last_prefix(&self) -> String {
        format!("{}last/", self.pool)
    }
    pub(crate) fn last(&self, addr: Ipv4Addr) -> String {
        format!("{}last/{addr}", self.pool)
    }
    pub(crate) fn sticky(&self, identity: &str) -> String {
        format!("{}sticky/{identity}", self.pool)
    }

    /// The address at the end of a `held/` or `last/` key; `None` for anything else.
    pub(crate) fn addr_of(key: &[u8]) -> Option<Ipv4Addr> {
        let key = std::str::from_utf8(key).ok()?;
        key.rsplit('/').next()?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let k = Keys::new("/ipsec-server", "10.0.0.0/24".parse().unwrap());
        let a = Ipv4Addr::new(10, 0, 0, 7);
        assert_eq!(k.held(a), "/ipsec-server/pool/10.0.0.0-24/held/10.0.0.7");
        assert_eq!(k.last(a), "/ipsec-server/pool/10.0.0.0-24/last/10.0.0.7");
        assert_eq!(k.sticky("ab"), "/ipsec-server/pool/10.0.0.0-24/sticky/ab");
        assert!(k.held(a).starts_with(&k.held_prefix()));
        assert!(k.last(a).starts_with(&k.last_prefix()));
        assert_eq!(Keys::node("/p", "gw1"), "/p/nodes/gw1");
        assert!(Keys::node("/p", "gw1").starts_with(&Keys::nodes_prefix("/p")));
        assert_eq!(Keys::definition("/p"), "/p/api/server");
        assert_eq!(Keys::applied("/p", "gw1"), "/p/api/applied/gw1");
        assert!(Keys::applied("/p", "gw1").starts_with(&Keys::applied_prefix("/p")));
        assert_eq!(Keys::addr_of(k.held(a).as_bytes()), Some(a));
        assert_eq!(Keys::addr_of(b"/p/pool/x/held/banana"), None);
        assert_eq!(Keys::addr_of(&[0xff, b'/', b'1']), None);
    }
}
