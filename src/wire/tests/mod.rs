//! Codec tests: captured strongSwan vectors (`capture`), hand-built byte-exact vectors for
//! every payload type (`payloads`), the [`super::PayloadList`] lookups (`lookups`), malformed
//! input (`malformed`), and values too long for their fields (`too_long`).

mod capture;
mod lookups;
mod malformed;
mod payloads;
mod seeds;
mod too_long;

/// IKE_SA_INIT request of strongSwan 5.9.8 (`aes128-sha1-modp1024`), captured by
/// `scripts/capture-ike-sa-init.sh`.
const CAPTURE: &[u8] = include_bytes!("../../../tests/data/strongswan-ike-sa-init.bin");

/// The same with `aes256-sha256-modp2048`.
const CAPTURE_MODP2048: &[u8] =
    include_bytes!("../../../tests/data/strongswan-ike-sa-init-aes256-sha256-modp2048.bin");

/// Decodes a hex vector; whitespace and `|` separators are ignored.
fn h(s: &str) -> Vec<u8> {
    let digits: String = s.chars().filter(char::is_ascii_hexdigit).collect();
    hex::decode(digits).expect("test vector is valid hex")
}
