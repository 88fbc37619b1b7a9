//! The hand-over snapshot of `ipsec-server upgrade` (`daemon::handover`): whatever the bytes,
//! decoding never panics nor allocates beyond the bound, and a snapshot that decodes is
//! restored (IKE SAs, SA database) or refused without a panic.
#![no_main]

#[allow(dead_code)] // this target needs only the responder side
mod common;

use std::sync::Arc;
use std::time::Instant;

use common::responder_config;
use ipsec_server::daemon::handover::decode;
use ipsec_server::ike::Responder;
use ipsec_server::ipsec::Sad;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(snapshot) = decode(data) else {
        return;
    };
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let _ = Responder::restore(Arc::new(responder_config()), &snapshot.responder, now);
    let _ = Sad::new().import(&snapshot.sad, 64);
});
