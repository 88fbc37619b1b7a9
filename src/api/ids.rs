//! The identifiers the API makes up: a RequestId for every answer and the IpsecServerId of
//! a created server, random and in the cloud API's formats.

use rand::distributions::Alphanumeric;
use rand::Rng;

/// An uppercase random UUID (version 4), as the cloud's RequestIds.
pub(super) fn request_id() -> String {
    let bytes: [u8; 16] = rand::thread_rng().gen();
    format!(
        "{:X}",
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .hyphenated()
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
