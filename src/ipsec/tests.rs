//! ESP seal/open across every suite, tampering, replay, selectors, dummy packets.

use std::net::Ipv4Addr;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::crypto::{EncrAlg, IntegAlg};
use crate::wire::{write_ipv4_header, IPPROTO_UDP};

use super::fixtures::spec_pair;

/// A minimal IPv4/UDP packet from `src` to `dst` with `payload_len` payload bytes.
pub(crate) fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, payload_len: usize) -> Vec<u8> {
    let total = 20 + 8 + payload_len;
    let mut p = vec![0u8; total];
    write_ipv4_header(&mut p, total as u16, IPPROTO_UDP, src, dst).unwrap();
    for (i, b) in p[28..].iter_mut().enumerate() {
        *b = i as u8;
    }
    p
}

fn lan() -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 0, 10)
}

fn vip() -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, 5)
}

#[test]
fn every_suite_round_trips_client_to_gateway_and_back() {
    let mut rng = StdRng::seed_from_u64(1);
    for encr in EncrAlg::ALL {
        for integ in IntegAlg::ALL {
            let (gw_spec, cl_spec) = spec_pair(encr, integ);
            let (gw_in, gw_out) = (
                InboundSa::new(&gw_spec).unwrap(),
                OutboundSa::new(&gw_spec).unwrap(),
            );
            let cl_out = OutboundSa::with_role(&cl_spec, Role::Client).unwrap();
            for size in [0usize, 1, 37, 548, 1372] {
                let pkt = ipv4_packet(vip(), lan(), size);
                let mut wire = vec![0u8; 2048];
                let n = cl_out.seal(&pkt, &mut wire, &mut rng).unwrap();
                assert_eq!(n, cl_out.sealed_len(pkt.len()));
                assert_eq!(&wire[..4], &gw_spec.inbound_spi.to_be_bytes());
                let mut out = vec![0u8; 2048];
                let o = gw_in
                    .open(&wire[..n], &mut out)
                    .unwrap_or_else(|e| panic!("{encr:?}/{integ:?}/{size}: {e}"));
                let Opened::Packet { len, .. } = o else {
                    panic!("{o:?}")
                };
                assert_eq!(&out[..len], &pkt[..]);
                // And the other way: the gateway seals, the client's inbound SA would open it;
                // here we only check the header and length.
                let back = ipv4_packet(lan(), vip(), size);
                let m = gw_out.seal(&back, &mut wire, &mut rng).unwrap();
                assert_eq!(&wire[..4], &gw_spec.outbound_spi.to_be_bytes());
                assert_eq!(
                    (m - 8 - encr.iv_len() - integ.icv_len()) % encr.block_len(),
                    0
                );
            }
        }
    }
}

#[test]
fn a_batch_sealed_together_opens_packet_by_packet() {
    // More packets than one interleaved group, of uneven sizes, in sequence-number order:
    // what the worker does with a split TSO burst.
    let mut rng = StdRng::seed_from_u64(3);
    for encr in EncrAlg::ALL {
        let (gw_spec, cl_spec) = spec_pair(encr, IntegAlg::HmacSha1_96);
        let cl_out = OutboundSa::with_role(&cl_spec, Role::Client).unwrap();
        let gw_in = InboundSa::new(&gw_spec).unwrap();
        let inners: Vec<Vec<u8>> = (0..crate::crypto::PAR_BLOCKS + 5)
            .map(|i| ipv4_packet(vip(), lan(), [1372, 0, 37, 1372, 548][i % 5]))
            .collect();
        let mut wires: Vec<Vec<u8>> = inners
            .iter()
            .map(|p| {
                let mut w = vec![0u8; 2048];
                let n = cl_out.seal_prepare(p, &mut w, &mut rng).unwrap();
                w.truncate(n);
                w
            })
            .collect();
        cl_out
            .seal_finish(wires.iter_mut().map(|w| w.as_mut_slice()))
            .unwrap();
        for (i, (wire, inner)) in wires.iter().zip(&inners).enumerate() {
            assert_ne!(
                wire[wire.len() - 40..wire.len() - 12],
                inner[inner.len().saturating_sub(28)..],
                "{encr:?} packet {i} left in the clear"
            );
            let mut out = vec![0u8; 2048];
            let o = gw_in
                .open(wire, &mut out)
                .unwrap_or_else(|e| panic!("{encr:?} packet {i}: {e}"));
            let Opened::Packet { len, seq } = o else {
                panic!("{o:?}")
            };
            assert_eq!(&out[..len], &inner[..], "{encr:?} packet {i}");
            assert_eq!(seq, i as u32 + 1);
        }
    }
    // A packet seal_prepare cannot have made is refused.
    let (_, cl_spec) = spec_pair(EncrAlg::AesCbc128, IntegAlg::HmacSha1_96);
    let cl_out = OutboundSa::with_role(&cl_spec, Role::Client).unwrap();
    let mut short = vec![0u8; 20];
    assert!(cl_out.seal_finish([short.as_mut_slice()]).is_err());
}

