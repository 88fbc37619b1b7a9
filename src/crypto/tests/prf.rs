//! PRF known answers: RFC 2202 (HMAC-MD5, HMAC-SHA1) and RFC 4231 (HMAC-SHA-256/384/512),
//! plus `prf+` (RFC 7296 §2.13) against strongSwan's published prf+ test vector.
//! Hex values transcribed from the RFCs (cross-read with strongSwan's
//! `src/libstrongswan/plugins/test_vectors/test_vectors/{md5,sha1,sha2}_hmac.c`).

use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).expect("test vector hex")
}

struct Case {
    key: Vec<u8>,
    data: Vec<u8>,
}

/// RFC 2202 §2/§3 and RFC 4231 §4 share the inputs of cases 1–4 and 6; only the key length
/// of cases 1, 3 and 6 differs (16 or 20 bytes; 80 or 131 bytes), given as `key_len`.
fn case(n: u8, key_len: usize) -> Case {
    match n {
        1 => Case {
            key: vec![0x0b; key_len],
            data: b"Hi There".to_vec(),
        },
        2 => Case {
            key: b"Jefe".to_vec(),
            data: b"what do ya want for nothing?".to_vec(),
        },
        3 => Case {
            key: vec![0xaa; key_len],
            data: vec![0xdd; 50],
        },
        4 => Case {
            key: (0x01..=0x19).collect(),
            data: vec![0xcd; 50],
        },
        6 => Case {
            key: vec![0xaa; key_len],
            data: b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
        },
        _ => unreachable!("no such case"),
    }
}

fn check(alg: PrfAlg, c: Case, expected: &str) {
    assert_eq!(hex::encode(alg.prf(&c.key, &c.data).expose()), expected);
}

#[test]
fn rfc2202_hmac_md5() {
    // RFC 2202 §2, test cases 1, 2, 3, 4, 6, 7.
    check(
        PrfAlg::HmacMd5,
        case(1, 16),
        "9294727a3638bb1c13f48ef8158bfc9d",
    );
    check(
        PrfAlg::HmacMd5,
        case(2, 16),
        "750c783e6ab0b503eaa86e310a5db738",
    );
    check(
        PrfAlg::HmacMd5,
        case(3, 16),
        "56be34521d144c88dbb8c733f0e8b3f6",
    );
    check(
        PrfAlg::HmacMd5,
        case(4, 16),
        "697eaf0aca3a3aea3a75164746ffaa79",
    );
    check(
        PrfAlg::HmacMd5,
        case(6, 80),
        "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd",
    );
    let c7 = Case {
        key: vec![0xaa; 80],
        data: b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data".to_vec(),
    };
    check(PrfAlg::HmacMd5, c7, "6f630fad67cda0ee1fb1f562db3aa53e");
}

