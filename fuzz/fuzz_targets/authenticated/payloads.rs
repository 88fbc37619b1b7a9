//! Fuzzed plaintext payload lists: every payload type an authenticated peer can put inside
//! SK, each either built from a template the responder accepts (our suites, a valid KE, the
//! Child SAs' real SPIs, selectors around the virtual IP) or from arbitrary fields, so the
//! fuzzer reaches both the accepting paths and every refusal after them.
//!
//! Sizes are capped so that every list emits without overflowing a length or count field
//! (the emit functions panic on those: only locally built values can be that large).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::ControlFlow;
use std::sync::LazyLock;

use arbitrary::{Arbitrary, Result, Unstructured};
use ipsec_server::crypto::{DhGroup, DhPrivate};
use ipsec_server::ike::fixtures::{esp_suite, ike_suite};
use ipsec_server::ike::initiator::Initiator;
use ipsec_server::wire::{
    self, Attribute, AttributeValue, AuthPayload, CpAttribute, CpPayload, DeletePayload, IdPayload,
    KePayload, NotifyPayload, NotifyType, Payload, PayloadType, Proposal, ProtocolId,
    TrafficSelector, Transform, TransformType,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// At most `N` octets.
#[derive(Debug, Clone)]
pub struct Bytes<const N: usize>(pub Vec<u8>);

impl<'a, const N: usize> Arbitrary<'a> for Bytes<N> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let len = u.int_in_range(0..=N)?.min(u.len());
        Ok(Self(u.bytes(len)?.to_vec()))
    }
}

/// At most `N` items.
#[derive(Debug, Clone)]
pub struct Few<T, const N: usize>(pub Vec<T>);

impl<'a, T: Arbitrary<'a>, const N: usize> Arbitrary<'a> for Few<T, N> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let mut items = Vec::new();
        u.arbitrary_loop(Some(0), Some(N as u32), |u| {
            items.push(T::arbitrary(u)?);
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(Self(items))
    }
}

/// One payload inside SK.
#[derive(Arbitrary, Debug, Clone)]
pub enum FPayload {
    Sa(Few<FProposal, 6>),
    Ke(FKe),
    IdI(FId),
    IdR(FId),
    Auth(FAuth),
    Nonce(FNonce),
    Notify(FNotify),
    Delete(FDelete),
    VendorId(Bytes<64>),
    TsI(FTs),
    TsR(FTs),
    Cp(FCp),
    /// Any payload type with any body: the decrypted-payload parser behind the ICV.
    Raw {
        payload_type: u8,
        body: Bytes<128>,
    },
}

#[derive(Arbitrary, Debug, Clone)]
pub enum FProposal {
    /// Our ESP suite (what the responder accepts), with its SPI, ESN and DH choices.
    Esp {
        spi: FChildSpi,
        esn: u8,
        dh: FDhTransform,
    },
    /// Our IKE suite with an SPI: an IKE SA rekey (§2.18).
    Ike { spi: FIkeSpi },
    Raw {
        number: u8,
        protocol: u8,
        spi: Bytes<12>,
        transforms: Few<FTransform, 10>,
    },
}

#[derive(Arbitrary, Debug, Clone)]
pub enum FDhTransform {
    Absent,
    /// DH transform ID NONE (no PFS).
    None,
    /// The configured group (2).
    Ours,
    Raw(u16),
}

