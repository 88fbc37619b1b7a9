//! The payload chain (RFC 7296 §3.2) and the payloads with a flat body (§3.4–§3.12, §3.14,
//! RFC 7383 §2.5). SA, TS and CP bodies live in `sa.rs`, `selector.rs` and `cp.rs`.
//!
//! Invariants: each payload body is parsed from a reader bounded by the payload's own
//! Length and must be consumed exactly; the chain must end exactly at the end of its buffer
//! (Next Payload NONE), or with an SK/SKF payload, which must be the last one (RFC 7296
//! §3.14, RFC 7383 §2.5) and whose Next Payload names its first inner payload. On emit the
//! chain, lengths and counts are computed from the values; the critical bit is sent as 0.

use super::cp::CpPayload;
use super::reader::{all_or_nothing, count, with_u16_length, Counted, Reader};
use super::sa::{emit_proposals, parse_proposals, Proposal};
use super::selector::{emit_selectors, parse_selectors, TrafficSelector};
use super::{NotifyType, PayloadType, ProtocolId, WireError};

/// Size of the generic payload header (RFC 7296 §3.2).
pub const GENERIC_HEADER_LEN: usize = 4;
/// The critical bit in the generic payload header's second octet (RFC 7296 §3.2).
pub const CRITICAL: u8 = 0x80;

/// One payload of a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// RFC 7296 §3.3
    Sa(Vec<Proposal>),
    /// RFC 7296 §3.4
    Ke(KePayload),
    /// RFC 7296 §3.5
    IdI(IdPayload),
    /// RFC 7296 §3.5
    IdR(IdPayload),
    /// RFC 7296 §3.8
    Auth(AuthPayload),
    /// Nonce Data (RFC 7296 §3.9); its size (§2.10) is for the IKE layer to check.
    Nonce(Vec<u8>),
    /// RFC 7296 §3.10
    Notify(NotifyPayload),
    /// RFC 7296 §3.11
    Delete(DeletePayload),
    /// Vendor ID data (RFC 7296 §3.12)
    VendorId(Vec<u8>),
    /// RFC 7296 §3.13
    TsI(Vec<TrafficSelector>),
    /// RFC 7296 §3.13
    TsR(Vec<TrafficSelector>),
    /// RFC 7296 §3.15
    Cp(CpPayload),
    /// RFC 7296 §3.14
    Sk(SkPayload),
    /// RFC 7383 §2.5
    Skf(SkfPayload),
    /// CERT, CERTREQ, EAP and unknown non-critical types: the body as received.
    Opaque {
        payload_type: PayloadType,
        body: Vec<u8>,
    },
}

/// Key Exchange payload (RFC 7296 §3.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KePayload {
    /// Diffie-Hellman Group Num (a [`super::dh`] transform ID).
    pub group: u16,
    pub data: Vec<u8>,
}

/// Identification payload, IDi or IDr (RFC 7296 §3.5).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdPayload {
    pub id_type: u8,
    pub data: Vec<u8>,
}

/// Authentication payload (RFC 7296 §3.8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthPayload {
    pub method: u8,
    pub data: Vec<u8>,
}

/// Notify payload (RFC 7296 §3.10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyPayload {
    pub protocol: ProtocolId,
    /// Its length is the SPI Size field.
    pub spi: Vec<u8>,
    pub notify_type: NotifyType,
    pub data: Vec<u8>,
}

/// Delete payload (RFC 7296 §3.11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletePayload {
    pub protocol: ProtocolId,
    /// 0 for IKE, 4 for ESP/AH. Every SPI in `spis` is this long (parse guarantees it;
    /// emit writes `spis` as given).
    pub spi_size: u8,
    pub spis: Vec<Vec<u8>>,
}

/// Encrypted and Authenticated payload (RFC 7296 §3.14), still encrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkPayload {
    /// Type of the first payload inside (the SK payload's Next Payload field).
    pub first_inner: PayloadType,
    /// Initialization Vector | Encrypted IKE Payloads | Padding | Pad Length | ICV.
    pub body: Vec<u8>,
}

/// Encrypted and Authenticated Fragment payload (RFC 7383 §2.5), still encrypted.
/// The fragment numbers are data: 1 ≤ number ≤ total is the reassembler's to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkfPayload {
    /// The first inner payload's type in fragment 1, 0 in the others (RFC 7383 §2.5).
    pub first_inner: PayloadType,
    pub fragment_number: u16,
    pub total_fragments: u16,
    /// Initialization Vector | Encrypted content | Padding | Pad Length | ICV.
    pub body: Vec<u8>,
}

