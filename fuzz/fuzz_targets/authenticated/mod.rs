//! The harness of the targets that reach what only an authenticated peer can send (docs/DESIGN.md
//! §5): a real IKE_SA_INIT between the in-crate initiator and a responder in memory (cheap
//! suite: group 2, PSK), then fuzzed plaintext payload lists ([`payloads`]) sealed with the
//! IKE SA's real keys, whole or fragmented (RFC 7383), from the client's address or another,
//! with time advancing and `tick` in between. After every step the responder's tables must
//! stay within their bounds ([`Harness::check`]); after the input, deleting everything must
//! leave nothing behind ([`Harness::finish`]).
//!
//! Each target includes this module with `mod authenticated;` next to `mod common;`.

pub mod payloads;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use ipsec_server::crypto::DhGroup;
use ipsec_server::ike::initiator::Initiator;
use ipsec_server::ike::{Action, Limits, Responder, ResponderConfig, UniquePolicy, Usage};
use ipsec_server::wire::{
    emit_payloads, CpPayload, ExchangeType, Header, NotifyType, Payload, PayloadType, FLAG_RESPONSE,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::common::{initiator_config, responder_config};
use payloads::{build, Ctx, FPayload, Few};

pub const GW500: &str = "192.0.2.1:500";
pub const GW4500: &str = "192.0.2.1:4500";
pub const CLIENT500: &str = "198.51.100.7:500";
pub const CLIENT4500: &str = "198.51.100.7:4500";

/// Child SAs one IKE SA may hold here: small, so that inputs reach the cap.
pub const CHILD_SAS: usize = 3;

/// The largest datagram the responder may send to a peer that announced fragmentation
/// (`FRAGMENT_SIZE` in src/ike/responder.rs, RFC 7383 §2.5.1); our initiator always does.
const FRAGMENT_SIZE: usize = 1280;

/// The most the responder may send in answer to one message or one tick.
const MAX_SENT: usize = 64 * 1024;

/// Responder options an input chooses.
#[derive(Arbitrary, Debug, Clone)]
pub struct Setup {
    /// IpsecPfs: CREATE_CHILD_SA must then carry a group 2 KE.
    pub pfs: bool,
    /// 0: same-address, 1: never, 2: replace.
    pub unique: u8,
    /// Whether our IKE_AUTH announces MOBIKE (the established target's).
    pub mobike: bool,
}

impl Setup {
    fn config(&self) -> ResponderConfig {
        let base = responder_config();
        ResponderConfig {
            esp_pfs: self.pfs.then_some(DhGroup::Modp1024),
            // Short lifetimes and DPD, so that an input's waits reach every timer: our Child
            // SA rekeys at about 270 s, the IKE SA ends at 900 s.
            ike_lifetime: Duration::from_secs(900),
            ipsec_lifetime: Duration::from_secs(300),
            dpd_interval: Some(Duration::from_secs(60)),
            unique: match self.unique % 3 {
                0 => UniquePolicy::SameAddress,
                1 => UniquePolicy::Never,
                _ => UniquePolicy::Replace,
            },
            limits: Limits {
                cookie_threshold: 100,
                cookie_threshold_ip: 100,
                block_threshold_ip: 100,
                child_sas_per_ike_sa: CHILD_SAS,
                ..base.limits.clone()
            },
            ..base
        }
    }
}

/// Where a message comes from.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Source {
    /// The client's NAT-T port, where everything after IKE_SA_INIT comes from.
    Client,
    /// The client's port 500.
    Client500,
    /// The client's address, another port (NAT rebinding).
    Port(u16),
    /// Another address (MOBIKE, or an attacker replaying).
    Elsewhere(u8),
}

impl Source {
    fn addresses(self) -> (SocketAddr, SocketAddr) {
        let gw4500 = GW4500.parse().unwrap();
        match self {
            Source::Client => (gw4500, CLIENT4500.parse().unwrap()),
            Source::Client500 => (GW500.parse().unwrap(), CLIENT500.parse().unwrap()),
            Source::Port(p) => (gw4500, SocketAddr::from(([198, 51, 100, 7], p))),
            Source::Elsewhere(x) => (gw4500, SocketAddr::from(([203, 0, 113, x], 4500))),
        }
    }
}

