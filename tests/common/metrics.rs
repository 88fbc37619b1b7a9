//! `GET /metrics` of the daemon from inside the gateway namespace (bash's /dev/tcp: no HTTP
//! client needed), and one series out of the scrape.

use super::topo::{Role, Topology};

/// The body of a 200 answer of `GET /metrics` on 127.0.0.1:`port` of the gateway namespace.
pub fn scrape(topo: &Topology, port: u16) -> String {
    let out = topo.exec(
        Role::Gateway,
        "bash",
        &[
            "-c",
            &format!(
                "exec 3<>/dev/tcp/127.0.0.1/{port} && \
                 printf 'GET /metrics HTTP/1.1\\r\\nHost: gw\\r\\n\\r\\n' >&3 && timeout 10 cat <&3"
            ),
        ],
    );
    let (head, body) = out
        .stdout
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer:\n{out}"));
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    body.to_string()
}

/// The value of one series (name with its labels, as rendered), `None` if absent.
pub fn value(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}
