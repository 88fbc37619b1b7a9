//! `[metrics]`: `GET /metrics` in the Prometheus text format (version 0.0.4), rendered by
//! the `prometheus-client` crate.
//!
//! Nothing is counted twice: the values live where the work is done — the responder's
//! [`Counters`] and refusals (plain integers, one thread owns it), the data plane's per-SA
//! atomics summed into running totals by the SA database ([`EspTotals`]), the API's
//! [`RequestCounts`](crate::api::requests::RequestCounts) — and a scrape reads them: the IKE
//! thread gathers its part on a control message ([`collect`], like `status`), so scraping
//! takes no lock the packet path takes. Counters start from zero when the serving stack
//! starts (daemon start; an API change of the pool or the TUN MTU restarts it), which
//! Prometheus handles as a counter reset.
//!
//! The listener is the control API's hardened HTTP server ([`crate::api::http`]): bounded
//! connections in total and per address, a deadline for the whole request, bounded request
//! size; only `GET /metrics` is answered (404 for other paths, 405 for other methods).
//! Per-client series (identity and virtual IP labels) only with `per_client = true`: they
//! name every client, and their number grows with the clients (at most `max_connections`).

use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tracing::{info, warn};

use super::inbox::Postbox;
use super::{supervise, DaemonError};
use crate::api::http::{self, Limits, Request, Response, Stats};
use crate::config::MetricsConfig;
use crate::ike::{Counters, Responder, Usage};
use crate::ipsec::{DropReason, EspTotals, Sad};

/// Scrapes served at the same time; more are answered 503.
const MAX_CONNECTIONS: usize = 8;
/// Scrapes from one address at the same time.
const MAX_PER_IP: usize = 4;
/// Time a scraper has to send its whole request.
const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// How long a scrape waits for the IKE thread.
const IKE_WAIT: Duration = Duration::from_secs(2);

/// What the IKE thread reports for one scrape.
#[derive(Debug, Clone, Default)]
pub(crate) struct StackMetrics {
    pub usage: Usage,
    pub pool_size: usize,
    pub counters: Counters,
    /// Refused or dropped IKE messages by reason (`status` shows the same).
    pub refusals: Vec<(String, u64)>,
    pub ike_queue_dropped: u64,
    pub esp: EspTotals,
    /// Dropped ESP packets by reason, in the order of [`DropReason::ALL`].
    pub esp_drops: [u64; DropReason::ALL.len()],
    /// Empty unless `per_client`.
    pub clients: Vec<ClientMetrics>,
}

/// One established IKE SA with a virtual IP, for the per-client series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientMetrics {
    pub identity: String,
    pub vip: Ipv4Addr,
    pub age_secs: u64,
    /// (packets, bytes) over the client's current Child SAs, inbound and outbound.
    pub inbound: (u64, u64),
    pub outbound: (u64, u64),
}

/// Gathers a scrape's values on the IKE thread.
pub(crate) fn collect(
    responder: &Responder,
    sad: &Sad,
    ike_queue_dropped: u64,
    per_client: bool,
) -> StackMetrics {
    let clients = if per_client {
        let snap = sad.snapshot();
        responder
            .sas(Instant::now())
            .into_iter()
            .filter(|sa| sa.established)
            .filter_map(|sa| {
                let vip = sa.vip?;
                let mut c = ClientMetrics {
                    identity: sa.identity,
                    vip,
                    age_secs: sa.age_secs,
                    inbound: (0, 0),
                    outbound: (0, 0),
                };
                for child in sa.children {
                    if let Some(i) = snap.inbound(child.spi_in) {
                        let (p, b, _) = i.counters.read();
                        c.inbound.0 += p;
                        c.inbound.1 += b;
                    }
                }
                if let Some(o) = snap.outbound(vip) {
                    let (p, b, _) = o.counters.read();
                    c.outbound = (p, b);
                }
                Some(c)
            })
            .collect()
    } else {
        Vec::new()
    };
    StackMetrics {
        usage: responder.usage(),
        pool_size: responder.pool_size(),
        counters: responder.counters(),
        refusals: responder
            .refusals()
            .into_iter()
            .map(|(why, n)| (why.to_string(), n))
            .collect(),
        ike_queue_dropped,
        esp: sad.totals(),
        esp_drops: sad.drops().read(),
        clients,
    }
}

