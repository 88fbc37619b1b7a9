//! Rendering and the listener's bounds.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::*;
use crate::ipsec::DirectionTotals;

fn sample(clients: Vec<ClientMetrics>) -> Scrape {
    Scrape {
        stack: Some(StackMetrics {
            usage: Usage {
                ike_sas: 5,
                half_open: 1,
                connections: 3,
                child_sas: 4,
                inbound_spis: 4,
                leases: 3,
            },
            pool_size: 254,
            counters: Counters {
                established: 7,
                auth_failed: 2,
                no_proposal: 1,
                cookie_sent: 9,
                dropped: 4,
                failed: 0,
                timed_out: 3,
                ike_rekeys: 1,
                child_rekeys: 6,
                dpd_timeouts: 1,
            },
            refusals: vec![("authentication failed".into(), 2)],
            ike_queue_dropped: 11,
            esp: EspTotals {
                inbound: DirectionTotals {
                    packets: 100,
                    bytes: 84000,
                    dropped: 10,
                    outside_selectors: 1,
                },
                outbound: DirectionTotals {
                    packets: 90,
                    bytes: 75600,
                    dropped: 2,
                    outside_selectors: 1,
                },
            },
            // In the order of DropReason::ALL: replay, icv, unknown_spi, selector, malformed,
            // seq_exhausted, no_sa, other.
            esp_drops: [2, 3, 5, 2, 0, 0, 8, 4],
            clients,
        }),
        api_requests: Some(vec![("ListIpsecServers", "Success".into(), 4)]),
        http_refused: 0,
        cluster: None,
    }
}

#[test]
fn cluster_series_only_in_cluster_mode() {
    let single = render(&sample(Vec::new()));
    assert!(!single.contains("cluster_"), "{single}");
    let mut s = sample(Vec::new());
    s.cluster = Some((false, 3));
    let text = render(&s);
    assert_eq!(value(&text, "ipsec_server_cluster_lease_valid"), Some(0.0));
    assert_eq!(
        value(&text, "ipsec_server_cluster_address_refusals_total"),
        Some(3.0)
    );
}

/// The value of the one sample line that starts with `series` followed by a space.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn renders_every_series_with_its_value() {
    let text = render(&sample(Vec::new()));
    let expect = [
        ("ipsec_server_build_info{version=\"0.1.0\"}", 1.0),
        ("ipsec_server_serving", 1.0),
        ("ipsec_server_ike_sas{state=\"half_open\"}", 1.0),
        ("ipsec_server_ike_sas{state=\"established\"}", 3.0),
        ("ipsec_server_ike_sas{state=\"rekeyed\"}", 1.0),
        ("ipsec_server_child_sas", 4.0),
        ("ipsec_server_pool_addresses", 254.0),
        ("ipsec_server_pool_addresses_in_use", 3.0),
        (
            "ipsec_server_ike_handshakes_total{outcome=\"established\"}",
            7.0,
        ),
        (
            "ipsec_server_ike_handshakes_total{outcome=\"auth_failed\"}",
            2.0,
        ),
        (
            "ipsec_server_ike_handshakes_total{outcome=\"no_proposal\"}",
            1.0,
        ),
        (
            "ipsec_server_ike_handshakes_total{outcome=\"cookie_sent\"}",
            9.0,
        ),
        (
            "ipsec_server_ike_handshakes_total{outcome=\"dropped\"}",
            4.0,
        ),
        (
            "ipsec_server_ike_handshakes_total{outcome=\"timed_out\"}",
            3.0,
        ),
        ("ipsec_server_rekeys_total{sa=\"ike\"}", 1.0),
        ("ipsec_server_rekeys_total{sa=\"child\"}", 6.0),
        ("ipsec_server_dpd_timeouts_total", 1.0),
        (
            "ipsec_server_ike_refused_messages_total{reason=\"authentication_failed\"}",
            2.0,
        ),
        ("ipsec_server_ike_queue_dropped_total", 11.0),
        ("ipsec_server_esp_packets_total{direction=\"in\"}", 100.0),
        ("ipsec_server_esp_bytes_total{direction=\"out\"}", 75600.0),
        (
            "ipsec_server_esp_dropped_packets_total{reason=\"replay\"}",
            2.0,
        ),
        (
            "ipsec_server_esp_dropped_packets_total{reason=\"icv\"}",
            3.0,
        ),
        (
            "ipsec_server_esp_dropped_packets_total{reason=\"unknown_spi\"}",
            5.0,
        ),
        (
            "ipsec_server_esp_dropped_packets_total{reason=\"selector\"}",
            2.0,
        ),
        (
            "ipsec_server_esp_dropped_packets_total{reason=\"no_sa\"}",
            8.0,
        ),
        (
            "ipsec_server_esp_dropped_packets_total{reason=\"other\"}",
            4.0,
        ),
        (
            "ipsec_server_api_requests_total{action=\"ListIpsecServers\",code=\"Success\"}",
            4.0,
        ),
    ];
    for (series, v) in expect {
        assert_eq!(value(&text, series), Some(v), "{series} in\n{text}");
    }
    assert!(text.contains("# TYPE ipsec_server_esp_bytes_total counter"));
    assert!(text.contains("# TYPE ipsec_server_ike_sas gauge"));
    assert!(
        !text.contains("ipsec_server_client_"),
        "no per-client series unless asked"
    );
}

