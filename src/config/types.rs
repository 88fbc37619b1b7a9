//! Value types of the validated configuration: algorithms and DH groups (identities and the
//! uniqueness policy are the IKE layer's [`crate::ike::Identity`] and
//! [`crate::ike::UniquePolicy`], re-exported by `config`).
//!
//! Each enum is parsed from the API's lowercase names (docs/DESIGN.md §1, IkeConfig/IpsecConfig)
//! and maps to its IANA "IKEv2 Parameters" transform ID (RFC 7296 §3.3.2), so the IKE layer
//! never sees a name string. `Display` prints the API name back.

use std::fmt;

/// Encryption algorithm (IkeEncAlg / IpsecEncAlg). All are CBC-mode block ciphers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncAlg {
    /// `aes`: AES-128-CBC.
    Aes128,
    /// `aes192`: AES-192-CBC.
    Aes192,
    /// `aes256`: AES-256-CBC.
    Aes256,
    /// `des`: single DES-CBC (legacy, 56-bit key).
    Des,
    /// `3des`: 3DES-EDE-CBC (legacy, 64-bit block).
    TripleDes,
}

impl EncAlg {
    /// All values, in the order the API documents them.
    pub const ALL: [EncAlg; 5] = [
        EncAlg::Aes128,
        EncAlg::Aes192,
        EncAlg::Aes256,
        EncAlg::Des,
        EncAlg::TripleDes,
    ];

    /// Parses an API name (`aes`, `aes192`, `aes256`, `des`, `3des`); exact, case-sensitive.
    pub fn from_api_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.api_name() == name)
    }

    pub fn api_name(self) -> &'static str {
        match self {
            EncAlg::Aes128 => "aes",
            EncAlg::Aes192 => "aes192",
            EncAlg::Aes256 => "aes256",
            EncAlg::Des => "des",
            EncAlg::TripleDes => "3des",
        }
    }

    /// Transform Type 1 ID (RFC 7296 §3.3.2; IANA): ENCR_DES = 2, ENCR_3DES = 3,
    /// ENCR_AES_CBC = 12 (RFC 3602).
    pub fn iana_id(self) -> u16 {
        match self {
            EncAlg::Des => 0x0002,
            EncAlg::TripleDes => 0x0003,
            EncAlg::Aes128 | EncAlg::Aes192 | EncAlg::Aes256 => 0x000c,
        }
    }

    /// Value of the Key Length attribute (RFC 7296 §3.3.5), in bits; `None` for ciphers with
    /// a fixed key size, which must not carry the attribute.
    pub fn key_length_attr(self) -> Option<u16> {
        match self {
            EncAlg::Aes128 => Some(128),
            EncAlg::Aes192 => Some(192),
            EncAlg::Aes256 => Some(256),
            EncAlg::Des | EncAlg::TripleDes => None,
        }
    }

    /// Key size in bytes (DES keys include the parity bits: 8 and 24).
    pub fn key_len(self) -> usize {
        match self {
            EncAlg::Aes128 => 16,
            EncAlg::Aes192 => 24,
            EncAlg::Aes256 => 32,
            EncAlg::Des => 8,
            EncAlg::TripleDes => 24,
        }
    }

    /// Block size (= CBC IV size) in bytes.
    pub fn block_len(self) -> usize {
        match self {
            EncAlg::Aes128 | EncAlg::Aes192 | EncAlg::Aes256 => 16,
            EncAlg::Des | EncAlg::TripleDes => 8,
        }
    }

    /// Why the algorithm is legacy, if it is (RFC 8247 §2.1: DES MUST NOT, 3DES SHOULD NOT).
    pub fn legacy_reason(self) -> Option<&'static str> {
        match self {
            EncAlg::Des => Some("single DES has a 56-bit key and is broken (RFC 8247 §2.1)"),
            EncAlg::TripleDes => {
                Some("3DES has a 64-bit block and is deprecated (RFC 8247 §2.1, Sweet32)")
            }
            _ => None,
        }
    }
}

