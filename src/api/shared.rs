//! Cluster mode with `[api]` (README, "Running several gateways"; ARCHITECTURE.md §6): the
//! IPsec server created, updated or deleted through the API on any node is one *document*
//! in etcd (the server record and the ClientToken answers), and every node applies it. This
//! file is the API's side: the seam to the store ([`SharedDefinition`], implemented by
//! `daemon::cluster` on etcd, by an in-memory fake in the tests) and the document's encoding
//! with its bounds. The API stays ignorant of etcd; the cluster code of the API's internals.
//!
//! **Generations.** A document's generation is the etcd revision that wrote it (its key's
//! `mod_revision`), so it only grows and every node names it alike. A change is stored with
//! a transaction that compares the generation the node last saw: when two nodes change at
//! once, etcd lets one through and the other's API answers `VpnGateway.Configuring`.
//!
//! **Bounds.** A document is at most [`MAX_DOCUMENT`] bytes: written ones drop their oldest
//! ClientToken answers until they fit; a bigger or malformed one read back is refused
//! ([`decode`]) — logged by the caller, and the node keeps serving what it has.

use serde::{Deserialize, Serialize};

use super::state::{Persisted, MAX_TOKENS};

/// The largest document stored or accepted (etcd's default request limit is 1.5 MiB).
pub const MAX_DOCUMENT: usize = 1 << 20;

/// The document in etcd. No `Debug`: holds the PSK.
#[derive(Clone, Serialize, Deserialize)]
pub struct Document {
    pub state: Persisted,
    /// The change's EffectImmediately (always for a delete): every node that applies the
    /// document deletes its IKE SAs so clients renegotiate.
    pub effect_immediately: bool,
}

/// What a node last read from the store.
#[derive(Clone)]
pub struct Stored {
    /// The document's generation; 0 when there is none.
    pub generation: u64,
    /// The raw document, undecoded (`None`: nothing stored yet, or the key was deleted).
    pub document: Option<Vec<u8>>,
}

/// Why a store failed.
#[derive(Debug, PartialEq, Eq)]
pub enum StoreError {
    /// Another node stored a newer generation first.
    Conflict,
    /// The store did not answer or failed (the change may or may not be stored: a retry
    /// with the same ClientToken gets its answer either way).
    Unavailable(String),
}

/// What the live nodes (those with a valid lease) report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    /// The generation stored now (0: none).
    pub generation: u64,
    /// Live nodes.
    pub live: usize,
    /// Live nodes that have not applied `generation` yet (by node id).
    pub behind: Vec<String>,
    /// Clients online over the live nodes, as each last reported it.
    pub online: u64,
}

/// Where the document is shared (etcd in the daemon).
pub trait SharedDefinition: Send + Sync {
    /// Stores `document` if the stored generation is still `base` (0: none stored); the new
    /// generation. Blocks for a bounded time.
    fn store(&self, base: u64, document: Vec<u8>) -> Result<u64, StoreError>;
    /// The live nodes' reports; `None` when the store cannot tell now.
    fn view(&self) -> Option<ClusterView>;
}

/// Encodes `doc`, first dropping its oldest ClientToken answers if it would exceed
/// [`MAX_DOCUMENT`] (they are a cache of answers; the server record always fits).
pub fn encode(doc: &mut Document) -> Result<Vec<u8>, String> {
    loop {
        let bytes = serde_json::to_vec(doc).map_err(|e| e.to_string())?;
        if bytes.len() <= MAX_DOCUMENT {
            return Ok(bytes);
        }
        let tokens = &mut doc.state.tokens;
        if tokens.is_empty() {
            return Err(format!(
                "the document is {} bytes, more than {MAX_DOCUMENT}",
                bytes.len()
            ));
        }
        let drop = tokens.len().div_ceil(4);
        tokens.drain(..drop);
    }
}

/// Decodes a document read from the store: refused when bigger than [`MAX_DOCUMENT`], not
/// this daemon's JSON, of another version, or with more than `MAX_TOKENS` answers. (The
/// server record is validated as a whole by the API before it is applied.)
pub fn decode(bytes: &[u8]) -> Result<Document, String> {
    if bytes.len() > MAX_DOCUMENT {
        return Err(format!("{} bytes, more than {MAX_DOCUMENT}", bytes.len()));
    }
    let doc: Document = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if doc.state.version != 1 {
        return Err(format!(
            "version {} (this daemon writes 1)",
            doc.state.version
        ));
    }
    if doc.state.tokens.len() > MAX_TOKENS {
        return Err(format!(
            "{} ClientToken answers, more than {MAX_TOKENS}",
            doc.state.tokens.len()
        ));
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::super::state::TokenEntry;
    use super::*;

    fn doc(tokens: usize, answer: usize) -> Document {
        Document {
            state: Persisted {
                version: 1,
                server: None,
                tokens: (0..tokens)
                    .map(|i| TokenEntry {
                        action: "UpdateIpsecServer".into(),
                        token: format!("t{i}"),
                        fingerprint: "f".into(),
                        response: serde_json::json!({ "x": "y".repeat(answer) }),
                    })
                    .collect(),
            },
            effect_immediately: true,
        }
    }

    /// The error of a document that must be refused.
    fn refused(bytes: &[u8]) -> String {
        match decode(bytes) {
            Ok(_) => panic!("accepted: {:?}", String::from_utf8_lossy(bytes)),
            Err(e) => e,
        }
    }

    #[test]
    fn a_document_round_trips() {
        let mut d = doc(3, 10);
        let bytes = encode(&mut d).unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!(back.state.tokens.len(), 3);
        assert_eq!(back.state.tokens[2].token, "t2");
        assert!(back.effect_immediately);
        assert!(back.state.server.is_none());
    }

    #[test]
    fn an_oversized_document_drops_its_oldest_tokens_to_fit() {
        // 1000 answers of 2 KiB: about 2 MB, twice the bound.
        let mut d = doc(MAX_TOKENS, 2048);
        let bytes = encode(&mut d).unwrap();
        assert!(bytes.len() <= MAX_DOCUMENT);
        let kept = &d.state.tokens;
        assert!(!kept.is_empty() && kept.len() < MAX_TOKENS);
        assert_eq!(
            kept.last().unwrap().token,
            format!("t{}", MAX_TOKENS - 1),
            "the newest answers are kept"
        );
        assert_eq!(decode(&bytes).unwrap().state.tokens.len(), kept.len());
    }

    #[test]
    fn what_the_store_holds_is_refused_when_too_big_malformed_or_foreign() {
        let mut big = b"{\"state\":".to_vec();
        big.resize(MAX_DOCUMENT + 1, b' ');
        assert!(refused(&big).contains("more than"));
        for bad in [
            &b""[..],
            b"null",
            b"{\"state\":{}}",
            b"\xff\xfe",
            b"{\"state\":{\"version\":1,\"server\":null},\"effect_immediately\":\"yes\"}",
            // A nesting bomb: serde_json's depth limit refuses it, no stack overflow.
            &[b'['; 100_000],
        ] {
            refused(bad);
        }
        let v2 = b"{\"state\":{\"version\":2,\"server\":null},\"effect_immediately\":false}";
        assert!(refused(v2).contains("version 2"));
        let many = doc(MAX_TOKENS + 1, 1);
        let bytes = serde_json::to_vec(&many).unwrap();
        assert!(refused(&bytes).contains("ClientToken"));
    }
}
