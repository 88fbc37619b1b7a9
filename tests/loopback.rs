//! The in-crate initiator against the responder over real UDP sockets on loopback: IKE_SA_INIT
//! on the IKE port, IKE_AUTH on the NAT-T port with the non-ESP marker, as strongSwan does.
//! Both ends must derive the same Child SA keys.
// Test code: deadlines and timings over real sockets and processes read the clock.
#![allow(clippy::disallowed_methods)]

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipsec_server::crypto::{DhGroup, EncrAlg, IntegAlg, PrfAlg};
use ipsec_server::ike::initiator::{Initiator, InitiatorConfig};
use ipsec_server::ike::{
    fixtures, Action, ChildSaSpec, EspSuite, IkeSuite, Responder, ResponderConfig,
};
use ipsec_server::wire::{classify_4500, with_non_esp_marker, Udp4500};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn suites() -> (IkeSuite, EspSuite) {
    (
        IkeSuite {
            encr: EncrAlg::AesCbc256,
            integ: IntegAlg::HmacSha256_128,
            prf: PrfAlg::HmacSha256,
            dh: DhGroup::Modp2048,
        },
        EspSuite {
            encr: EncrAlg::AesCbc256,
            integ: IntegAlg::HmacSha256_128,
        },
    )
}

/// The responder side: two sockets (IKE port and NAT-T port) served on one thread until
/// `rounds` datagrams were handled; returns the Child SAs it installed.
fn serve(s500: UdpSocket, s4500: UdpSocket, rounds: usize) -> Vec<ChildSaSpec> {
    let (ike, esp) = suites();
    let cfg = ResponderConfig {
        ike,
        esp,
        ..fixtures::responder_config()
    };
    let mut responder = Responder::new(Arc::new(cfg));
    let mut rng = StdRng::seed_from_u64(11);
    let mut installed = Vec::new();
    let mut buf = vec![0u8; 65536];
    s500.set_nonblocking(true).unwrap();
    s4500.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut handled = 0;
    while handled < rounds && Instant::now() < deadline {
        for (sock, natt) in [(&s500, false), (&s4500, true)] {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let local = sock.local_addr().unwrap();
            let msg = if natt {
                match classify_4500(&buf[..n]) {
                    Ok(Udp4500::Ike(m)) => m.to_vec(),
                    _ => continue,
                }
            } else {
                buf[..n].to_vec()
            };
            handled += 1;
            for action in responder.handle(Instant::now(), &mut rng, &msg, local, from) {
                match action {
                    Action::Send {
                        remote,
                        bytes,
                        local,
                    } => {
                        let out = if local.port() == s4500.local_addr().unwrap().port() {
                            with_non_esp_marker(&bytes)
                        } else {
                            bytes
                        };
                        sock.send_to(&out, remote).unwrap();
                    }
                    Action::InstallChild(spec) => installed.push(*spec),
                    Action::DeleteChild { .. } | Action::UpdateChildRemote { .. } => {}
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    installed
}

#[test]
fn initiator_and_responder_agree_over_loopback_udp() {
    let s500 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let s4500 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (gw500, gw4500) = (s500.local_addr().unwrap(), s4500.local_addr().unwrap());
    let server = std::thread::spawn(move || serve(s500, s4500, 2));

    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (ike, esp) = suites();
    let mut rng = StdRng::seed_from_u64(12);
    let (mut ini, init) = Initiator::start(
        InitiatorConfig {
            ike,
            esp,
            ..fixtures::initiator_config(client.local_addr().unwrap(), gw500)
        },
        &mut rng,
    )
    .unwrap();
    client.send_to(&init, gw500).unwrap();
    let mut buf = vec![0u8; 65536];
    let (n, from) = client.recv_from(&mut buf).unwrap();
    assert_eq!(from, gw500);
    let auth = ini
        .handle(&mut rng, &buf[..n])
        .unwrap()
        .expect("IKE_AUTH request");
    // The float to the NAT-T port (RFC 7296 §2.23), with the non-ESP marker (RFC 3948 §2.2).
    client.send_to(&with_non_esp_marker(&auth), gw4500).unwrap();
    let (n, from) = client.recv_from(&mut buf).unwrap();
    assert_eq!(from, gw4500);
    let Ok(Udp4500::Ike(resp)) = classify_4500(&buf[..n]) else {
        panic!("answer without the non-ESP marker")
    };
    assert_eq!(ini.handle(&mut rng, resp).unwrap(), None);

    let gw = server.join().unwrap();
    assert_eq!(gw.len(), 1, "the responder installed one Child SA");
    let (gw, cl) = (&gw[0], ini.child().expect("the initiator has the Child SA"));
    assert_eq!(gw.client_vip, cl.client_vip);
    assert_eq!(gw.inbound_spi, cl.outbound_spi);
    assert_eq!(gw.outbound_spi, cl.inbound_spi);
    assert_eq!(gw.inbound_encr_key, cl.outbound_encr_key);
    assert_eq!(gw.inbound_integ_key, cl.outbound_integ_key);
    assert_eq!(gw.outbound_encr_key, cl.inbound_encr_key);
    assert_eq!(gw.outbound_integ_key, cl.inbound_integ_key);
    assert_eq!(gw.remote, client.local_addr().unwrap());
}