#[test]
fn tampering_anywhere_is_detected() {
    let mut rng = StdRng::seed_from_u64(2);
    let (gw, cl) = spec_pair(EncrAlg::AesCbc128, IntegAlg::HmacSha1_96);
    let gw_in = InboundSa::new(&gw).unwrap();
    let cl_out = OutboundSa::with_role(&cl, Role::Client).unwrap();
    let mut wire = vec![0u8; 2048];
    let mut out = vec![0u8; 2048];
    let pkt = ipv4_packet(vip(), lan(), 100);
    let n = cl_out.seal(&pkt, &mut wire, &mut rng).unwrap();
    for i in 4..n {
        let mut bad = wire[..n].to_vec();
        bad[i] ^= 0x01;
        assert!(gw_in.open(&bad, &mut out).is_err(), "flip at {i} accepted");
    }
    assert!(
        gw_in.open(&wire[..n], &mut out).is_ok(),
        "the original still opens"
    );
    for len in 0..n {
        assert!(gw_in.open(&wire[..len], &mut out).is_err());
    }
}

#[test]
fn replays_are_refused() {
    let mut rng = StdRng::seed_from_u64(3);
    let (gw, cl) = spec_pair(EncrAlg::AesCbc256, IntegAlg::HmacSha256_128);
    let gw_in = InboundSa::new(&gw).unwrap();
    let cl_out = OutboundSa::with_role(&cl, Role::Client).unwrap();
    let mut wire = vec![0u8; 2048];
    let mut out = vec![0u8; 2048];
    let n = cl_out
        .seal(&ipv4_packet(vip(), lan(), 10), &mut wire, &mut rng)
        .unwrap();
    gw_in.open(&wire[..n], &mut out).unwrap();
    assert_eq!(
        gw_in.open(&wire[..n], &mut out),
        Err(EspError::Replay(ReplayError::Duplicate))
    );
    assert_eq!(gw_in.counters.read().2, 1);
}

#[test]
fn dummy_packets_are_counted_apart_from_drops() {
    let mut rng = StdRng::seed_from_u64(5);
    let (gw, cl) = spec_pair(EncrAlg::AesCbc128, IntegAlg::HmacSha256_128);
    let gw_in = InboundSa::new(&gw).unwrap();
    let cl_out = OutboundSa::with_role(&cl, Role::Client).unwrap();
    let icv_len = IntegAlg::HmacSha256_128.icv_len();
    let mut out = vec![0u8; 2048];
    // A dummy packet as a peer sends it (RFC 4303 §2.6): the trailer's Next Header is 59.
    // Sealed in two steps so the cleartext trailer can be rewritten before encryption.
    let mut wire = vec![0u8; 2048];
    let n = cl_out
        .seal_prepare(&ipv4_packet(vip(), lan(), 10), &mut wire, &mut rng)
        .unwrap();
    wire[n - icv_len - 1] = crate::wire::NEXT_HEADER_NONE;
    cl_out.seal_finish([&mut wire[..n]]).unwrap();
    assert_eq!(
        gw_in.open(&wire[..n], &mut out),
        Ok(Opened::Dummy { seq: 1 })
    );
    // It took its place in the replay window.
    assert_eq!(
        gw_in.open(&wire[..n], &mut out),
        Err(EspError::Replay(ReplayError::Duplicate))
    );
    let n = cl_out
        .seal(&ipv4_packet(vip(), lan(), 10), &mut wire, &mut rng)
        .unwrap();
    assert!(matches!(
        gw_in.open(&wire[..n], &mut out),
        Ok(Opened::Packet { seq: 2, .. })
    ));
    let (packets, _, dropped) = gw_in.counters.read();
    assert_eq!((packets, dropped, gw_in.counters.dummies()), (1, 1, 1));
}

