//! Byte-exact vectors for every payload type, laid out by hand from RFC 7296 §3 and
//! RFC 7383 §2.5: each parses to the expected value and that value emits the same bytes.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::super::*;
use super::h;

/// One single-payload chain (Next Payload NONE unless SK/SKF) and its value.
pub(super) struct Vector {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    pub payload: Payload,
}

fn v(name: &'static str, hex: &str, payload: Payload) -> Vector {
    Vector {
        name,
        bytes: h(hex),
        payload,
    }
}

fn notify(protocol: ProtocolId, spi: &[u8], notify_type: NotifyType, data: &[u8]) -> Payload {
    Payload::Notify(NotifyPayload {
        protocol,
        spi: spi.to_vec(),
        notify_type,
        data: data.to_vec(),
    })
}

pub(super) fn vectors() -> Vec<Vector> {
    vec![
        v(
            "SA: ESP aes128/sha1/no-ESN with SPI, then a proposal with a TLV attribute",
            "00000044 \
             02000028 01030403 c1c2c3c4 \
               0300000c 0100000c 800e0080 \
               03000008 03000002 \
               00000008 05000000 \
             00000018 02010001 \
               00000010 01000063 00200004 01020304",
            Payload::Sa(vec![
                Proposal {
                    number: 1,
                    protocol: ProtocolId::ESP,
                    spi: vec![0xc1, 0xc2, 0xc3, 0xc4],
                    transforms: vec![
                        Transform::new(TransformType::ENCR, encr::AES_CBC).with_key_length(128),
                        Transform::new(TransformType::INTEG, integ::HMAC_SHA1_96),
                        Transform::new(TransformType::ESN, esn::NO),
                    ],
                },
                Proposal {
                    number: 2,
                    protocol: ProtocolId::IKE,
                    spi: Vec::new(),
                    transforms: vec![Transform {
                        transform_type: TransformType::ENCR,
                        id: 0x63,
                        attributes: vec![Attribute {
                            attr_type: 0x20,
                            value: AttributeValue::Tlv(vec![0x01, 0x02, 0x03, 0x04]),
                        }],
                    }],
                },
            ]),
        ),
        v(
            "KE: group 14",
            "00000010 000e0000 01020304 05060708",
            Payload::Ke(KePayload {
                group: dh::MODP_2048,
                data: h("0102030405060708"),
            }),
        ),
        v(
            "IDi: FQDN",
            "00000017 02000000 636c69656e74312e6578616d706c65",
            Payload::IdI(IdPayload {
                id_type: IdPayload::ID_FQDN,
                data: b"client1.example".to_vec(),
            }),
        ),
        v(
            "IDr: IPv4 address",
            "0000000c 01000000 0afa4d02",
            Payload::IdR(IdPayload {
                id_type: IdPayload::ID_IPV4_ADDR,
                data: vec![0x0a, 0xfa, 0x4d, 0x02],
            }),
        ),
        v(
            "AUTH: shared key MIC",
            "0000001c 02000000 11111111 11111111 11111111 11111111 11111111",
            Payload::Auth(AuthPayload {
                method: AuthPayload::SHARED_KEY_MIC,
                data: vec![0x11; 20],
            }),
        ),
        v(
            "Nonce",
            "00000014 00112233 44556677 8899aabb ccddeeff",
            Payload::Nonce(h("00112233445566778899aabbccddeeff")),
        ),
        v(
            "N(REKEY_SA) with an ESP SPI",
            "0000000c 03044009 c1c2c3c4",
            notify(
                ProtocolId::ESP,
                &[0xc1, 0xc2, 0xc3, 0xc4],
                NotifyType::REKEY_SA,
                &[],
            ),
        ),
        v(
            "N(INVALID_KE_PAYLOAD) with data",
            "0000000a 00000011 000e",
            notify(
                ProtocolId::NONE,
                &[],
                NotifyType::INVALID_KE_PAYLOAD,
                &[0x00, 0x0e],
            ),
        ),
        v(
            "N(unknown type) is data",
            "00000009 0000 9999 7a",
            notify(ProtocolId::NONE, &[], NotifyType(0x9999), &[0x7a]),
        ),
        v(
            "D(ESP) with two SPIs",
            "00000010 03040002 c1c2c3c4 d1d2d3d4",
            Payload::Delete(DeletePayload {
                protocol: ProtocolId::ESP,
                spi_size: 4,
                spis: vec![vec![0xc1, 0xc2, 0xc3, 0xc4], vec![0xd1, 0xd2, 0xd3, 0xd4]],
            }),
        ),
        v(
            "D(IKE)",
            "00000008 01000000",
            Payload::Delete(DeletePayload {
                protocol: ProtocolId::IKE,
                spi_size: 0,
                spis: Vec::new(),
            }),
        ),
        v(
            "Vendor ID",
            "0000000c 882fe56d 6fd20dbc",
            Payload::VendorId(h("882fe56d6fd20dbc")),
        ),
        v(
            "TSi: IPv4 any, IPv6 TCP/80, unknown type 13",
            "00000048 03000000 \
             07000010 0000ffff 00000000 ffffffff \
             08060028 00500050 20010db8000000000000000000000000 20010db800000000000000000000ffff \
             0d2a0008 aabbccdd",
            Payload::TsI(vec![
                TrafficSelector::ipv4_range(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST),
                TrafficSelector::Ipv6 {
                    ip_protocol: 6,
                    start_port: 80,
                    end_port: 80,
                    start: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
                    end: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xffff),
                },
                TrafficSelector::Unknown {
                    ts_type: 0x0d,
                    body: vec![0x2a, 0xaa, 0xbb, 0xcc, 0xdd],
                },
            ]),
        ),
        v(
            "TSr: 192.168.0.0/24",
            "00000018 01000000 07000010 0000ffff c0a80000 c0a800ff",
            Payload::TsR(vec![TrafficSelector::ipv4_range(
                Ipv4Addr::new(192, 168, 0, 0),
                Ipv4Addr::new(192, 168, 0, 255),
            )]),
        ),
        v(
            "CP(CFG_REQUEST) as strongSwan asks: ADDR, DNS",
            "00000010 01000000 00010000 00030000",
            Payload::Cp(CpPayload {
                cfg_type: CpPayload::CFG_REQUEST,
                attributes: vec![
                    CpAttribute::new(CpAttribute::INTERNAL_IP4_ADDRESS, Vec::new()),
                    CpAttribute::new(CpAttribute::INTERNAL_IP4_DNS, Vec::new()),
                ],
            }),
        ),
        v(
            "CP(CFG_REPLY): ADDR, DNS, SUBNET",
            "00000024 02000000 00010004 0a000005 00030004 c0a80035 000d0008 c0a80000 ffffff00",
            Payload::Cp(CpPayload {
                cfg_type: CpPayload::CFG_REPLY,
                attributes: vec![
                    CpAttribute::new(CpAttribute::INTERNAL_IP4_ADDRESS, h("0a000005")),
                    CpAttribute::new(CpAttribute::INTERNAL_IP4_DNS, h("c0a80035")),
                    CpAttribute::new(CpAttribute::INTERNAL_IP4_SUBNET, h("c0a80000ffffff00")),
                ],
            }),
        ),
        v(
            "SK: first inner IDi, body opaque",
            "23000014 000102030405060708090a0b0c0d0e0f",
            Payload::Sk(SkPayload {
                first_inner: PayloadType::IDI,
                body: h("000102030405060708090a0b0c0d0e0f"),
            }),
        ),
        v(
            "SKF: fragment 1 of 3",
            "23000018 00010003 000102030405060708090a0b0c0d0e0f",
            Payload::Skf(SkfPayload {
                first_inner: PayloadType::IDI,
                fragment_number: 1,
                total_fragments: 3,
                body: h("000102030405060708090a0b0c0d0e0f"),
            }),
        ),
        v(
            "CERTREQ is opaque",
            "00000009 04aabbccdd",
            Payload::Opaque {
                payload_type: PayloadType::CERTREQ,
                body: h("04aabbccdd"),
            },
        ),
        v(
            "CERT is opaque",
            "00000007 0c0102",
            Payload::Opaque {
                payload_type: PayloadType::CERT,
                body: h("0c0102"),
            },
        ),
        v(
            "EAP is opaque",
            "00000008 01020004",
            Payload::Opaque {
                payload_type: PayloadType::EAP,
                body: h("01020004"),
            },
        ),
        v(
            "unknown non-critical type is kept",
            "00000006 cafe",
            Payload::Opaque {
                payload_type: PayloadType(0x80),
                body: h("cafe"),
            },
        ),
    ]
}

