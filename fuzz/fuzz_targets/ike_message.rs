//! IKE message parser: any input either fails to parse or parses to a message whose
//! emit parses back to the same message, with the same size, and emits identically.
//! The first octet also drives the bare payload-chain parser (the decrypted-SK path).
#![no_main]

use ipsec_server::wire::{emit_payloads, parse_payloads, Message, PayloadType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = Message::parse(data) {
        let bytes = msg.emit().expect("a parsed message emits");
        assert_eq!(bytes.len(), data.len(), "emit changed the size");
        let again = Message::parse(&bytes).expect("an emitted message parses");
        assert_eq!(again, msg);
        assert_eq!(again.emit(), Ok(bytes));
    }

    if let Some((&first, chain)) = data.split_first() {
        let first = PayloadType(first);
        if let Ok(payloads) = parse_payloads(first, chain) {
            let mut out = Vec::new();
            let emitted_first = emit_payloads(&payloads, &mut out).expect("a parsed chain emits");
            assert_eq!(out.len(), chain.len(), "emit changed the size");
            assert_eq!(parse_payloads(emitted_first, &out), Ok(payloads));
        }
    }
});
