//! Each client's notation for the gateway's algorithms and what it is known to accept, with
//! the source of that knowledge.
//!
//! - strongSwan proposal keywords: strongSwan's `proposal_keywords_static.txt` (aes128,
//!   sha1, modp1024, modp2048s256 for group 24…); without a PRF keyword the PRF follows the
//!   integrity algorithm, which is what the gateway uses (one `*_auth_alg` for both).
//! - Apple: the `com.apple.vpn.managed` payload (apple/device-management,
//!   mdm/profiles/com.apple.vpn.managed.yaml, `IKESecurityAssociationParameters`):
//!   EncryptionAlgorithm DES, 3DES, AES-128, AES-256, AES-128-GCM, AES-256-GCM,
//!   ChaCha20Poly1305 (no AES-192); IntegrityAlgorithm SHA1-96, SHA1-160, SHA2-256, SHA2-384,
//!   SHA2-512 (no MD5); DiffieHellmanGroup 1, 2, 5, 14–21, 31, 32 (no 24); LifeTimeInMinutes
//!   10..=1440.
//! - Android (the built-in "IKEv2/IPSec PSK" profile, Android 11+): AOSP
//!   `frameworks/base/services/core/java/com/android/server/connectivity/VpnIkev2Utils.java`
//!   proposes for the IKE SA AES-CBC/-CTR 128/192/256 (and AEADs) with HMAC-SHA2-256/384/512,
//!   AES-XCBC or AES-CMAC integrity and DH groups MODP 2048/3072/4096 and Curve25519; its
//!   Child SA proposals carry no DH group (no PFS) and `Ikev2VpnProfile.Builder
//!   .setAllowedAlgorithms` documents "Insecure AUTH_HMAC_MD5 and AUTH_HMAC_SHA1 algorithms
//!   are rejected". So: no DES/3DES, no MD5/SHA-1, DH group 14 only of ours, and
//!   `ipsec_pfs = disabled`.

use crate::config::{AuthAlg, DhGroup, EncAlg, IpsecServerConfig};

/// strongSwan's encryption keyword.
pub fn ss_enc(e: EncAlg) -> &'static str {
    match e {
        EncAlg::Aes128 => "aes128",
        EncAlg::Aes192 => "aes192",
        EncAlg::Aes256 => "aes256",
        EncAlg::Des => "des",
        EncAlg::TripleDes => "3des",
    }
}

/// strongSwan's integrity keyword (HMAC-SHA-2 with the RFC 4868 truncation, as the gateway).
pub fn ss_integ(a: AuthAlg) -> &'static str {
    match a {
        AuthAlg::Md5 => "md5",
        AuthAlg::Sha1 => "sha1",
        AuthAlg::Sha256 => "sha256",
        AuthAlg::Sha384 => "sha384",
        AuthAlg::Sha512 => "sha512",
    }
}

/// strongSwan's DH keyword.
pub fn ss_dh(g: DhGroup) -> &'static str {
    match g {
        DhGroup::Group1 => "modp768",
        DhGroup::Group2 => "modp1024",
        DhGroup::Group5 => "modp1536",
        DhGroup::Group14 => "modp2048",
        DhGroup::Group24 => "modp2048s256",
    }
}

/// The IKE proposal in strongSwan notation: `enc-integ-dh`.
pub fn ss_ike_proposal(s: &IpsecServerConfig) -> String {
    let ike = s.ike();
    format!(
        "{}-{}-{}",
        ss_enc(ike.enc()),
        ss_integ(ike.auth()),
        ss_dh(ike.dh_group())
    )
}

/// The ESP proposal in strongSwan notation: `enc-integ[-dh]`, the DH group being the one
/// CREATE_CHILD_SA rekeys must use (`ipsec_pfs`; IKE_AUTH ignores it, RFC 7296 §1.2).
pub fn ss_esp_proposal(s: &IpsecServerConfig) -> String {
    let esp = s.ipsec();
    let mut p = format!("{}-{}", ss_enc(esp.enc()), ss_integ(esp.auth()));
    if let Some(g) = esp.pfs() {
        p.push('-');
        p.push_str(ss_dh(g));
    }
    p
}

/// Apple's EncryptionAlgorithm, `None` where Apple has none.
pub fn apple_enc(e: EncAlg) -> Option<&'static str> {
    match e {
        EncAlg::Aes128 => Some("AES-128"),
        EncAlg::Aes256 => Some("AES-256"),
        EncAlg::Des => Some("DES"),
        EncAlg::TripleDes => Some("3DES"),
        EncAlg::Aes192 => None,
    }
}

/// Apple's IntegrityAlgorithm, `None` where Apple has none.
pub fn apple_integ(a: AuthAlg) -> Option<&'static str> {
    match a {
        AuthAlg::Sha1 => Some("SHA1-96"),
        AuthAlg::Sha256 => Some("SHA2-256"),
        AuthAlg::Sha384 => Some("SHA2-384"),
        AuthAlg::Sha512 => Some("SHA2-512"),
        AuthAlg::Md5 => None,
    }
}

/// Apple's DiffieHellmanGroup, `None` where Apple has none.
pub fn apple_dh(g: DhGroup) -> Option<u16> {
    match g {
        DhGroup::Group24 => None,
        g => Some(g.iana_id()),
    }
}

/// Android accepts this encryption algorithm.
pub fn android_enc(e: EncAlg) -> bool {
    matches!(e, EncAlg::Aes128 | EncAlg::Aes192 | EncAlg::Aes256)
}

/// Android accepts this integrity algorithm.
pub fn android_integ(a: AuthAlg) -> bool {
    matches!(a, AuthAlg::Sha256 | AuthAlg::Sha384 | AuthAlg::Sha512)
}

/// Android offers this DH group.
pub fn android_dh(g: DhGroup) -> bool {
    g == DhGroup::Group14
}

/// The legacy algorithms of the server, each with its setting and reason.
pub fn legacy(s: &IpsecServerConfig) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    let (ike, esp) = (s.ike(), s.ipsec());
    let mut push = |what: String, r: Option<&'static str>| {
        if let Some(r) = r {
            out.push((what, r));
        }
    };
    push(
        format!("ike_enc_alg = {}", ike.enc()),
        ike.enc().legacy_reason(),
    );
    push(
        format!("ike_auth_alg = {}", ike.auth()),
        ike.auth().legacy_reason(),
    );
    push(
        format!("ike_pfs = {}", ike.dh_group()),
        ike.dh_group().legacy_reason(),
    );
    push(
        format!("ipsec_enc_alg = {}", esp.enc()),
        esp.enc().legacy_reason(),
    );
    push(
        format!("ipsec_auth_alg = {}", esp.auth()),
        esp.auth().legacy_reason(),
    );
    if let Some(g) = esp.pfs() {
        push(format!("ipsec_pfs = {g}"), g.legacy_reason());
    }
    out
}
