//! Arbitrary text as a config file: a value or an error with a code, never a panic.
#![no_main]

use ipsec_server::config::Config;
use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = Config::from_toml_str(text, &["192.0.2.0/24".parse().unwrap()], &mut StdRng::seed_from_u64(0)) {
            assert!(!e.code.is_empty());
        }
    }
});