/// An outbound SA of `spec` that seals packets from any source: a peer that does not check
/// its own selectors, to test the receiving end's check.
fn unchecked_sealer(spec: &ChildSaSpec) -> OutboundSa {
    let any = Ipv4Range {
        start: Ipv4Addr::UNSPECIFIED,
        end: Ipv4Addr::BROADCAST,
    };
    OutboundSa::new(&ChildSaSpec {
        local_ts: vec![any],
        ..spec.clone()
    })
    .unwrap()
}

#[test]
fn inner_addresses_must_match_the_selectors() {
    let mut rng = StdRng::seed_from_u64(4);
    let (gw, cl) = spec_pair(EncrAlg::AesCbc128, IntegAlg::HmacSha256_128);
    let gw_in = InboundSa::new(&gw).unwrap();
    let cl_out = unchecked_sealer(&cl);
    let mut wire = vec![0u8; 2048];
    let mut out = vec![0u8; 2048];
    for (src, dst) in [
        (Ipv4Addr::new(10, 0, 0, 6), lan()),    // spoofed source
        (vip(), Ipv4Addr::new(192, 168, 1, 1)), // outside LocalSubnet
        (vip(), Ipv4Addr::new(10, 0, 0, 7)),    // another client
    ] {
        let n = cl_out
            .seal(&ipv4_packet(src, dst, 10), &mut wire, &mut rng)
            .unwrap();
        assert_eq!(gw_in.open(&wire[..n], &mut out), Err(EspError::Selector));
    }
    let n = cl_out
        .seal(&ipv4_packet(vip(), lan(), 10), &mut wire, &mut rng)
        .unwrap();
    assert!(gw_in.open(&wire[..n], &mut out).is_ok());
}

#[test]
fn client_role_mirrors_the_selectors_and_sends_everything_through_its_sa() {
    let mut rng = StdRng::seed_from_u64(5);
    let (gw, cl) = spec_pair(EncrAlg::AesCbc128, IntegAlg::HmacSha1_96);
    let gw_out = unchecked_sealer(&gw);
    let cl_in = InboundSa::with_role(&cl, Role::Client).unwrap();
    let mut wire = vec![0u8; 2048];
    let mut out = vec![0u8; 2048];
    for (src, dst) in [
        (Ipv4Addr::new(192, 168, 1, 1), vip()), // outside the remote subnet
        (lan(), Ipv4Addr::new(10, 0, 0, 7)),    // not our virtual IP
        (vip(), lan()),                         // the gateway's direction
    ] {
        let n = gw_out
            .seal(&ipv4_packet(src, dst, 10), &mut wire, &mut rng)
            .unwrap();
        assert_eq!(cl_in.open(&wire[..n], &mut out), Err(EspError::Selector));
    }
    let n = gw_out
        .seal(&ipv4_packet(lan(), vip(), 10), &mut wire, &mut rng)
        .unwrap();
    assert!(cl_in.open(&wire[..n], &mut out).is_ok());

    let sad = Sad::new();
    sad.install_as(&cl, Role::Client).unwrap();
    let snap = sad.snapshot();
    let any = snap
        .outbound(Ipv4Addr::new(192, 168, 0, 99))
        .expect("default SA");
    assert_eq!(any.spi, cl.outbound_spi);
    assert!(snap.inbound(cl.inbound_spi).is_some());
    sad.remove(cl.inbound_spi);
    assert!(sad.snapshot().outbound(lan()).is_none());
    // The gateway role has no default.
    sad.install(&gw).unwrap();
    assert!(sad.snapshot().outbound(lan()).is_none());
}

#[test]
fn sealing_stops_before_the_sequence_number_wraps() {
    let mut rng = StdRng::seed_from_u64(5);
    let (gw, _) = spec_pair(EncrAlg::AesCbc128, IntegAlg::HmacSha1_96);
    let out_sa = OutboundSa::new(&gw).unwrap();
    out_sa.set_next_seq_for_test(u32::MAX);
    let mut wire = vec![0u8; 2048];
    let pkt = ipv4_packet(lan(), vip(), 10);
    let n = out_sa.seal(&pkt, &mut wire, &mut rng).unwrap();
    assert_eq!(&wire[4..8], &u32::MAX.to_be_bytes());
    assert!(n > 0);
    assert_eq!(
        out_sa.seal(&pkt, &mut wire, &mut rng),
        Err(EspError::SeqExhausted)
    );
    assert_eq!(
        out_sa.seal(&pkt, &mut wire, &mut rng),
        Err(EspError::SeqExhausted)
    );
    assert_eq!(out_sa.counters.read().2, 2, "each refusal is counted");
    assert_eq!(
        out_sa.seq(),
        u64::from(u32::MAX),
        "the counter stays at the end"
    );
}

