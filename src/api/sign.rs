//! Request authentication, exactly as the SDKs and Alibaba Cloud's signature documents
//! ("Request syntax and signature method V3", "Sign a request" for RPC) define it:
//!
//! - RPC signature v1 (`aliyun-python-sdk-core`, `SignatureMethod=HMAC-SHA1`): the
//!   canonical query (below) of every parameter of query and form body except `Signature`;
//!   StringToSign = `METHOD&%2F&enc(that)`; Signature = base64(HMAC-SHA1(secret + "&")).
//! - V3 (`alibabacloud-vpc20160428`, `Authorization: ACS3-HMAC-SHA256 Credential=..,
//!   SignedHeaders=..,Signature=..`): CanonicalRequest = METHOD, path, the canonical query
//!   of the query parameters, `name:value` of each signed header, the signed header list,
//!   hex SHA-256 of the body; StringToSign = `ACS3-HMAC-SHA256\n` + hex SHA-256 of it;
//!   Signature = hex HMAC-SHA256(secret).
//!
//! The canonical query ([`canonical_query`]): parameters sorted by name, each
//! `enc(name)=enc(value)`, joined by `&`. `enc` is RFC 3986 percent-encoding of the UTF-8
//! bytes keeping only `A-Za-z0-9-_.~` (space is `%20`, `*` is `%2A`, `~` stays), for names
//! *and* values, as the documents say and `aliyun-python-sdk-core` does;
//! `alibabacloud-tea-openapi` 0.4.6 leaves V3 names unencoded, which is the same string for
//! every name an SDK sends (`[A-Za-z0-9.]`). Encoding names is what makes the canonical
//! string name every parameter unambiguously: with a raw name, `{"a": "1&b=2"}` and
//! `{"a=1&b": "2"}` would sign alike and a proxy could turn one into the other.
//!
//! A request that names a parameter twice (names compared ignoring ASCII case, as
//! [`super::params`] matches them) is refused before any signature check: both orders of
//! the two values sign alike, so which one counts would be up to whoever reorders them.
//!
//! Signatures are compared in constant time. Timestamps more than [`MAX_SKEW_SECS`] away
//! from our clock are refused, and so is a nonce seen before while its timestamp was valid
//! ([`NonceCache`]: bounded to [`MAX_NONCES`]; when full, new requests are refused with
//! 503 until old nonces expire — never grown, never evicted early, which would reopen
//! replays). Secrets are only fed to HMAC, never formatted.

use std::collections::{HashMap, HashSet};

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::errors::truncate;
use super::ApiError;
use crate::config::ApiConfig;

/// How far a request's timestamp may be from our clock, either way.
pub const MAX_SKEW_SECS: i64 = 15 * 60;

/// Who signed a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub access_key_id: String,
}

/// Nonces the cache holds at most: 36 signed requests a second for the 30 minutes a
/// timestamp can be valid, in about 5 MiB.
pub const MAX_NONCES: usize = 65_536;

/// Nonces seen while their request's timestamp is valid (replay protection). Keys are
/// SHA-256 of AccessKeyId and nonce, so an entry has a fixed size whatever the nonce's
/// length. An entry expires when its timestamp leaves the window (then a replay fails the
/// time check); expired entries are pruned at most once per second of the wall clock.
pub struct NonceCache {
    /// Hash of key id and nonce → the last Unix second at which its timestamp is valid.
    seen: HashMap<[u8; 32], i64>,
    capacity: usize,
    /// Prune when the clock reaches this (one past the earliest expiry).
    next_prune: i64,
    /// Requests refused because the cache was full.
    refused_full: u64,
}

impl Default for NonceCache {
    fn default() -> Self {
        Self::with_capacity(MAX_NONCES)
    }
}