impl Payload {
    pub fn payload_type(&self) -> PayloadType {
        match self {
            Payload::Sa(_) => PayloadType::SA,
            Payload::Ke(_) => PayloadType::KE,
            Payload::IdI(_) => PayloadType::IDI,
            Payload::IdR(_) => PayloadType::IDR,
            Payload::Auth(_) => PayloadType::AUTH,
            Payload::Nonce(_) => PayloadType::NONCE,
            Payload::Notify(_) => PayloadType::NOTIFY,
            Payload::Delete(_) => PayloadType::DELETE,
            Payload::VendorId(_) => PayloadType::VENDOR_ID,
            Payload::TsI(_) => PayloadType::TSI,
            Payload::TsR(_) => PayloadType::TSR,
            Payload::Cp(_) => PayloadType::CP,
            Payload::Sk(_) => PayloadType::SK,
            Payload::Skf(_) => PayloadType::SKF,
            Payload::Opaque { payload_type, .. } => *payload_type,
        }
    }

    /// The proposals of an SA payload, `None` for another kind. Each `as_*` accessor gives
    /// the body of one kind: the kinds [`PayloadList::of_kind`] selects by.
    pub fn as_sa(&self) -> Option<&[Proposal]> {
        match self {
            Payload::Sa(proposals) => Some(proposals),
            _ => None,
        }
    }

    pub fn as_ke(&self) -> Option<&KePayload> {
        match self {
            Payload::Ke(ke) => Some(ke),
            _ => None,
        }
    }

    pub fn as_id_i(&self) -> Option<&IdPayload> {
        match self {
            Payload::IdI(id) => Some(id),
            _ => None,
        }
    }

    pub fn as_id_r(&self) -> Option<&IdPayload> {
        match self {
            Payload::IdR(id) => Some(id),
            _ => None,
        }
    }

    pub fn as_auth(&self) -> Option<&AuthPayload> {
        match self {
            Payload::Auth(auth) => Some(auth),
            _ => None,
        }
    }

    pub fn as_nonce(&self) -> Option<&[u8]> {
        match self {
            Payload::Nonce(nonce) => Some(nonce),
            _ => None,
        }
    }

    pub fn as_notify(&self) -> Option<&NotifyPayload> {
        match self {
            Payload::Notify(n) => Some(n),
            _ => None,
        }
    }

    pub fn as_delete(&self) -> Option<&DeletePayload> {
        match self {
            Payload::Delete(d) => Some(d),
            _ => None,
        }
    }

    pub fn as_ts_i(&self) -> Option<&[TrafficSelector]> {
        match self {
            Payload::TsI(ts) => Some(ts),
            _ => None,
        }
    }

    pub fn as_ts_r(&self) -> Option<&[TrafficSelector]> {
        match self {
            Payload::TsR(ts) => Some(ts),
            _ => None,
        }
    }

    pub fn as_cp(&self) -> Option<&CpPayload> {
        match self {
            Payload::Cp(cp) => Some(cp),
            _ => None,
        }
    }

    pub fn as_sk(&self) -> Option<&SkPayload> {
        match self {
            Payload::Sk(sk) => Some(sk),
            _ => None,
        }
    }

    pub fn as_skf(&self) -> Option<&SkfPayload> {
        match self {
            Payload::Skf(skf) => Some(skf),
            _ => None,
        }
    }

    /// A notify without SPI (protocol 0), as most status and error notifies are.
    pub fn notify(notify_type: NotifyType, data: Vec<u8>) -> Payload {
        Payload::Notify(NotifyPayload {
            protocol: ProtocolId::NONE,
            spi: Vec::new(),
            notify_type,
            data,
        })
    }
}

impl IdPayload {
    /// RFC 7296 §3.5
    pub const ID_IPV4_ADDR: u8 = 0x01;
    /// RFC 7296 §3.5
    pub const ID_FQDN: u8 = 0x02;
    /// RFC 7296 §3.5
    pub const ID_RFC822_ADDR: u8 = 0x03;
    /// RFC 7296 §3.5
    pub const ID_IPV6_ADDR: u8 = 0x05;
    /// RFC 7296 §3.5
    pub const ID_DER_ASN1_DN: u8 = 0x09;
    /// RFC 7296 §3.5
    pub const ID_DER_ASN1_GN: u8 = 0x0a;
    /// RFC 7296 §3.5
    pub const ID_KEY_ID: u8 = 0x0b;

