//! What may be written into a client configuration: every value lands in a file format with
//! its own syntax (swanctl's braces and `#` comments, INI lines, XML), so host names and
//! identities are limited to characters none of them treats specially, and the few renderers
//! that need it escape or quote on top.

/// `--server`: an IP literal or a DNS name (letters, digits, `-`, `.`; ≤ 253 characters).
pub fn check_host(s: &str) -> Result<String, String> {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return Ok(s.to_owned());
    }
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "--server {s:?}: expected an IP address or a DNS name (letters, digits, '-', '.')"
        ))
    }
}

/// An identity's text form may go into every format: printable ASCII without quotes,
/// backslashes, angle brackets, `&`, `;`, `=`, braces or spaces (`#` only as the key-id
/// prefix `@#`, which the renderers quote).
pub fn check_identity(s: &str) -> Result<(), &'static str> {
    let body = s.strip_prefix("@#").unwrap_or(s);
    if body.is_empty() {
        return Err("is empty");
    }
    if body.bytes().all(|b| {
        b.is_ascii_graphic()
            && !matches!(
                b,
                b'"' | b'\'' | b'\\' | b'<' | b'>' | b'&' | b';' | b'=' | b'{' | b'}' | b'#'
            )
    }) {
        Ok(())
    } else {
        Err(
            "contains characters a client configuration cannot carry safely \
             (quotes, backslash, <, >, &, ;, =, braces, #, spaces)",
        )
    }
}

/// XML character data / attribute value.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A UUID (RFC 9562 version 8: custom) derived from `parts`, so that rendering the same
/// server and client again gives the same profile and connection identifiers (an installed
/// profile is replaced, not duplicated).
pub fn derived_uuid(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    let mut b = [0u8; 16];
    b.copy_from_slice(&h.finalize()[..16]);
    format!(
        "{:X}",
        uuid::Builder::from_custom_bytes(b).into_uuid().hyphenated()
    )
}

/// Seconds as strongSwan writes a time (`3600s`).
pub fn secs(n: u64) -> String {
    format!("{n}s")
}