#[test]
fn per_client_series_escape_what_the_client_chose() {
    let text = render(&sample(vec![ClientMetrics {
        identity: "evil\"}\n x 1".into(),
        vip: Ipv4Addr::new(10, 0, 0, 2),
        age_secs: 42,
        inbound: (3, 252),
        outbound: (2, 168),
    }]));
    let id = r#"identity="evil\"}\n x 1",vip="10.0.0.2""#;
    assert_eq!(
        value(
            &text,
            &format!("ipsec_server_client_esp_bytes_total{{{id},direction=\"in\"}}")
        ),
        Some(252.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!("ipsec_server_client_esp_packets_total{{{id},direction=\"out\"}}")
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            &format!("ipsec_server_client_established_seconds{{{id}}}")
        ),
        Some(42.0)
    );
    // The identity's newline did not start a line of its own.
    assert!(!text.lines().any(|l| l.starts_with(" x 1")));
}

#[test]
fn a_bare_gateway_shows_only_build_info_and_api() {
    let text = render(&Scrape::default());
    assert_eq!(value(&text, "ipsec_server_serving"), Some(0.0));
    assert!(!text.contains("ipsec_server_esp_"));
    assert!(!text.contains("api_requests"), "no [api], no API series");
}

fn get(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn only_get_metrics_is_answered_and_hostile_scrapers_are_bounded() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let scrapes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = scrapes.clone();
    let t = serve_on(listener, false, &stop, move |_| {
        counted.fetch_add(1, Ordering::Relaxed);
        sample(Vec::new())
    })
    .unwrap();

    let ok = get(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(ok.starts_with("HTTP/1.1 200 "), "{ok}");
    assert!(
        ok.contains("Content-Type: text/plain; version=0.0.4"),
        "{ok}"
    );
    assert!(ok.contains("ipsec_server_esp_bytes_total{direction=\"in\"} 84000"));
    assert!(get(addr, b"GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
    assert!(get(addr, b"POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
    assert!(get(addr, b"\x00\xff garbage\r\n\r\n").starts_with("HTTP/1.1 400 "));
    // A head far beyond the limit is refused without being kept.
    let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 1 << 20));
    let r = get(addr, &huge);
    assert!(r.is_empty() || r.starts_with("HTTP/1.1 400 "), "{r}");
    // Idle connections beyond the cap are refused at once, never queued.
    let idle: Vec<TcpStream> = (0..MAX_PER_IP)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let refused = get(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert!(refused.starts_with("HTTP/1.1 503 "), "{refused}");
    assert_eq!(
        scrapes.load(Ordering::Relaxed),
        1,
        "only the valid GET scraped"
    );
    // The idle ones are cut at the deadline; then scraping works again and shows the refusal.
    drop(idle);
    let mut again = String::new();
    for _ in 0..50 {
        again = get(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
        if again.starts_with("HTTP/1.1 200 ") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        again.contains("ipsec_server_metrics_http_refused_total 1"),
        "{again}"
    );
    stop.store(true, Ordering::SeqCst);
    t.join().unwrap();
}
