//! ESP seal and open (RFC 4303 §2, tunnel mode, 32-bit sequence numbers) into buffers the
//! caller owns.
//!
//! Packet layout: SPI(4) | Seq(4) | IV | E(inner | padding 1,2,3… | pad length | next header) | ICV.
//!
//! Invariants: [`OutboundSa::seal`] never reuses or wraps a sequence number (it fails once
//! 2^32-1 are used, counted as a drop; the control plane rekeys the SA long before, from
//! [`super::REKEY_AT_SEQ`] on) and seals only packets whose source is inside the SA's local
//! selectors (RFC 4301 §5.1; others are dropped and counted, [`SaCounters::outside_selectors`]);
//! [`InboundSa::open`] checks the replay window before and after the ICV, verifies the ICV
//! before decrypting, and delivers only IPv4 packets whose source is the client's address and
//! whose destination is inside the SA's selectors.
//!
//! A dummy packet (Next Header 59, RFC 4303 §2.6: traffic-flow-confidentiality padding a
//! peer may send at will) is a normal outcome, not an error: it passed the ICV and the replay
//! window, so [`InboundSa::open`] returns it as [`Opened::Dummy`] and counts it apart
//! ([`SaCounters::dummies`]), neither as a delivered packet nor as a drop.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};

use rand::RngCore;

