//! IKE_AUTH with fuzzed inner payloads sealed with the half-open IKE SA's real keys (message
//! ID 1), whole or fragmented, then a few more steps on the IKE SA it may have established:
//! identities, AUTH (the real value for the IDi sent, or not), CP, proposals, selectors and
//! notifies that only a peer holding the IKE SA's keys can make the responder read. After
//! every step the responder's tables stay within their bounds; deleting everything at the
//! end leaves nothing behind (see `authenticated/mod.rs`).
#![no_main]

mod authenticated;
mod common;

use arbitrary::Arbitrary;
use authenticated::payloads::{FPayload, Few};
use authenticated::{usual_auth, Delivery, Harness, Setup, Source, Step};
use ipsec_server::wire::ExchangeType;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    setup: Setup,
    inner: Inner,
    delivery: Delivery,
    from: Source,
    then: Few<Step, 3>,
}

#[derive(Arbitrary, Debug)]
enum Inner {
    /// Our usual IKE_AUTH (IDi, INITIAL_CONTACT, AUTH, CP, SA, TSi, TSr) without the payloads
    /// whose bit is set in `drop`, with `extra` inserted at `at`.
    Usual {
        drop: u8,
        extra: Few<FPayload, 4>,
        at: u8,
    },
    /// Any list.
    Custom(Few<FPayload, 16>),
}

fuzz_target!(|input: Input| {
    let mut h = Harness::half_open(&input.setup);
    let inner = match &input.inner {
        Inner::Usual { drop, extra, at } => {
            let mut inner: Vec<_> = usual_auth(&mut h, input.setup.mobike)
                .into_iter()
                .enumerate()
                .filter(|(i, _)| drop & (1 << i) == 0)
                .map(|(_, p)| p)
                .collect();
            let at = usize::from(*at) % (inner.len() + 1);
            let extra = h.payloads(&extra.0);
            inner.splice(at..at, extra);
            inner
        }
        Inner::Custom(list) => h.payloads(&list.0),
    };
    h.request(
        ExchangeType::IKE_AUTH,
        1,
        &inner,
        &input.delivery,
        input.from,
    );
    if let Some(answer) = h.last_answer.take() {
        let _ = h.initiator.handle(&mut h.rng, &answer);
    }
    for step in &input.then.0 {
        h.step(step);
    }
    h.finish();
});
