//! Value types of the validated configuration: algorithms, DH groups, identities, policies.
//!
//! Each enum is parsed from the API's lowercase names (DESIGN.md §1, IkeConfig/IpsecConfig)
//! and maps to its IANA "IKEv2 Parameters" transform ID (RFC 7296 §3.3.2), so the IKE layer
//! never sees a name string. `Display` prints the API name back.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

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

/// What to do when a client authenticates with an identity that already has an IKE SA
/// (`gateway.unique`; cf. strongSwan's `uniqueids`, RFC 7296 §2.4 INITIAL_CONTACT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum UniquePolicy {
    /// `same-address` (default): replace the older IKE SA only if the new one comes from the
    /// same IP address (a rebooted client); different addresses may share an identity.
    #[default]
    SameAddress,
    /// `never`: keep every IKE SA; identities may be shared freely.
    Never,
    /// `replace`: a new IKE SA always replaces older ones of the same identity.
    Replace,
}

impl UniquePolicy {
    pub const ALL: [UniquePolicy; 3] = [
        UniquePolicy::SameAddress,
        UniquePolicy::Never,
        UniquePolicy::Replace,
    ];

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            UniquePolicy::SameAddress => "same-address",
            UniquePolicy::Never => "never",
            UniquePolicy::Replace => "replace",
        }
    }
}

/// An IKE identity (LocalId / RemoteId), typed as the ID payload types it will be compared
/// with (RFC 7296 §3.5). The text form follows strongSwan's conventions:
/// an IPv4/IPv6 literal is `ID_IPV4_ADDR`/`ID_IPV6_ADDR`; `@#hex` is `ID_KEY_ID`;
/// `@name` forces `ID_FQDN`; otherwise a string containing `@` is `ID_RFC822_ADDR` and
/// anything else is `ID_FQDN`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    Fqdn(String),
    Rfc822(String),
    KeyId(Vec<u8>),
}

impl Identity {
    /// ID Type of the ID payload (RFC 7296 §3.5).
    pub fn id_type(&self) -> u8 {
        match self {
            Identity::Ipv4(_) => 1,
            Identity::Fqdn(_) => 2,
            Identity::Rfc822(_) => 3,
            Identity::Ipv6(_) => 5,
            Identity::KeyId(_) => 11,
        }
    }

    /// Identification Data of the ID payload (RFC 7296 §3.5).
    pub fn data(&self) -> Vec<u8> {
        match self {
            Identity::Ipv4(a) => a.octets().to_vec(),
            Identity::Ipv6(a) => a.octets().to_vec(),
            Identity::Fqdn(s) | Identity::Rfc822(s) => s.as_bytes().to_vec(),
            Identity::KeyId(k) => k.clone(),
        }
    }

    /// Parses the text form; `Err` carries a reason that does not repeat the input.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("contains whitespace or control characters");
        }
        if let Ok(a) = text.parse::<Ipv4Addr>() {
            return Ok(Identity::Ipv4(a));
        }
        if let Ok(a) = text.parse::<Ipv6Addr>() {
            return Ok(Identity::Ipv6(a));
        }
        if let Some(hex) = text.strip_prefix("@#") {
            return decode_hex(hex)
                .filter(|k| !k.is_empty())
                .map(Identity::KeyId)
                .ok_or("`@#` must be followed by an even number of hex digits");
        }
        if let Some(name) = text.strip_prefix('@') {
            if name.is_empty() {
                return Err("`@` must be followed by a name");
            }
            return Ok(Identity::Fqdn(name.to_owned()));
        }
        if text.contains('@') {
            return Ok(Identity::Rfc822(text.to_owned()));
        }
        Ok(Identity::Fqdn(text.to_owned()))
    }
}

/// The text form, which [`Identity::parse`] maps back to the same value.
impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Ipv4(a) => write!(f, "{a}"),
            Identity::Ipv6(a) => write!(f, "{a}"),
            Identity::Rfc822(s) => f.write_str(s),
            Identity::KeyId(k) => {
                f.write_str("@#")?;
                k.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
            Identity::Fqdn(s) => {
                let ambiguous = s.contains('@')
                    || s.parse::<Ipv4Addr>().is_ok()
                    || s.parse::<Ipv6Addr>().is_ok();
                if ambiguous {
                    write!(f, "@{s}")
                } else {
                    f.write_str(s)
                }
            }
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
display_api_name!(EncAlg => api_name, AuthAlg => api_name, DhGroup => api_name, UniquePolicy => name);

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => {
                let hi = char::from(*hi).to_digit(16)?;
                let lo = char::from(*lo).to_digit(16)?;
                // Both digits are < 16, so the value is < 256 and always fits.
                u8::try_from(hi * 16 + lo).ok()
            }
            _ => None,
        })
        .collect()
}