use super::replay::{ReplayError, ReplayWindow};
use super::{ChildSaSpec, Ipv4Range, Role};
use crate::crypto::{Cipher, CryptoError, EncrAlg, Integ, IntegAlg, PAR_BLOCKS};
use crate::secret::SecretBytes;
use crate::wire::{
    parse_trailer, write_padding, EspHeader, EspTrailer, Ipv4Header, ESP_HEADER_LEN,
    ESP_TRAILER_LEN, IPV4_MIN_HEADER_LEN, NEXT_HEADER_IPV4, NEXT_HEADER_NONE,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EspError {
    #[error("packet too short")]
    Truncated,
    #[error("output buffer too small")]
    BufferTooSmall,
    #[error("replay check failed: {0:?}")]
    Replay(ReplayError),
    #[error("ICV check failed")]
    Integrity,
    #[error("bad padding")]
    BadPadding,
    #[error("unsupported next header {0}")]
    NextHeader(u8),
    #[error("inner packet does not match the SA's selectors")]
    Selector,
    #[error("sequence numbers exhausted: rekey needed")]
    SeqExhausted,
    #[error("IPv6 outer addresses are not supported by the data plane")]
    Ipv6Outer,
    #[error("bad key: {0}")]
    Key(#[from] CryptoError),
}

/// Packet and byte counters of one direction of an SA.
#[derive(Debug, Default)]
pub struct SaCounters {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub dropped: AtomicU64,
    /// Inbound only: authentic dummy packets (not in `packets`, not in `dropped`).
    pub dummies: AtomicU64,
    /// Packets whose inner addresses are outside the SA's selectors (also in `dropped`):
    /// inbound, authentic packets from another source or to another destination; outbound,
    /// packets from a source outside the local selectors (RFC 4301 §5.1).
    pub outside_selectors: AtomicU64,
}

impl SaCounters {
    fn count(&self, bytes: usize) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn drop_one(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// (packets, bytes, dropped)
    pub fn read(&self) -> (u64, u64, u64) {
        (
            self.packets.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }

    /// Dummy packets received (inbound SAs; see the module doc).
    pub fn dummies(&self) -> u64 {
        self.dummies.load(Ordering::Relaxed)
    }

    /// Packets dropped because their addresses are outside the SA's selectors.
    pub fn outside_selectors(&self) -> u64 {
        self.outside_selectors.load(Ordering::Relaxed)
    }

    /// Counts a packet that failed with `e` as dropped (and as outside the selectors if it
    /// was).
    fn drop_for(&self, e: &EspError) {
        self.drop_one();
        if matches!(e, EspError::Selector) {
            self.outside_selectors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds this SA's counters to `t`, as an inbound (`true`) or outbound SA.
    fn add_to(&self, t: &mut EspTotals, inbound: bool) {
        let (packets, bytes, dropped) = self.read();
        let d = if inbound {
            &mut t.inbound
        } else {
            &mut t.outbound
        };
        d.packets += packets;
        d.bytes += bytes;
        d.dropped += dropped;
        d.outside_selectors += self.outside_selectors();
    }
}

/// The counters of one direction summed over SAs ([`EspTotals`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionTotals {
    /// Packets delivered (inbound: into the TUN; outbound: sealed).
    pub packets: u64,
    /// Bytes of those packets' inner (plaintext) IP packets.
    pub bytes: u64,
    /// Every packet dropped on an SA, whatever the reason (by reason: [`super::Sad::drops`]).
    pub dropped: u64,
    pub outside_selectors: u64,
}

/// What the data plane did since the SA database was created: the counters of every SA,
/// deleted ones included ([`super::Sad::totals`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EspTotals {
    pub inbound: DirectionTotals,
    pub outbound: DirectionTotals,
}

impl EspTotals {
    pub(super) fn add_inbound(&mut self, sa: &InboundSa) {
        sa.counters.add_to(self, true);
    }

    pub(super) fn add_outbound(&mut self, sa: &OutboundSa) {
        sa.counters.add_to(self, false);
    }
}

/// Gateway → client.
pub struct OutboundSa {
    pub spi: u32,
    /// The inbound SPI of the pair (our SPI): how the control plane names this SA when it
    /// needs a rekey ([`super::SadSnapshot::rekey_due`]).
    pub inbound_spi: u32,
    /// Last sequence number used.
    pub(super) seq: AtomicU64,
    /// Allowed inner sources (RFC 4301 §5.1), precomputed from the spec: the gateway's
    /// negotiated local selectors ([`Role::Gateway`]) or the client's virtual IP
    /// ([`Role::Client`]). The destination needs no check: the gateway found this SA by the
    /// destination (the client's address), and the client's kernel routes only the remote
    /// subnets into its TUN (the gateway's inbound check refuses anything else).
    pub(super) sources: Vec<Ipv4Range>,
    cipher: Cipher,
    integ: Integ,
    /// The keys `cipher` and `integ` were built from, for the hand-over snapshot.
    pub(super) keys: SaKeys,
    /// The client's outer address (IPv4 + port packed), updated on NAT rebinding.
    remote: AtomicU64,
    pub local: SocketAddr,
    pub counters: SaCounters,
}

/// Client → gateway.
pub struct InboundSa {
    pub spi: u32,
    cipher: Cipher,
    integ: Integ,
    pub(super) keys: SaKeys,
    pub(super) replay: ReplayWindow,
    pub client_vip: Ipv4Addr,
    pub(super) local_ts: Vec<Ipv4Range>,
    pub(super) role: Role,
    pub counters: SaCounters,
}

/// One direction's algorithms and keys, kept beside the keyed transforms only so that the
/// hand-over snapshot (`super::handover`) can carry the SA to a new process.
pub(super) struct SaKeys {
    pub encr: EncrAlg,
    pub integ: IntegAlg,
    pub encr_key: SecretBytes,
    pub integ_key: SecretBytes,
}

impl SaKeys {
    fn new(
        encr: EncrAlg,
        integ: IntegAlg,
        encr_key: &SecretBytes,
        integ_key: &SecretBytes,
    ) -> Self {
        Self {
            encr,
            integ,
            encr_key: encr_key.clone(),
            integ_key: integ_key.clone(),
        }
    }
}

/// An authentic packet [`InboundSa::open`] accepted, with its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// An inner IPv4 packet for the TUN device: `out[..len]`.
    Packet { len: usize, seq: u32 },
    /// A dummy packet (Next Header 59): nothing to deliver.
    Dummy { seq: u32 },
}

impl OutboundSa {
    pub fn new(spec: &ChildSaSpec) -> Result<Self, EspError> {
        Self::with_role(spec, Role::Gateway)
    }

    /// The outbound SA of `spec` for the tunnel end `role` (which selectors are local).
    pub fn with_role(spec: &ChildSaSpec, role: Role) -> Result<Self, EspError> {
        let sources = match role {
            Role::Gateway => spec.local_ts.clone(),
            Role::Client => vec![Ipv4Range::single(spec.client_vip)],
        };
        Ok(Self {
            spi: spec.outbound_spi,
            inbound_spi: spec.inbound_spi,
            seq: AtomicU64::new(0),
            sources,
            cipher: Cipher::new(spec.encr, spec.outbound_encr_key.expose())?,
            integ: Integ::new(spec.integ, spec.outbound_integ_key.expose())?,
            keys: SaKeys::new(
                spec.encr,
                spec.integ,
                &spec.outbound_encr_key,
                &spec.outbound_integ_key,
            ),
            remote: AtomicU64::new(pack(spec.remote)?),
            local: spec.local,
            counters: SaCounters::default(),
        })
    }

    pub fn remote(&self) -> SocketAddr {
        unpack(self.remote.load(Ordering::Relaxed))
    }

    /// Follows the client to a new outer address (RFC 3948 §3.5 NAT rebinding, after an
    /// authenticated packet came from there).
    pub fn set_remote(&self, addr: SocketAddr) {
        if let Ok(p) = pack(addr) {
            self.remote.store(p, Ordering::Relaxed);
        }
    }

    /// The last sequence number sealed (0: none yet).
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }

    /// Test hook: makes `seq` the next sequence number sealed, so that a test reaches the
    /// rekey threshold and the end of the sequence space without sending 2^31 packets (unit
    /// tests, and the daemon's `IPSEC_SERVER_TEST_FIRST_SEQ`, README "Tests").
    ///
    /// Safe to expose: it only moves the counter forward (`fetch_max`), so no sequence number
    /// is ever sent twice and the anti-replay guarantee of the peer holds; all it can do is
    /// shorten the SA's life (earlier rekey, or [`EspError::SeqExhausted`] sooner).
    #[doc(hidden)]
    pub fn set_next_seq_for_test(&self, seq: u32) {
        if let Some(last) = u64::from(seq).checked_sub(1) {
            self.seq.fetch_max(last, Ordering::Relaxed);
        }
    }

    /// Bytes [`Self::seal`] needs for an inner packet of `inner_len` bytes.
    pub fn sealed_len(&self, inner_len: usize) -> usize {
        let padded = inner_len + usize::from(self.trailer(inner_len).pad_len);
        ESP_HEADER_LEN
            + self.cipher.alg().iv_len()
            + padded
            + ESP_TRAILER_LEN
            + self.integ.alg().icv_len()
    }

    /// The trailer after an inner packet of `inner_len` bytes: default padding to the cipher
    /// block (RFC 4303 §2.4), next header IPv4.
    fn trailer(&self, inner_len: usize) -> EspTrailer {
        // Cipher blocks are 8 or 16 bytes.
        let block = u8::try_from(self.cipher.alg().block_len()).unwrap_or(u8::MAX);
        EspTrailer::for_payload(inner_len, block, NEXT_HEADER_IPV4)
    }

    /// Encrypts `inner` (an IPv4 packet) into `out`; returns the ESP packet's length.
    /// [`Self::seal_prepare`] then [`Self::seal_finish`] on one packet.
    pub fn seal<R: RngCore + ?Sized>(
        &self,
        inner: &[u8],
        out: &mut [u8],
        rng: &mut R,
    ) -> Result<usize, EspError> {
        let total = self.seal_prepare(inner, out, rng)?;
        self.seal_finish([&mut out[..total]])?;
        Ok(total)
    }

    /// The first half of sealing: checks the inner source against the local selectors,
    /// takes the next sequence number and writes the ESP header, a random IV, `inner` and the
    /// padding (RFC 4303 §2.4) into `out`, in the clear. Returns the packet's final length;
    /// `out[..len]` must go through [`Self::seal_finish`] before it is sent. A packet refused
    /// is counted as dropped (and uses no sequence number unless they ran out).
    pub fn seal_prepare<R: RngCore + ?Sized>(
        &self,
        inner: &[u8],
        out: &mut [u8],
        rng: &mut R,
    ) -> Result<usize, EspError> {
        let r = self.seal_prepare_inner(inner, out, rng);
        if let Err(e) = &r {
            self.counters.drop_for(e);
        }
        r
    }

    /// Whether `inner` is an IPv4 packet from a source inside the local selectors.
    fn source_allowed(&self, inner: &[u8]) -> bool {
        Ipv4Header::parse(inner).is_some_and(|ip| {
            let src = ip.src();
            self.sources.iter().any(|r| r.contains(src))
        })
    }

    fn seal_prepare_inner<R: RngCore + ?Sized>(
        &self,
        inner: &[u8],
        out: &mut [u8],
        rng: &mut R,
    ) -> Result<usize, EspError> {
        if !self.source_allowed(inner) {
            return Err(EspError::Selector);
        }
        let total = self.sealed_len(inner.len());
        if out.len() < total {
            return Err(EspError::BufferTooSmall);
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        if seq > u64::from(u32::MAX) {
            // Keep the counter saturated so every later call fails too.
            self.seq.store(u64::from(u32::MAX), Ordering::Relaxed);
            return Err(EspError::SeqExhausted);
        }
        let alg = self.cipher.alg();
        let body_start = ESP_HEADER_LEN + alg.iv_len();
        let body_end = total - self.integ.alg().icv_len();
        EspHeader {
            spi: self.spi,
            seq: seq as u32,
        }
        .emit(out)
        .map_err(|_| EspError::BufferTooSmall)?;
        rng.fill_bytes(&mut out[ESP_HEADER_LEN..body_start]);
        let body = &mut out[body_start..body_end];
        body[..inner.len()].copy_from_slice(inner);
        // §2.4: padding 1, 2, 3, …, then pad length and next header, as `sealed_len` counted.
        write_padding(body, inner.len(), self.trailer(inner.len()))
            .map_err(|_| EspError::BufferTooSmall)?;
        self.counters.count(inner.len());
        Ok(total)
    }

    /// The second half of sealing: encrypts packets made by [`Self::seal_prepare`] (each
    /// exactly the length it returned) and appends their ICVs (encrypt-then-MAC, RFC 4303
    /// §3.3.2). Packets are encrypted [`PAR_BLOCKS`] at a time with their CBC chains
    /// interleaved ([`Cipher::encrypt_many`]) and signed together ([`Integ::sign_many`]:
    /// HMAC-SHA1's chains interleaved too). On an error (a packet of a length
    /// `seal_prepare` cannot have returned) some packets stay unencrypted: drop them all.
    pub fn seal_finish<'a>(
        &self,
        packets: impl IntoIterator<Item = &'a mut [u8]>,
    ) -> Result<(), EspError> {
        let icv_len = self.integ.alg().icv_len();
        let min = ESP_HEADER_LEN + self.cipher.alg().iv_len() + icv_len;
        let mut packets = packets.into_iter();
        loop {
            let mut group: [&mut [u8]; PAR_BLOCKS] = Default::default();
            let mut n = 0;
            for (slot, p) in group.iter_mut().zip(packets.by_ref()) {
                if p.len() < min {
                    return Err(EspError::Truncated);
                }
                *slot = p;
                n += 1;
            }
            if n == 0 {
                return Ok(());
            }
            {
                // IV || body of each packet, encrypted after its IV.
                let mut bodies: [&mut [u8]; PAR_BLOCKS] = Default::default();
                for (body, p) in bodies.iter_mut().zip(group[..n].iter_mut()) {
                    let end = p.len() - icv_len;
                    *body = &mut p[ESP_HEADER_LEN..end];
                }
                self.cipher.encrypt_many(&mut bodies[..n])?;
            }
            // Each packet's ICV into its last `icv_len` bytes, several MACs at once.
            self.integ.sign_many(&mut group[..n]);
        }
    }
}

/// A packet [`InboundSa::precheck`] let through: its sequence number and where its ICV starts.
#[derive(Clone, Copy)]
struct Prechecked {
    seq: u32,
    icv_at: usize,
}

impl InboundSa {
    pub fn new(spec: &ChildSaSpec) -> Result<Self, EspError> {
        Self::with_role(spec, Role::Gateway)
    }

    /// The inbound SA of `spec` for the tunnel end `role` (selector checks mirrored for
    /// [`Role::Client`]).
    pub fn with_role(spec: &ChildSaSpec, role: Role) -> Result<Self, EspError> {
        Ok(Self {
            spi: spec.inbound_spi,
            cipher: Cipher::new(spec.encr, spec.inbound_encr_key.expose())?,
            integ: Integ::new(spec.integ, spec.inbound_integ_key.expose())?,
            keys: SaKeys::new(
                spec.encr,
                spec.integ,
                &spec.inbound_encr_key,
                &spec.inbound_integ_key,
            ),
            replay: ReplayWindow::new(),
            client_vip: spec.client_vip,
            local_ts: spec.local_ts.clone(),
            role,
            counters: SaCounters::default(),
        })
    }

    /// Authenticates and decrypts an ESP packet (starting at the SPI) into `out`.
    pub fn open(&self, packet: &[u8], out: &mut [u8]) -> Result<Opened, EspError> {
        let r = self.precheck(packet, out.len()).and_then(|c| {
            if !self.integ.verify(&packet[..c.icv_at], &packet[c.icv_at..]) {
                return Err(EspError::Integrity);
            }
            self.finish(packet, c, out)
        });
        self.count(&r);
        r
    }

    /// [`InboundSa::open`] for a run of up to [`PAR_BLOCKS`] packets of this SA, packet `i`
    /// into `outs[i]`, its outcome to `results[i]`: what `open` would return for each,
    /// called one after the other, except that the ICVs are checked together
    /// ([`Integ::verify_many`]: HMAC-SHA1's interleaved lanes). The replay window is checked
    /// for all before their ICVs and updated packet by packet after them, as `open` does, so a
    /// packet that repeats an earlier one of the same run is refused as a replay there.
    ///
    /// # Panics
    /// If there are more than [`PAR_BLOCKS`] packets or fewer outputs or result slots than
    /// packets — caller bugs, independent of any received data.
    pub fn open_many(
        &self,
        packets: &[&[u8]],
        outs: &mut [&mut [u8]],
        results: &mut [Result<Opened, EspError>],
    ) {
        assert!(packets.len() <= PAR_BLOCKS, "at most PAR_BLOCKS packets");
        // The packets the cheap checks let through: their index and what was checked.
        let mut passed = [(0, Prechecked { seq: 0, icv_at: 0 }); PAR_BLOCKS];
        let mut signed: [&[u8]; PAR_BLOCKS] = [&[]; PAR_BLOCKS];
        let mut m = 0;
        for (i, (packet, out)) in packets.iter().zip(outs.iter()).enumerate() {
            match self.precheck(packet, out.len()) {
                Ok(c) => {
                    (signed[m], passed[m]) = (packet, (i, c));
                    m += 1;
                }
                Err(e) => results[i] = Err(e),
            }
        }
        let mut ok = [false; PAR_BLOCKS];
        self.integ.verify_many(&signed[..m], &mut ok[..m]);
        for (&(i, c), ok) in passed[..m].iter().zip(ok) {
            results[i] = if ok {
                self.finish(packets[i], c, outs[i])
            } else {
                Err(EspError::Integrity)
            };
        }
        for r in &results[..packets.len()] {
            self.count(r);
        }
    }

    /// The highest sequence number accepted so far: how far the peer's outbound counter
    /// for this SA has gone.
    pub fn highest_seq(&self) -> u64 {
        self.replay.highest()
    }

    fn count(&self, r: &Result<Opened, EspError>) {
        match r {
            Ok(Opened::Packet { len, .. }) => self.counters.count(*len),
            Ok(Opened::Dummy { .. }) => {
                self.counters.dummies.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.counters.drop_for(e),
        }
    }

    /// What `open` checks before the ICV: lengths, the sequence number against the replay
    /// window (not yet updated), room in the output.
    fn precheck(&self, packet: &[u8], out_len: usize) -> Result<Prechecked, EspError> {
        let alg = self.cipher.alg();
        let (iv_len, block) = (alg.iv_len(), alg.block_len());
        let icv_len = self.integ.alg().icv_len();
        let body_start = ESP_HEADER_LEN + iv_len;
        if packet.len() < body_start + block + icv_len {
            return Err(EspError::Truncated);
        }
        let icv_at = packet.len() - icv_len;
        let body_len = icv_at - body_start;
        if body_len % block != 0 {
            return Err(EspError::BadPadding);
        }
        if out_len < body_len {
            return Err(EspError::BufferTooSmall);
        }
        let seq = EspHeader::parse(packet)
            .map_err(|_| EspError::Truncated)?
            .seq;
        self.replay.check(seq).map_err(EspError::Replay)?;
        Ok(Prechecked { seq, icv_at })
    }

    /// What `open` does after the ICV verified: decrypt, update the replay window, check the
    /// padding, the next header and the selectors.
    fn finish(&self, packet: &[u8], c: Prechecked, out: &mut [u8]) -> Result<Opened, EspError> {
        let Prechecked { seq, icv_at } = c;
        let body_start = ESP_HEADER_LEN + self.cipher.alg().iv_len();
        let plain = &mut out[..icv_at - body_start];
        self.cipher.decrypt(
            &packet[ESP_HEADER_LEN..body_start],
            &packet[body_start..icv_at],
            plain,
        )?;
        self.replay.accept(seq).map_err(EspError::Replay)?;
        // §2.4: the receiver checks the default padding 1, 2, 3, ….
        let (payload_len, trailer) = parse_trailer(plain).map_err(|_| EspError::BadPadding)?;
        match trailer.next_header {
            NEXT_HEADER_IPV4 => {}
            NEXT_HEADER_NONE => return Ok(Opened::Dummy { seq }),
            other => return Err(EspError::NextHeader(other)),
        }
        let len = self.check_selectors(&plain[..payload_len])?;
        Ok(Opened::Packet { len, seq })
    }

    /// The inner IPv4 packet's length (TFC padding after it is cut) if its addresses match
    /// the SA: source = the client's address, destination inside the local selectors.
    fn check_selectors(&self, inner: &[u8]) -> Result<usize, EspError> {
        let ip = Ipv4Header::parse(inner).ok_or(EspError::Selector)?;
        let total = ip.total_len();
        if total < IPV4_MIN_HEADER_LEN || total > inner.len() {
            return Err(EspError::Selector);
        }
        let (src, dst) = (ip.src(), ip.dst());
        // Gateway: from the client's address into the local subnets; client: the mirror.
        let (vip_side, ts_side) = match self.role {
            Role::Gateway => (src, dst),
            Role::Client => (dst, src),
        };
        if vip_side != self.client_vip || !self.local_ts.iter().any(|r| r.contains(ts_side)) {
            return Err(EspError::Selector);
        }
        Ok(total)
    }
}

fn pack(addr: SocketAddr) -> Result<u64, EspError> {
    match addr {
        SocketAddr::V4(a) => Ok((u64::from(u32::from(*a.ip())) << 16) | u64::from(a.port())),
        SocketAddr::V6(_) => Err(EspError::Ipv6Outer),
    }
}

fn unpack(v: u64) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::from((v >> 16) as u32),
        v as u16,
    ))
}