#[test]
fn small_output_buffers_are_refused() {
    let mut rng = StdRng::seed_from_u64(6);
    let (gw, _) = spec_pair(EncrAlg::AesCbc128, IntegAlg::HmacSha1_96);
    let out_sa = OutboundSa::new(&gw).unwrap();
    let pkt = ipv4_packet(lan(), vip(), 100);
    let mut wire = vec![0u8; out_sa.sealed_len(pkt.len()) - 1];
    assert_eq!(
        out_sa.seal(&pkt, &mut wire, &mut rng),
        Err(EspError::BufferTooSmall)
    );
}

#[test]
fn sad_install_lookup_remove_and_rekey_overlap() {
    let sad = Sad::new();
    let (a, _) = spec_pair(EncrAlg::AesCbc128, IntegAlg::HmacSha1_96);
    sad.install(&a).unwrap();
    let snap = sad.snapshot();
    assert!(snap.inbound(a.inbound_spi).is_some());
    assert_eq!(snap.outbound(vip()).map(|s| s.spi), Some(a.outbound_spi));
    // A rekeyed pair of the same client: new outbound at once, old inbound kept.
    let mut b = a.clone();
    b.inbound_spi = 0x1234_5678;
    b.outbound_spi = 0x8765_4321;
    sad.install(&b).unwrap();
    let snap = sad.snapshot();
    assert!(snap.inbound(a.inbound_spi).is_some() && snap.inbound(b.inbound_spi).is_some());
    assert_eq!(snap.outbound(vip()).map(|s| s.spi), Some(b.outbound_spi));
    sad.remove(a.inbound_spi);
    let snap = sad.snapshot();
    assert!(snap.inbound(a.inbound_spi).is_none());
    assert_eq!(snap.outbound(vip()).map(|s| s.spi), Some(b.outbound_spi));
    sad.remove(b.inbound_spi);
    assert!(sad.snapshot().outbound(vip()).is_none());
    assert!(sad.snapshot().is_empty());
}

#[test]
fn outbound_packets_leave_only_from_inside_the_local_selectors() {
    let mut rng = StdRng::seed_from_u64(7);
    let (gw, cl) = spec_pair(EncrAlg::AesCbc128, IntegAlg::HmacSha1_96);
    let gw_out = OutboundSa::new(&gw).unwrap();
    let cl_in = InboundSa::with_role(&cl, Role::Client).unwrap();
    let mut wire = vec![0u8; 2048];
    let mut out = vec![0u8; 2048];
    // From outside LocalSubnet (192.168.0.0/24), and not an IPv4 packet at all.
    for pkt in [
        ipv4_packet(Ipv4Addr::new(192, 168, 1, 1), vip(), 10),
        ipv4_packet(Ipv4Addr::new(172, 16, 0, 1), vip(), 10),
        vec![0x60; 40],
    ] {
        assert_eq!(
            gw_out.seal(&pkt, &mut wire, &mut rng),
            Err(EspError::Selector)
        );
    }
    assert_eq!(gw_out.counters.outside_selectors(), 3);
    assert_eq!(gw_out.counters.read(), (0, 0, 3), "dropped, none sent");
    assert_eq!(gw_out.seq(), 0, "a refused packet uses no sequence number");
    // From inside: sealed, with sequence number 1, and the client opens it.
    let pkt = ipv4_packet(Ipv4Addr::new(192, 168, 0, 255), vip(), 10);
    let n = gw_out.seal(&pkt, &mut wire, &mut rng).unwrap();
    assert_eq!(
        cl_in.open(&wire[..n], &mut out),
        Ok(Opened::Packet {
            len: pkt.len(),
            seq: 1
        })
    );
    assert_eq!(gw_out.counters.read().0, 1);
    assert_eq!(gw_out.counters.outside_selectors(), 3);

    // The client's end: only from its virtual IP.
    let cl_out = OutboundSa::with_role(&cl, Role::Client).unwrap();
    let spoofed = ipv4_packet(Ipv4Addr::new(10, 0, 0, 6), lan(), 10);
    assert_eq!(
        cl_out.seal(&spoofed, &mut wire, &mut rng),
        Err(EspError::Selector)
    );
    assert_eq!(cl_out.counters.outside_selectors(), 1);
    assert!(cl_out
        .seal(&ipv4_packet(vip(), lan(), 10), &mut wire, &mut rng)
        .is_ok());
}

