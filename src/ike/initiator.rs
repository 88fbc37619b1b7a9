//! A small but real IKEv2 initiator on the same codec and crypto: IKE_SA_INIT (following
//! COOKIE and INVALID_KE_PAYLOAD answers), IKE_AUTH with PSK asking for a virtual IP, and the
//! INFORMATIONAL DELETE; once established it answers the responder's own requests
//! ([`Initiator::answer`]: liveness checks, DELETEs; Child SA rekeys are refused). Used by the
//! tests, the load generator and client mode.
//!
//! Like the responder it is sans-IO: it returns the bytes to send and takes the bytes received.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use ipnet::Ipv4Net;

use rand_core::CryptoRngCore;

use crate::crypto::keys::SkeyseedFrom;
use crate::crypto::{self, DhGroup, DhPrivate, IkeKeys};
use crate::secret::SecretBytes;
use crate::wire::{
    AuthPayload, CpAttribute, CpPayload, DeletePayload, ExchangeType, Header, IdPayload, KePayload,
    Message, NotifyType, Payload, PayloadList, PayloadType, ProtocolId, SkfPayload, FLAG_INITIATOR,
    FLAG_RESPONSE, IKEV2_VERSION,
};

use super::auth::AUTH_SHARED_KEY_MIC;
use super::nat::nat_hash;
use super::proposal::EsnTransform;
use super::sk::SkCrypto;
use super::ts::{any_ipv4, selector};
use super::Ipv4Range;
use super::{
    check_nonce, id_payload, our_nonce, ChildSaSpec, EspSuite, Identity, IkeError, IkeSuite,
};

/// What the initiator proposes and who it is.
#[derive(Debug, Clone)]
pub struct InitiatorConfig {
    pub ike: IkeSuite,
    pub esp: EspSuite,
    pub psk: SecretBytes,
    /// IDi.
    pub id: Identity,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// TSr to ask for; empty asks for everything (0.0.0.0/0).
    pub remote_ts: Vec<Ipv4Net>,
    /// Whether IKE_AUTH carries CP(CFG_REQUEST) for a virtual IP.
    pub request_vip: bool,
}

/// Progress of the initiator.
enum State {
    /// IKE_SA_INIT sent; waiting for its answer.
    Init(InitSent),
    /// IKE_AUTH sent.
    Auth(AuthSent),
    /// Both exchanges done.
    Established {
        sk: SkCrypto,
        child: Option<Box<ChildSaSpec>>,
        vip: Option<Ipv4Addr>,
    },
    Failed,
}

/// What our IKE_SA_INIT request committed us to.
struct InitSent {
    dh: DhPrivate,
    ni: Vec<u8>,
    request: Vec<u8>,
    /// The cookie the request returned (§2.6), if the responder asked for one.
    cookie: Option<Vec<u8>>,
}

/// The IKE SA after IKE_SA_INIT, while our IKE_AUTH request is out.
struct AuthSent {
    keys: Box<IkeKeys>,
    ni: Vec<u8>,
    nr: Vec<u8>,
    /// Our IKE_SA_INIT request as sent: our AUTH signs it (§2.15).
    init_request: Vec<u8>,
    /// The responder's IKE_SA_INIT response: its AUTH signs it.
    init_response: Vec<u8>,
    sk: SkCrypto,
    /// Our SPI of the Child SA IKE_AUTH asks for.
    child_spi: u32,
}

pub struct Initiator {
    cfg: InitiatorConfig,
    spi_i: u64,
    spi_r: u64,
    next_message_id: u32,
    /// Message ID of the next request the responder may send us (its own sequence, §2.2).
    peer_next_id: u32,
    /// Our answer to the responder's last request, resent for a retransmission (§2.1).
    last_answer: Option<Vec<u8>>,
    state: State,
}

