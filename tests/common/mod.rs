//! Interop test harness: network namespaces, strongSwan peers and the gateway under test.
//!
//! Every [`Topology`] owns its namespaces (named `ipt-{tag}-{pid}-{role}`), a temp dir and the
//! processes started through it. Dropping it — also while a test panics — kills those
//! processes by PID (SIGTERM to their process group, SIGKILL after a grace period), deletes the
//! namespaces and, on failure, prints the tail of every registered log first.
//!
//! ```text
//!  client ns 172.29.1.2 ──┐                     gateway ns                        lan ns
//!  client2 ns 172.29.1.4 ─┼── bridge 172.29.1.1 │ 192.168.0.1 ── veth ── 192.168.0.10
//!                         │   (+ 172.29.1.9 when `TopoOpts::second_gateway_addr`)
//!  nat ns 172.29.1.3 ─────┘  (optional; the NAT ns masquerades 172.29.2.0/24 with random ports,
//!     └─ 172.29.2.1 ── veth ── client ns 172.29.2.2 when `TopoOpts::nat`)
//! ```
//!
//! The gateway is `ipsec-server` by default; `INTEROP_GATEWAY=strongswan` selects a strongSwan
//! responder instead (see [`gateway`]). Environment knobs: `INTEROP_KEEP=1` keeps the temp dir
//! of a failed test;
//!
//! Rules this harness keeps: every wait is bounded (poll with a deadline), traffic only goes to
//! addresses inside the test's namespaces, and processes are only ever killed by the PID this
//! harness got when it started them.
#![allow(dead_code, unused_imports)]
// shared by several test crates and scripts; not all use all
// The harness is OS code: deadlines over processes and namespaces read the clock.
#![allow(clippy::disallowed_methods)]

pub mod charon;
pub mod flood;
pub mod flows;
pub mod gateway;
pub mod metrics;
pub mod net;
pub mod proc;
pub mod topo;

pub use charon::{Charon, ChildCounters, ClientConfig, Spis, Suite};
pub use gateway::{Gateway, GatewayConfig, GatewayKind};
pub use net::{tcp_transfer, udp_request, NsTask, TransferReport, UdpServer};
pub use proc::CmdOutput;
pub use topo::{Role, TopoOpts, Topology};

use std::time::{Duration, Instant};

/// The pre-shared key every good client and the gateway use.
pub const PSK: &str = "interop-test-psk-0123";
/// IDr the gateway presents and the clients require.
pub const GATEWAY_ID: &str = "gw.example.com";

/// Polls `f` every `step` until it returns `Some`, or gives up at the deadline.
pub fn poll_until<T>(
    timeout: Duration,
    step: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(step);
    }
}
