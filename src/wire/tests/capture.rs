//! The IKE_SA_INIT requests strongSwan 5.9.8 sent to a UDP listener (see
//! `scripts/capture-ike-sa-init.sh`): parse them, check every payload, emit them back.

use super::super::*;
use super::{h, CAPTURE, CAPTURE_MODP2048};

/// (payload type, notify type if a notify) for every payload, in order.
fn shape(msg: &Message) -> Vec<(PayloadType, Option<NotifyType>)> {
    msg.payloads
        .iter()
        .map(|p| match p {
            Payload::Notify(n) => (p.payload_type(), Some(n.notify_type)),
            _ => (p.payload_type(), None),
        })
        .collect()
}

/// What docs/DESIGN.md §2 says strongSwan 5.9 sends: SA KE Ni N(NAT_DETECTION_SOURCE_IP)
/// N(NAT_DETECTION_DESTINATION_IP) N(IKEV2_FRAGMENTATION_SUPPORTED)
/// N(SIGNATURE_HASH_ALGORITHMS) N(REDIRECT_SUPPORTED).
fn strongswan_shape() -> Vec<(PayloadType, Option<NotifyType>)> {
    vec![
        (PayloadType::SA, None),
        (PayloadType::KE, None),
        (PayloadType::NONCE, None),
        (
            PayloadType::NOTIFY,
            Some(NotifyType::NAT_DETECTION_SOURCE_IP),
        ),
        (
            PayloadType::NOTIFY,
            Some(NotifyType::NAT_DETECTION_DESTINATION_IP),
        ),
        (
            PayloadType::NOTIFY,
            Some(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED),
        ),
        (
            PayloadType::NOTIFY,
            Some(NotifyType::SIGNATURE_HASH_ALGORITHMS),
        ),
        (PayloadType::NOTIFY, Some(NotifyType::REDIRECT_SUPPORTED)),
    ]
}

fn ike_proposal(transforms: Vec<Transform>) -> Vec<Proposal> {
    vec![Proposal {
        number: 1,
        protocol: ProtocolId::IKE,
        spi: Vec::new(),
        transforms,
    }]
}

#[test]
fn capture_header() {
    let msg = Message::parse(CAPTURE).unwrap();
    assert_eq!(
        msg.header,
        Header {
            spi_i: 0xdd78_0dd8_7351_8241,
            spi_r: 0,
            next_payload: PayloadType::SA,
            version: IKEV2_VERSION,
            exchange: ExchangeType::IKE_SA_INIT,
            flags: FLAG_INITIATOR,
            message_id: 0,
            length: 336,
        }
    );
    assert!(!msg.header.is_response());
    assert_eq!(Header::parse(CAPTURE), Ok(msg.header));
}

#[test]
fn capture_payloads() {
    let msg = Message::parse(CAPTURE).unwrap();
    assert_eq!(shape(&msg), strongswan_shape());

    assert_eq!(
        msg.sa().unwrap(),
        ike_proposal(vec![
            Transform::new(TransformType::ENCR, encr::AES_CBC).with_key_length(128),
            Transform::new(TransformType::INTEG, integ::HMAC_SHA1_96),
            Transform::new(TransformType::PRF, prf::HMAC_SHA1),
            Transform::new(TransformType::DH, dh::MODP_1024),
        ])
    );
    assert_eq!(msg.sa().unwrap()[0].transforms[0].key_length(), Some(128));

    let ke = msg.ke().unwrap();
    assert_eq!(ke.group, dh::MODP_1024);
    assert_eq!(ke.data.len(), 128);
    assert_eq!(ke.data[..4], [0xc2, 0xe5, 0xe4, 0x89]);
    assert_eq!(
        msg.nonce().unwrap(),
        h("9744b49b daa6c391 694819e9 11292b8e f5f6678b 21c706d9 d3c63a3b 01d686db")
    );

    let natd_s = msg.notify(NotifyType::NAT_DETECTION_SOURCE_IP).unwrap();
    assert_eq!(natd_s.protocol, ProtocolId::NONE);
    assert!(natd_s.spi.is_empty());
    assert_eq!(
        natd_s.data,
        h("dd0549d2 6d0115f1 39c4905b a774d217 4a230553")
    );
    let natd_d = msg
        .notify(NotifyType::NAT_DETECTION_DESTINATION_IP)
        .unwrap();
    assert_eq!(natd_d.data.len(), 20);
    // RFC 7427 §4: SHA2-256, SHA2-384, SHA2-512, Identity.
    assert_eq!(
        msg.notify(NotifyType::SIGNATURE_HASH_ALGORITHMS)
            .unwrap()
            .data,
        [0x00, 0x02, 0x00, 0x03, 0x00, 0x04, 0x00, 0x05]
    );
    assert!(msg.has_notify(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED));
    assert!(msg.has_notify(NotifyType::REDIRECT_SUPPORTED));
    assert!(!msg.has_notify(NotifyType::COOKIE));
    assert_eq!(msg.error_notify(), None);
    assert_eq!(msg.count(PayloadType::NOTIFY), 5);
    assert_eq!(msg.sk(), None);
}

#[test]
fn capture_emits_byte_for_byte() {
    for capture in [CAPTURE, CAPTURE_MODP2048] {
        let msg = Message::parse(capture).unwrap();
        assert_eq!(msg.emit().unwrap(), capture);
        let mut appended = vec![0x00, 0x00, 0x00, 0x00];
        msg.emit_into(&mut appended).unwrap();
        assert_eq!(appended, with_non_esp_marker(capture));
    }
}

#[test]
fn capture_emit_ignores_stored_length_and_next_payload() {
    let mut msg = Message::parse(CAPTURE).unwrap();
    msg.header.length = 0;
    msg.header.next_payload = PayloadType::NONE;
    assert_eq!(msg.emit().unwrap(), CAPTURE);
}

#[test]
fn capture_aes256_sha256_modp2048() {
    let msg = Message::parse(CAPTURE_MODP2048).unwrap();
    assert_eq!(shape(&msg), strongswan_shape());
    assert_eq!(msg.header.length, 464);
    assert_eq!(
        msg.sa().unwrap(),
        ike_proposal(vec![
            Transform::new(TransformType::ENCR, encr::AES_CBC).with_key_length(256),
            Transform::new(TransformType::INTEG, integ::HMAC_SHA2_256_128),
            Transform::new(TransformType::PRF, prf::HMAC_SHA2_256),
            Transform::new(TransformType::DH, dh::MODP_2048),
        ])
    );
    let ke = msg.ke().unwrap();
    assert_eq!((ke.group, ke.data.len()), (dh::MODP_2048, 256));
}

#[test]
fn capture_over_port_4500() {
    let datagram = with_non_esp_marker(CAPTURE);
    let Ok(Udp4500::Ike(ike)) = classify_4500(&datagram) else {
        panic!("not classified as IKE");
    };
    assert_eq!(Message::parse(ike).unwrap().emit().unwrap(), CAPTURE);
}
