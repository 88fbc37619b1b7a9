//! Proposals in strongSwan's notation (`aes128-sha1-modp1024`, `aes256-sha256-modp2048-noesn`),
//! the words an operator finds in `swanctl.conf`, `ipsec.conf` and most client UIs, for the
//! log lines that explain a proposal mismatch (what the client offered, what we accept).
//!
//! Every IANA transform a client may offer has a name here, not only the ones we implement:
//! the point of the line is to show what the other side wants. The keywords follow
//! strongSwan's proposal keywords (`aes128gcm16`, `chacha20poly1305`, `prfsha256`,
//! `ecp256`, `curve25519`, `esn`/`noesn`); an ID strongSwan has no keyword for is written
//! with its type and number (`encr1234`). A proposal is its transforms in the order
//! ENCR-INTEG-PRF-DH-ESN; the PRF is left out when it is the one the integrity algorithm
//! implies, as strongSwan's own notation does (`aes128-sha256-modp2048` means PRF-HMAC-SHA256
//! too).
//!
//! Invariant: the text is bounded whatever a client sends — at most [`MAX_PROPOSALS`]
//! proposals of at most [`MAX_WORDS`] distinct words each, the rest summarised as a count.

use std::fmt::Write as _;

use super::proposal::{EsnTransform, EspSuite, IkeSuite};
use crate::crypto::DhGroup;
use crate::wire::{dh, encr, esn, integ, prf, Proposal, Transform, TransformType};

/// Proposals written out; more are counted (`… and 3 more`).
pub(crate) const MAX_PROPOSALS: usize = 16;
/// Distinct words per proposal written out; more are cut (`…`).
pub(crate) const MAX_WORDS: usize = 24;

impl IkeSuite {
    /// This suite in strongSwan's notation (`aes128-sha1-modp1024`).
    pub fn notation(&self) -> String {
        proposal(&self.proposal(1, Vec::new()))
    }
}

impl EspSuite {
    /// This suite in strongSwan's notation, with `pfs` (the DH group a CREATE_CHILD_SA must
    /// use) and `noesn`: `aes256-sha256-modp2048-noesn`.
    pub fn notation(&self, pfs: Option<DhGroup>) -> String {
        proposal(&self.proposal(1, 0, pfs, EsnTransform::NoEsn))
    }
}

/// The detailed line of an IKE proposal mismatch in `exchange`: the client's IKE proposals
/// and the one we accept.
pub(crate) fn no_ike_proposal(exchange: &str, theirs: &[Proposal], ours: &IkeSuite) -> String {
    format!(
        "no acceptable IKE proposal in {exchange}: the client offered {}; this server accepts {}",
        proposals(theirs),
        ours.notation()
    )
}

/// The detailed line of an ESP proposal mismatch in `exchange`: the client's ESP proposals
/// and the one we accept (with `pfs`, the DH group a CREATE_CHILD_SA must use; ESN never).
pub(crate) fn no_esp_proposal(
    exchange: &str,
    theirs: &[Proposal],
    ours: &EspSuite,
    pfs: Option<DhGroup>,
) -> String {
    format!(
        "no acceptable ESP proposal in {exchange}: the client offered {}; this server accepts {}",
        proposals(theirs),
        ours.notation(pfs)
    )
}

/// The proposals of an SA payload, comma-separated (`aes256-sha256-modp2048, 3des-md5-modp1024`);
/// `(none)` for an empty list.
pub(crate) fn proposals(list: &[Proposal]) -> String {
    if list.is_empty() {
        return "(none)".into();
    }
    let mut out = list
        .iter()
        .take(MAX_PROPOSALS)
        .map(proposal)
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > MAX_PROPOSALS {
        let _ = write!(out, " … and {} more", list.len() - MAX_PROPOSALS);
    }
    out
}

/// One proposal: its transforms as strongSwan keywords joined by `-`.
pub(crate) fn proposal(p: &Proposal) -> String {
    let of = |ty: TransformType| p.transforms.iter().filter(move |t| t.transform_type == ty);
    let mut words: Vec<String> = Vec::new();
    let mut push = |w: String| {
        if !words.contains(&w) {
            words.push(w);
        }
    };
    of(TransformType::ENCR).for_each(|t| push(encr_name(t)));
    of(TransformType::INTEG)
        .filter(|t| t.id != integ::NONE)
        .for_each(|t| push(integ_name(t.id)));
    // The PRF words only when they are not what the integrity words imply (IKE proposals).
    let implied: Vec<u16> = of(TransformType::INTEG)
        .filter_map(|t| implied_prf(t.id))
        .collect();
    let prfs: Vec<u16> = of(TransformType::PRF).map(|t| t.id).collect();
    let prfs_implied = !implied.is_empty()
        && prfs.iter().all(|id| implied.contains(id))
        && implied.iter().all(|id| prfs.contains(id));
    if !prfs_implied {
        prfs.iter().for_each(|id| push(prf_name(*id)));
    }
    of(TransformType::DH)
        .filter(|t| t.id != dh::NONE)
        .for_each(|t| push(dh_name(t.id)));
    of(TransformType::ESN).for_each(|t| push(esn_name(t.id)));
    p.transforms
        .iter()
        .filter(|t| !KNOWN_TYPES.contains(&t.transform_type))
        .for_each(|t| push(format!("type{}:{}", u8::from(t.transform_type), t.id)));
    if words.is_empty() {
        return "(empty)".into();
    }
    let cut = words.len() > MAX_WORDS;
    words.truncate(MAX_WORDS);
    let mut s = words.join("-");
    if cut {
        s.push_str("-…");
    }
    s
}

