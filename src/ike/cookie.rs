//! Stateless cookies (RFC 7296 §2.6): `<version> | HMAC-SHA256(secret, Ni | IPi | SPIi)`,
//! truncated, with a secret that rotates; the previous secret stays valid for one period.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::RngCore;

use crate::crypto::PrfAlg;
use crate::secret::SecretBytes;

/// How often the cookie secret changes.
pub(crate) const ROTATE_EVERY: Duration = Duration::from_secs(120);
/// Cookie length: 1 version byte + 16 bytes of MAC (§2.6 allows 1..=64 octets).
const MAC_LEN: usize = 16;

pub(crate) struct CookieJar {
    version: u8,
    current: SecretBytes,
    previous: SecretBytes,
    rotated_at: Option<Instant>,
}

impl CookieJar {
    pub fn new() -> Self {
        Self {
            version: 0,
            current: SecretBytes::default(),
            previous: SecretBytes::default(),
            rotated_at: None,
        }
    }

    /// Rotates the secret when its period is over (or it was never set).
    pub fn maybe_rotate(&mut self, now: Instant, rng: &mut dyn RngCore) {
        if self
            .rotated_at
            .is_some_and(|t| now.saturating_duration_since(t) < ROTATE_EVERY)
        {
            return;
        }
        let mut secret = vec![0u8; 32];
        rng.fill_bytes(&mut secret);
        self.previous = std::mem::replace(&mut self.current, SecretBytes::new(secret));
        self.version = self.version.wrapping_add(1);
        self.rotated_at = Some(now);
    }

    pub fn make(&self, ni: &[u8], ip: IpAddr, spi_i: u64) -> Vec<u8> {
        let mut c = vec![self.version];
        c.extend_from_slice(&mac(&self.current, ni, ip, spi_i));
        c
    }

    pub fn verify(&self, cookie: &[u8], ni: &[u8], ip: IpAddr, spi_i: u64) -> bool {
        let Some((&version, tag)) = cookie.split_first() else {
            return false;
        };
        let secret = if version == self.version {
            &self.current
        } else if version == self.version.wrapping_sub(1) && !self.previous.is_empty() {
            &self.previous
        } else {
            return false;
        };
        SecretBytes::new(mac(secret, ni, ip, spi_i)).ct_eq(tag)
    }
}

fn mac(secret: &SecretBytes, ni: &[u8], ip: IpAddr, spi_i: u64) -> Vec<u8> {
    let ip = match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let mut data = ni.to_vec();
    data.extend_from_slice(&ip);
    data.extend_from_slice(&spi_i.to_be_bytes());
    let full = PrfAlg::HmacSha256.prf(secret.expose(), &data);
    full.expose()[..MAC_LEN].to_vec()
}