#[test]
fn the_sad_names_pairs_whose_sequence_numbers_run_low_either_way() {
    let mut rng = StdRng::seed_from_u64(8);
    let sad = Sad::new();
    let (a, _) = spec_pair(EncrAlg::AesCbc128, IntegAlg::HmacSha1_96);
    sad.install(&a).unwrap();
    let mut b = a.clone();
    b.inbound_spi = 0x1234_5678;
    b.outbound_spi = 0x8765_4321;
    b.client_vip = Ipv4Addr::new(10, 0, 0, 9);
    sad.install(&b).unwrap();
    let snap = sad.snapshot();
    assert!(snap.rekey_due().is_empty());
    let mut wire = vec![0u8; 2048];
    let pkt = ipv4_packet(lan(), vip(), 10);

    // Ours: one below the threshold is not due, the threshold is.
    let out = snap.outbound(vip()).unwrap();
    out.set_next_seq_for_test(REKEY_AT_SEQ as u32 - 1);
    out.seal(&pkt, &mut wire, &mut rng).unwrap();
    assert!(snap.rekey_due().is_empty());
    out.seal(&pkt, &mut wire, &mut rng).unwrap();
    assert_eq!(snap.rekey_due(), vec![a.inbound_spi]);
    // The hook never moves the counter back (no sequence number is used twice).
    out.set_next_seq_for_test(5);
    assert_eq!(out.seq(), REKEY_AT_SEQ);

    // The peer's, as far as seen: client b's packets reach 2^31.
    let peer = OutboundSa::with_role(&b.mirrored(), Role::Client).unwrap();
    peer.set_next_seq_for_test(REKEY_AT_SEQ as u32);
    let n = peer
        .seal(&ipv4_packet(b.client_vip, lan(), 10), &mut wire, &mut rng)
        .unwrap();
    let mut plain = vec![0u8; 2048];
    snap.inbound(b.inbound_spi)
        .unwrap()
        .open(&wire[..n], &mut plain)
        .unwrap();
    assert_eq!(snap.rekey_due(), vec![b.inbound_spi, a.inbound_spi]);
}

#[test]
fn totals_count_every_sa_since_the_start_deleted_ones_included() {
    let mut rng = StdRng::seed_from_u64(7);
    let sad = Sad::new();
    let (a, cl) = spec_pair(EncrAlg::AesCbc128, IntegAlg::HmacSha1_96);
    sad.install(&a).unwrap();
    let cl_out = OutboundSa::with_role(&cl, Role::Client).unwrap();
    let mut wire = vec![0u8; 2048];
    let mut out = vec![0u8; 2048];
    let snap = sad.snapshot();
    let gw_in = snap.inbound(a.inbound_spi).unwrap();
    let gw_out = snap.outbound(vip()).unwrap();
    // In: two packets of 50 inner bytes, one replay, one bad ICV; out: one packet of 40.
    for _ in 0..2 {
        let n = cl_out
            .seal(&ipv4_packet(vip(), lan(), 22), &mut wire, &mut rng)
            .unwrap();
        gw_in.open(&wire[..n], &mut out).unwrap();
        if gw_in.counters.read().0 == 2 {
            assert!(gw_in.open(&wire[..n], &mut out).is_err(), "a replay");
        }
    }
    // A bad ICV on a fresh sequence number: sealed, then its last byte flipped.
    let n = cl_out
        .seal(&ipv4_packet(vip(), lan(), 22), &mut wire, &mut rng)
        .unwrap();
    wire[n - 1] ^= 1;
    assert_eq!(gw_in.open(&wire[..n], &mut out), Err(EspError::Integrity));
    gw_out
        .seal(&ipv4_packet(lan(), vip(), 12), &mut wire, &mut rng)
        .unwrap();
    // Outside the local selectors: dropped outbound.
    assert!(gw_out
        .seal(
            &ipv4_packet(Ipv4Addr::new(8, 8, 8, 8), vip(), 12),
            &mut wire,
            &mut rng
        )
        .is_err());
    let live = sad.totals();
    assert_eq!((live.inbound.packets, live.inbound.bytes), (2, 100));
    assert_eq!(live.inbound.dropped, 2, "the replay and the bad ICV");
    assert_eq!((live.outbound.packets, live.outbound.bytes), (1, 40));
    assert_eq!(
        (live.outbound.dropped, live.outbound.outside_selectors),
        (1, 1)
    );

    // A rekey replaces the outbound SA, the deletes remove the rest: nothing is forgotten.
    let mut b = a.clone();
    b.inbound_spi = 0x1234_5678;
    b.outbound_spi = 0x8765_4321;
    sad.install(&b).unwrap();
    assert_eq!(sad.totals(), live, "the replaced outbound SA still counts");
    sad.remove(a.inbound_spi);
    sad.remove(b.inbound_spi);
    assert!(sad.snapshot().is_empty());
    assert_eq!(sad.totals(), live, "deleted SAs still count");
    sad.install(&a).unwrap();
    sad.clear();
    assert_eq!(sad.totals(), live, "a cleared database still counts");
}