const KNOWN_TYPES: [TransformType; 5] = [
    TransformType::ENCR,
    TransformType::INTEG,
    TransformType::PRF,
    TransformType::DH,
    TransformType::ESN,
];

fn encr_name(t: &Transform) -> String {
    let bits = t.key_length();
    // Ciphers with a Key Length attribute: strongSwan writes the length into the name.
    let sized = |base: &str, suffix: &str| match bits {
        Some(b) => format!("{base}{b}{suffix}"),
        None => format!("{base}{suffix}"),
    };
    match t.id {
        encr::DES => "des".into(),
        encr::TRIPLE_DES => "3des".into(),
        encr::NULL => "null".into(),
        encr::AES_CBC => sized("aes", ""),
        encr::AES_CTR => sized("aes", "ctr"),
        14 => sized("aes", "ccm8"),
        15 => sized("aes", "ccm12"),
        16 => sized("aes", "ccm16"),
        18 => sized("aes", "gcm8"),
        19 => sized("aes", "gcm12"),
        encr::AES_GCM_16 => sized("aes", "gcm16"),
        23 => sized("camellia", ""),
        24 => sized("camellia", "ctr"),
        25 => sized("camellia", "ccm8"),
        26 => sized("camellia", "ccm12"),
        27 => sized("camellia", "ccm16"),
        7 => sized("blowfish", ""),
        6 => "cast128".into(),
        encr::CHACHA20_POLY1305 => "chacha20poly1305".into(),
        id => format!("encr{id}"),
    }
}

fn integ_name(id: u16) -> String {
    match id {
        integ::HMAC_MD5_96 => "md5".into(),
        integ::HMAC_SHA1_96 => "sha1".into(),
        integ::AES_XCBC_96 => "aesxcbc".into(),
        6 => "md5_128".into(),
        7 => "sha1_160".into(),
        integ::AES_CMAC_96 => "aescmac".into(),
        9 => "aes128gmac".into(),
        10 => "aes192gmac".into(),
        11 => "aes256gmac".into(),
        integ::HMAC_SHA2_256_128 => "sha256".into(),
        integ::HMAC_SHA2_384_192 => "sha384".into(),
        integ::HMAC_SHA2_512_256 => "sha512".into(),
        id => format!("integ{id}"),
    }
}

/// The PRF strongSwan derives from an integrity keyword when no `prf…` keyword is given.
fn implied_prf(integ_id: u16) -> Option<u16> {
    Some(match integ_id {
        integ::HMAC_MD5_96 | 6 => prf::HMAC_MD5,
        integ::HMAC_SHA1_96 | 7 => prf::HMAC_SHA1,
        integ::AES_XCBC_96 => prf::AES128_XCBC,
        integ::AES_CMAC_96 => prf::AES128_CMAC,
        integ::HMAC_SHA2_256_128 => prf::HMAC_SHA2_256,
        integ::HMAC_SHA2_384_192 => prf::HMAC_SHA2_384,
        integ::HMAC_SHA2_512_256 => prf::HMAC_SHA2_512,
        _ => return None,
    })
}

fn prf_name(id: u16) -> String {
    match id {
        prf::HMAC_MD5 => "prfmd5".into(),
        prf::HMAC_SHA1 => "prfsha1".into(),
        prf::AES128_XCBC => "prfaesxcbc".into(),
        prf::HMAC_SHA2_256 => "prfsha256".into(),
        prf::HMAC_SHA2_384 => "prfsha384".into(),
        prf::HMAC_SHA2_512 => "prfsha512".into(),
        prf::AES128_CMAC => "prfaescmac".into(),
        id => format!("prf{id}"),
    }
}

