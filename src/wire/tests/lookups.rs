//! [`PayloadList`]: every lookup selects by kind, the single ones give the first payload of
//! their kind, and `of_kind` keeps the list's order (so `.last()` is the last occurrence).

use super::super::*;
use super::payloads::vectors;

fn nonce(byte: u8) -> Payload {
    Payload::Nonce(vec![byte; 16])
}

fn status(notify_type: NotifyType, byte: u8) -> Payload {
    Payload::notify(notify_type, vec![byte])
}

#[test]
fn each_accessor_selects_exactly_its_kind() {
    for v in vectors() {
        let p = &v.payload;
        let t = p.payload_type();
        let is = |ty: PayloadType, some: bool| assert_eq!(some, t == ty, "{}: {ty:?}", v.name);
        is(PayloadType::SA, p.as_sa().is_some());
        is(PayloadType::KE, p.as_ke().is_some());
        is(PayloadType::IDI, p.as_id_i().is_some());
        is(PayloadType::IDR, p.as_id_r().is_some());
        is(PayloadType::AUTH, p.as_auth().is_some());
        is(PayloadType::NONCE, p.as_nonce().is_some());
        is(PayloadType::NOTIFY, p.as_notify().is_some());
        is(PayloadType::DELETE, p.as_delete().is_some());
        is(PayloadType::TSI, p.as_ts_i().is_some());
        is(PayloadType::TSR, p.as_ts_r().is_some());
        is(PayloadType::CP, p.as_cp().is_some());
        is(PayloadType::SK, p.as_sk().is_some());
        is(PayloadType::SKF, p.as_skf().is_some());
    }
}

#[test]
fn of_kind_keeps_the_order_and_single_lookups_take_the_first() {
    let list = vec![nonce(1), status(NotifyType::COOKIE2, 9), nonce(2), nonce(3)];
    let nonces: Vec<&[u8]> = list.of_kind(Payload::as_nonce).collect();
    assert_eq!(nonces, [&[1u8; 16][..], &[2; 16], &[3; 16]]);
    assert_eq!(list.nonce(), Some(&[1u8; 16][..]));
    assert_eq!(list.of_kind(Payload::as_nonce).last(), Some(&[3u8; 16][..]));
    assert_eq!(list.of_kind(Payload::as_ke).next(), None);
    // The same through a slice and through a message.
    assert_eq!(list[2..].nonce(), Some(&[2u8; 16][..]));
    let msg = super::payloads::message_with(list.clone());
    assert_eq!(msg.of_kind(Payload::as_nonce).count(), 3);
}

#[test]
fn every_single_lookup_takes_the_first_of_its_kind() {
    // Two of every kind with a body that tells them apart, the second ones reversed.
    let pair = |n: u8| {
        let id = IdPayload {
            id_type: IdPayload::ID_FQDN,
            data: vec![n],
        };
        let ts = TrafficSelector::Ipv4 {
            ip_protocol: n,
            start_port: 0,
            end_port: 0xffff,
            start: std::net::Ipv4Addr::new(10, 0, 0, n),
            end: std::net::Ipv4Addr::new(10, 0, 0, n),
        };
        vec![
            Payload::Sa(vec![Proposal {
                number: n,
                protocol: ProtocolId::ESP,
                spi: vec![n; 4],
                transforms: vec![],
            }]),
            Payload::Ke(KePayload {
                group: u16::from(n),
                data: vec![n],
            }),
            Payload::IdI(id.clone()),
            Payload::IdR(id),
            Payload::Auth(AuthPayload {
                method: n,
                data: vec![n],
            }),
            nonce(n),
            Payload::TsI(vec![ts.clone()]),
            Payload::TsR(vec![ts]),
            Payload::Cp(CpPayload {
                cfg_type: n,
                attributes: vec![],
            }),
        ]
    };
    let mut list = pair(1);
    list.extend(pair(2).into_iter().rev());
    assert_eq!(list.sa().unwrap()[0].number, 1);
    assert_eq!(list.ke().unwrap().group, 1);
    assert_eq!(list.id_i().unwrap().data, [1]);
    assert_eq!(list.id_r().unwrap().data, [1]);
    assert_eq!(list.auth().unwrap().method, 1);
    assert_eq!(list.nonce().unwrap()[0], 1);
    assert_eq!(list.ts_i(), list.of_kind(Payload::as_ts_i).next());
    assert_ne!(list.ts_r(), list.of_kind(Payload::as_ts_r).last());
    assert_eq!(list.cp().unwrap().cfg_type, 1);
    assert_eq!(list.of_kind(Payload::as_cp).last().unwrap().cfg_type, 2);
    assert_eq!(list.of_kind(Payload::as_auth).last().unwrap().method, 2);
}

#[test]
fn notifies_of_one_type_in_order() {
    let list = vec![
        status(NotifyType::NAT_DETECTION_SOURCE_IP, 1),
        status(NotifyType::NAT_DETECTION_DESTINATION_IP, 2),
        nonce(0),
        status(NotifyType::NAT_DETECTION_SOURCE_IP, 3),
    ];
    let data: Vec<&[u8]> = list
        .notifies_of(NotifyType::NAT_DETECTION_SOURCE_IP)
        .map(|n| n.data.as_slice())
        .collect();
    assert_eq!(data, [&[1u8][..], &[3]]);
    assert_eq!(list.notifies().count(), 3);
    assert_eq!(
        list.notify(NotifyType::NAT_DETECTION_SOURCE_IP)
            .unwrap()
            .data,
        [1]
    );
    assert!(list.has_notify(NotifyType::NAT_DETECTION_DESTINATION_IP));
    assert_eq!(list.notifies_of(NotifyType::COOKIE).count(), 0);
    assert!(!list.has_notify(NotifyType::COOKIE));
}

#[test]
fn leading_notify_only_as_the_first_payload() {
    let first = vec![status(NotifyType::COOKIE, 7), nonce(0)];
    assert_eq!(first.leading_notify(NotifyType::COOKIE).unwrap().data, [7]);
    assert_eq!(first.leading_notify(NotifyType::COOKIE2), None);
    let later = vec![nonce(0), status(NotifyType::COOKIE, 7)];
    assert_eq!(later.leading_notify(NotifyType::COOKIE), None);
    assert!(later.has_notify(NotifyType::COOKIE));
    assert_eq!(
        Vec::<Payload>::new().leading_notify(NotifyType::COOKIE),
        None
    );
}

#[test]
fn error_notify_is_the_first_error_and_deletes_are_all() {
    let delete = |protocol| {
        Payload::Delete(DeletePayload {
            protocol,
            spi_size: 0,
            spis: vec![],
        })
    };
    let list = vec![
        status(NotifyType::COOKIE2, 0),
        delete(ProtocolId::ESP),
        status(NotifyType::TS_UNACCEPTABLE, 0),
        status(NotifyType::NO_PROPOSAL_CHOSEN, 0),
        delete(ProtocolId::IKE),
    ];
    assert_eq!(
        list.error_notify().unwrap().notify_type,
        NotifyType::TS_UNACCEPTABLE
    );
    let protocols: Vec<ProtocolId> = list.deletes().map(|d| d.protocol).collect();
    assert_eq!(protocols, [ProtocolId::ESP, ProtocolId::IKE]);
    assert_eq!(list.count(PayloadType::NOTIFY), 3);
}
