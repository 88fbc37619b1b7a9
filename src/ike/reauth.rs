//! Re-authentication: when a client must prove the PSK again with a new IKE_AUTH (RFC 4478).
//!
//! An IKE SA rekey (§2.18) renews keys, not the proof that the client knows the PSK, so a
//! client that keeps rekeying would otherwise never authenticate again and a PSK change would
//! never reach it. The policy:
//! - Every established IKE SA carries when and with which PSK its client last authenticated
//!   ([`Authenticated`]); an IKE SA rekey hands it on unchanged.
//! - With a non-zero `ike_lifetime`, a client must authenticate again (a new IKE SA through
//!   IKE_SA_INIT and IKE_AUTH) within `ike_lifetime` of its last IKE_AUTH, however often it
//!   rekeyed. With `ike_lifetime = 0` only a PSK change asks for it.
//! - A PSK change ([`Responder::reconfigure`] with another PSK, without EffectImmediately)
//!   gives every IKE SA authenticated with an older PSK a deadline at most
//!   `psk_change_reauth` away (its own, if sooner); IKE SAs authenticated with the new PSK
//!   get none beyond `ike_lifetime`. So `psk_change_reauth` after a change, every connected
//!   client has used the new PSK.
//! - The client is told: AUTH_LIFETIME (notify 16403, four octets of seconds) in the IKE_AUTH
//!   response, and in an INFORMATIONAL request after a PSK change. It announces the time
//!   left less a margin ([`announced`]: a tenth of it, at most [`MARGIN_MAX`]), so a client
//!   that re-authenticates when told (strongSwan does, its `over_time` earlier still) has
//!   done so before the deadline.
//! - At the deadline an IKE SA that is still there is deleted (INFORMATIONAL DELETE, as at the
//!   end of its lifetime); its client must reconnect.
//!
//! Which PSK a client used is a generation number that the responder counts up on each
//! change: neither the PSK nor anything derived from it is kept per SA or logged. (Changing
//! the PSK back to an earlier one is a change too.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand_core::CryptoRngCore;
use tracing::info;

use crate::wire::{NotifyType, Payload};

use super::requests::Request;
use super::responder::{Established, IkeSa, Responder, SaState};
use super::{lifetime_end, Action, ResponderConfig};

/// The largest margin between the time AUTH_LIFETIME announces and the deadline.
pub(crate) const MARGIN_MAX: Duration = Duration::from_secs(60);

/// When and with which PSK the client of an IKE SA last authenticated, and by when it must
/// authenticate again; carried through IKE SA rekeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Authenticated {
    /// The IKE_AUTH.
    pub at: Instant,
    /// The responder's PSK generation then (`Responder::psk_generation`).
    pub psk_generation: u64,
    /// The IKE SA is deleted then unless the client authenticated again; `None` = never.
    pub reauth_by: Option<Instant>,
}

impl Authenticated {
    /// An IKE_AUTH at `now` with PSK generation `psk_generation`, under `ike_lifetime`.
    pub fn new(now: Instant, ike_lifetime: Duration, psk_generation: u64) -> Self {
        Self {
            at: now,
            psk_generation,
            reauth_by: lifetime_end(now, ike_lifetime),
        }
    }

    /// The deadline is over: the IKE SA must go.
    pub fn overdue(&self, now: Instant) -> bool {
        self.reauth_by.is_some_and(|t| now >= t)
    }

    /// The AUTH_LIFETIME notify for the time left at `now`; `None` without a deadline.
    pub fn notify(&self, now: Instant) -> Option<Payload> {
        let left = self.reauth_by?.saturating_duration_since(now);
        let secs = u32::try_from(announced(left).as_secs()).unwrap_or(u32::MAX);
        Some(Payload::notify(
            NotifyType::AUTH_LIFETIME,
            secs.to_be_bytes().to_vec(),
        ))
    }
}

/// What AUTH_LIFETIME announces when `left` remains: `left` less a tenth of it (at most
/// [`MARGIN_MAX`]), at least one second (strongSwan ignores an AUTH_LIFETIME of 0).
pub(crate) fn announced(left: Duration) -> Duration {
    (left - (left / 10).min(MARGIN_MAX)).max(Duration::from_secs(1))
}

impl Responder {
    /// A new configuration (UpdateIpsecServer, SIGHUP). New IKE SAs use it; established ones
    /// keep what they negotiated, except that after a PSK change those authenticated with an
    /// older PSK must authenticate again within `psk_change_reauth` (told by AUTH_LIFETIME).
    /// `delete_all` (EffectImmediately) deletes every IKE SA now instead.
    pub fn reconfigure(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        cfg: Arc<ResponderConfig>,
        delete_all: bool,
    ) -> Vec<Action> {
        let psk_changed = self.cfg.psk != cfg.psk;
        self.cfg = cfg;
        if psk_changed {
            self.psk_generation += 1;
        }
        if delete_all {
            return self.delete_all(rng);
        }
        if !psk_changed {
            return Vec::new();
        }
        let bound = self.cfg.psk_change_reauth;
        let deadline = now + bound;
        let generation = self.psk_generation;
        let old: Vec<u64> = self
            .sas
            .values()
            .filter(|sa| {
                matches!(&sa.state, SaState::Established(e) if e.auth.psk_generation != generation)
            })
            .map(|sa| sa.core.spi_r)
            .collect();
        let mut actions = Vec::new();
        for spi in &old {
            let Some(IkeSa {
                core,
                state: SaState::Established(mut e),
            }) = self.sas.remove(spi)
            else {
                continue;
            };
            e.auth.reauth_by = Some(e.auth.reauth_by.map_or(deadline, |t| t.min(deadline)));
            tell(&mut e);
            actions.extend(self.send_next(&core, &mut e, now, rng));
            self.put_back(IkeSa {
                core,
                state: SaState::Established(e),
            });
        }
        info!(
            ike_sas = old.len(),
            "PSK changed: clients authenticated with the old one must authenticate again \
             within {} s",
            bound.as_secs()
        );
        actions
    }
}

/// Queues an AUTH_LIFETIME for the client of `e`, unless `e` was rekeyed (it only waits for
/// its DELETE; its successor is told).
fn tell(e: &mut Established) {
    if !e.rekeyed && !e.outbox.contains(&Request::AuthLifetime) {
        e.outbox.push_back(Request::AuthLifetime);
    }
}