    /// The payload body after the generic header: ID Type, three reserved zero octets,
    /// Identification Data. This is "RestOfInitIDPayload"/"RestOfRespIDPayload", the input
    /// of MACedIDForI/MACedIDForR in the AUTH computation (RFC 7296 §2.15).
    pub fn body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.data.len());
        self.emit_body(&mut out);
        out
    }

    fn parse(r: &mut Reader<'_>) -> Result<IdPayload, WireError> {
        let id_type = r.u8()?;
        r.take(3)?;
        Ok(IdPayload {
            id_type,
            data: r.rest().to_vec(),
        })
    }

    fn emit_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.id_type, 0x00, 0x00, 0x00]);
        out.extend_from_slice(&self.data);
    }
}

impl AuthPayload {
    /// RSA Digital Signature (RFC 7296 §3.8)
    pub const RSA_SIG: u8 = 0x01;
    /// Shared Key Message Integrity Code (RFC 7296 §3.8)
    pub const SHARED_KEY_MIC: u8 = 0x02;
    /// DSS Digital Signature (RFC 7296 §3.8)
    pub const DSS_SIG: u8 = 0x03;
    /// Generic Digital Signature (RFC 7427 §3)
    pub const DIGITAL_SIGNATURE: u8 = 0x0e;
}

/// Parses a payload chain whose first payload is of type `first`: the body of an IKE
/// message after the header, or the decrypted content of an SK payload (RFC 7296 §3.14)
/// with `first` = its `first_inner`.
pub fn parse_payloads(first: PayloadType, buf: &[u8]) -> Result<Vec<Payload>, WireError> {
    let mut r = Reader::new(buf);
    let mut payloads = Vec::new();
    let mut this = first;
    while this != PayloadType::NONE {
        let next = PayloadType(r.u8()?);
        let critical = r.u8()? & CRITICAL != 0;
        let length = usize::from(r.u16()?);
        let mut body = r.nested(length, GENERIC_HEADER_LEN, "payload")?;
        let payload = parse_body(this, next, critical, &mut body)?;
        body.finish()?;
        let encrypted = matches!(payload, Payload::Sk(_) | Payload::Skf(_));
        payloads.push(payload);
        if encrypted {
            // Its Next Payload names the first inner payload, not a following one.
            if !r.is_empty() {
                return Err(WireError::InvalidSyntax("SK/SKF payload is not the last"));
            }
            break;
        }
        this = next;
    }
    r.finish()?;
    Ok(payloads)
}

/// Appends the chain: each payload's generic header (Next Payload from the following
/// payload, or NONE; for SK/SKF the first inner type), then its body. Returns the first
/// payload's type, for the preceding Next Payload field (NONE if `payloads` is empty).
///
/// SK/SKF belong last; one placed earlier is written as given and will not parse back.
///
/// Values no parse produces are [`WireError::TooLong`], with nothing appended to `out`: a
/// payload over the 16-bit Payload Length (RFC 7296 §3.2), more than 255 transforms in a
/// proposal or traffic selectors in a TS payload, an SPI over 255 octets, more than 65535
/// SPIs in a DELETE.
pub fn emit_payloads(payloads: &[Payload], out: &mut Vec<u8>) -> Result<PayloadType, WireError> {
    all_or_nothing(out, |out| {
        for (i, payload) in payloads.iter().enumerate() {
            let next = match payload {
                Payload::Sk(sk) => sk.first_inner,
                Payload::Skf(skf) => skf.first_inner,
                _ => payloads
                    .get(i + 1)
                    .map_or(PayloadType::NONE, Payload::payload_type),
            };
            let start = out.len();
            out.extend_from_slice(&[next.0, 0x00]);
            with_u16_length(out, Counted::From(start), "payload", |out| {
                emit_body(payload, out)
            })?;
        }
        Ok(payloads
            .first()
            .map_or(PayloadType::NONE, Payload::payload_type))
    })
}

/// Lookups over a payload list: a message's, or the decrypted content of its SK payload.
///
/// The single lookups (`sa`, `nonce`, …) give the first payload of their kind; a caller
/// that must keep another one (the last, every one) reads [`Self::of_kind`] with the same
/// kind, so no exchange walks the list by hand.
pub trait PayloadList {
    fn payload_slice(&self) -> &[Payload];