/// How a protected request travels.
#[derive(Arbitrary, Debug, Clone)]
pub enum Delivery {
    Whole,
    /// `protect_fragments` with fragments of at most `96 + max % 2000` octets, sent in
    /// the order given.
    Fragments {
        max: u16,
        order: Order,
    },
    /// Fragments numbered arbitrarily: each carries piece `piece` of the plaintext cut into
    /// as many pieces as there are fragments.
    Numbered(Few<Fragment, 8>),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Order {
    Straight,
    Reversed,
    /// Fragment n (modulo their number) left out.
    Drop(u8),
    /// Fragment n sent twice.
    Twice(u8),
    /// Rotated left by n.
    Rotate(u8),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Fragment {
    pub number: u8,
    pub total: u8,
    pub piece: u8,
    /// Whether it names the first payload's type (RFC 7383: fragment 1 only).
    pub names_first: bool,
}

/// The message ID of a request.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Mid {
    /// The one the responder waits for.
    Next,
    /// The previous one (new bytes: not a retransmission).
    Previous,
    /// Ahead of the window.
    Ahead(u8),
    Raw(u32),
}

/// The exchange of a request.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Exchange {
    CreateChildSa,
    Informational,
    IkeAuth,
    Raw(u8),
}

impl Exchange {
    fn build(self) -> ExchangeType {
        match self {
            Exchange::CreateChildSa => ExchangeType::CREATE_CHILD_SA,
            Exchange::Informational => ExchangeType::INFORMATIONAL,
            Exchange::IkeAuth => ExchangeType::IKE_AUTH,
            Exchange::Raw(x) => ExchangeType(x),
        }
    }
}