#[test]
fn every_payload_type_round_trips_byte_exactly() {
    for Vector {
        name,
        bytes,
        payload,
    } in vectors()
    {
        let ty = payload.payload_type();
        assert_eq!(
            parse_payloads(ty, &bytes),
            Ok(vec![payload.clone()]),
            "parse {name}"
        );
        let mut out = Vec::new();
        assert_eq!(
            emit_payloads(std::slice::from_ref(&payload), &mut out),
            Ok(ty)
        );
        assert_eq!(hex::encode(&out), hex::encode(&bytes), "emit {name}");
    }
}

#[test]
fn vectors_cover_every_known_payload_type() {
    let covered: Vec<PayloadType> = vectors().iter().map(|v| v.payload.payload_type()).collect();
    for ty in 0x21..=0x30 {
        assert!(covered.contains(&PayloadType(ty)), "{:?}", PayloadType(ty));
    }
    assert!(covered.contains(&PayloadType::SKF));
}

#[test]
fn every_vector_round_trips_inside_a_message() {
    for vector in vectors() {
        let msg = message_with(vec![vector.payload]);
        let bytes = msg.emit().unwrap();
        assert_eq!(Message::parse(&bytes).unwrap().payloads, msg.payloads);
        assert_eq!(Message::parse(&bytes).unwrap().emit().unwrap(), bytes);
    }
}