    /// Every payload of one kind, in order: `list.of_kind(Payload::as_nonce)`.
    fn of_kind<'a, T: ?Sized + 'a>(
        &'a self,
        kind: fn(&'a Payload) -> Option<&'a T>,
    ) -> impl Iterator<Item = &'a T> {
        self.payload_slice().iter().filter_map(kind)
    }

    fn notifies(&self) -> impl Iterator<Item = &NotifyPayload> {
        self.of_kind(Payload::as_notify)
    }

    /// Every notify of this type, in order.
    fn notifies_of(&self, notify_type: NotifyType) -> impl Iterator<Item = &NotifyPayload> {
        self.notifies()
            .filter(move |n| n.notify_type == notify_type)
    }

    /// The first notify of this type.
    fn notify(&self, notify_type: NotifyType) -> Option<&NotifyPayload> {
        self.notifies_of(notify_type).next()
    }

    fn has_notify(&self, notify_type: NotifyType) -> bool {
        self.notify(notify_type).is_some()
    }

    /// The notify of this type when it is the first payload of the list, where RFC 7296
    /// §2.6 puts a COOKIE; `None` when it is elsewhere or absent.
    fn leading_notify(&self, notify_type: NotifyType) -> Option<&NotifyPayload> {
        self.payload_slice()
            .first()
            .and_then(Payload::as_notify)
            .filter(|n| n.notify_type == notify_type)
    }

    /// The first error notify (RFC 7296 §3.10.1), if any.
    fn error_notify(&self) -> Option<&NotifyPayload> {
        self.notifies().find(|n| n.notify_type.is_error())
    }

    /// How many payloads of this type.
    fn count(&self, payload_type: PayloadType) -> usize {
        self.payload_slice()
            .iter()
            .filter(|p| p.payload_type() == payload_type)
            .count()
    }

    fn sa(&self) -> Option<&[Proposal]> {
        self.of_kind(Payload::as_sa).next()
    }

    fn ke(&self) -> Option<&KePayload> {
        self.of_kind(Payload::as_ke).next()
    }

    fn nonce(&self) -> Option<&[u8]> {
        self.of_kind(Payload::as_nonce).next()
    }

    fn id_i(&self) -> Option<&IdPayload> {
        self.of_kind(Payload::as_id_i).next()
    }

    fn id_r(&self) -> Option<&IdPayload> {
        self.of_kind(Payload::as_id_r).next()
    }

    fn auth(&self) -> Option<&AuthPayload> {
        self.of_kind(Payload::as_auth).next()
    }

    fn ts_i(&self) -> Option<&[TrafficSelector]> {
        self.of_kind(Payload::as_ts_i).next()
    }

    fn ts_r(&self) -> Option<&[TrafficSelector]> {
        self.of_kind(Payload::as_ts_r).next()
    }

    fn cp(&self) -> Option<&CpPayload> {
        self.of_kind(Payload::as_cp).next()
    }

    fn deletes(&self) -> impl Iterator<Item = &DeletePayload> {
        self.of_kind(Payload::as_delete)
    }

    fn sk(&self) -> Option<&SkPayload> {
        self.of_kind(Payload::as_sk).next()
    }

    fn skf(&self) -> Option<&SkfPayload> {
        self.of_kind(Payload::as_skf).next()
    }
}

impl PayloadList for [Payload] {
    fn payload_slice(&self) -> &[Payload] {
        self
    }
}

impl PayloadList for Vec<Payload> {
    fn payload_slice(&self) -> &[Payload] {
        self
    }
}

