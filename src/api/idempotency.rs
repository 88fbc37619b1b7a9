//! ClientToken idempotency: a change made with a ClientToken stores its answer with the
//! request's fingerprint in the persisted state; the same token with the same parameters
//! gets the stored answer again (nothing is applied twice, also across restarts), with other
//! parameters `IdempotentParameterMismatch`. At most [`state::MAX_TOKENS`] answers are kept,
//! the oldest go first.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::errors::ApiError;
use super::params::Params;
use super::sign;
use super::state::{self, Persisted, TokenEntry};

/// ClientToken: the stored answer of an earlier identical request.
pub(super) fn replay(
    persisted: &Persisted,
    action: &str,
    params: &Params,
) -> Result<Option<Value>, ApiError> {
    let Some(token) = params.get("ClientToken").filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if !token.is_ascii() || token.len() > 64 {
        return Err(ApiError::illegal(
            "ClientToken",
            "ClientToken must be at most 64 ASCII characters",
        ));
    }
    let fp = fingerprint(params);
    match persisted
        .tokens
        .iter()
        .find(|t| t.action == action && t.token == token)
    {
        Some(t) if t.fingerprint == fp => Ok(Some(t.response.clone())),
        Some(_) => Err(ApiError::token_mismatch()),
        None => Ok(None),
    }
}

/// Stores `response` under the request's ClientToken (if it has one) in `persisted`.
pub(super) fn remember(persisted: &mut Persisted, action: &str, params: &Params, response: &Value) {
    let Some(token) = params.get("ClientToken").filter(|t| !t.is_empty()) else {
        return;
    };
    let tokens = &mut persisted.tokens;
    tokens.push(TokenEntry {
        action: action.to_owned(),
        token: token.to_owned(),
        fingerprint: fingerprint(params),
        response: response.clone(),
    });
    if tokens.len() > state::MAX_TOKENS {
        let excess = tokens.len() - state::MAX_TOKENS;
        tokens.drain(..excess);
    }
}

/// SHA-256 over the parameters that define the request (not the signature fields).
fn fingerprint(params: &Params) -> String {
    const SKIP: &[&str] = &[
        "Signature",
        "SignatureNonce",
        "Timestamp",
        "AccessKeyId",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureType",
        "Format",
        "Version",
        "Action",
    ];
    let mut v: Vec<&(String, String)> = params
        .all()
        .iter()
        .filter(|(k, _)| !SKIP.contains(&k.as_str()))
        .collect();
    v.sort();
    let mut h = Sha256::new();
    for (k, val) in v {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(val.as_bytes());
        h.update([0]);
    }
    sign::hex(&h.finalize())
}