impl NonceCache {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            seen: HashMap::new(),
            capacity,
            next_prune: i64::MAX,
            refused_full: 0,
        }
    }

    /// Records `nonce` of a request whose (checked) timestamp is `timestamp`. Refuses a
    /// nonce already held (`SignatureNonceUsed`) and, when the cache is full of unexpired
    /// nonces, any new one (503 `ServiceUnavailable`).
    pub fn insert(
        &mut self,
        key_id: &str,
        nonce: &str,
        timestamp: i64,
        now_unix: i64,
    ) -> Result<(), ApiError> {
        if now_unix >= self.next_prune {
            self.seen.retain(|_, last| *last >= now_unix);
            self.next_prune = self
                .seen
                .values()
                .min()
                .map_or(i64::MAX, |e| e.saturating_add(1));
        }
        let mut h = Sha256::new();
        h.update(key_id.as_bytes());
        h.update([0]);
        h.update(nonce.as_bytes());
        let key: [u8; 32] = h.finalize().into();
        if self.seen.contains_key(&key) {
            return Err(ApiError::nonce_used());
        }
        if self.seen.len() >= self.capacity {
            self.refused_full += 1;
            if self.refused_full.is_power_of_two() {
                tracing::warn!(
                    refused = self.refused_full,
                    "control API: the nonce cache is full ({} nonces); refusing new requests \
                     until old ones expire",
                    self.capacity
                );
            }
            return Err(ApiError::new(
                503,
                "ServiceUnavailable",
                format!(
                    "too many signed requests within the timestamp window: the replay cache \
                     holds {} nonces; retry in a minute",
                    self.capacity
                ),
            ));
        }
        let last = timestamp.saturating_add(MAX_SKEW_SECS);
        self.next_prune = self.next_prune.min(last.saturating_add(1));
        self.seen.insert(key, last);
        Ok(())
    }

    /// Nonces held now.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Requests refused because the cache was full, since it was made.
    pub fn refused_full(&self) -> u64 {
        self.refused_full
    }
}

/// The parts of a request the signatures cover.
pub struct Signed<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Decoded query parameters, in order.
    pub query: &'a [(String, String)],
    /// Decoded form-body parameters, in order (v1 signs them too).
    pub form: &'a [(String, String)],
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Verifies the request's signature (v3 if an `Authorization` header is present, else v1).
pub fn verify(
    api: &ApiConfig,
    req: &Signed<'_>,
    now_unix: i64,
    nonces: &mut NonceCache,
) -> Result<Caller, ApiError> {
    let mut names = HashSet::new();
    for (k, _) in req.query.iter().chain(req.form) {
        if !names.insert(k.to_ascii_lowercase()) {
            return Err(ApiError::new(
                400,
                "InvalidParameter.Duplicate",
                format!("the parameter {} is given more than once", truncate(k)),
            ));
        }
    }
    let auth = req
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.as_str());
    match auth {
        Some(a) => verify_v3(api, req, a, now_unix, nonces),
        None => verify_v1(api, req, now_unix, nonces),
    }
}

fn param<'a>(list: &'a [(String, String)], name: &str) -> Option<&'a str> {
    list.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn verify_v1(
    api: &ApiConfig,
    req: &Signed<'_>,
    now_unix: i64,
    nonces: &mut NonceCache,
) -> Result<Caller, ApiError> {
    let all: Vec<(String, String)> = req.query.iter().chain(req.form).cloned().collect();
    let Some(signature) = param(&all, "Signature") else {
        return Err(ApiError::forbidden("the request is not signed"));
    };
    let key_id =
        param(&all, "AccessKeyId").ok_or_else(|| ApiError::forbidden("AccessKeyId is missing"))?;
    match param(&all, "SignatureMethod") {
        Some("HMAC-SHA1") => {}
        other => {
            return Err(ApiError::new(
                400,
                "InvalidParameter.SignatureMethod",
                format!("SignatureMethod {other:?} is not supported; use HMAC-SHA1"),
            ))
        }
    }
    let key = api
        .access_key(key_id)
        .ok_or_else(ApiError::access_key_not_found)?;
    let canonical = canonical_query(all.iter().filter(|(k, _)| k != "Signature"));
    let to_sign = format!("{}&%2F&{}", req.method, percent_encode(&canonical));
    let mut secret = key.secret().expose().to_vec();
    secret.push(b'&');
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(&secret).map_err(|_| ApiError::internal())?;
    zeroize::Zeroize::zeroize(&mut secret);
    mac.update(to_sign.as_bytes());
    let expected = base64(&mac.finalize().into_bytes());
    if !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
        // As the cloud API does: the string we signed (no secret in it), which
        // aliyun-python-sdk-core compares with its own to report InvalidAccessKeySecret.
        let mut e = ApiError::signature_mismatch();
        e.message = format!("{} server string to sign is:{to_sign}", e.message);
        return Err(e);
    }
    let timestamp = check_time(param(&all, "Timestamp"), now_unix)?;
    let nonce = param(&all, "SignatureNonce").ok_or_else(|| {
        ApiError::new(400, "MissingSignatureNonce", "SignatureNonce is mandatory")
    })?;
    nonces.insert(key_id, nonce, timestamp, now_unix)?;
    Ok(Caller {
        access_key_id: key_id.to_owned(),
    })
}

