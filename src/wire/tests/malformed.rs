//! Malformed input: truncations, lying lengths at every nesting level, critical and
//! non-critical unknown payloads, misplaced SK, inconsistent counts and markers.

use super::super::*;
use super::payloads::{message_with, vectors};
use super::{h, CAPTURE};

/// Offsets of the 16-bit length fields in [`CAPTURE`], from its hexdump.
const CAPTURE_LENGTHS: &[(usize, &str)] = &[
    (0x1e, "SA payload"),
    (0x22, "proposal"),
    (0x2a, "transform ENCR"),
    (0x36, "transform INTEG"),
    (0x3e, "transform PRF"),
    (0x46, "transform DH"),
    (0x4e, "KE payload"),
    (0xd6, "Nonce payload"),
    (0xfa, "N(NAT_DETECTION_SOURCE_IP)"),
    (0x116, "N(NAT_DETECTION_DESTINATION_IP)"),
    (0x132, "N(IKEV2_FRAGMENTATION_SUPPORTED)"),
    (0x13a, "N(SIGNATURE_HASH_ALGORITHMS)"),
    (0x14a, "N(REDIRECT_SUPPORTED)"),
];

fn with_u16(bytes: &[u8], at: usize, value: u16) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at..at + 2].copy_from_slice(&value.to_be_bytes());
    out
}

fn lies(original: u16) -> [u16; 7] {
    [
        0,
        1,
        3,
        original.wrapping_sub(1),
        original + 1,
        original + 4,
        0xffff,
    ]
}

#[test]
fn every_truncation_of_the_capture_is_an_error() {
    for len in 0..CAPTURE.len() {
        let cut = &CAPTURE[..len];
        assert!(Message::parse(cut).is_err(), "cut at {len}");
        // Also with the header's Length fixed up, so that the payload chain is what fails.
        if len >= IKE_HEADER_LEN {
            let mut fixed = cut.to_vec();
            fixed[24..28].copy_from_slice(&(len as u32).to_be_bytes());
            assert!(Message::parse(&fixed).is_err(), "fixed-up cut at {len}");
            assert!(
                parse_payloads(PayloadType::SA, &CAPTURE[IKE_HEADER_LEN..len]).is_err(),
                "chain cut at {len}"
            );
        }
    }
}

#[test]
fn every_truncation_of_every_vector_is_an_error() {
    for vector in vectors() {
        let ty = vector.payload.payload_type();
        for len in 0..vector.bytes.len() {
            assert!(
                parse_payloads(ty, &vector.bytes[..len]).is_err(),
                "{} cut at {len}",
                vector.name
            );
        }
    }
}

#[test]
fn header_length_lies_are_errors() {
    for lie in [0u32, 27, 28, 335, 337, u32::MAX] {
        let mut bytes = CAPTURE.to_vec();
        bytes[24..28].copy_from_slice(&lie.to_be_bytes());
        assert!(
            matches!(Message::parse(&bytes), Err(WireError::BadLength { .. })),
            "length {lie}"
        );
    }
}

#[test]
fn capture_length_lies_at_every_level_are_errors() {
    for &(at, what) in CAPTURE_LENGTHS {
        let original = u16::from_be_bytes([CAPTURE[at], CAPTURE[at + 1]]);
        for lie in lies(original) {
            let bytes = with_u16(CAPTURE, at, lie);
            assert!(
                Message::parse(&bytes).is_err(),
                "{what} length {original} -> {lie}"
            );
        }
    }
}

#[test]
fn transform_count_and_markers_must_agree() {
    // Num Transforms 4 -> 3, 5.
    for count in [0x03, 0x05, 0x00] {
        let mut bytes = CAPTURE.to_vec();
        bytes[0x27] = count;
        assert!(Message::parse(&bytes).is_err(), "count {count}");
    }
    // Proposal marked "more" while last; transform marked "last" while not, or "more"
    // while last; a marker that is neither.
    for (at, marker) in [(0x20, 0x02), (0x28, 0x00), (0x44, 0x03), (0x34, 0x02)] {
        let mut bytes = CAPTURE.to_vec();
        bytes[at] = marker;
        assert!(
            matches!(Message::parse(&bytes), Err(WireError::InvalidSyntax(_))),
            "marker {marker} at {at:#x}"
        );
    }
}

