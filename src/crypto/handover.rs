//! Serde for the algorithm names of the hand-over snapshot (`ipsec-server upgrade`), opted
//! into per field with `#[serde(with = "crate::crypto::handover::encr")]` and so on.
//!
//! Why IANA numbers and not the enums' own serde: a snapshot is read by a *newer* binary, and
//! a variant index would change meaning the day a variant is added or reordered; the IANA
//! transform IDs (with AES's key length) never do. An ID this binary does not know is a
//! decode error, never a panic.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{DhGroup, EncrAlg, IntegAlg, PrfAlg};

pub mod encr {
    use super::*;

    pub fn serialize<S: Serializer>(a: &EncrAlg, s: S) -> Result<S::Ok, S::Error> {
        (a.transform_id(), a.key_length_attr()).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<EncrAlg, D::Error> {
        let (id, bits) = <(u16, Option<u16>)>::deserialize(d)?;
        EncrAlg::from_ike(id, bits).ok_or_else(|| D::Error::custom("unknown encryption transform"))
    }
}

pub mod integ {
    use super::*;

    pub fn serialize<S: Serializer>(a: &IntegAlg, s: S) -> Result<S::Ok, S::Error> {
        a.transform_id().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<IntegAlg, D::Error> {
        IntegAlg::from_ike(u16::deserialize(d)?)
            .ok_or_else(|| D::Error::custom("unknown integrity transform"))
    }
}

pub mod prf {
    use super::*;

    pub fn serialize<S: Serializer>(a: &PrfAlg, s: S) -> Result<S::Ok, S::Error> {
        a.transform_id().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PrfAlg, D::Error> {
        PrfAlg::from_ike(u16::deserialize(d)?).ok_or_else(|| D::Error::custom("unknown PRF"))
    }
}

pub mod dh {
    use super::*;

    pub fn serialize<S: Serializer>(a: &DhGroup, s: S) -> Result<S::Ok, S::Error> {
        a.id().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DhGroup, D::Error> {
        DhGroup::from_id(u16::deserialize(d)?).ok_or_else(|| D::Error::custom("unknown DH group"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Algs {
        #[serde(with = "encr")]
        e: EncrAlg,
        #[serde(with = "integ")]
        i: IntegAlg,
    }

    #[test]
    fn every_transform_round_trips_and_unknown_ids_are_refused() {
        for e in EncrAlg::ALL {
            let a = Algs {
                e,
                i: IntegAlg::HmacSha256_128,
            };
            let bytes = postcard::to_stdvec(&a).unwrap();
            assert_eq!(postcard::from_bytes::<Algs>(&bytes).unwrap(), a);
        }
        // ENCR_AES_CBC (12) with a 100-bit key: no such transform.
        let bad = postcard::to_stdvec(&((12u16, Some(100u16)), 2u16)).unwrap();
        assert!(postcard::from_bytes::<Algs>(&bad).is_err());
    }
}