/// An IKE_AUTH request in the order strongSwan sends it (docs/DESIGN.md §2), before
/// encryption: IDi N(INITIAL_CONTACT) IDr AUTH CP SA TSi TSr N(MOBIKE_SUPPORTED) … —
/// the Next Payload chain typed by hand.
#[test]
fn strongswan_ike_auth_content_chain() {
    let bytes = h("29000017 02000000 636c69656e74312e6578616d706c65 \
                   24000008 00004000 \
                   2700000c 01000000 0afa4d02 \
                   2f00001c 02000000 11111111 11111111 11111111 11111111 11111111 \
                   21000010 01000000 00010000 00030000 \
                   2c00002c 00000028 01030403 c1c2c3c4 \
                     0300000c 0100000c 800e0080 03000008 03000002 00000008 05000000 \
                   2d000018 01000000 07000010 0000ffff 00000000 ffffffff \
                   29000018 01000000 07000010 0000ffff c0a80000 c0a800ff \
                   29000008 0000400c \
                   29000008 0000400f \
                   29000008 00004014 \
                   29000008 00004021 \
                   00000008 00004024");
    let payloads = parse_payloads(PayloadType::IDI, &bytes).unwrap();
    let types: Vec<PayloadType> = payloads.iter().map(Payload::payload_type).collect();
    use PayloadType as P;
    assert_eq!(
        types,
        [
            P::IDI,
            P::NOTIFY,
            P::IDR,
            P::AUTH,
            P::CP,
            P::SA,
            P::TSI,
            P::TSR,
            P::NOTIFY,
            P::NOTIFY,
            P::NOTIFY,
            P::NOTIFY,
            P::NOTIFY
        ]
    );
    assert_eq!(payloads.id_i().unwrap().data, b"client1.example");
    assert_eq!(payloads.id_r().unwrap().id_type, IdPayload::ID_IPV4_ADDR);
    assert_eq!(payloads.auth().unwrap().method, AuthPayload::SHARED_KEY_MIC);
    assert_eq!(
        payloads
            .cp()
            .unwrap()
            .values_of(CpAttribute::INTERNAL_IP4_DNS)
            .count(),
        1
    );
    assert_eq!(payloads.sa().unwrap()[0].protocol, ProtocolId::ESP);
    assert_eq!(payloads.ts_i().unwrap().len(), 1);
    assert_eq!(payloads.ts_r().unwrap().len(), 1);
    for n in [
        NotifyType::INITIAL_CONTACT,
        NotifyType::MOBIKE_SUPPORTED,
        NotifyType::NO_ADDITIONAL_ADDRESSES,
        NotifyType::MULTIPLE_AUTH_SUPPORTED,
        NotifyType::EAP_ONLY_AUTHENTICATION,
        NotifyType::IKEV2_MESSAGE_ID_SYNC_SUPPORTED,
    ] {
        assert!(payloads.has_notify(n), "{n:?}");
    }
    let mut out = Vec::new();
    assert_eq!(emit_payloads(&payloads, &mut out), Ok(PayloadType::IDI));
    assert_eq!(hex::encode(out), hex::encode(bytes));
}