/// What a request from the responder asked of us ([`Initiator::answer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRequest {
    /// An INFORMATIONAL without a DELETE: a liveness check (DPD, RFC 7296 §2.4).
    Liveness,
    /// The responder deleted the IKE SA and with it the Child SA (§1.4.1).
    DeleteIke,
    /// The responder deleted our Child SA; the IKE SA stays (§1.4.1).
    DeleteChild,
    /// A CREATE_CHILD_SA (the responder rekeying the Child SA): refused with
    /// NO_ADDITIONAL_SAS (§1.3); the current Child SA stays until its lifetime.
    Refused,
    /// A retransmission of the last request, answered from the cache (§2.1).
    Retransmit,
}

impl Initiator {
    /// Starts an IKE SA: returns the initiator and the IKE_SA_INIT request to send.
    pub fn start(
        cfg: InitiatorConfig,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(Self, Vec<u8>), IkeError> {
        let mut spi_i = 0;
        while spi_i == 0 {
            spi_i = rng.next_u64();
        }
        let mut me = Self {
            cfg,
            spi_i,
            spi_r: 0,
            next_message_id: 0,
            peer_next_id: 0,
            last_answer: None,
            state: State::Failed,
        };
        let request = me.init_request(rng, None, None)?;
        Ok((me, request))
    }

    pub fn spi_i(&self) -> u64 {
        self.spi_i
    }

    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established { .. })
    }

    /// The Child SA from IKE_AUTH, seen from the initiator: inbound = responder → us.
    pub fn child(&self) -> Option<&ChildSaSpec> {
        match &self.state {
            State::Established { child, .. } => child.as_deref(),
            _ => None,
        }
    }

    pub fn virtual_ip(&self) -> Option<Ipv4Addr> {
        match &self.state {
            State::Established { vip, .. } => *vip,
            _ => None,
        }
    }

    /// The IKE SA's keys once IKE_SA_INIT is done (tests seal requests of their own with them).
    #[cfg(test)]
    pub(crate) fn sk(&self) -> Option<&SkCrypto> {
        match &self.state {
            State::Auth(AuthSent { sk, .. }) | State::Established { sk, .. } => Some(sk),
            _ => None,
        }
    }

    /// The AUTH payload (shared key MIC, §2.15) that proves identity `idi` on this IKE SA,
    /// between IKE_SA_INIT and IKE_AUTH. With [`Self::protect`] a caller builds an IKE_AUTH
    /// of its own (another IDi, other payloads) that still authenticates; [`Self::handle`]
    /// sends the usual one.
    pub fn psk_auth(&self, idi: &IdPayload) -> Result<AuthPayload, IkeError> {
        match &self.state {
            State::Auth(sent) => Ok(self.auth_for(&sent.keys, &sent.init_request, &sent.nr, idi)),
            _ => Err(IkeError::InvalidSyntax("AUTH exists only before IKE_AUTH")),
        }
    }

    /// A request on this IKE SA with `payloads` inside its SK payload (§3.14), protected with
    /// the IKE SA's keys as soon as IKE_SA_INIT is done (the IKE_AUTH keys are the same).
    /// The caller chooses the exchange and the message ID; the initiator's own message
    /// counter does not move, so this is for requests the initiator does not track itself
    /// (tests, fuzzing, a client that drives its exchanges by hand).
    pub fn protect(
        &self,
        exchange: ExchangeType,
        message_id: u32,
        payloads: &[Payload],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Vec<u8>, IkeError> {
        let header = self.protected_header(exchange, message_id, FLAG_INITIATOR)?;
        self.seal(header, payloads, rng)
    }

    /// As [`Self::protect`] for a response to a request of the responder (message ID of its
    /// sequence, §2.2): an answer [`Self::answer`] would not give, such as accepting the
    /// responder's Child SA rekey.
    pub fn protect_response(
        &self,
        exchange: ExchangeType,
        message_id: u32,
        payloads: &[Payload],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Vec<u8>, IkeError> {
        let header = self.protected_header(exchange, message_id, FLAG_INITIATOR | FLAG_RESPONSE)?;
        self.seal(header, payloads, rng)
    }

    /// As [`Self::protect`], split into Encrypted Fragment messages (RFC 7383 §2.5) of at
    /// most `max` octets when the whole message is larger; otherwise the one SK message.
    pub fn protect_fragments(
        &self,
        exchange: ExchangeType,
        message_id: u32,
        payloads: &[Payload],
        max: usize,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Vec<Vec<u8>>, IkeError> {
        let header = self.protected_header(exchange, message_id, FLAG_INITIATOR)?;
        let sk = self.ike_sa_keys()?;
        sk.seal_fragments(header, payloads, max, rng.as_rngcore())
    }

    /// One Encrypted Fragment message of a request with the numbering given, authentic
    /// whatever the numbering (RFC 7383 §2.5): `chunk` is a piece of the plaintext payload
    /// chain ([`crate::wire::emit_payloads`]), `first` the type of the chain's first payload
    /// (RFC 7383 puts it in fragment 1 only). For tests of a responder's reassembly;
    /// [`Self::protect_fragments`] numbers fragments correctly.
    pub fn protect_fragment(
        &self,
        exchange: ExchangeType,
        message_id: u32,
        (number, total): (u16, u16),
        first: PayloadType,
        chunk: &[u8],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Vec<u8>, IkeError> {
        let header = self.protected_header(exchange, message_id, FLAG_INITIATOR)?;
        let sk = self.ike_sa_keys()?;
        let skf = SkfPayload {
            first_inner: first,
            fragment_number: number,
            total_fragments: total,
            body: sk.seal_body(chunk.to_vec(), rng.as_rngcore())?,
        };
        let message = Message {
            header,
            payloads: vec![Payload::Skf(skf)],
        };
        sk.sign(message.emit()?)
    }

    /// Takes a response; returns the next request to send, if any.
    pub fn handle(
        &mut self,
        rng: &mut dyn CryptoRngCore,
        bytes: &[u8],
    ) -> Result<Option<Vec<u8>>, IkeError> {
        let msg = Message::parse(bytes)?;
        if !msg.header.is_response() || msg.header.spi_i != self.spi_i {
            return Err(IkeError::InvalidSyntax("not a response to us"));
        }
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Init(sent) => self.on_init_response(rng, &msg, bytes, sent),
            State::Auth(sent) => {
                let inner = sent.sk.open(bytes, &msg)??;
                let child = self.on_auth_response(&inner, &sent)?;
                let vip = child.as_ref().map(|c| c.client_vip);
                self.state = State::Established {
                    sk: sent.sk,
                    child: child.map(Box::new),
                    vip,
                };
                Ok(None)
            }
            State::Established { sk, child, vip } => {
                let _ = sk.open(bytes, &msg)??;
                self.state = State::Established { sk, child, vip };
                Ok(None)
            }
            State::Failed => Err(IkeError::InvalidSyntax("initiator failed")),
        }
    }

    /// INFORMATIONAL DELETE of the IKE SA (after it is established; `None` before).
    pub fn delete_request(
        &mut self,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Option<Vec<u8>>, IkeError> {
        let State::Established { sk, .. } = &self.state else {
            return Ok(None);
        };
        let header = self.header(ExchangeType::INFORMATIONAL, PayloadType::SK);
        let delete = Payload::Delete(DeletePayload {
            protocol: ProtocolId::IKE,
            spi_size: 0,
            spis: vec![],
        });
        let bytes = sk.seal(header, &[delete], rng.as_rngcore())?;
        self.next_message_id += 1;
        Ok(Some(bytes))
    }

    /// An empty INFORMATIONAL request (liveness check; `None` before the IKE SA is
    /// established).
    pub fn liveness_request(
        &mut self,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Option<Vec<u8>>, IkeError> {
        let State::Established { sk, .. } = &self.state else {
            return Ok(None);
        };
        let header = self.header(ExchangeType::INFORMATIONAL, PayloadType::SK);
        let bytes = sk.seal(header, &[], rng.as_rngcore())?;
        self.next_message_id += 1;
        Ok(Some(bytes))
    }

    /// Answers a request the responder sent on the established IKE SA; returns the response
    /// to send and what was asked. A request out of the message-ID window, with a bad ICV, or
    /// before the IKE SA is established is an error (dropped, never answered, §2.21.1).
    pub fn answer(
        &mut self,
        rng: &mut dyn CryptoRngCore,
        bytes: &[u8],
    ) -> Result<(Vec<u8>, PeerRequest), IkeError> {
        let msg = Message::parse(bytes)?;
        let h = &msg.header;
        if h.is_response() || h.flags & FLAG_INITIATOR != 0 || h.spi_i != self.spi_i {
            return Err(IkeError::InvalidSyntax("not a request from our responder"));
        }
        let header = Header {
            flags: FLAG_INITIATOR | FLAG_RESPONSE,
            message_id: h.message_id,
            ..self.header(h.exchange, PayloadType::SK)
        };
        let State::Established { sk, child, .. } = &mut self.state else {
            return Err(IkeError::InvalidSyntax("IKE SA not established"));
        };
        // §2.2: one request at a time; the previous one again is a retransmission.
        if h.message_id.wrapping_add(1) == self.peer_next_id {
            if let Some(cached) = &self.last_answer {
                return Ok((cached.clone(), PeerRequest::Retransmit));
            }
        }
        if h.message_id != self.peer_next_id {
            return Err(IkeError::InvalidSyntax(
                "request outside the message-ID window",
            ));
        }
        let inner = sk.open(bytes, &msg)??;
        let (payloads, asked) = match h.exchange {
            ExchangeType::INFORMATIONAL => {
                let mut asked = PeerRequest::Liveness;
                let mut payloads = Vec::new();
                for d in inner.deletes() {
                    if d.protocol == ProtocolId::IKE {
                        asked = PeerRequest::DeleteIke;
                    } else if let Some(c) = child.as_deref().filter(|c| {
                        d.protocol == ProtocolId::ESP
                            && d.spis.iter().any(|s| s[..] == c.outbound_spi.to_be_bytes())
                    }) {
                        // §1.4.1: answer with the SPI of our half of the pair.
                        payloads.push(Payload::Delete(DeletePayload {
                            protocol: ProtocolId::ESP,
                            spi_size: 4,
                            spis: vec![c.inbound_spi.to_be_bytes().to_vec()],
                        }));
                        if asked == PeerRequest::Liveness {
                            asked = PeerRequest::DeleteChild;
                        }
                    }
                }
                if asked == PeerRequest::DeleteIke {
                    // §1.4.1: the response to an IKE SA delete is empty.
                    payloads.clear();
                }
                (payloads, asked)
            }
            ExchangeType::CREATE_CHILD_SA => (
                vec![Payload::notify(NotifyType::NO_ADDITIONAL_SAS, Vec::new())],
                PeerRequest::Refused,
            ),
            _ => {
                return Err(IkeError::InvalidSyntax(
                    "unexpected exchange from the responder",
                ))
            }
        };
        let response = sk.seal(header, &payloads, rng.as_rngcore())?;
        match asked {
            PeerRequest::DeleteIke => self.state = State::Failed,
            PeerRequest::DeleteChild => *child = None,
            _ => {}
        }
        self.peer_next_id = self.peer_next_id.wrapping_add(1);
        self.last_answer = Some(response.clone());
        Ok((response, asked))
    }

    /// The IKE SA's keys once IKE_SA_INIT is done.
    fn ike_sa_keys(&self) -> Result<&SkCrypto, IkeError> {
        match &self.state {
            State::Auth(AuthSent { sk, .. }) | State::Established { sk, .. } => Ok(sk),
            _ => Err(IkeError::InvalidSyntax("no IKE SA keys yet")),
        }
    }

    /// The header of a protected message of ours on the IKE SA (SPIs known, SK follows).
    fn protected_header(
        &self,
        exchange: ExchangeType,
        message_id: u32,
        flags: u8,
    ) -> Result<Header, IkeError> {
        self.ike_sa_keys()?;
        Ok(Header {
            flags,
            message_id,
            ..self.header(exchange, PayloadType::SK)
        })
    }

    /// `header` with an SK payload carrying `payloads`, under the IKE SA's keys: the one
    /// place the public `protect*` requests are sealed whole.
    fn seal(
        &self,
        header: Header,
        payloads: &[Payload],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Vec<u8>, IkeError> {
        self.ike_sa_keys()?.seal(header, payloads, rng.as_rngcore())
    }

    /// Our AUTH value for `idi` (§2.15): it signs our IKE_SA_INIT request, the responder's
    /// nonce and prf(SK_pi, IDi).
    fn auth_for(
        &self,
        keys: &IkeKeys,
        init_request: &[u8],
        nr: &[u8],
        idi: &IdPayload,
    ) -> AuthPayload {
        let auth = crypto::psk_auth(
            self.cfg.ike.prf,
            self.cfg.psk.expose(),
            init_request,
            nr,
            keys.sk_pi.expose(),
            &idi.body(),
        );
        AuthPayload {
            method: AUTH_SHARED_KEY_MIC,
            data: auth.expose().to_vec(),
        }
    }

    fn header(&self, exchange: ExchangeType, next: PayloadType) -> Header {
        Header {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            next_payload: next,
            version: IKEV2_VERSION,
            exchange,
            flags: FLAG_INITIATOR,
            message_id: self.next_message_id,
            length: 0,
        }
    }

    /// The IKE_SA_INIT request; a retry after a COOKIE answer keeps KE and Ni unchanged
    /// (§2.6), one after INVALID_KE_PAYLOAD gets a new KE.
    fn init_request(
        &mut self,
        rng: &mut dyn CryptoRngCore,
        cookie: Option<Vec<u8>>,
        keep: Option<(DhPrivate, Vec<u8>)>,
    ) -> Result<Vec<u8>, IkeError> {
        let (dh, ni) = match keep {
            Some(k) => k,
            None => {
                let ni = our_nonce(rng);
                (DhPrivate::generate(self.cfg.ike.dh, rng), ni)
            }
        };
        let mut payloads = Vec::new();
        if let Some(c) = &cookie {
            payloads.push(Payload::notify(NotifyType::COOKIE, c.clone()));
        }
        payloads.extend([
            Payload::Sa(vec![self.cfg.ike.proposal(1, Vec::new())]),
            Payload::Ke(KePayload {
                group: self.cfg.ike.dh.id(),
                data: dh.public_value().to_vec(),
            }),
            Payload::Nonce(ni.clone()),
            Payload::notify(
                NotifyType::NAT_DETECTION_SOURCE_IP,
                nat_hash(self.spi_i, 0, self.cfg.local),
            ),
            Payload::notify(
                NotifyType::NAT_DETECTION_DESTINATION_IP,
                nat_hash(self.spi_i, 0, self.cfg.remote),
            ),
            Payload::notify(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED, Vec::new()),
        ]);
        let header = self.header(ExchangeType::IKE_SA_INIT, payloads[0].payload_type());
        let request = Message { header, payloads }.emit()?;
        self.state = State::Init(InitSent {
            dh,
            ni,
            request: request.clone(),
            cookie,
        });
        Ok(request)
    }

    fn on_init_response(
        &mut self,
        rng: &mut dyn CryptoRngCore,
        msg: &Message,
        bytes: &[u8],
        sent: InitSent,
    ) -> Result<Option<Vec<u8>>, IkeError> {
        let InitSent {
            dh,
            ni,
            request,
            cookie,
        } = sent;
        // The first notify that decides the answer: a COOKIE to return (once, §2.6), or an
        // error.
        let decisive = msg.notifies().find(|n| {
            n.notify_type.is_error() || (n.notify_type == NotifyType::COOKIE && cookie.is_none())
        });
        if let Some(n) = decisive {
            if n.notify_type == NotifyType::COOKIE {
                return Ok(Some(self.init_request(
                    rng,
                    Some(n.data.clone()),
                    Some((dh, ni)),
                )?));
            }
            if n.notify_type == NotifyType::INVALID_KE_PAYLOAD {
                let want = n.data.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
                let group = want
                    .and_then(DhGroup::from_id)
                    .ok_or(IkeError::NoProposalChosen)?;
                if group == self.cfg.ike.dh {
                    return Err(IkeError::NoProposalChosen);
                }
                self.cfg.ike.dh = group;
                return Ok(Some(self.init_request(rng, cookie, None)?));
            }
            return Err(notify_error(n.notify_type));
        }
        // A payload the response repeats counts by its last occurrence here (the responder
        // reads the first of a request).
        let (Some(nr), Some(ke)) = (
            msg.of_kind(Payload::as_nonce).last(),
            msg.of_kind(Payload::as_ke).last(),
        ) else {
            return Err(IkeError::InvalidSyntax(
                "IKE_SA_INIT response needs KE and Nonce",
            ));
        };
        self.spi_r = msg.header.spi_r;
        let suite = self.cfg.ike;
        check_nonce(suite.prf, nr)?;
        let g_ir = dh
            .shared_secret(&ke.data)
            .map_err(|_| IkeError::InvalidSyntax("invalid KE public value"))?;
        let keys = crypto::keys::derive_ike_sa(
            suite.prf,
            suite.encr,
            suite.integ,
            SkeyseedFrom::Init {
                g_ir: g_ir.expose(),
            },
            (&ni, nr),
            (self.spi_i, self.spi_r),
        );
        let sk = SkCrypto::initiator(suite.encr, suite.integ, &keys)?;
        let idi = id_payload(&self.cfg.id);
        let auth = self.auth_for(&keys, &request, nr, &idi);
        let mut child_spi = 0;
        while child_spi < 0x100 {
            child_spi = rng.next_u32();
        }
        let mut inner = vec![
            Payload::IdI(idi),
            Payload::notify(NotifyType::INITIAL_CONTACT, Vec::new()),
            Payload::Auth(auth),
        ];
        if self.cfg.request_vip {
            inner.push(Payload::Cp(CpPayload {
                cfg_type: CpPayload::CFG_REQUEST,
                attributes: vec![
                    CpAttribute {
                        attr_type: CpAttribute::INTERNAL_IP4_ADDRESS,
                        value: vec![],
                    },
                    CpAttribute {
                        attr_type: CpAttribute::INTERNAL_IP4_DNS,
                        value: vec![],
                    },
                ],
            }));
        }
        let tsr = if self.cfg.remote_ts.is_empty() {
            vec![any_ipv4()]
        } else {
            self.cfg
                .remote_ts
                .iter()
                .map(|n| selector(Ipv4Range::from(*n)))
                .collect()
        };
        inner.extend([
            Payload::Sa(vec![self.cfg.esp.proposal(
                1,
                child_spi,
                None,
                EsnTransform::NoEsn,
            )]),
            Payload::TsI(vec![any_ipv4()]),
            Payload::TsR(tsr),
        ]);
        self.next_message_id = 1;
        let header = self.header(ExchangeType::IKE_AUTH, PayloadType::SK);
        let out = sk.seal(header, &inner, rng.as_rngcore())?;
        self.next_message_id = 2;
        self.state = State::Auth(AuthSent {
            keys: Box::new(keys),
            ni,
            nr: nr.to_vec(),
            init_request: request,
            init_response: bytes.to_vec(),
            sk,
            child_spi,
        });
        Ok(Some(out))
    }

    fn on_auth_response(
        &self,
        inner: &[Payload],
        sent: &AuthSent,
    ) -> Result<Option<ChildSaSpec>, IkeError> {
        if inner.has_notify(NotifyType::AUTHENTICATION_FAILED) {
            return Err(IkeError::AuthenticationFailed);
        }
        // As in IKE_SA_INIT, a repeated payload counts by its last occurrence.
        let (Some(idr), Some(auth)) = (
            inner.of_kind(Payload::as_id_r).last(),
            inner.of_kind(Payload::as_auth).last(),
        ) else {
            return Err(IkeError::InvalidSyntax(
                "IKE_AUTH response needs IDr and AUTH",
            ));
        };
        let suite = self.cfg.ike;
        let expected = crypto::psk_auth(
            suite.prf,
            self.cfg.psk.expose(),
            &sent.init_response,
            &sent.ni,
            sent.keys.sk_pr.expose(),
            &idr.body(),
        );
        if auth.method != AUTH_SHARED_KEY_MIC || !expected.ct_eq(&auth.data) {
            return Err(IkeError::AuthenticationFailed);
        }
        // An error notify refused the Child SA; the IKE SA stands (§1.2).
        if inner.error_notify().is_some() {
            return Ok(None);
        }
        let vip = inner.of_kind(Payload::as_cp).last().and_then(|cp| {
            cp.attributes
                .iter()
                .find(|a| a.attr_type == CpAttribute::INTERNAL_IP4_ADDRESS && a.value.len() == 4)
                .map(|a| Ipv4Addr::new(a.value[0], a.value[1], a.value[2], a.value[3]))
        });
        let (Some(proposals), Some(vip), Some(tsr)) = (
            inner.of_kind(Payload::as_sa).last(),
            vip,
            inner.of_kind(Payload::as_ts_r).last(),
        ) else {
            return Ok(None);
        };
        let chosen = self.cfg.esp.choose(proposals, None)?;
        let ck = crypto::derive_child_keys(
            suite.prf,
            sent.keys.sk_d.expose(),
            None,
            &sent.ni,
            &sent.nr,
            self.cfg.esp.encr,
            self.cfg.esp.integ,
        );
        let local_ts = tsr
            .iter()
            .filter_map(|t| match t {
                crate::wire::TrafficSelector::Ipv4 { start, end, .. } => Some(Ipv4Range {
                    start: *start,
                    end: *end,
                }),
                _ => None,
            })
            .collect();
        Ok(Some(ChildSaSpec {
            inbound_spi: sent.child_spi,
            outbound_spi: chosen.peer_spi,
            encr: self.cfg.esp.encr,
            integ: self.cfg.esp.integ,
            inbound_encr_key: ck.encr_r,
            inbound_integ_key: ck.integ_r,
            outbound_encr_key: ck.encr_i,
            outbound_integ_key: ck.integ_i,
            client_vip: vip,
            local_ts,
            local: self.cfg.local,
            remote: self.cfg.remote,
            udp_encap: true,
            lifetime: Duration::from_secs(3600),
        }))
    }
}

/// The error an error notify in a response stands for.
fn notify_error(ty: NotifyType) -> IkeError {
    match ty {
        NotifyType::NO_PROPOSAL_CHOSEN => IkeError::NoProposalChosen,
        NotifyType::AUTHENTICATION_FAILED => IkeError::AuthenticationFailed,
        NotifyType::TS_UNACCEPTABLE => IkeError::TsUnacceptable,
        NotifyType::INTERNAL_ADDRESS_FAILURE => {
            IkeError::InternalAddressFailure("refused by responder".into())
        }
        _ => IkeError::InvalidSyntax("error notify from responder"),
    }
}
