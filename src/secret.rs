//! Secret byte strings: zeroized on drop, redacted in `Debug`, compared in constant time.
//!
//! Invariant: no code path formats the contents of a [`SecretBytes`]; the only way to read
//! them is [`SecretBytes::expose`], which call sites use to feed crypto primitives.

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Key material, PSKs, shared secrets.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn from_slice(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// The secret itself; for feeding crypto primitives only, never for logging.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time equality (length is not secret).
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        self.0.len() == other.len() && bool::from(self.0.as_slice().ct_eq(other))
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes(<redacted {} bytes>)", self.0.len())
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(&other.0)
    }
}

impl Eq for SecretBytes {}

/// Serde for a [`SecretBytes`] field of the hand-over snapshot (`ipsec-server upgrade`),
/// opted into per field with `#[serde(with = "crate::secret::handover")]`: `SecretBytes`
/// itself implements no serde trait, so no other serialization (a JSON state file, a log
/// line) can carry a key by accident. The snapshot goes only into the hand-over socket.
pub mod handover {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::SecretBytes;

    pub fn serialize<S: Serializer>(s: &SecretBytes, ser: S) -> Result<S::Ok, S::Error> {
        s.expose().serialize(ser)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<SecretBytes, D::Error> {
        Vec::<u8>::deserialize(de).map(SecretBytes::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretBytes::from_slice(b"hunter2-secret");
        let d = format!("{s:?}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(d.contains("14 bytes"));
    }

    #[test]
    fn constant_time_eq_checks_length_and_content() {
        let s = SecretBytes::from_slice(b"abc");
        assert!(s.ct_eq(b"abc"));
        assert!(!s.ct_eq(b"abd"));
        assert!(!s.ct_eq(b"ab"));
    }
}