#[test]
fn id_body_is_rest_of_id_payload() {
    let id = IdPayload {
        id_type: IdPayload::ID_FQDN,
        data: b"gw".to_vec(),
    };
    assert_eq!(id.body(), [0x02, 0x00, 0x00, 0x00, b'g', b'w']);
}

#[test]
fn key_length_is_read_from_tv_only_and_replaced() {
    let t = Transform::new(TransformType::ENCR, encr::AES_CBC).with_key_length(128);
    assert_eq!(t.clone().with_key_length(256).key_length(), Some(256));
    assert_eq!(t.with_key_length(256).attributes.len(), 1);
    let tlv = Transform {
        attributes: vec![Attribute {
            attr_type: Transform::KEY_LENGTH,
            value: AttributeValue::Tlv(vec![0x00, 0x80]),
        }],
        ..Transform::new(TransformType::ENCR, encr::AES_CBC)
    };
    assert_eq!(tlv.key_length(), None);
    assert_eq!(
        Transform::new(TransformType::PRF, prf::HMAC_SHA1).key_length(),
        None
    );
}

#[test]
fn known_payloads_are_emitted_non_critical_and_reserved_zero() {
    // Critical bit and reserved octets set on receipt: ignored (RFC 7296 §3.2, §3.4).
    let received = h("0080 0010 000e ffff 01020304 05060708");
    let payloads = parse_payloads(PayloadType::KE, &received).unwrap();
    let mut out = Vec::new();
    emit_payloads(&payloads, &mut out).unwrap();
    assert_eq!(out, h("00000010 000e0000 0102030405060708"));
}

#[test]
fn empty_chain_emits_nothing() {
    let mut out = Vec::new();
    assert_eq!(emit_payloads(&[], &mut out), Ok(PayloadType::NONE));
    assert!(out.is_empty());
    assert_eq!(parse_payloads(PayloadType::NONE, &[]), Ok(Vec::new()));
}

/// A message around `payloads` (IKE_AUTH request, message ID 1).
pub(super) fn message_with(payloads: Vec<Payload>) -> Message {
    Message {
        header: Header {
            spi_i: 0x0102_0304_0506_0708,
            spi_r: 0x1112_1314_1516_1718,
            next_payload: PayloadType::NONE,
            version: IKEV2_VERSION,
            exchange: ExchangeType::IKE_AUTH,
            flags: FLAG_INITIATOR,
            message_id: 1,
            length: 0,
        },
        payloads,
    }
}