#[test]
fn a_run_opened_together_gives_what_opening_one_by_one_gives() {
    // Runs of every length up to PAR_BLOCKS over both integrity paths (HMAC-SHA1's lanes and
    // one by one), mixing good packets with a flipped ICV bit, a flipped ciphertext bit, a
    // truncated packet, a repeat of an earlier packet of the same run, a packet the window
    // has already passed and a wrong inner source: `open_many` on one SA and `open` packet by
    // packet on a twin SA give the same results, plaintexts and counters.
    use crate::crypto::PAR_BLOCKS;
    for integ in [IntegAlg::HmacSha1_96, IntegAlg::HmacSha256_128] {
        let mut rng = StdRng::seed_from_u64(17);
        let (gw, cl) = spec_pair(EncrAlg::AesCbc128, integ);
        let (many, one) = (InboundSa::new(&gw).unwrap(), InboundSa::new(&gw).unwrap());
        let cl_out = OutboundSa::with_role(&cl, Role::Client).unwrap();
        let raw = unchecked_sealer(&cl);
        let seal = |out: &OutboundSa, src: Ipv4Addr, len: usize, rng: &mut StdRng| {
            let mut wire = vec![0u8; 2048];
            let n = out
                .seal(&ipv4_packet(src, lan(), len), &mut wire, rng)
                .unwrap();
            wire.truncate(n);
            wire
        };
        let stale = seal(&cl_out, vip(), 40, &mut rng);
        let mut step = 0usize;
        for len in 1..=PAR_BLOCKS {
            let mut packets: Vec<Vec<u8>> = Vec::new();
            for i in 0..len {
                step += 1;
                let p = match (step * 7 + i) % 9 {
                    0 => {
                        let mut p = seal(&cl_out, vip(), 100 + i, &mut rng);
                        *p.last_mut().unwrap() ^= 1;
                        p
                    }
                    1 => {
                        let mut p = seal(&cl_out, vip(), 100 + i, &mut rng);
                        p[30] ^= 0x80;
                        p
                    }
                    2 => seal(&cl_out, vip(), 100 + i, &mut rng)[..20].to_vec(),
                    3 if i > 0 => packets[i - 1].clone(),
                    4 => stale.clone(),
                    5 => seal(&raw, Ipv4Addr::new(10, 9, 9, 9), 60, &mut rng),
                    _ => seal(&cl_out, vip(), 200 + i * 50, &mut rng),
                };
                packets.push(p);
            }
            let refs: Vec<&[u8]> = packets.iter().map(|p| p.as_slice()).collect();
            let mut bufs = vec![vec![0u8; 2048]; len];
            let mut outs: Vec<&mut [u8]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
            let mut results = vec![Err(EspError::Truncated); len];
            many.open_many(&refs, &mut outs, &mut results);
            for (j, p) in packets.iter().enumerate() {
                let mut want_buf = vec![0u8; 2048];
                let want = one.open(p, &mut want_buf);
                assert_eq!(results[j], want, "{integ:?}, run of {len}, packet {j}");
                if let Ok(Opened::Packet { len: n, .. }) = want {
                    assert_eq!(bufs[j][..n], want_buf[..n]);
                }
            }
            assert_eq!(
                many.counters.read(),
                one.counters.read(),
                "{integ:?}, run of {len}"
            );
        }
        let (packets, _, dropped) = many.counters.read();
        assert!(packets > 0 && dropped > 0, "both outcomes were exercised");
    }
}