/// Integrity/PRF hash (IkeAuthAlg / IpsecAuthAlg). For the IKE SA it selects both the PRF
/// and the integrity transform; for Child SAs only the integrity transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthAlg {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl AuthAlg {
    pub const ALL: [AuthAlg; 5] = [
        AuthAlg::Md5,
        AuthAlg::Sha1,
        AuthAlg::Sha256,
        AuthAlg::Sha384,
        AuthAlg::Sha512,
    ];

    /// Parses an API name (`md5`, `sha1`, `sha256`, `sha384`, `sha512`).
    pub fn from_api_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.api_name() == name)
    }

    pub fn api_name(self) -> &'static str {
        match self {
            AuthAlg::Md5 => "md5",
            AuthAlg::Sha1 => "sha1",
            AuthAlg::Sha256 => "sha256",
            AuthAlg::Sha384 => "sha384",
            AuthAlg::Sha512 => "sha512",
        }
    }

    /// Transform Type 3 (INTEG) ID: AUTH_HMAC_MD5_96 = 1, AUTH_HMAC_SHA1_96 = 2 (RFC 7296
    /// §3.3.2), AUTH_HMAC_SHA2_256_128 = 12, _384_192 = 13, _512_256 = 14 (RFC 4868 §2.3).
    pub fn integ_id(self) -> u16 {
        match self {
            AuthAlg::Md5 => 0x0001,
            AuthAlg::Sha1 => 0x0002,
            AuthAlg::Sha256 => 0x000c,
            AuthAlg::Sha384 => 0x000d,
            AuthAlg::Sha512 => 0x000e,
        }
    }

    /// Transform Type 2 (PRF) ID: PRF_HMAC_MD5 = 1, PRF_HMAC_SHA1 = 2 (RFC 7296 §3.3.2),
    /// PRF_HMAC_SHA2_256 = 5, _384 = 6, _512 = 7 (RFC 4868 §2.1).
    pub fn prf_id(self) -> u16 {
        match self {
            AuthAlg::Md5 => 0x0001,
            AuthAlg::Sha1 => 0x0002,
            AuthAlg::Sha256 => 0x0005,
            AuthAlg::Sha384 => 0x0006,
            AuthAlg::Sha512 => 0x0007,
        }
    }

    /// Truncated ICV length in bytes: 12 for the `_96` variants, half the hash for SHA-2
    /// (RFC 2403, RFC 2404, RFC 4868 §2.3).
    pub fn icv_len(self) -> usize {
        match self {
            AuthAlg::Md5 | AuthAlg::Sha1 => 12,
            AuthAlg::Sha256 => 16,
            AuthAlg::Sha384 => 24,
            AuthAlg::Sha512 => 32,
        }
    }

    /// Why the algorithm is legacy, if it is (RFC 8247 §2.3/§3.2: HMAC-MD5 MUST NOT).
    pub fn legacy_reason(self) -> Option<&'static str> {
        match self {
            AuthAlg::Md5 => Some("HMAC-MD5 is deprecated (RFC 8247 §2.3)"),
            _ => None,
        }
    }
}

/// Diffie-Hellman group (IkePfs / IpsecPfs), Transform Type 4 (RFC 7296 §3.3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DhGroup {
    /// 768-bit MODP (RFC 2409 §6.1; legacy).
    Group1,
    /// 1024-bit MODP (RFC 2409 §6.2).
    Group2,
    /// 1536-bit MODP (RFC 3526 §2).
    Group5,
    /// 2048-bit MODP (RFC 3526 §3).
    Group14,
    /// 2048-bit MODP with a 256-bit prime-order subgroup (RFC 5114 §2.3).
    Group24,
}

impl DhGroup {
    pub const ALL: [DhGroup; 5] = [
        DhGroup::Group1,
        DhGroup::Group2,
        DhGroup::Group5,
        DhGroup::Group14,
        DhGroup::Group24,
    ];

    /// Parses an API name (`group1`, `group2`, `group5`, `group14`, `group24`).
    pub fn from_api_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.api_name() == name)
    }

    pub fn api_name(self) -> &'static str {
        match self {
            DhGroup::Group1 => "group1",
            DhGroup::Group2 => "group2",
            DhGroup::Group5 => "group5",
            DhGroup::Group14 => "group14",
            DhGroup::Group24 => "group24",
        }
    }

    /// The IANA Transform Type 4 ID, equal to the group number (RFC 7296 §3.3.2).
    pub fn iana_id(self) -> u16 {
        match self {
            DhGroup::Group1 => 1,
            DhGroup::Group2 => 2,
            DhGroup::Group5 => 5,
            DhGroup::Group14 => 14,
            DhGroup::Group24 => 24,
        }
    }

    /// Why the group is legacy, if it is (RFC 8247 §2.4: group 1 MUST NOT).
    pub fn legacy_reason(self) -> Option<&'static str> {
        match self {
            DhGroup::Group1 => Some("the 768-bit MODP group is breakable (RFC 8247 §2.4)"),
            _ => None,
        }
    }
}

macro_rules! display_api_name {
    ($($t:ty => $m:ident),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.$m())
            }
        }
    )*};
}
display_api_name!(EncAlg => api_name, AuthAlg => api_name, DhGroup => api_name);
