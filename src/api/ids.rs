//! The identifiers the API makes up: a RequestId for every answer and the IpsecServerId of
//! a created server, random and in the cloud API's formats.

use rand::distributions::Alphanumeric;
use rand::Rng;

/// An uppercase UUID-shaped id (`8-4-4-4-12` hex digits).
pub(super) fn request_id() -> String {
    let mut r = rand::thread_rng();
    let hex: String = (0..32)
        .map(|_| char::from_digit(r.gen_range(0..16), 16).unwrap_or('0'))
        .collect::<String>()
        .to_ascii_uppercase();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `iss-` and 21 lowercase alphanumerics.
pub(super) fn server_id() -> String {
    let s: String = rand::thread_rng()
        .sample_iter(Alphanumeric)
        .take(21)
        .map(|c| (c as char).to_ascii_lowercase())
        .collect();
    format!("iss-{s}")
}