fn dh_name(id: u16) -> String {
    match id {
        dh::MODP_768 => "modp768".into(),
        dh::MODP_1024 => "modp1024".into(),
        dh::MODP_1536 => "modp1536".into(),
        dh::MODP_2048 => "modp2048".into(),
        dh::MODP_3072 => "modp3072".into(),
        dh::MODP_4096 => "modp4096".into(),
        17 => "modp6144".into(),
        18 => "modp8192".into(),
        dh::ECP_256 => "ecp256".into(),
        dh::ECP_384 => "ecp384".into(),
        21 => "ecp521".into(),
        dh::MODP_1024_160 => "modp1024s160".into(),
        dh::MODP_2048_224 => "modp2048s224".into(),
        dh::MODP_2048_256 => "modp2048s256".into(),
        25 => "ecp192".into(),
        26 => "ecp224".into(),
        27 => "ecp224bp".into(),
        28 => "ecp256bp".into(),
        29 => "ecp384bp".into(),
        30 => "ecp512bp".into(),
        dh::CURVE25519 => "curve25519".into(),
        32 => "curve448".into(),
        id => format!("ke{id}"),
    }
}

fn esn_name(id: u16) -> String {
    match id {
        esn::NO => "noesn".into(),
        esn::YES => "esn".into(),
        id => format!("esn{id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{EncrAlg, IntegAlg, PrfAlg};
    use crate::ike::fixtures;
    use crate::ike::proposal::EsnTransform;
    use crate::wire::{Attribute, AttributeValue, ProtocolId};

    fn t(ty: TransformType, id: u16, bits: Option<u16>) -> Transform {
        Transform {
            transform_type: ty,
            id,
            attributes: bits
                .map(|b| Attribute {
                    attr_type: 14,
                    value: AttributeValue::Tv(b),
                })
                .into_iter()
                .collect(),
        }
    }

    fn p(transforms: Vec<Transform>) -> Proposal {
        Proposal {
            number: 1,
            protocol: ProtocolId::IKE,
            spi: vec![],
            transforms,
        }
    }

    #[test]
    fn our_suites_read_as_in_strongswan() {
        assert_eq!(fixtures::ike_suite().notation(), "aes128-sha1-modp1024");
        let strong = IkeSuite {
            encr: EncrAlg::AesCbc256,
            integ: IntegAlg::HmacSha256_128,
            prf: PrfAlg::HmacSha256,
            dh: DhGroup::Modp2048,
        };
        assert_eq!(
            proposal(&strong.proposal(1, vec![])),
            "aes256-sha256-modp2048"
        );
        let esp = EspSuite {
            encr: EncrAlg::AesCbc256,
            integ: IntegAlg::HmacSha256_128,
        };
        assert_eq!(
            esp.notation(Some(DhGroup::Modp2048)),
            "aes256-sha256-modp2048-noesn"
        );
        assert_eq!(fixtures::esp_suite().notation(None), "aes128-sha1-noesn");
        assert_eq!(
            proposal(&fixtures::esp_suite().proposal(1, 1, None, EsnTransform::Omitted)),
            "aes128-sha1"
        );
    }

    #[test]
    fn client_proposals_name_what_we_do_not_implement() {
        // What a current strongSwan / Windows / Apple client offers by default.
        let aead = p(vec![
            t(TransformType::ENCR, encr::AES_GCM_16, Some(256)),
            t(TransformType::ENCR, encr::CHACHA20_POLY1305, None),
            t(TransformType::PRF, prf::HMAC_SHA2_256, None),
            t(TransformType::DH, dh::CURVE25519, None),
            t(TransformType::DH, dh::ECP_256, None),
        ]);
        assert_eq!(
            proposal(&aead),
            "aes256gcm16-chacha20poly1305-prfsha256-curve25519-ecp256"
        );
        // A PRF other than the one the integrity algorithm implies is written out.
        let mixed = p(vec![
            t(TransformType::ENCR, encr::AES_CBC, Some(128)),
            t(TransformType::INTEG, integ::HMAC_SHA1_96, None),
            t(TransformType::PRF, prf::HMAC_SHA2_256, None),
            t(TransformType::DH, 9999, None),
        ]);
        assert_eq!(proposal(&mixed), "aes128-sha1-prfsha256-ke9999");
        assert_eq!(
            proposals(&[aead, mixed]),
            "aes256gcm16-chacha20poly1305-prfsha256-curve25519-ecp256, aes128-sha1-prfsha256-ke9999"
        );
        assert_eq!(proposals(&[]), "(none)");
    }

    #[test]
    fn the_text_is_bounded_whatever_the_client_sends() {
        let huge = p((0..2000)
            .map(|i| t(TransformType::ENCR, 1000 + i, None))
            .collect());
        let one = proposal(&huge);
        assert_eq!(one.split('-').count(), MAX_WORDS + 1, "{one}");
        assert!(one.ends_with("-…"));
        let many = vec![huge; 100];
        let all = proposals(&many);
        assert!(all.ends_with(&format!(" … and {} more", 100 - MAX_PROPOSALS)));
        assert!(all.len() < MAX_PROPOSALS * (MAX_WORDS + 1) * 12);
    }
}
