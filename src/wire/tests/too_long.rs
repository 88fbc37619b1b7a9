//! Values only local code can build, too long or too many for the field that carries their
//! length or count: each is a [`WireError::TooLong`] at exactly the field's limit, never a
//! panic, and a failed emit appends nothing.

use std::net::Ipv4Addr;

use super::super::*;
use super::payloads::message_with;

/// Generic payload header (4) and Protocol ID, SPI Size, Notify Message Type (4)
/// (RFC 7296 §3.2, §3.10).
const NOTIFY_OVERHEAD: usize = GENERIC_HEADER_LEN + 4;

fn selectors(n: usize) -> Vec<TrafficSelector> {
    (0..n)
        .map(|i| {
            let a = Ipv4Addr::from(0x0a00_0000 + i as u32);
            TrafficSelector::ipv4_range(a, a)
        })
        .collect()
}

fn notify_with(data_len: usize) -> Payload {
    Payload::notify(NotifyType::NAT_DETECTION_SOURCE_IP, vec![0xab; data_len])
}

/// `emit_payloads` into a buffer that already holds a byte, checking that an error leaves
/// it as it was.
fn emit(payloads: &[Payload]) -> Result<Vec<u8>, WireError> {
    let mut out = vec![0xee];
    let result = emit_payloads(payloads, &mut out);
    if result.is_err() {
        assert_eq!(out, [0xee], "a failed emit appended bytes");
    }
    result.map(|_| out.split_off(1))
}

#[test]
fn number_of_tss_is_255_at_most() {
    for ts in [Payload::TsI(selectors(255)), Payload::TsR(selectors(255))] {
        let bytes = emit(std::slice::from_ref(&ts)).unwrap();
        assert_eq!(bytes[4], 0xff);
        assert_eq!(parse_payloads(ts.payload_type(), &bytes), Ok(vec![ts]));
    }
    let payloads = [Payload::Nonce(vec![0x01; 32]), Payload::TsR(selectors(256))];
    assert_eq!(
        emit(&payloads),
        Err(WireError::TooLong {
            what: "Number of TSs",
            len: 256
        })
    );
}

#[test]
fn payload_length_is_65535_at_most() {
    let fits = notify_with(0xffff - NOTIFY_OVERHEAD);
    let bytes = emit(std::slice::from_ref(&fits)).unwrap();
    assert_eq!(bytes.len(), 0xffff);
    assert_eq!(bytes[2..4], [0xff, 0xff]);
    assert_eq!(parse_payloads(PayloadType::NOTIFY, &bytes), Ok(vec![fits]));

    let payloads = [
        Payload::notify(NotifyType::INITIAL_CONTACT, Vec::new()),
        notify_with(0x1_0000 - NOTIFY_OVERHEAD),
    ];
    assert_eq!(
        emit(&payloads),
        Err(WireError::TooLong {
            what: "payload",
            len: 0x1_0000
        })
    );
}

#[test]
fn message_emit_reports_the_payload_error_and_appends_nothing() {
    let msg = message_with(vec![notify_with(0x1_0000 - NOTIFY_OVERHEAD)]);
    let too_long = Err(WireError::TooLong {
        what: "payload",
        len: 0x1_0000,
    });
    assert_eq!(msg.emit(), too_long);
    let mut out = vec![0x01, 0x02];
    assert_eq!(msg.emit_into(&mut out), too_long.map(|_: Vec<u8>| ()));
    assert_eq!(out, [0x01, 0x02]);

    let msg = message_with(vec![Payload::TsI(selectors(256))]);
    assert!(matches!(
        msg.emit(),
        Err(WireError::TooLong {
            what: "Number of TSs",
            ..
        })
    ));
}

#[test]
fn proposal_counts_and_spi_sizes_are_one_octet() {
    let proposal = |spi_len: usize, transforms: usize| {
        Payload::Sa(vec![Proposal {
            number: 1,
            protocol: ProtocolId::ESP,
            spi: vec![0xc1; spi_len],
            transforms: vec![Transform::new(TransformType::ENCR, encr::AES_CBC); transforms],
        }])
    };
    assert!(emit(&[proposal(255, 255)]).is_ok());
    assert_eq!(
        emit(&[proposal(4, 256)]),
        Err(WireError::TooLong {
            what: "Num Transforms",
            len: 256
        })
    );
    assert_eq!(
        emit(&[proposal(256, 1)]),
        Err(WireError::TooLong {
            what: "proposal SPI Size",
            len: 256
        })
    );
    let notify = Payload::Notify(NotifyPayload {
        protocol: ProtocolId::ESP,
        spi: vec![0x01; 256],
        notify_type: NotifyType::REKEY_SA,
        data: Vec::new(),
    });
    assert_eq!(
        emit(&[notify]),
        Err(WireError::TooLong {
            what: "notify SPI Size",
            len: 256
        })
    );
}

#[test]
fn nested_lengths_and_delete_counts_are_checked() {
    let cp = Payload::Cp(CpPayload {
        cfg_type: CpPayload::CFG_REPLY,
        attributes: vec![CpAttribute::new(
            CpAttribute::APPLICATION_VERSION,
            vec![0x61; 0x1_0000],
        )],
    });
    assert_eq!(
        emit(&[cp]),
        Err(WireError::TooLong {
            what: "configuration attribute",
            len: 0x1_0000
        })
    );
    let attribute = Attribute {
        attr_type: 0x0001,
        value: AttributeValue::Tlv(vec![0x00; 0x1_0000]),
    };
    let sa = Payload::Sa(vec![Proposal {
        number: 1,
        protocol: ProtocolId::IKE,
        spi: Vec::new(),
        transforms: vec![Transform {
            attributes: vec![attribute],
            ..Transform::new(TransformType::ENCR, encr::AES_CBC)
        }],
    }]);
    assert_eq!(
        emit(&[sa]),
        Err(WireError::TooLong {
            what: "transform attribute",
            len: 0x1_0000
        })
    );
    let delete = |n: usize| {
        Payload::Delete(DeletePayload {
            protocol: ProtocolId::ESP,
            spi_size: 0,
            spis: vec![Vec::new(); n],
        })
    };
    assert!(emit(&[delete(0xffff)]).is_ok());
    assert_eq!(
        emit(&[delete(0x1_0000)]),
        Err(WireError::TooLong {
            what: "Num of SPIs",
            len: 0x1_0000
        })
    );
}