fn verify_v3(
    api: &ApiConfig,
    req: &Signed<'_>,
    auth: &str,
    now_unix: i64,
    nonces: &mut NonceCache,
) -> Result<Caller, ApiError> {
    let Some(rest) = auth.strip_prefix("ACS3-HMAC-SHA256 ") else {
        return Err(ApiError::new(
            400,
            "InvalidParameter.SignatureAlgorithm",
            "only ACS3-HMAC-SHA256 is supported in the Authorization header",
        ));
    };
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    let (Some(key_id), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(ApiError::new(
            400,
            "IncompleteSignature",
            "the Authorization header lacks Credential, SignedHeaders or Signature",
        ));
    };
    let key = api
        .access_key(key_id)
        .ok_or_else(ApiError::access_key_not_found)?;
    let header_names: Vec<&str> = signed_headers.split(';').collect();
    for required in ["host", "x-acs-date", "x-acs-signature-nonce"] {
        if !header_names.contains(&required) {
            return Err(ApiError::new(
                400,
                "IncompleteSignature",
                format!("the signature must cover the {required} header"),
            ));
        }
    }
    let mut canonical_headers = String::new();
    for name in &header_names {
        let mut values: Vec<&str> = req
            .headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .collect();
        values.sort();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let canonical_query = canonical_query(req.query.iter());
    let payload = hex(&Sha256::digest(req.body));
    let path = if req.path.is_empty() { "/" } else { req.path };
    let canonical = format!(
        "{}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload}",
        req.method
    );
    let to_sign = format!(
        "ACS3-HMAC-SHA256\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.secret().expose())
        .map_err(|_| ApiError::internal())?;
    mac.update(to_sign.as_bytes());
    let expected = hex(&mac.finalize().into_bytes());
    if !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
        return Err(ApiError::signature_mismatch());
    }
    let header = |n: &str| {
        req.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    let timestamp = check_time(header("x-acs-date"), now_unix)?;
    let nonce = header("x-acs-signature-nonce")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                400,
                "MissingSignatureNonce",
                "x-acs-signature-nonce is mandatory",
            )
        })?;
    nonces.insert(key_id, nonce, timestamp, now_unix)?;
    Ok(Caller {
        access_key_id: key_id.to_owned(),
    })
}