/// One body, bounded by the payload's Length; `next` is the raw Next Payload field (the
/// first inner type for SK/SKF).
fn parse_body(
    this: PayloadType,
    next: PayloadType,
    critical: bool,
    r: &mut Reader<'_>,
) -> Result<Payload, WireError> {
    Ok(match this {
        PayloadType::SA => Payload::Sa(parse_proposals(r)?),
        PayloadType::KE => {
            let group = r.u16()?;
            r.take(2)?;
            Payload::Ke(KePayload {
                group,
                data: r.rest().to_vec(),
            })
        }
        PayloadType::IDI => Payload::IdI(IdPayload::parse(r)?),
        PayloadType::IDR => Payload::IdR(IdPayload::parse(r)?),
        PayloadType::AUTH => {
            let method = r.u8()?;
            r.take(3)?;
            Payload::Auth(AuthPayload {
                method,
                data: r.rest().to_vec(),
            })
        }
        PayloadType::NONCE => Payload::Nonce(r.rest().to_vec()),
        PayloadType::NOTIFY => {
            let protocol = ProtocolId(r.u8()?);
            let spi_size = r.u8()?;
            let notify_type = NotifyType(r.u16()?);
            let spi = r
                .take_declared(usize::from(spi_size), "notify SPI")?
                .to_vec();
            Payload::Notify(NotifyPayload {
                protocol,
                spi,
                notify_type,
                data: r.rest().to_vec(),
            })
        }
        PayloadType::DELETE => Payload::Delete(parse_delete(r)?),
        PayloadType::VENDOR_ID => Payload::VendorId(r.rest().to_vec()),
        PayloadType::TSI => Payload::TsI(parse_selectors(r)?),
        PayloadType::TSR => Payload::TsR(parse_selectors(r)?),
        PayloadType::CP => Payload::Cp(CpPayload::parse(r)?),
        PayloadType::SK => Payload::Sk(SkPayload {
            first_inner: next,
            body: r.rest().to_vec(),
        }),
        PayloadType::SKF => Payload::Skf(SkfPayload {
            first_inner: next,
            fragment_number: r.u16()?,
            total_fragments: r.u16()?,
            body: r.rest().to_vec(),
        }),
        PayloadType::CERT | PayloadType::CERTREQ | PayloadType::EAP => Payload::Opaque {
            payload_type: this,
            body: r.rest().to_vec(),
        },
        // RFC 7296 §2.5: skip an unrecognised payload unless it is critical.
        _ if critical => return Err(WireError::UnsupportedCriticalPayload(this.0)),
        _ => Payload::Opaque {
            payload_type: this,
            body: r.rest().to_vec(),
        },
    })
}

/// RFC 7296 §3.11: Protocol ID, SPI Size, Num of SPIs, then exactly that many SPIs.
fn parse_delete(r: &mut Reader<'_>) -> Result<DeletePayload, WireError> {
    let protocol = ProtocolId(r.u8()?);
    let spi_size = r.u8()?;
    let count = usize::from(r.u16()?);
    let size = usize::from(spi_size);
    if size == 0 && count != 0 {
        return Err(WireError::InvalidSyntax("delete: SPIs of size 0"));
    }
    if size.checked_mul(count) != Some(r.remaining()) {
        return Err(WireError::BadLength {
            what: "delete SPIs",
            length: r.remaining(),
        });
    }
    let mut spis = Vec::new();
    for _ in 0..count {
        spis.push(r.take(size)?.to_vec());
    }
    Ok(DeletePayload {
        protocol,
        spi_size,
        spis,
    })
}

fn emit_body(payload: &Payload, out: &mut Vec<u8>) -> Result<(), WireError> {
    match payload {
        Payload::Sa(proposals) => emit_proposals(proposals, out)?,
        Payload::Ke(ke) => {
            out.extend_from_slice(&ke.group.to_be_bytes());
            out.extend_from_slice(&[0x00, 0x00]);
            out.extend_from_slice(&ke.data);
        }
        Payload::IdI(id) | Payload::IdR(id) => id.emit_body(out),
        Payload::Auth(auth) => {
            out.extend_from_slice(&[auth.method, 0x00, 0x00, 0x00]);
            out.extend_from_slice(&auth.data);
        }
        Payload::Nonce(data) | Payload::VendorId(data) => out.extend_from_slice(data),
        Payload::Notify(n) => {
            out.extend_from_slice(&[n.protocol.0, count(n.spi.len(), "notify SPI Size")?]);
            out.extend_from_slice(&n.notify_type.0.to_be_bytes());
            out.extend_from_slice(&n.spi);
            out.extend_from_slice(&n.data);
        }
        Payload::Delete(d) => {
            out.extend_from_slice(&[d.protocol.0, d.spi_size]);
            out.extend_from_slice(&count::<u16>(d.spis.len(), "Num of SPIs")?.to_be_bytes());
            for spi in &d.spis {
                out.extend_from_slice(spi);
            }
        }
        Payload::TsI(ts) | Payload::TsR(ts) => emit_selectors(ts, out)?,
        Payload::Cp(cp) => cp.emit_body(out)?,
        Payload::Sk(sk) => out.extend_from_slice(&sk.body),
        Payload::Skf(skf) => {
            out.extend_from_slice(&skf.fragment_number.to_be_bytes());
            out.extend_from_slice(&skf.total_fragments.to_be_bytes());
            out.extend_from_slice(&skf.body);
        }
        Payload::Opaque { body, .. } => out.extend_from_slice(body),
    }
    Ok(())
}
