//! IKE identities (LocalId / RemoteId) and the policy for a second IKE SA of one identity:
//! values of the IKE layer, which the configuration parses from text (`config` re-exports
//! them), so that `ike` depends on nothing above it.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

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

impl fmt::Display for UniquePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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