#[test]
fn nested_length_lies_in_sa_ts_cp_and_attributes_are_errors() {
    // (vector name prefix, offsets of its 16-bit length fields)
    let cases: &[(&str, &[usize])] = &[
        // payload, proposal 1, 3 transforms, proposal 2, its transform, TLV attribute
        ("SA:", &[0x02, 0x06, 0x12, 0x1e, 0x26, 0x2e, 0x36, 0x3e]),
        // payload, 3 selectors
        ("TSi:", &[0x02, 0x0a, 0x1a, 0x42]),
        // payload, 3 attributes
        ("CP(CFG_REPLY)", &[0x02, 0x0a, 0x12, 0x1a]),
        ("SKF", &[0x02]),
        ("KE", &[0x02]),
    ];
    let all = vectors();
    for &(prefix, offsets) in cases {
        let vector = all.iter().find(|v| v.name.starts_with(prefix)).unwrap();
        let ty = vector.payload.payload_type();
        for &at in offsets {
            let original = u16::from_be_bytes([vector.bytes[at], vector.bytes[at + 1]]);
            for lie in lies(original) {
                let bytes = with_u16(&vector.bytes, at, lie);
                let result = parse_payloads(ty, &bytes);
                assert!(
                    result.is_err(),
                    "{}: length at {at:#x} {original} -> {lie}: {result:?}",
                    vector.name
                );
            }
        }
    }
}

#[test]
fn fixed_size_selectors_must_have_their_size() {
    // IPv4 selector claiming 20 octets inside a payload that has them.
    let bytes = h("0000001c 01000000 07000014 0000ffff 00000000 ffffffff 00000000");
    assert_eq!(
        parse_payloads(PayloadType::TSI, &bytes),
        Err(WireError::BadLength {
            what: "IPv4 traffic selector",
            length: 20
        })
    );
    // Number of TSs larger or smaller than what is present.
    let one = h("00000018 01000000 07000010 0000ffff 00000000 ffffffff");
    let mut two = one.clone();
    two[4] = 0x02;
    assert_eq!(
        parse_payloads(PayloadType::TSI, &two),
        Err(WireError::Truncated)
    );
    let mut zero = one;
    zero[4] = 0x00;
    assert_eq!(
        parse_payloads(PayloadType::TSI, &zero),
        Err(WireError::TrailingBytes)
    );
}

#[test]
fn spi_sizes_and_delete_counts_must_fit() {
    // Notify SPI Size past the payload.
    let bytes = h("0000000c 03054009 c1c2c3c4");
    assert!(matches!(
        parse_payloads(PayloadType::NOTIFY, &bytes),
        Err(WireError::BadLength { .. })
    ));
    // Proposal SPI Size past the proposal.
    let bytes = h("00000010 0000000c 01030900 c1c2c3c4");
    assert!(parse_payloads(PayloadType::SA, &bytes).is_err());
    // Delete: count * size must be exactly the rest.
    for bad in [
        "0000000c 03040002 c1c2c3c4",
        "00000010 03040001 c1c2c3c4 d1d2d3d4",
        "0000000c 03040000 c1c2c3c4",
    ] {
        assert!(matches!(
            parse_payloads(PayloadType::DELETE, &h(bad)),
            Err(WireError::BadLength { .. })
        ));
    }
    // 65535 SPIs of size 0 would allocate far more than the datagram.
    assert!(matches!(
        parse_payloads(PayloadType::DELETE, &h("00000008 0100ffff")),
        Err(WireError::InvalidSyntax(_))
    ));
}

