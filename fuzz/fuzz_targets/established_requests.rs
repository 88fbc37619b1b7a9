//! CREATE_CHILD_SA and INFORMATIONAL requests with fuzzed inner payloads on an established IKE
//! SA, sealed with its real keys: consecutive (and sometimes wrong) message IDs, whole or
//! fragmented (also numbered arbitrarily), from the client or elsewhere, retransmitted, with
//! time passing, `tick` running the responder's own requests (DPD, Child SA rekeys, deletes)
//! and those answered by the initiator or with fuzzed responses. After every step the
//! responder's tables stay within their bounds; deleting everything at the end leaves nothing
//! behind (see `authenticated/mod.rs`).
#![no_main]

mod authenticated;
mod common;

use arbitrary::Arbitrary;
use authenticated::payloads::Few;
use authenticated::{usual_auth, Delivery, Harness, Setup, Source, Step};
use ipsec_server::wire::ExchangeType;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    setup: Setup,
    steps: Few<Step, 12>,
}

fuzz_target!(|input: Input| {
    let mut h = Harness::half_open(&input.setup);
    let inner = usual_auth(&mut h, input.setup.mobike);
    h.request(
        ExchangeType::IKE_AUTH,
        1,
        &inner,
        &Delivery::Whole,
        Source::Client,
    );
    let answer = h.last_answer.take().expect("IKE_AUTH is answered");
    let done = h.initiator.handle(&mut h.rng, &answer);
    assert!(
        matches!(done, Ok(None)) && h.initiator.is_established(),
        "{done:?}"
    );
    for step in &input.steps.0 {
        h.step(step);
    }
    h.finish();
});