/// The canonical query of both signatures (see the module docs): sorted by the decoded
/// name (names are unique: [`verify`] refused duplicates), `enc(name)=enc(value)` joined
/// by `&`.
pub fn canonical_query<'a>(params: impl Iterator<Item = &'a (String, String)>) -> String {
    let mut sorted: Vec<&(String, String)> = params.collect();
    sorted.sort();
    sorted
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The timestamp in Unix seconds, if present, well-formed and within [`MAX_SKEW_SECS`].
fn check_time(ts: Option<&str>, now_unix: i64) -> Result<i64, ApiError> {
    let ts = ts.ok_or_else(|| ApiError::new(400, "MissingTimestamp", "Timestamp is mandatory"))?;
    let t = parse_utc(ts).ok_or_else(|| {
        ApiError::new(
            400,
            "InvalidTimeStamp.Format",
            "the timestamp must be yyyy-MM-ddTHH:mm:ssZ (UTC)",
        )
    })?;
    if (t - now_unix).abs() > MAX_SKEW_SECS {
        return Err(ApiError::new(
            400,
            "InvalidTimeStamp.Expired",
            "the timestamp differs from the server's clock by more than 15 minutes",
        ));
    }
    Ok(t)
}

/// RFC 3986 percent-encoding keeping only unreserved characters (what both SDKs do).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `application/x-www-form-urlencoded` (also used for query strings): `+` is a
/// space, `%XX` a byte; invalid escapes are kept literally. Invalid UTF-8 is replaced.
pub fn form_decode(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (unescape(k), unescape(v))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hexval = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hexval {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let v = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= n {
                out.push(T[(v >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `yyyy-MM-ddTHH:mm:ssZ` → seconds since the epoch.
pub fn parse_utc(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se)
}

/// Seconds since the epoch → `yyyy-MM-ddTHH:mm:ssZ`.
pub fn format_utc(t: i64) -> String {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    // Civil from days (H. Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A POST of `/` with these query parameters and headers, no form and no body.
    fn post<'a>(query: &'a [(String, String)], headers: &'a [(String, String)]) -> Signed<'a> {
        Signed {
            method: "POST",
            path: "/",
            query,
            form: &[],
            headers,
            body: b"",
        }
    }

    fn api() -> ApiConfig {
        let toml = r#"[gateway]
vpn_gateway_id = "vpn-test0001"
region_id = "local"
[api]
[[api.access_keys]]
access_key_id = "ak-test"
access_key_secret = "test-secret-0123456789"
"#;
        crate::config::Config::from_toml_str(toml, &[], &mut rand::thread_rng())
            .unwrap()
            .api()
            .unwrap()
            .clone()
    }

    fn owned(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const T0: &str = "2026-11-25T19:00:00Z";

    /// Vector: aliyun-python-sdk-core 2.16.1 `rpc_signature_composer` (POST, with a value
    /// that needs every kind of escaping).
    #[test]
    fn v1_matches_aliyun_python_sdk_core() {
        let mut query = owned(&[
            ("Action", "DescribeVpnGateway"),
            ("VpnGatewayId", "vpn-test0001"),
            ("Format", "JSON"),
            ("Version", "2016-04-28"),
            ("AccessKeyId", "ak-test"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", "nonce-2"),
            ("Timestamp", T0),
            ("RegionId", "local"),
        ]);
        // Form-body parameters are signed too.
        let form = owned(&[("IkeConfig", r#"{"IkeEncAlg":"aes 256"}*~"#)]);
        query.push(("Signature".into(), "6AQQBxzFH16J2b965DOCepv0SXg=".into()));
        let req = Signed {
            form: &form,
            ..post(&query, &[])
        };
        let now = parse_utc(T0).unwrap();
        let mut nonces = NonceCache::default();
        let caller = verify(&api(), &req, now, &mut nonces).unwrap();
        assert_eq!(caller.access_key_id, "ak-test");
        let replay = verify(&api(), &req, now, &mut nonces).unwrap_err();
        assert_eq!(replay.code, "SignatureNonceUsed");
        let mut nonces = NonceCache::default();
        let late = verify(&api(), &req, now + 901, &mut nonces).unwrap_err();
        assert_eq!(late.code, "InvalidTimeStamp.Expired");
        let tampered = owned(&[("IkeConfig", r#"{"IkeEncAlg":"aes 128"}*~"#)]);
        let req = Signed {
            form: &tampered,
            ..req
        };
        let e = verify(&api(), &req, now, &mut NonceCache::default()).unwrap_err();
        assert_eq!(e.code, "SignatureDoesNotMatch");
    }

    /// Vector: alibabacloud-tea-openapi 0.4.6 `Utils.get_authorization` (ACS3-HMAC-SHA256).
    #[test]
    fn v3_matches_alibabacloud_tea_openapi() {
        let query = owned(&[
            ("IpsecServerId", "iss-abc"),
            ("LocalSubnet", "192.168.0.0/24,10.1.0.0/16"),
            ("IkeConfig", r#"{"IkeEncAlg":"aes 256"}"#),
        ]);
        let auth = "ACS3-HMAC-SHA256 Credential=ak-test,SignedHeaders=accept;host;user-agent;\
                    x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;\
                    x-acs-version,Signature=\
                    c69915c9fa24029297b59ba9673738381ea46e4261a8304518f873a893f69617";
        let headers = owned(&[
            ("host", "127.0.0.1:8080"),
            ("x-acs-action", "UpdateIpsecServer"),
            ("x-acs-version", "2016-04-28"),
            ("x-acs-date", T0),
            ("x-acs-signature-nonce", "nonce-1"),
            (
                "x-acs-content-sha256",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            ("accept", "application/json"),
            ("user-agent", "AlibabaCloud (test)"),
            ("authorization", auth),
        ]);
        let req = post(&query, &headers);
        let now = parse_utc(T0).unwrap();
        let mut nonces = NonceCache::default();
        verify(&api(), &req, now, &mut nonces).unwrap();
        assert_eq!(
            verify(&api(), &req, now, &mut nonces).unwrap_err().code,
            "SignatureNonceUsed"
        );
        let mut tampered = headers.clone();
        tampered[1].1 = "DeleteIpsecServer".into();
        let req = Signed {
            headers: &tampered,
            ..req
        };
        let e = verify(&api(), &req, now, &mut NonceCache::default()).unwrap_err();
        assert_eq!(e.code, "SignatureDoesNotMatch");
    }

    /// Vector: aliyun-python-sdk-core 2.16.1 `rpc_signature_composer` with a parameter
    /// *name* that needs encoding (the SDK encodes names and values alike).
    #[test]
    fn v1_encodes_names_like_aliyun_python_sdk_core() {
        let mut query = owned(&[
            ("Action", "DescribeVpnGateway"),
            ("VpnGatewayId", "vpn-test0001"),
            ("Format", "JSON"),
            ("Version", "2016-04-28"),
            ("AccessKeyId", "ak-test"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", "nonce-3"),
            ("Timestamp", T0),
            ("RegionId", "local"),
            ("Tag.1 Key*~", "a b*~/\u{e9}"),
        ]);
        query.push(("Signature".into(), "QVNLWYcBq8DNq9VwqfbMKCTYxvk=".into()));
        let req = post(&query, &[]);
        let now = parse_utc(T0).unwrap();
        verify(&api(), &req, now, &mut NonceCache::default()).unwrap();
    }

    fn v3_headers(nonce: &str, auth: &str) -> Vec<(String, String)> {
        owned(&[
            ("host", "127.0.0.1:8080"),
            ("x-acs-action", "UpdateIpsecServer"),
            ("x-acs-version", "2016-04-28"),
            ("x-acs-date", T0),
            ("x-acs-signature-nonce", nonce),
            (
                "x-acs-content-sha256",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            ("authorization", auth),
        ])
    }

    /// Vector: the V3 signature document's canonical query (names and values encoded with
    /// Python's `quote(.., safe='~')`, what tea-openapi does for values), with a name and a
    /// value that need every kind of encoding.
    #[test]
    fn v3_encodes_names_and_values_as_the_spec_does() {
        let query = owned(&[
            ("IpsecServerId", "iss-abc"),
            ("Tag.1 Key*~", "v a*l~/\u{e9}"),
            ("LocalSubnet", "10.0.0.0/8"),
        ]);
        assert_eq!(
            canonical_query(query.iter()),
            "IpsecServerId=iss-abc&LocalSubnet=10.0.0.0%2F8&Tag.1%20Key%2A~=v%20a%2Al~%2F%C3%A9"
        );
        let auth = "ACS3-HMAC-SHA256 Credential=ak-test,SignedHeaders=host;x-acs-action;\
                    x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,\
                    Signature=c588a25ed47970efba3dd9b971ac19a3a62cab2f7dcbb1821fef93a5e37a5d10";
        let headers = v3_headers("nonce-4", auth);
        let req = post(&query, &headers);
        let now = parse_utc(T0).unwrap();
        verify(&api(), &req, now, &mut NonceCache::default()).unwrap();
        // Altered in transit: a value changed.
        let mut changed = query.clone();
        changed[2].1 = "0.0.0.0/0".into();
        let e = verify(
            &api(),
            &Signed {
                query: &changed,
                ..req
            },
            now,
            &mut NonceCache::default(),
        )
        .unwrap_err();
        assert_eq!(e.code, "SignatureDoesNotMatch");
    }

    /// With raw names, a proxy could fold parameters into one name (`a=1&b` = `2` signs
    /// like `a` = `1&b=2`... and like `a` = `1`, `b` = `2`): dropping or renaming
    /// parameters of a signed request. Encoded names make every such change a mismatch.
    #[test]
    fn v3_refuses_parameters_folded_into_one_name() {
        // The tea-openapi vector of `v3_matches_alibabacloud_tea_openapi`, its three
        // parameters folded by a proxy into a single one.
        let folded_name =
            "IkeConfig=%7B%22IkeEncAlg%22%3A%22aes%20256%22%7D&IpsecServerId=iss-abc&LocalSubnet";
        let query = owned(&[(folded_name, "192.168.0.0/24,10.1.0.0/16")]);
        let auth = "ACS3-HMAC-SHA256 Credential=ak-test,SignedHeaders=accept;host;user-agent;\
                    x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;\
                    x-acs-version,Signature=\
                    c69915c9fa24029297b59ba9673738381ea46e4261a8304518f873a893f69617";
        let mut headers = v3_headers("nonce-1", auth);
        headers.push(("accept".into(), "application/json".into()));
        headers.push(("user-agent".into(), "AlibabaCloud (test)".into()));
        let req = post(&query, &headers);
        let now = parse_utc(T0).unwrap();
        let e = verify(&api(), &req, now, &mut NonceCache::default()).unwrap_err();
        assert_eq!(e.code, "SignatureDoesNotMatch");
    }

    #[test]
    fn a_parameter_given_twice_is_refused_before_the_signature() {
        let query = owned(&[("RegionId", "local"), ("regionid", "other")]);
        let req = post(&query, &[]);
        let e = verify(&api(), &req, 0, &mut NonceCache::default()).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str()),
            (400, "InvalidParameter.Duplicate")
        );
        // Also across query and form body.
        let form = owned(&[("REGIONID", "x")]);
        let req = Signed {
            query: &query[..1],
            form: &form,
            ..req
        };
        let e = verify(&api(), &req, 0, &mut NonceCache::default()).unwrap_err();
        assert_eq!(e.code, "InvalidParameter.Duplicate");
    }

    #[test]
    fn nonce_cache_is_bounded_and_expires_with_the_timestamp_window() {
        let t0 = parse_utc(T0).unwrap();
        let mut c = NonceCache::with_capacity(3);
        for n in ["n1", "n2", "n3"] {
            c.insert("ak", n, t0, t0).unwrap();
        }
        assert_eq!(
            c.insert("ak", "n1", t0, t0).unwrap_err().code,
            "SignatureNonceUsed"
        );
        // The same nonce of another key is another entry.
        let full = c.insert("ak2", "n1", t0, t0).unwrap_err();
        assert_eq!(
            (full.status, full.code.as_str()),
            (503, "ServiceUnavailable")
        );
        assert_eq!((c.len(), c.refused_full()), (3, 1));
        // A nonce is held as long as its timestamp is valid: a replay at the edge of the
        // window is still refused, and the cache is still full.
        let edge = t0 + MAX_SKEW_SECS;
        assert_eq!(
            c.insert("ak", "n2", t0, edge).unwrap_err().code,
            "SignatureNonceUsed"
        );
        assert_eq!(c.insert("ak", "n4", edge, edge).unwrap_err().status, 503);
        assert_eq!(c.refused_full(), 2);
        // One second later all three have expired (a replay would fail the time check).
        c.insert("ak", "n4", edge, edge + 1).unwrap();
        assert_eq!(c.len(), 1);
        // A very long nonce costs one fixed-size entry.
        c.insert("ak", &"x".repeat(10_000), edge, edge + 1).unwrap();
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn encodings() {
        assert_eq!(percent_encode("a b*~/="), "a%20b%2A~%2F%3D");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(
            form_decode("a=1+2&b=%7B%22x%22%7D&c&d=%zz"),
            vec![
                ("a".into(), "1 2".into()),
                ("b".into(), "{\"x\"}".into()),
                ("c".into(), "".into()),
                ("d".into(), "%zz".into())
            ]
        );
        assert_eq!(form_decode("e=%4"), vec![("e".into(), "%4".into())]);
    }

    #[test]
    fn times_round_trip() {
        for t in [0, 951782400, 1764097105, 4102444799] {
            assert_eq!(parse_utc(&format_utc(t)), Some(t));
        }
        assert_eq!(format_utc(1614050668), "2021-02-23T03:24:28Z");
        assert_eq!(parse_utc("2021-02-23T03:24:28"), None);
    }
}