#[test]
fn empty_sa_is_an_error() {
    assert!(matches!(
        parse_payloads(PayloadType::SA, &h("00000004")),
        Err(WireError::InvalidSyntax(_))
    ));
}

/// The capture with `extra` inserted after the Nonce, its critical bit set or not.
fn capture_with(extra: Payload, critical: bool) -> Vec<u8> {
    let mut msg = Message::parse(CAPTURE).unwrap();
    msg.payloads.insert(3, extra);
    let mut bytes = msg.emit().unwrap();
    // The inserted payload starts where the Nonce ended in the capture.
    let at = 0xf8;
    if critical {
        bytes[at + 1] |= CRITICAL;
    }
    bytes
}

#[test]
fn unknown_critical_payload_is_refused() {
    let unknown = Payload::Opaque {
        payload_type: PayloadType(0x31),
        body: vec![0x01, 0x02],
    };
    assert_eq!(
        Message::parse(&capture_with(unknown.clone(), true)),
        Err(WireError::UnsupportedCriticalPayload(0x31))
    );
    // Also in decrypted SK content, and as the last payload.
    assert_eq!(
        parse_payloads(PayloadType(0xfe), &h("00800004")),
        Err(WireError::UnsupportedCriticalPayload(0xfe))
    );
}

#[test]
fn unknown_non_critical_payload_is_kept_and_round_trips() {
    let unknown = Payload::Opaque {
        payload_type: PayloadType(0x31),
        body: vec![0x01, 0x02],
    };
    let bytes = capture_with(unknown.clone(), false);
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(msg.payloads[3], unknown);
    assert_eq!(msg.payloads.len(), 9);
    assert_eq!(msg.emit().unwrap(), bytes);
}

#[test]
fn critical_bit_on_known_payloads_is_ignored() {
    let mut bytes = CAPTURE.to_vec();
    for at in [0x1d, 0x4d, 0xd5, 0xf9] {
        bytes[at] = CRITICAL;
    }
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(msg, Message::parse(CAPTURE).unwrap());
    assert_eq!(msg.emit().unwrap(), CAPTURE);
}

#[test]
fn sk_must_be_last() {
    let sk = Payload::Sk(SkPayload {
        first_inner: PayloadType::IDI,
        body: vec![0x00; 16],
    });
    let good = message_with(vec![sk.clone()]).emit().unwrap();
    assert!(Message::parse(&good).is_ok());

    // SK followed by a notify: the SK's Next Payload names the inner payload, so the
    // notify is extra bytes after the last payload.
    let bad = message_with(vec![sk, Payload::notify(NotifyType::COOKIE, vec![0x01])])
        .emit()
        .unwrap();
    assert_eq!(
        Message::parse(&bad),
        Err(WireError::InvalidSyntax("SK/SKF payload is not the last"))
    );
}

#[test]
fn bytes_after_the_last_payload_are_an_error() {
    let mut bytes = CAPTURE.to_vec();
    bytes.extend_from_slice(&[0x00; 4]);
    let len = bytes.len() as u32;
    bytes[24..28].copy_from_slice(&len.to_be_bytes());
    assert_eq!(Message::parse(&bytes), Err(WireError::TrailingBytes));
}

#[test]
fn payload_length_below_header_is_an_error() {
    for lie in 0..4u16 {
        let bytes = with_u16(&h("00000008 01000000"), 2, lie);
        assert_eq!(
            parse_payloads(PayloadType::DELETE, &bytes),
            Err(WireError::BadLength {
                what: "payload",
                length: usize::from(lie)
            })
        );
    }
}

#[test]
fn flipping_any_single_bit_of_the_capture_never_panics() {
    for at in 0..CAPTURE.len() {
        for bit in 0..8 {
            let mut bytes = CAPTURE.to_vec();
            bytes[at] ^= 1 << bit;
            if let Ok(msg) = Message::parse(&bytes) {
                assert_eq!(Message::parse(&msg.emit().unwrap()), Ok(msg));
            }
        }
    }
}