/// Asks the IKE thread behind `ike` for a scrape's values; `None` if it does not answer.
pub(crate) fn query(ike: &Postbox, per_client: bool) -> Option<StackMetrics> {
    let (tx, rx) = std::sync::mpsc::channel();
    ike.control(super::control_plane::ControlMsg::Metrics {
        per_client,
        reply: tx,
    })
    .ok()?;
    rx.recv_timeout(IKE_WAIT).ok().map(|b| *b)
}

/// Everything one scrape shows.
#[derive(Debug, Default)]
pub(crate) struct Scrape {
    /// `None`: no IPsec server is being served (a bare gateway with `[api]`).
    pub stack: Option<StackMetrics>,
    /// `None`: no control API.
    pub api_requests: Option<Vec<(&'static str, String, u64)>>,
    /// Scrapes refused (too many connections) or cut (deadline).
    pub http_refused: u64,
    /// Cluster mode: whether this node's etcd lease is valid now, and the clients refused
    /// a virtual IP by the cluster so far. `None`: a single node.
    pub cluster: Option<(bool, u64)>,
}

type Labels = Vec<(&'static str, String)>;

/// Registers scrape-time values in a registry of its own (one per scrape).
struct Builder {
    reg: Registry,
}

impl Builder {
    fn counters(
        &mut self,
        name: &str,
        help: &str,
        series: impl IntoIterator<Item = (Labels, u64)>,
    ) {
        let family = Family::<Labels, Counter>::default();
        for (labels, v) in series {
            family.get_or_create(&labels).inc_by(v);
        }
        self.reg.register(name, help, family);
    }

    fn counter(&mut self, name: &str, help: &str, v: u64) {
        let c = Counter::<u64>::default();
        c.inc_by(v);
        self.reg.register(name, help, c);
    }

    fn gauges(&mut self, name: &str, help: &str, series: impl IntoIterator<Item = (Labels, u64)>) {
        let family = Family::<Labels, Gauge>::default();
        for (labels, v) in series {
            family
                .get_or_create(&labels)
                .set(i64::try_from(v).unwrap_or(i64::MAX));
        }
        self.reg.register(name, help, family);
    }

    fn gauge(&mut self, name: &str, help: &str, v: u64) {
        self.gauges(name, help, [(Vec::new(), v)]);
    }
}

fn l1(k: &'static str, v: &str) -> Labels {
    vec![(k, v.to_owned())]
}

fn l2(k1: &'static str, v1: &str, k2: &'static str, v2: &str) -> Labels {
    vec![(k1, v1.to_owned()), (k2, v2.to_owned())]
}

/// A refusal reason as a label value: `status`'s words in snake case.
fn snake(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_owned()
}

/// The Prometheus text of a scrape; every name starts with `ipsec_server_`.
pub(crate) fn render(s: &Scrape) -> String {
    let mut b = Builder {
        reg: Registry::with_prefix("ipsec_server"),
    };
    b.gauges(
        "build_info",
        "Version of the running daemon (always 1)",
        [(l1("version", env!("CARGO_PKG_VERSION")), 1)],
    );
    b.gauge(
        "serving",
        "1 while an IPsec server is served (UDP 500/4500, TUN up), 0 on a bare gateway",
        u64::from(s.stack.is_some()),
    );
    b.counter(
        "metrics_http_refused",
        "Scrapes refused (too many connections) or cut (request not complete in time)",
        s.http_refused,
    );
    if let Some(api) = &s.api_requests {
        b.counters(
            "api_requests",
            "Control API requests by action and answer code (Success or the error code)",
            api.iter().map(|(a, c, n)| (l2("action", a, "code", c), *n)),
        );
    }
    if let Some((valid, refused)) = s.cluster {
        b.gauge(
            "cluster_lease_valid",
            "1 while this node's etcd lease is surely valid; 0: fenced (no tunnels, new clients refused)",
            u64::from(valid),
        );
        b.counter(
            "cluster_address_refusals",
            "Clients refused a virtual IP by the cluster (etcd unreachable or slow, fenced, pool exhausted)",
            refused,
        );
    }
    if let Some(st) = &s.stack {
        render_stack(&mut b, st);
    }
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_text::encode(&mut out, &b.reg);
    out
}

fn render_stack(b: &mut Builder, st: &StackMetrics) {
    let u = &st.usage;
    let rekeyed = u.ike_sas.saturating_sub(u.half_open + u.connections);
    b.gauges(
        "ike_sas",
        "IKE SAs by state: half_open (waiting for IKE_AUTH), established, rekeyed (replaced, waiting for their DELETE)",
        [
            (l1("state", "half_open"), u.half_open as u64),
            (l1("state", "established"), u.connections as u64),
            (l1("state", "rekeyed"), rekeyed as u64),
        ],
    );
    b.gauge("child_sas", "Child SAs of all IKE SAs", u.child_sas as u64);
    b.gauge(
        "pool_addresses",
        "Virtual IP addresses the client pool can lease (hosts of client_ip_pool, at most max_connections)",
        st.pool_size as u64,
    );
    b.gauge(
        "pool_addresses_in_use",
        "Virtual IP addresses leased now",
        u.leases as u64,
    );
    let c = &st.counters;
    b.counters(
        "ike_handshakes",
        "IKE_SA_INIT and IKE_AUTH by outcome: established, auth_failed, no_proposal, cookie_sent, dropped (DoS limits, back-off, invalid KE), failed (other errors), timed_out (no IKE_AUTH in half_open_timeout)",
        [
            ("established", c.established),
            ("auth_failed", c.auth_failed),
            ("no_proposal", c.no_proposal),
            ("cookie_sent", c.cookie_sent),
            ("dropped", c.dropped),
            ("failed", c.failed),
            ("timed_out", c.timed_out),
        ]
        .map(|(o, n)| (l1("outcome", o), n)),
    );
    b.counters(
        "rekeys",
        "SAs rekeyed: ike (by the client), child (by either end)",
        [
            (l1("sa", "ike"), c.ike_rekeys),
            (l1("sa", "child"), c.child_rekeys),
        ],
    );
    b.counter(
        "dpd_timeouts",
        "IKE SAs deleted because the peer answered none of our retransmitted requests (DPD, rekey)",
        c.dpd_timeouts,
    );
    b.counters(
        "ike_refused_messages",
        "IKE messages refused or dropped, by reason (as in ipsec-server status)",
        st.refusals
            .iter()
            .map(|(why, n)| (l1("reason", &snake(why)), *n)),
    );
    b.counter(
        "ike_queue_dropped",
        "IKE datagrams dropped because the IKE thread's queue (limits.ike_queue), or the sender's share of it, was full",
        st.ike_queue_dropped,
    );
    let e = &st.esp;
    b.counters(
        "esp_packets",
        "ESP packets delivered: in = decrypted into the TUN, out = sealed to clients",
        [
            (l1("direction", "in"), e.inbound.packets),
            (l1("direction", "out"), e.outbound.packets),
        ],
    );
    b.counters(
        "esp_bytes",
        "Bytes of the inner (plaintext) IP packets of esp_packets",
        [
            (l1("direction", "in"), e.inbound.bytes),
            (l1("direction", "out"), e.outbound.bytes),
        ],
    );
    b.counters(
        "esp_dropped_packets",
        "ESP packets dropped by reason: replay, icv (integrity check failed), unknown_spi (no such SA), selector (inner addresses outside the traffic selectors, either direction), malformed, seq_exhausted (an outbound SA's sequence numbers used up), no_sa (a TUN packet to an address no client holds), other",
        DropReason::ALL
            .iter()
            .zip(st.esp_drops)
            .map(|(why, n)| (l1("reason", why.label()), n)),
    );
    if st.clients.is_empty() {
        return;
    }
    let client = |c: &ClientMetrics, more: Option<(&'static str, &str)>| {
        let mut l = l2("identity", &c.identity, "vip", &c.vip.to_string());
        l.extend(more.map(|(k, v)| (k, v.to_owned())));
        l
    };
    b.gauges(
        "client_established_seconds",
        "Per client (per_client = true): seconds since its IKE SA was established",
        st.clients.iter().map(|c| (client(c, None), c.age_secs)),
    );
    // (packets, bytes) → one of them.
    type Pick = fn((u64, u64)) -> u64;
    let per_client: [(&str, &str, Pick); 2] = [
        ("client_esp_packets", "ESP packets", |(p, _)| p),
        ("client_esp_bytes", "inner bytes", |(_, b)| b),
    ];
    for (name, what, pick) in per_client {
        b.counters(
            name,
            &format!(
                "Per client (per_client = true): {what} over its current Child SAs \
                 (restarts when they are rekeyed)"
            ),
            st.clients.iter().flat_map(|c| {
                [
                    (client(c, Some(("direction", "in"))), pick(c.inbound)),
                    (client(c, Some(("direction", "out"))), pick(c.outbound)),
                ]
            }),
        );
    }
}

/// Answers one HTTP request: `GET /metrics` with `scrape()`, else 404/405.
fn answer(req: &Request, scrape: &dyn Fn() -> Scrape) -> Response {
    let plain = |status, text: &str| Response {
        status,
        content_type: "text/plain",
        body: text.as_bytes().to_vec(),
    };
    if req.path != "/metrics" {
        return plain(404, "only /metrics is served\n");
    }
    if req.method != "GET" {
        return plain(405, "only GET\n");
    }
    Response {
        status: 200,
        content_type: prometheus_text::CONTENT_TYPE,
        body: render(&scrape()).into_bytes(),
    }
}

/// Binds `cfg.listen` and serves `GET /metrics` on a supervised thread until `stop`.
pub(crate) fn start(
    cfg: &MetricsConfig,
    listener: TcpListener,
    stop: &Arc<AtomicBool>,
    scrape: impl Fn(bool) -> Scrape + Send + Sync + 'static,
) -> Result<JoinHandle<()>, DaemonError> {
    info!(listen = %cfg.listen(), per_client = cfg.per_client(), "metrics listening (GET /metrics)");
    if !cfg.listen().ip().is_loopback() {
        warn!(listen = %cfg.listen(), "metrics served beyond loopback, without authentication");
    }
    serve_on(listener, cfg.per_client(), stop, scrape)
}

/// [`start`] on a bound listener.
pub(crate) fn serve_on(
    listener: TcpListener,
    per_client: bool,
    stop: &Arc<AtomicBool>,
    scrape: impl Fn(bool) -> Scrape + Send + Sync + 'static,
) -> Result<JoinHandle<()>, DaemonError> {
    let stats = Arc::new(Stats::default());
    let handler: http::Handler = {
        let stats = stats.clone();
        Arc::new(move |req, _peer| {
            let read = || {
                let mut s = scrape(per_client);
                s.http_refused = stats.refused_total.load(Ordering::Relaxed)
                    + stats.refused_per_ip.load(Ordering::Relaxed)
                    + stats.timed_out.load(Ordering::Relaxed);
                s
            };
            answer(req, &read)
        })
    };
    let limits = Limits {
        max_connections: MAX_CONNECTIONS,
        max_per_ip: MAX_PER_IP,
        request_deadline: REQUEST_DEADLINE,
    };
    let stop2 = stop.clone();
    supervise::spawn("metrics-http".into(), stop, move || {
        http::serve_with(listener, stop2, handler, limits, stats);
        Ok(())
    })
}

#[cfg(test)]
mod tests;