#[test]
fn rfc2202_hmac_sha1() {
    // RFC 2202 §3, test cases 1, 2, 3, 4, 6, 7.
    let alg = PrfAlg::HmacSha1;
    check(alg, case(1, 20), "b617318655057264e28bc0b6fb378c8ef146be00");
    check(alg, case(2, 20), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    check(alg, case(3, 20), "125d7342b9ac11cd91a39af48aa17b4f63f175d3");
    check(alg, case(4, 20), "4c9007f4026250c6bc8414f9bf50c86c2d7235da");
    check(alg, case(6, 80), "aa4ae5e15272d00e95705637ce8a3b55ed402112");
    let c7 = Case {
        key: vec![0xaa; 80],
        data: b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data".to_vec(),
    };
    check(alg, c7, "e8e99d0f45237d786d6bbaa7965c7808bbff1a91");
}

fn rfc4231_case7() -> Case {
    Case {
        key: vec![0xaa; 131],
        data: b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".to_vec(),
    }
}

#[test]
fn rfc4231_hmac_sha256() {
    // RFC 4231 §4.2–4.5, 4.7, 4.8 (test cases 1–4, 6, 7).
    let alg = PrfAlg::HmacSha256;
    check(
        alg,
        case(1, 20),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    );
    check(
        alg,
        case(2, 20),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    );
    check(
        alg,
        case(3, 20),
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
    );
    check(
        alg,
        case(4, 20),
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    );
    check(
        alg,
        case(6, 131),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    );
    check(
        alg,
        rfc4231_case7(),
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    );
}

#[test]
fn rfc4231_hmac_sha384() {
    let alg = PrfAlg::HmacSha384;
    check(
        alg,
        case(1, 20),
        "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
    );
    check(
        alg,
        case(2, 20),
        "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
    );
    check(
        alg,
        case(3, 20),
        "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b2a5ab39dc13814b94e3ab6e101a34f27",
    );
    check(
        alg,
        case(4, 20),
        "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e6801dd23c4a7d679ccf8a386c674cffb",
    );
    check(
        alg,
        case(6, 131),
        "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
    );
    check(
        alg,
        rfc4231_case7(),
        "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5a678cc31e799176d3860e6110c46523e",
    );
}

#[test]
fn rfc4231_hmac_sha512() {
    let alg = PrfAlg::HmacSha512;
    check(
        alg,
        case(1, 20),
        "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
    );
    check(
        alg,
        case(2, 20),
        "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
    );
    check(
        alg,
        case(3, 20),
        "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb",
    );
    check(
        alg,
        case(4, 20),
        "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd",
    );
    check(
        alg,
        case(6, 131),
        "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
    );
    check(
        alg,
        rfc4231_case7(),
        "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58",
    );
}

#[test]
fn prf_parts_equals_prf_of_concatenation() {
    let whole = PrfAlg::HmacSha256.prf(b"key", b"abcdef");
    let parts = PrfAlg::HmacSha256.prf_parts(b"key", &[b"ab", b"", b"cdef"]);
    assert_eq!(whole, parts);
}

/// strongSwan `src/libstrongswan/tests/suites/test_prf_plus.c`, "counter" vector: prf+ with
/// PRF_HMAC_SHA2_256, key = 0x0b * 20, seed = "Hi There"; the successive allocations of 3, 6,
/// 7, 16, 8, 8, 14, 20 and 40 bytes form one 122-byte prf+ stream.
#[test]
fn prf_plus_strongswan_vector() {
    let expected = h(concat!(
        "b9bdc0",
        "8988b4c2b75a",
        "a93e596ac84205",
        "fa2ddde1bf7a2572067b00e14b237732",
        "830509981ad2f94a",
        "8c32a47daa2255b6",
        "60c436347ae756a6edc023477d80",
        "9590e682f61d9c04b06b4ad971a34c8147fa6679",
        "2ff1434b93c722b32e12f48832ebc15ce2369ce71fe9b7b81e5704c14d0f5280a6ec626e992d7a9f",
    ));
    let out = PrfAlg::HmacSha256
        .prf_plus(&[0x0b; 20], b"Hi There", expected.len())
        .expect("122 bytes is within prf+ limits");
    assert_eq!(out.expose(), expected.as_slice());
    // Every prefix of prf+ is prf+ of that length.
    let short = PrfAlg::HmacSha256
        .prf_plus(&[0x0b; 20], b"Hi There", 33)
        .expect("short prf+");
    assert_eq!(short.expose(), &expected[..33]);
}

#[test]
fn prf_plus_stops_at_255_blocks() {
    // RFC 7296 §2.13: the counter is one octet, so at most 255 blocks.
    for alg in [PrfAlg::HmacMd5, PrfAlg::HmacSha1, PrfAlg::HmacSha512] {
        let max = 255 * alg.output_len();
        let ok = alg.prf_plus(b"k", b"s", max).expect("255 blocks allowed");
        assert_eq!(ok.len(), max);
        assert_eq!(
            alg.prf_plus(b"k", b"s", max + 1),
            Err(CryptoError::PrfPlusTooLong {
                requested: max + 1,
                output_len: alg.output_len()
            })
        );
    }
    assert!(PrfAlg::HmacSha1
        .prf_plus(b"k", b"s", 0)
        .expect("empty")
        .is_empty());
}

#[test]
fn prf_plus_parts_equals_concatenated_seed() {
    let a = PrfAlg::HmacSha384.prf_plus(b"key", b"seed-one-two", 200);
    let b = PrfAlg::HmacSha384.prf_plus_parts(b"key", &[b"seed-", b"one-", b"two"], 200);
    assert_eq!(a, b);
}

#[test]
fn transform_ids_round_trip() {
    // IANA IKEv2 Transform Type 2.
    for (id, alg, len) in [
        (1, PrfAlg::HmacMd5, 16),
        (2, PrfAlg::HmacSha1, 20),
        (5, PrfAlg::HmacSha256, 32),
        (6, PrfAlg::HmacSha384, 48),
        (7, PrfAlg::HmacSha512, 64),
    ] {
        assert_eq!(PrfAlg::from_ike(id), Some(alg));
        assert_eq!(alg.transform_id(), id);
        assert_eq!(alg.output_len(), len);
        assert_eq!(alg.key_len(), len);
    }
    for id in [0, 3, 4, 8, 0xffff] {
        assert_eq!(PrfAlg::from_ike(id), None);
    }
    assert!(PrfAlg::HmacMd5.is_legacy());
    assert!(!PrfAlg::HmacSha1.is_legacy());
}