/// The initiator's SPI of a Child SA.
#[derive(Arbitrary, Debug, Clone)]
pub enum FChildSpi {
    /// A new one, unique within the input.
    Fresh,
    /// The one of an existing Child SA (the responder's outbound SPI): a collision.
    Known(u8),
    Raw(u32),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum FIkeSpi {
    Fresh,
    Raw(u64),
    /// Any size but 8.
    Odd(Bytes<12>),
}

#[derive(Arbitrary, Debug, Clone)]
pub struct FTransform {
    pub transform_type: u8,
    pub id: u16,
    pub attributes: Few<FAttribute, 3>,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum FAttribute {
    KeyLength(u16),
    Tv { attr_type: u16, value: u16 },
    Tlv { attr_type: u16, value: Bytes<32> },
}

#[derive(Arbitrary, Debug, Clone)]
pub enum FKe {
    /// A valid group 2 public value.
    Valid,
    /// A valid public value under another group number.
    ValidAs(u16),
    /// 0, 1, p-1, p, all ones, one octet short or long.
    Edge(u8),
    Raw {
        group: u16,
        data: Bytes<300>,
    },
}

#[derive(Arbitrary, Debug, Clone)]
pub enum FNonce {
    Good,
    /// Any length up to 300 (16..=256 is valid).
    Len(u16, u8),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum FId {
    /// The harness's own identity (`fuzz`).
    Ours,
    Fqdn(Bytes<32>),
    Ipv4([u8; 4]),
    KeyId(Bytes<32>),
    Raw {
        id_type: u8,
        data: Bytes<64>,
    },
}

#[derive(Arbitrary, Debug, Clone)]
pub enum FAuth {
    /// The PSK AUTH value for the list's IDi (or ours): authenticates (IKE_AUTH only).
    Real,
    Raw {
        method: u8,
        data: Bytes<40>,
    },
}

#[derive(Arbitrary, Debug, Clone)]
pub struct FNotify {
    pub notify_type: FNotifyType,
    pub protocol: FProtocol,
    pub spi: FNotifySpi,
    pub data: Bytes<100>,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum FNotifyType {
    /// One of [`NOTIFY_TYPES`].
    Known(u8),
    Raw(u16),
}

/// The notify types the responder reads, and some it must ignore.
const NOTIFY_TYPES: &[NotifyType] = &[
    NotifyType::COOKIE2,
    NotifyType::REKEY_SA,
    NotifyType::UPDATE_SA_ADDRESSES,
    NotifyType::NAT_DETECTION_SOURCE_IP,
    NotifyType::NAT_DETECTION_DESTINATION_IP,
    NotifyType::MOBIKE_SUPPORTED,
    NotifyType::INITIAL_CONTACT,
    NotifyType::IKEV2_FRAGMENTATION_SUPPORTED,
    NotifyType::COOKIE,
    NotifyType::USE_TRANSPORT_MODE,
    NotifyType::ESP_TFC_PADDING_NOT_SUPPORTED,
    NotifyType::NON_FIRST_FRAGMENTS_ALSO,
    NotifyType::NO_ADDITIONAL_SAS,
    NotifyType::INVALID_KE_PAYLOAD,
    NotifyType::AUTHENTICATION_FAILED,
    NotifyType::TS_UNACCEPTABLE,
    NotifyType::NO_PROPOSAL_CHOSEN,
    NotifyType::INVALID_SYNTAX,
    NotifyType::ADDITIONAL_IP4_ADDRESS,
    NotifyType::NO_ADDITIONAL_ADDRESSES,
    NotifyType::SET_WINDOW_SIZE,
    NotifyType::CHILD_SA_NOT_FOUND,
];

impl FNotifyType {
    /// `ty`, which must be one of [`NOTIFY_TYPES`].
    pub fn of(ty: NotifyType) -> Self {
        let i = NOTIFY_TYPES.iter().position(|&t| t == ty);
        FNotifyType::Known(i.expect("a listed notify type") as u8)
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub enum FProtocol {
    None,
    Ike,
    Ah,
    Esp,
    Raw(u8),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum FNotifySpi {
    Empty,
    /// The responder's outbound SPI of Child SA n (what REKEY_SA names).
    Known(u8),
    /// Its inbound SPI (the wrong one).
    KnownInbound(u8),
    Raw(Bytes<16>),
}

#[derive(Arbitrary, Debug, Clone)]
pub struct FDelete {
    pub protocol: FProtocol,
    pub spi_size: FSpiSize,
    pub spis: FDeleteSpis,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum FSpiSize {
    Four,
    Zero,
    Eight,
    Raw(u8),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum FDeleteSpis {
    /// SPIs of existing Child SAs (outbound, or inbound when the flag is set) and raw ones.
    Some(Few<(u8, bool, Option<u32>), 8>),
    /// `count % 4001` consecutive SPIs from `start`, then the Child SAs' own.
    Many {
        count: u16,
        start: u32,
    },
    Raw(Few<Bytes<9>, 16>),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum FTs {
    /// 0.0.0.0/0, every protocol and port.
    Any,
    /// The virtual IP alone.
    Vip,
    /// The responder's local subnet (192.168.0.0/24).
    LocalSubnet,
    /// `count` IPv4 ranges from `start`, `step` apart and `width` wide (may wrap, may be
    /// reversed), for one protocol and port range.
    Many {
        count: u8,
        start: u32,
        step: u32,
        width: u32,
        protocol: u8,
        ports: (u16, u16),
    },
    List(Few<FSelector, 12>),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum FSelector {
    V4 {
        protocol: u8,
        ports: (u16, u16),
        start: u32,
        end: u32,
    },
    V6 {
        protocol: u8,
        ports: (u16, u16),
        start: u128,
        end: u128,
    },
    Unknown {
        ts_type: u8,
        body: Bytes<32>,
    },
}

#[derive(Arbitrary, Debug, Clone)]
pub struct FCp {
    /// 1..=4 are REQUEST, REPLY, SET, ACK.
    pub cfg_type: u8,
    pub attributes: Few<FCpAttribute, 64>,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct FCpAttribute {
    /// Below 16: a known attribute type; else the raw type.
    pub attr_type: u16,
    pub value: Bytes<20>,
}

/// What the payloads may refer to: the IKE SA and its Child SAs as the responder has them.
pub struct Ctx<'a> {
    pub ini: &'a Initiator,
    /// (inbound, outbound) SPIs of the responder's Child SAs (`Responder::sas`).
    pub children: Vec<(u32, u32)>,
    pub vip: Option<Ipv4Addr>,
    /// Next fresh SPI; unique within one input.
    pub next_spi: &'a mut u32,
}

/// A valid public value of group 2, the same for every input.
static VALID_KE: LazyLock<Vec<u8>> = LazyLock::new(|| {
    DhPrivate::generate(DhGroup::Modp1024, &mut StdRng::seed_from_u64(99))
        .public_value()
        .to_vec()
});

/// The identity the harness's initiator uses.
pub fn our_id() -> IdPayload {
    IdPayload {
        id_type: IdPayload::ID_FQDN,
        data: b"fuzz".to_vec(),
    }
}

/// The payloads of `list`, in order. `FAuth::Real` signs the list's first IDi (or ours).
pub fn build(list: &[FPayload], ctx: &mut Ctx) -> Vec<Payload> {
    let idi = list
        .iter()
        .find_map(|p| match p {
            FPayload::IdI(id) => Some(id.build()),
            _ => None,
        })
        .unwrap_or_else(our_id);
    list.iter().map(|p| p.build(ctx, &idi)).collect()
}

impl FPayload {
    fn build(&self, ctx: &mut Ctx, idi: &IdPayload) -> Payload {
        match self {
            FPayload::Sa(proposals) => Payload::Sa(
                proposals
                    .0
                    .iter()
                    .enumerate()
                    .map(|(i, p)| p.build(ctx, i as u8 + 1))
                    .collect(),
            ),
            FPayload::Ke(ke) => Payload::Ke(ke.build()),
            FPayload::IdI(id) => Payload::IdI(id.build()),
            FPayload::IdR(id) => Payload::IdR(id.build()),
            FPayload::Auth(FAuth::Real) => {
                Payload::Auth(ctx.ini.psk_auth(idi).unwrap_or(AuthPayload {
                    method: 2,
                    data: vec![0; 20],
                }))
            }
            FPayload::Auth(FAuth::Raw { method, data }) => Payload::Auth(AuthPayload {
                method: *method,
                data: data.0.clone(),
            }),
            FPayload::Nonce(FNonce::Good) => Payload::Nonce(vec![0x4e; 32]),
            FPayload::Nonce(FNonce::Len(len, fill)) => {
                Payload::Nonce(vec![*fill; usize::from(*len) % 301])
            }
            FPayload::Notify(n) => Payload::Notify(n.build(ctx)),
            FPayload::Delete(d) => Payload::Delete(d.build(ctx)),
            FPayload::VendorId(v) => Payload::VendorId(v.0.clone()),
            FPayload::TsI(ts) => Payload::TsI(ts.build(ctx)),
            FPayload::TsR(ts) => Payload::TsR(ts.build(ctx)),
            FPayload::Cp(cp) => Payload::Cp(cp.build()),
            FPayload::Raw { payload_type, body } => Payload::Opaque {
                payload_type: PayloadType(*payload_type),
                body: body.0.clone(),
            },
        }
    }
}

impl FProposal {
    fn build(&self, ctx: &mut Ctx, number: u8) -> Proposal {
        match self {
            FProposal::Esp { spi, esn, dh } => {
                let esp = esp_suite();
                let mut transforms = vec![
                    encr_transform(esp.encr),
                    Transform::new(TransformType::INTEG, esp.integ.transform_id()),
                ];
                match dh {
                    FDhTransform::Absent => {}
                    FDhTransform::None => {
                        transforms.push(Transform::new(TransformType::DH, wire::dh::NONE))
                    }
                    FDhTransform::Ours => {
                        transforms.push(Transform::new(TransformType::DH, ike_suite().dh.id()))
                    }
                    FDhTransform::Raw(id) => {
                        transforms.push(Transform::new(TransformType::DH, *id))
                    }
                }
                for (bit, id) in [(1, wire::esn::NO), (2, wire::esn::YES)] {
                    if esn & bit != 0 {
                        transforms.push(Transform::new(TransformType::ESN, id));
                    }
                }
                Proposal {
                    number,
                    protocol: ProtocolId::ESP,
                    spi: spi.build(ctx).to_be_bytes().to_vec(),
                    transforms,
                }
            }
            FProposal::Ike { spi } => {
                let s = ike_suite();
                Proposal {
                    number,
                    protocol: ProtocolId::IKE,
                    spi: match spi {
                        FIkeSpi::Fresh => {
                            *ctx.next_spi += 1;
                            (0x5eed_0000_0000_0000 | u64::from(*ctx.next_spi))
                                .to_be_bytes()
                                .to_vec()
                        }
                        FIkeSpi::Raw(v) => v.to_be_bytes().to_vec(),
                        FIkeSpi::Odd(b) => b.0.clone(),
                    },
                    transforms: vec![
                        encr_transform(s.encr),
                        Transform::new(TransformType::PRF, s.prf.transform_id()),
                        Transform::new(TransformType::INTEG, s.integ.transform_id()),
                        Transform::new(TransformType::DH, s.dh.id()),
                    ],
                }
            }
            FProposal::Raw {
                number,
                protocol,
                spi,
                transforms,
            } => Proposal {
                number: *number,
                protocol: ProtocolId(*protocol),
                spi: spi.0.clone(),
                transforms: transforms.0.iter().map(FTransform::build).collect(),
            },
        }
    }
}

fn encr_transform(encr: ipsec_server::crypto::EncrAlg) -> Transform {
    let t = Transform::new(TransformType::ENCR, encr.transform_id());
    match encr.key_length_attr() {
        Some(bits) => t.with_key_length(bits),
        None => t,
    }
}

impl FTransform {
    fn build(&self) -> Transform {
        Transform {
            transform_type: TransformType(self.transform_type % 8),
            id: self.id,
            attributes: self
                .attributes
                .0
                .iter()
                .map(|a| match a {
                    FAttribute::KeyLength(bits) => Attribute {
                        attr_type: Transform::KEY_LENGTH,
                        value: AttributeValue::Tv(*bits),
                    },
                    FAttribute::Tv { attr_type, value } => Attribute {
                        attr_type: *attr_type & 0x7fff,
                        value: AttributeValue::Tv(*value),
                    },
                    FAttribute::Tlv { attr_type, value } => Attribute {
                        attr_type: *attr_type & 0x7fff,
                        value: AttributeValue::Tlv(value.0.clone()),
                    },
                })
                .collect(),
        }
    }
}

impl FChildSpi {
    fn build(&self, ctx: &mut Ctx) -> u32 {
        match self {
            FChildSpi::Fresh => {
                *ctx.next_spi += 1;
                0x4000_0000 | *ctx.next_spi
            }
            FChildSpi::Known(i) => known(ctx, *i).map_or(0x1234, |(_, out)| out),
            FChildSpi::Raw(v) => *v,
        }
    }
}

/// Child SA `i` (modulo their number), if there is one.
fn known(ctx: &Ctx, i: u8) -> Option<(u32, u32)> {
    (!ctx.children.is_empty()).then(|| ctx.children[usize::from(i) % ctx.children.len()])
}

impl FKe {
    fn build(&self) -> KePayload {
        let group = ike_suite().dh.id();
        match self {
            FKe::Valid => KePayload {
                group,
                data: VALID_KE.clone(),
            },
            FKe::ValidAs(g) => KePayload {
                group: *g,
                data: VALID_KE.clone(),
            },
            FKe::Edge(which) => {
                let len = VALID_KE.len();
                let p = ipsec_server::crypto::dh_internals::prime(ike_suite().dh);
                let minus = |k: u8| {
                    let mut v = p.clone();
                    // p ends in 0xff..ff: subtracting a small k does not borrow.
                    let last = v.len() - 1;
                    v[last] -= k;
                    v
                };
                let data = match which % 8 {
                    0 => vec![0; len],
                    1 => {
                        let mut v = vec![0; len];
                        v[len - 1] = 1;
                        v
                    }
                    2 => minus(1),
                    3 => p.clone(),
                    4 => vec![0xff; len],
                    5 => VALID_KE[1..].to_vec(),
                    6 => [&[0][..], &VALID_KE[..]].concat(),
                    _ => minus(2),
                };
                KePayload { group, data }
            }
            FKe::Raw { group, data } => KePayload {
                group: *group,
                data: data.0.clone(),
            },
        }
    }
}

impl FId {
    pub fn build(&self) -> IdPayload {
        let (id_type, data) = match self {
            FId::Ours => return our_id(),
            FId::Fqdn(b) => (IdPayload::ID_FQDN, b.0.clone()),
            FId::Ipv4(a) => (IdPayload::ID_IPV4_ADDR, a.to_vec()),
            FId::KeyId(b) => (IdPayload::ID_KEY_ID, b.0.clone()),
            FId::Raw { id_type, data } => (*id_type, data.0.clone()),
        };
        IdPayload { id_type, data }
    }
}

impl FProtocol {
    fn build(&self) -> ProtocolId {
        match self {
            FProtocol::None => ProtocolId::NONE,
            FProtocol::Ike => ProtocolId::IKE,
            FProtocol::Ah => ProtocolId::AH,
            FProtocol::Esp => ProtocolId::ESP,
            FProtocol::Raw(p) => ProtocolId(*p),
        }
    }
}

impl FNotify {
    fn build(&self, ctx: &Ctx) -> NotifyPayload {
        let notify_type = match self.notify_type {
            FNotifyType::Known(i) => NOTIFY_TYPES[usize::from(i) % NOTIFY_TYPES.len()],
            FNotifyType::Raw(t) => NotifyType(t),
        };
        let spi = match &self.spi {
            FNotifySpi::Empty => Vec::new(),
            FNotifySpi::Known(i) => known(ctx, *i)
                .map_or(0x1234, |(_, out)| out)
                .to_be_bytes()
                .to_vec(),
            FNotifySpi::KnownInbound(i) => known(ctx, *i)
                .map_or(0x1234, |(inb, _)| inb)
                .to_be_bytes()
                .to_vec(),
            FNotifySpi::Raw(b) => b.0.clone(),
        };
        NotifyPayload {
            protocol: self.protocol.build(),
            spi,
            notify_type,
            data: self.data.0.clone(),
        }
    }
}

impl FDelete {
    fn build(&self, ctx: &Ctx) -> DeletePayload {
        let spi_size = match self.spi_size {
            FSpiSize::Four => 4,
            FSpiSize::Zero => 0,
            FSpiSize::Eight => 8,
            FSpiSize::Raw(n) => n,
        };
        let spis = match &self.spis {
            FDeleteSpis::Some(list) => list
                .0
                .iter()
                .map(|(i, inbound, raw)| {
                    let spi = raw.unwrap_or_else(|| {
                        known(ctx, *i).map_or(0x1234, |(inb, out)| if *inbound { inb } else { out })
                    });
                    spi.to_be_bytes().to_vec()
                })
                .collect(),
            FDeleteSpis::Many { count, start } => (0..u32::from(*count % 4001))
                .map(|k| start.wrapping_add(k).to_be_bytes().to_vec())
                .chain(
                    ctx.children
                        .iter()
                        .map(|(_, out)| out.to_be_bytes().to_vec()),
                )
                .collect(),
            FDeleteSpis::Raw(list) => list.0.iter().map(|b| b.0.clone()).collect(),
        };
        DeletePayload {
            protocol: self.protocol.build(),
            spi_size,
            spis,
        }
    }
}

impl FTs {
    fn build(&self, ctx: &Ctx) -> Vec<TrafficSelector> {
        let v4 = |protocol, (start_port, end_port): (u16, u16), start: u32, end: u32| {
            TrafficSelector::Ipv4 {
                ip_protocol: protocol,
                start_port,
                end_port,
                start: Ipv4Addr::from(start),
                end: Ipv4Addr::from(end),
            }
        };
        match self {
            FTs::Any => vec![v4(0, (0, 0xffff), 0, u32::MAX)],
            FTs::Vip => {
                let vip = u32::from(ctx.vip.unwrap_or(Ipv4Addr::new(10, 0, 0, 1)));
                vec![v4(0, (0, 0xffff), vip, vip)]
            }
            FTs::LocalSubnet => vec![v4(0, (0, 0xffff), 0xc0a8_0000, 0xc0a8_00ff)],
            FTs::Many {
                count,
                start,
                step,
                width,
                protocol,
                ports,
            } => (0..u32::from(*count))
                .map(|k| {
                    let s = start.wrapping_add(step.wrapping_mul(k));
                    v4(*protocol, *ports, s, s.wrapping_add(*width))
                })
                .collect(),
            FTs::List(list) => list
                .0
                .iter()
                .map(|s| match s {
                    FSelector::V4 {
                        protocol,
                        ports,
                        start,
                        end,
                    } => v4(*protocol, *ports, *start, *end),
                    FSelector::V6 {
                        protocol,
                        ports,
                        start,
                        end,
                    } => TrafficSelector::Ipv6 {
                        ip_protocol: *protocol,
                        start_port: ports.0,
                        end_port: ports.1,
                        start: Ipv6Addr::from(*start),
                        end: Ipv6Addr::from(*end),
                    },
                    FSelector::Unknown { ts_type, body } => TrafficSelector::Unknown {
                        ts_type: *ts_type,
                        body: body.0.clone(),
                    },
                })
                .collect(),
        }
    }
}

impl FCp {
    fn build(&self) -> CpPayload {
        CpPayload {
            cfg_type: self.cfg_type,
            attributes: self
                .attributes
                .0
                .iter()
                .map(|a| CpAttribute {
                    attr_type: a.attr_type & 0x7fff,
                    value: a.value.0.clone(),
                })
                .collect(),
        }
    }
}
