//! IKE_SA_INIT (RFC 7296 §1.2): proposal, KE, nonces, NAT detection (§2.23), cookies (§2.6),
//! INVALID_KE_PAYLOAD (§1.3). Answers are unprotected; errors create no state.

use std::net::SocketAddr;
use std::time::Instant;

use rand_core::CryptoRngCore;
use tracing::{debug, info};

use crate::crypto::{self, DhPrivate};
use crate::wire::{
    ExchangeType, Header, KePayload, Message, NotifyType, Payload, FLAG_RESPONSE, IKEV2_VERSION,
};

use super::error::encode_response;
use super::nat::nat_hash;
use super::proposal::offers_group;
use super::responder::{IkeSa, Responder};
use super::sk::SkCrypto;
use super::{Action, IkeError};

/// Nonce length bounds (§2.10: at least 128 bits, at most 256 octets).
const NONCE_MIN: usize = 16;
const NONCE_MAX: usize = 256;
/// Our nonce length: 32 octets, at least half the PRF key size of every PRF we support.
const OUR_NONCE_LEN: usize = 32;

impl Responder {
    pub(crate) fn ike_sa_init(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        bytes: &[u8],
        header: &Header,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Vec<Action> {
        if header.spi_r != 0 || header.message_id != 0 || header.spi_i == 0 {
            return Vec::new();
        }
        // §2.1: a retransmitted IKE_SA_INIT gets the same answer, not a second SA.
        if let Some(spi_r) = self.half_open.get(&(header.spi_i, remote)) {
            return match self.sas.get(spi_r) {
                Some(sa) if sa.init_request == bytes => {
                    debug!(%remote, "retransmitting IKE_SA_INIT response");
                    vec![Action::Send {
                        local,
                        remote,
                        bytes: sa.init_response.clone(),
                    }]
                }
                _ => Vec::new(),
            };
        }
        let msg = match Message::parse(bytes) {
            Ok(m) => m,
            Err(e) => return self.init_error(header, local, remote, &IkeError::Wire(e)),
        };
        match self.init_new_sa(now, rng, bytes, &msg, local, remote) {
            Ok(actions) => actions,
            Err(InitReject::Error(e)) => {
                info!(%remote, "IKE_SA_INIT refused: {e}");
                self.init_error(header, local, remote, &e)
            }
            Err(InitReject::Cookie(cookie)) => {
                debug!(%remote, "asking for a cookie");
                self.init_notify(header, local, remote, NotifyType::COOKIE, cookie)
            }
        }
    }

    fn init_new_sa(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        bytes: &[u8],
        msg: &Message,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<Vec<Action>, InitReject> {
        let header = &msg.header;
        let mut proposals = None;
        let mut ke = None;
        let mut ni = None;
        let mut nat_src = Vec::new();
        let mut nat_dst = Vec::new();
        for p in &msg.payloads {
            match p {
                Payload::Sa(s) => proposals = Some(s),
                Payload::Ke(k) => ke = Some(k),
                Payload::Nonce(n) => ni = Some(n),
                Payload::Notify(n) if n.notify_type == NotifyType::NAT_DETECTION_SOURCE_IP => {
                    nat_src.push(&n.data)
                }
                Payload::Notify(n) if n.notify_type == NotifyType::NAT_DETECTION_DESTINATION_IP => {
                    nat_dst.push(&n.data)
                }
                _ => {}
            }
        }
        let (Some(proposals), Some(ke), Some(ni)) = (proposals, ke, ni) else {
            return Err(IkeError::InvalidSyntax("IKE_SA_INIT needs SA, KE and Nonce").into());
        };
        if !(NONCE_MIN..=NONCE_MAX).contains(&ni.len()) {
            return Err(IkeError::InvalidSyntax("nonce length").into());
        }
        // §2.6: cookies when too many SAs are half open, overall or from this address.
        if self.half_open_count() >= self.cfg.limits.cookie_threshold
            || self.half_open_from(remote.ip()) >= self.cfg.limits.cookie_threshold_ip
        {
            let offered = match msg.payloads.first() {
                Some(Payload::Notify(n)) if n.notify_type == NotifyType::COOKIE => Some(&n.data),
                _ => None,
            };
            if !offered.is_some_and(|c| self.cookies.verify(c, ni, remote.ip(), header.spi_i)) {
                return Err(InitReject::Cookie(self.cookies.make(
                    ni,
                    remote.ip(),
                    header.spi_i,
                )));
            }
        }
        let suite = self.cfg.ike;
        let chosen = suite.choose(proposals)?;
        if ke.group != suite.dh.id() {
            // The chosen proposal offers our group (else choose() failed), so ask for it.
            debug_assert!(offers_group(proposals, suite.dh));
            return Err(IkeError::InvalidKe {
                got: ke.group,
                want: suite.dh.id(),
            }
            .into());
        }
        let dh = DhPrivate::generate(suite.dh, rng);
        let g_ir = dh
            .shared_secret(&ke.data)
            .map_err(|_| InitReject::Error(IkeError::InvalidSyntax("invalid KE public value")))?;
        let spi_r = self.new_ike_spi(rng.as_rngcore());
        let mut nr = vec![0u8; OUR_NONCE_LEN];
        rng.fill_bytes(&mut nr);
        let skeyseed = crypto::skeyseed(suite.prf, ni, &nr, g_ir.expose());
        let keys = crypto::derive_ike_keys(
            suite.prf,
            suite.encr,
            suite.integ,
            skeyseed.expose(),
            ni,
            &nr,
            header.spi_i,
            spi_r,
        );
        let sk = SkCrypto::responder(suite.encr, suite.integ, &keys)?;

        // §2.23: the initiator hashed with SPIr = 0.
        let peer_behind_nat = !nat_src.is_empty()
            && !nat_src
                .iter()
                .any(|h| h.as_slice() == nat_hash(header.spi_i, 0, remote));
        let we_behind_nat = !nat_dst.is_empty()
            && !nat_dst
                .iter()
                .any(|h| h.as_slice() == nat_hash(header.spi_i, 0, local));
        let mut payloads = vec![
            Payload::Sa(vec![suite.proposal(chosen.number, Vec::new())]),
            Payload::Ke(KePayload {
                group: suite.dh.id(),
                data: dh.public_value().to_vec(),
            }),
            Payload::Nonce(nr.clone()),
        ];
        if !nat_src.is_empty() || !nat_dst.is_empty() {
            payloads.push(Payload::notify(
                NotifyType::NAT_DETECTION_SOURCE_IP,
                nat_hash(header.spi_i, spi_r, local),
            ));
            payloads.push(Payload::notify(
                NotifyType::NAT_DETECTION_DESTINATION_IP,
                nat_hash(header.spi_i, spi_r, remote),
            ));
        }
        payloads.push(Payload::notify(
            NotifyType::IKEV2_FRAGMENTATION_SUPPORTED,
            Vec::new(),
        ));
        let response = Message {
            header: Header {
                spi_i: header.spi_i,
                spi_r,
                next_payload: payloads[0].payload_type(),
                version: IKEV2_VERSION,
                exchange: ExchangeType::IKE_SA_INIT,
                flags: FLAG_RESPONSE,
                message_id: 0,
                length: 0,
            },
            payloads,
        }
        .emit()
        .map_err(IkeError::from)?;
        debug!(%remote, spi_r = format_args!("{spi_r:016x}"), peer_behind_nat, we_behind_nat, "IKE_SA_INIT answered");
        self.insert_half_open(IkeSa {
            spi_i: header.spi_i,
            spi_r,
            suite,
            keys,
            sk,
            ni: ni.clone(),
            nr,
            init_request: bytes.to_vec(),
            init_response: response.clone(),
            local,
            remote,
            established: None,
            created: now,
            next_request_id: 1,
            cached_response: None,
            identity: None,
            vip: None,
            children: Vec::new(),
            udp_encap: peer_behind_nat || we_behind_nat,
            peer_fragmentation: msg.payloads.iter().any(|p| {
                matches!(p, Payload::Notify(n) if n.notify_type == NotifyType::IKEV2_FRAGMENTATION_SUPPORTED)
            }),
            peer_mobike: false,
            last_activity: now,
            expires: None,
            our_next_id: 0,
            pending: None,
            outbox: Default::default(),
            fragments: None,
        });
        Ok(vec![Action::Send {
            local,
            remote,
            bytes: response,
        }])
    }

    fn init_error(
        &self,
        header: &Header,
        local: SocketAddr,
        remote: SocketAddr,
        e: &IkeError,
    ) -> Vec<Action> {
        match e.notify() {
            Some(ty) => self.init_notify(header, local, remote, ty, e.notify_data()),
            None => Vec::new(),
        }
    }

    /// An unprotected IKE_SA_INIT answer carrying one notify, SPIr = 0 (§2.6, §1.3).
    fn init_notify(
        &self,
        header: &Header,
        local: SocketAddr,
        remote: SocketAddr,
        ty: NotifyType,
        data: Vec<u8>,
    ) -> Vec<Action> {
        let payloads = vec![Payload::notify(ty, data)];
        let message = Message {
            header: Header {
                spi_i: header.spi_i,
                spi_r: 0,
                next_payload: payloads[0].payload_type(),
                version: IKEV2_VERSION,
                exchange: ExchangeType::IKE_SA_INIT,
                flags: FLAG_RESPONSE,
                message_id: 0,
                length: 0,
            },
            payloads,
        };
        let bytes = encode_response(remote, &message.payloads, |payloads| {
            let header = message.header.clone();
            let payloads = payloads.to_vec();
            Ok(Message { header, payloads }.emit()?)
        });
        bytes
            .map(|bytes| Action::Send {
                local,
                remote,
                bytes,
            })
            .into_iter()
            .collect()
    }
}

/// Why an IKE_SA_INIT made no SA.
enum InitReject {
    Error(IkeError),
    /// Send N(COOKIE) with this value.
    Cookie(Vec<u8>),
}

impl From<IkeError> for InitReject {
    fn from(e: IkeError) -> Self {
        InitReject::Error(e)
    }
}