/// One step of an input, after `wait` seconds (a tick when nonzero).
#[derive(Arbitrary, Debug, Clone)]
pub struct Step {
    pub wait: u8,
    pub action: StepAction,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum StepAction {
    /// A protected request.
    Request {
        exchange: Exchange,
        mid: Mid,
        payloads: Few<FPayload, 16>,
        delivery: Delivery,
        from: Source,
    },
    /// The last request's datagrams again, byte for byte.
    Retransmit(Source),
    /// Time passes (up to 18 hours) and the timers run.
    Wait(u16),
    /// The responder's latest request answered: by the initiator (`Initiator::answer`), or
    /// with a fuzzed response (`Initiator::protect_response`).
    Answer(Option<Few<FPayload, 8>>),
    /// A well-formed exchange of the usual kind, so that inputs reach deep states (the
    /// Child SA cap, rekeys of both sides, MOBIKE) in a few steps; the fuzzed variants above
    /// then mutate from there.
    Usual(Usual),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Usual {
    /// CREATE_CHILD_SA for a new Child SA, or the rekey of Child SA n (REKEY_SA).
    NewChild { rekey: Option<u8> },
    /// CREATE_CHILD_SA rekeying the IKE SA.
    RekeyIke,
    /// INFORMATIONAL deleting Child SA n, or the IKE SA.
    Delete(Option<u8>),
    /// INFORMATIONAL with UPDATE_SA_ADDRESSES, NAT detection and COOKIE2, from elsewhere.
    Move(u8),
    /// The responder's latest request (a Child SA rekey) accepted with SA, Nonce, KE and
    /// selectors.
    AcceptRekey,
}

/// A responder, the initiator that talks to it and the clock.
pub struct Harness {
    pub responder: Responder,
    pub initiator: Initiator,
    pub rng: StdRng,
    pub now: Instant,
    /// The message ID the responder waits for, as far as its answers tell.
    pub next_mid: u32,
    /// Datagrams of the last request sent.
    last_request: Vec<Vec<u8>>,
    /// The responder's latest request to us, and its latest answer.
    responder_request: Option<Vec<u8>>,
    pub last_answer: Option<Vec<u8>>,
    next_spi: u32,
}

impl Harness {
    /// A responder configured by `setup` and an initiator past IKE_SA_INIT: the half-open
    /// IKE SA's keys are known to both.
    pub fn half_open(setup: &Setup) -> Self {
        let mut rng = StdRng::seed_from_u64(1);
        let now = Instant::now();
        let mut responder = Responder::new(Arc::new(setup.config()));
        let cfg = initiator_config(CLIENT500.parse().unwrap(), GW500.parse().unwrap());
        let (mut initiator, init) = Initiator::start(cfg, &mut rng).expect("IKE_SA_INIT request");
        let (local, remote) = Source::Client500.addresses();
        let actions = responder.handle(now, &mut rng, &init, local, remote);
        let answer = sent(&actions).next().expect("IKE_SA_INIT is answered");
        // The initiator's own IKE_AUTH is not sent: the harness builds its own.
        let auth = initiator.handle(&mut rng, answer);
        assert!(
            matches!(auth, Ok(Some(_))),
            "IKE_SA_INIT completes: {auth:?}"
        );
        Harness {
            responder,
            initiator,
            rng,
            now,
            next_mid: 1,
            last_request: Vec::new(),
            responder_request: None,
            last_answer: None,
            next_spi: 0,
        }
    }

    /// The payloads of `list`, referring to the responder's IKE SA as it is now.
    pub fn payloads(&mut self, list: &[FPayload]) -> Vec<Payload> {
        let sas = self.responder.sas(self.now);
        let sa = sas.iter().find(|s| s.spi_i == self.initiator.spi_i());
        let mut ctx = Ctx {
            ini: &self.initiator,
            children: sa.map(|s| s.children.clone()).unwrap_or_default(),
            vip: sa.and_then(|s| s.vip),
            next_spi: &mut self.next_spi,
        };
        // Lists too long for the SK payload's 16-bit length fail to seal and end the input.
        build(list, &mut ctx)
    }

    /// Sends a request with `payloads` sealed with the IKE SA's keys and checks the bounds.
    pub fn request(
        &mut self,
        exchange: ExchangeType,
        mid: u32,
        payloads: &[Payload],
        delivery: &Delivery,
        from: Source,
    ) {
        let Some(datagrams) = self.seal(exchange, mid, payloads, delivery) else {
            return;
        };
        self.last_request = datagrams.clone();
        for d in &datagrams {
            self.deliver(d, from);
        }
    }

    /// Runs one step.
    pub fn step(&mut self, step: &Step) {
        if step.wait > 0 {
            self.wait(u64::from(step.wait));
        }
        match &step.action {
            StepAction::Request {
                exchange,
                mid,
                payloads,
                delivery,
                from,
            } => {
                let mid = match *mid {
                    Mid::Next => self.next_mid,
                    Mid::Previous => self.next_mid.wrapping_sub(1),
                    Mid::Ahead(n) => self.next_mid.wrapping_add(1 + u32::from(n % 4)),
                    Mid::Raw(m) => m,
                };
                let payloads = self.payloads(&payloads.0);
                self.request(exchange.build(), mid, &payloads, delivery, *from);
            }
            StepAction::Retransmit(from) => {
                for d in self.last_request.clone() {
                    self.deliver(&d, *from);
                }
            }
            StepAction::Wait(secs) => self.wait(u64::from(*secs)),
            StepAction::Answer(how) => self.answer(how.as_ref()),
            StepAction::Usual(usual) => self.usual(*usual),
        }
    }

    /// Runs a well-formed exchange ([`Usual`]).
    fn usual(&mut self, usual: Usual) {
        use payloads::*;
        let notify = |ty: NotifyType, spi: FNotifySpi, data: Vec<u8>| {
            FPayload::Notify(FNotify {
                notify_type: FNotifyType::of(ty),
                protocol: FProtocol::Esp,
                spi,
                data: Bytes(data),
            })
        };
        let child = |pfs: bool| {
            vec![
                FPayload::Sa(Few(vec![FProposal::Esp {
                    spi: FChildSpi::Fresh,
                    esn: 1,
                    dh: if pfs {
                        FDhTransform::Ours
                    } else {
                        FDhTransform::Absent
                    },
                }])),
                FPayload::Nonce(FNonce::Good),
                FPayload::Ke(FKe::Valid),
            ]
        };
        let pfs = self.responder.config().esp_pfs.is_some();
        let (exchange, list, from) = match usual {
            Usual::NewChild { rekey } => {
                let mut list = child(pfs);
                list.extend([FPayload::TsI(FTs::Vip), FPayload::TsR(FTs::LocalSubnet)]);
                if let Some(n) = rekey {
                    let rekey_sa = notify(NotifyType::REKEY_SA, FNotifySpi::Known(n), Vec::new());
                    list.insert(0, rekey_sa);
                }
                (ExchangeType::CREATE_CHILD_SA, list, Source::Client)
            }
            Usual::RekeyIke => (
                ExchangeType::CREATE_CHILD_SA,
                vec![
                    FPayload::Sa(Few(vec![FProposal::Ike {
                        spi: FIkeSpi::Fresh,
                    }])),
                    FPayload::Nonce(FNonce::Good),
                    FPayload::Ke(FKe::Valid),
                ],
                Source::Client,
            ),
            Usual::Delete(which) => {
                let delete = match which {
                    Some(n) => FDelete {
                        protocol: FProtocol::Esp,
                        spi_size: FSpiSize::Four,
                        spis: FDeleteSpis::Some(Few(vec![(n, false, None)])),
                    },
                    None => FDelete {
                        protocol: FProtocol::Ike,
                        spi_size: FSpiSize::Zero,
                        spis: FDeleteSpis::Raw(Few(Vec::new())),
                    },
                };
                (
                    ExchangeType::INFORMATIONAL,
                    vec![FPayload::Delete(delete)],
                    Source::Client,
                )
            }
            Usual::Move(x) => (
                ExchangeType::INFORMATIONAL,
                vec![
                    notify(
                        NotifyType::UPDATE_SA_ADDRESSES,
                        FNotifySpi::Empty,
                        Vec::new(),
                    ),
                    notify(
                        NotifyType::NAT_DETECTION_SOURCE_IP,
                        FNotifySpi::Empty,
                        vec![0x11; 20],
                    ),
                    notify(NotifyType::COOKIE2, FNotifySpi::Empty, vec![0xc2; 16]),
                ],
                Source::Elsewhere(x),
            ),
            Usual::AcceptRekey => {
                let mut list = child(pfs);
                list.extend([FPayload::TsI(FTs::LocalSubnet), FPayload::TsR(FTs::Vip)]);
                self.answer(Some(&Few(list)));
                return;
            }
        };
        let payloads = self.payloads(&list);
        self.request(exchange, self.next_mid, &payloads, &Delivery::Whole, from);
    }

    /// Seals per `delivery`; `None` when nothing can be sealed (no keys, or an input that
    /// would not emit).
    fn seal(
        &mut self,
        exchange: ExchangeType,
        mid: u32,
        payloads: &[Payload],
        delivery: &Delivery,
    ) -> Option<Vec<Vec<u8>>> {
        let ini = &self.initiator;
        let rng = &mut self.rng;
        // The one place requests are sealed: when sealing becomes fallible, its errors end
        // the input here.
        let sealed: Result<Vec<Vec<u8>>, _> = match delivery {
            Delivery::Whole => ini.protect(exchange, mid, payloads, rng).map(|m| vec![m]),
            Delivery::Fragments { max, order } => ini
                .protect_fragments(exchange, mid, payloads, 96 + usize::from(*max % 2000), rng)
                .map(|f| reorder(f, *order)),
            Delivery::Numbered(fragments) => {
                let mut plain = Vec::new();
                let first = emit_payloads(payloads, &mut plain).ok()?;
                let n = fragments.0.len().max(1);
                let piece = plain.len().div_ceil(n).max(1);
                fragments
                    .0
                    .iter()
                    .map(|f| {
                        let at = (usize::from(f.piece) % n * piece).min(plain.len());
                        let chunk = &plain[at..(at + piece).min(plain.len())];
                        let named = if f.names_first {
                            first
                        } else {
                            PayloadType::NONE
                        };
                        let numbering = (u16::from(f.number), u16::from(f.total));
                        ini.protect_fragment(exchange, mid, numbering, named, chunk, rng)
                    })
                    .collect()
            }
        };
        sealed.ok()
    }

    /// One datagram to the responder; its answer is noted and checked.
    fn deliver(&mut self, bytes: &[u8], from: Source) {
        let (local, remote) = from.addresses();
        let actions = self
            .responder
            .handle(self.now, &mut self.rng, bytes, local, remote);
        self.note(&actions);
    }

    /// Time passes; the timers run.
    fn wait(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
        let actions = self.responder.tick(self.now, &mut self.rng);
        self.note(&actions);
    }

    /// Answers the responder's latest request.
    fn answer(&mut self, how: Option<&Few<FPayload, 8>>) {
        let Some(request) = self.responder_request.clone() else {
            return;
        };
        let answer = match how {
            None => self
                .initiator
                .answer(&mut self.rng, &request)
                .map(|(bytes, _)| bytes),
            Some(list) => {
                let Ok(h) = Header::parse(&request) else {
                    return;
                };
                let payloads = self.payloads(&list.0);
                self.initiator
                    .protect_response(h.exchange, h.message_id, &payloads, &mut self.rng)
            }
        };
        if let Ok(bytes) = answer {
            self.deliver(&bytes, Source::Client);
        }
    }

    /// Follows the responder's answers (the message-ID window, its own requests) and checks
    /// the bounds after them.
    fn note(&mut self, actions: &[Action]) {
        for bytes in sent(actions) {
            let Ok(h) = Header::parse(bytes) else {
                continue;
            };
            if h.flags & FLAG_RESPONSE != 0 {
                // Any answer means the request it answers was processed (or retransmitted).
                self.next_mid = self.next_mid.max(h.message_id.wrapping_add(1));
                self.last_answer = Some(bytes.to_vec());
            } else if h.exchange != ExchangeType::IKE_SA_INIT {
                self.responder_request = Some(bytes.to_vec());
            }
        }
        self.check(actions);
    }

    /// The bounds that hold whatever an authenticated peer sends.
    pub fn check(&self, actions: &[Action]) {
        let u = self.responder.usage();
        let sas = self.responder.sas(self.now);
        // One client: its IKE SA, and while a rekey waits for its DELETE, the new one.
        assert!(u.ike_sas <= 2, "IKE SAs: {u:?}");
        assert!(u.half_open <= 1, "half-open: {u:?}");
        assert!(u.connections <= 1, "connections: {u:?}");
        // The cap counts Child SAs that were not rekeyed; the rekeyed ones waiting for their
        // DELETE may make it twice that, no more.
        let cap = 2 * CHILD_SAS;
        for sa in &sas {
            assert!(
                sa.children.len() <= cap,
                "{} Child SAs on one IKE SA (limit {CHILD_SAS}, twice with rekeys): {u:?}",
                sa.children.len()
            );
        }
        assert!(u.leases <= u.connections, "leases: {u:?}");
        assert!(
            u.inbound_spis <= u.child_sas + u.ike_sas,
            "inbound SPIs beyond Child SAs and one rekey in flight per IKE SA: {u:?}"
        );
        let mut total = 0;
        for bytes in sent(actions) {
            total += bytes.len();
            let to_peer_answer = Header::parse(bytes).is_ok_and(|h| h.flags & FLAG_RESPONSE != 0);
            if to_peer_answer {
                assert!(
                    bytes.len() <= FRAGMENT_SIZE,
                    "a {}-octet answer",
                    bytes.len()
                );
            }
        }
        assert!(total <= MAX_SENT, "{total} octets sent at once");
    }

    /// Deletes everything: nothing may be left of the client.
    pub fn finish(mut self) {
        let actions = self.responder.delete_all(&mut self.rng);
        self.check(&actions);
        let u = self.responder.usage();
        assert_eq!(u, Usage::default(), "left behind");
    }
}

/// The datagrams among `actions`.
pub fn sent(actions: &[Action]) -> impl Iterator<Item = &Vec<u8>> {
    actions.iter().filter_map(|a| match a {
        Action::Send { bytes, .. } => Some(bytes),
        _ => None,
    })
}

fn reorder(mut fragments: Vec<Vec<u8>>, order: Order) -> Vec<Vec<u8>> {
    let n = fragments.len();
    if n == 0 {
        return fragments;
    }
    match order {
        Order::Straight => {}
        Order::Reversed => fragments.reverse(),
        Order::Drop(i) => {
            fragments.remove(usize::from(i) % n);
        }
        Order::Twice(i) => {
            let f = fragments[usize::from(i) % n].clone();
            fragments.push(f);
        }
        Order::Rotate(i) => fragments.rotate_left(usize::from(i) % n),
    }
    fragments
}

/// The inner payloads of our usual IKE_AUTH (as `Initiator` sends it), with MOBIKE_SUPPORTED
/// when asked.
pub fn usual_auth(h: &mut Harness, mobike: bool) -> Vec<Payload> {
    use payloads::{FAuth, FChildSpi, FCp, FDhTransform, FId, FProposal, FTs};
    let mut inner = h.payloads(&[
        FPayload::IdI(FId::Ours),
        FPayload::Auth(FAuth::Real),
        FPayload::Cp(FCp {
            cfg_type: CpPayload::CFG_REQUEST,
            attributes: Few(Vec::new()),
        }),
        FPayload::Sa(Few(vec![FProposal::Esp {
            spi: FChildSpi::Fresh,
            esn: 1,
            dh: FDhTransform::Absent,
        }])),
        FPayload::TsI(FTs::Any),
        FPayload::TsR(FTs::Any),
    ]);
    inner.insert(1, Payload::notify(NotifyType::INITIAL_CONTACT, Vec::new()));
    if mobike {
        inner.push(Payload::notify(NotifyType::MOBIKE_SUPPORTED, Vec::new()));
    }
    inner
}
