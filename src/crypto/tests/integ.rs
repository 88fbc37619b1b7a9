//! Integrity transform known answers: HMAC-MD5-96 / HMAC-SHA1-96 are the RFC 2202 outputs
//! truncated to 96 bits (RFC 2403 §2, RFC 2404 §2); the SHA-2 ICVs are RFC 4868 §2.7.2
//! (test cases AUTH256-1..3, AUTH384-1..3, AUTH512-1..3), which use keys of the full hash
//! length. Hex cross-read with strongSwan's `test_vectors/{md5,sha1,sha2}_hmac.c`.

use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).expect("test vector hex")
}

fn icv(alg: IntegAlg, key: &[u8], data: &[u8]) -> Vec<u8> {
    let integ = Integ::new(alg, key).expect("vector key has the transform's key length");
    let mut out = vec![0u8; alg.icv_len()];
    integ.sign(data, &mut out);
    assert!(integ.verify(data, &out));
    out
}

#[test]
fn hmac_md5_96() {
    // RFC 2202 §2 cases 1 and 3, truncated (RFC 2403 §2).
    let alg = IntegAlg::HmacMd5_96;
    assert_eq!(
        icv(alg, &[0x0b; 16], b"Hi There"),
        h("9294727a3638bb1c13f48ef8")
    );
    assert_eq!(
        icv(alg, &[0xaa; 16], &[0xdd; 50]),
        h("56be34521d144c88dbb8c733")
    );
}

#[test]
fn hmac_sha1_96() {
    // RFC 2202 §3 cases 1 and 3, truncated (RFC 2404 §2).
    let alg = IntegAlg::HmacSha1_96;
    assert_eq!(
        icv(alg, &[0x0b; 20], b"Hi There"),
        h("b617318655057264e28bc0b6")
    );
    assert_eq!(
        icv(alg, &[0xaa; 20], &[0xdd; 50]),
        h("125d7342b9ac11cd91a39af4")
    );
}

#[test]
fn rfc4868_auth256() {
    let alg = IntegAlg::HmacSha256_128;
    assert_eq!(
        icv(alg, &[0x0b; 32], b"Hi There"),
        h("198a607eb44bfbc69903a0f1cf2bbdc5")
    );
    assert_eq!(
        icv(alg, &b"Jefe".repeat(8), b"what do ya want for nothing?"),
        h("167f928588c5cc2eef8e3093caa0e87c")
    );
    assert_eq!(
        icv(alg, &[0xaa; 32], &[0xdd; 50]),
        h("cdcb1220d1ecccea91e53aba3092f962")
    );
}

#[test]
fn rfc4868_auth384() {
    let alg = IntegAlg::HmacSha384_192;
    assert_eq!(
        icv(alg, &[0x0b; 48], b"Hi There"),
        h("b6a8d5636f5c6a7224f9977dcf7ee6c7fb6d0c48cbdee973")
    );
    assert_eq!(
        icv(alg, &b"Jefe".repeat(12), b"what do ya want for nothing?"),
        h("2c7353974f1842fd66d53c452ca42122b28c0b594cfb184d")
    );
    assert_eq!(
        icv(alg, &[0xaa; 48], &[0xdd; 50]),
        h("809f439be00274321d4a538652164b53554a508184a0c316")
    );
}

#[test]
fn rfc4868_auth512() {
    let alg = IntegAlg::HmacSha512_256;
    assert_eq!(
        icv(alg, &[0x0b; 64], b"Hi There"),
        h("637edc6e01dce7e6742a99451aae82df23da3e92439e590e43e761b33e910fb8")
    );
    assert_eq!(
        icv(alg, &b"Jefe".repeat(16), b"what do ya want for nothing?"),
        h("cb370917ae8a7ce28cfd1d8f4705d6141c173b2a9362c15df235dfb251b15454")
    );
    assert_eq!(
        icv(alg, &[0xaa; 64], &[0xdd; 50]),
        h("2ee7acd783624ca9398710f3ee05ae41b9f9b0510c87e49e586cc9bf961733d8")
    );
}

#[test]
fn verify_rejects_tampering_and_wrong_lengths() {
    for alg in IntegAlg::ALL {
        let integ = Integ::new(alg, &vec![7u8; alg.key_len()]).expect("key");
        let data = b"ESP header, IV and ciphertext";
        let mut good = vec![0u8; alg.icv_len()];
        integ.sign(data, &mut good);
        assert!(integ.verify(data, &good));

        let mut flipped = good.clone();
        flipped[alg.icv_len() - 1] ^= 0x01;
        assert!(!integ.verify(data, &flipped));
        assert!(!integ.verify(b"ESP header, IV and ciphertexT", &good));
        // Too short, too long, empty, and the untruncated MAC are all rejected.
        assert!(!integ.verify(data, &good[..alg.icv_len() - 1]));
        let mut long = good.clone();
        long.push(0);
        assert!(!integ.verify(data, &long));
        assert!(!integ.verify(data, &[]));
    }
}

#[test]
fn parts_equal_concatenation() {
    let integ = Integ::new(IntegAlg::HmacSha256_128, &[3u8; 32]).expect("key");
    let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
    integ.sign(b"payload\x00\x00\x00\x01", &mut a);
    integ.sign_parts(&[b"payload", b"\x00\x00\x00\x01"], &mut b);
    assert_eq!(a, b);
    assert!(integ.verify_parts(&[b"pay", b"load\x00\x00\x00\x01"], &a));
}

#[test]
fn sign_writes_only_icv_len_bytes() {
    let integ = Integ::new(IntegAlg::HmacSha1_96, &[1u8; 20]).expect("key");
    let mut out = [0xeeu8; 20];
    integ.sign(b"x", &mut out);
    assert_eq!(out[12..], [0xee; 8]);
}

#[test]
fn keys_must_have_the_transform_length() {
    for alg in IntegAlg::ALL {
        assert_eq!(
            Integ::new(alg, &vec![0u8; alg.key_len() - 1]).err(),
            Some(CryptoError::InvalidKeyLength)
        );
        assert_eq!(
            Integ::new(alg, &vec![0u8; alg.key_len() + 1]).err(),
            Some(CryptoError::InvalidKeyLength)
        );
        assert_eq!(
            Integ::new(alg, &[]).err(),
            Some(CryptoError::InvalidKeyLength)
        );
    }
}

#[test]
fn debug_shows_no_key() {
    let key = [0x5au8; 20];
    let integ = Integ::new(IntegAlg::HmacSha1_96, &key).expect("key");
    let text = format!("{integ:?} {integ:#?}");
    assert!(text.contains("redacted"), "{text}");
    assert!(!text.to_lowercase().contains("5a5a"), "{text}");
    assert!(!text.contains("90, 90") && !text.contains("[90"), "{text}");
}

#[test]
fn transform_ids_and_lengths() {
    // IANA IKEv2 Transform Type 3; RFC 2403/2404/4868 key and ICV lengths.
    for (id, alg, key, icv) in [
        (1, IntegAlg::HmacMd5_96, 16, 12),
        (2, IntegAlg::HmacSha1_96, 20, 12),
        (12, IntegAlg::HmacSha256_128, 32, 16),
        (13, IntegAlg::HmacSha384_192, 48, 24),
        (14, IntegAlg::HmacSha512_256, 64, 32),
    ] {
        assert_eq!(IntegAlg::from_ike(id), Some(alg));
        assert_eq!(alg.transform_id(), id);
        assert_eq!(alg.key_len(), key);
        assert_eq!(alg.icv_len(), icv);
        assert_eq!(alg.is_legacy(), id == 1);
    }
    for id in [0, 3, 5, 11, 15, 0xffff] {
        assert_eq!(IntegAlg::from_ike(id), None);
    }
}

#[test]
fn sign_many_writes_what_sign_writes_for_every_transform() {
    // Eleven messages of unequal lengths (more than one batch of the multi-buffer path),
    // each followed by room for its ICV: every ICV equals the one-by-one `sign`, and the
    // message bytes are left alone.
    for alg in IntegAlg::ALL {
        let key: Vec<u8> = (0..alg.key_len()).map(|i| i as u8 ^ 0x5c).collect();
        let integ = Integ::new(alg, &key).expect("key length");
        let msgs: Vec<Vec<u8>> = (0..11usize)
            .map(|i| (0..i * 157 + 3).map(|b| (b * 7 + i) as u8).collect())
            .collect();
        let mut items: Vec<Vec<u8>> = msgs
            .iter()
            .map(|m| [m.as_slice(), &vec![0xee; alg.icv_len()]].concat())
            .collect();
        let mut refs: Vec<&mut [u8]> = items.iter_mut().map(|i| i.as_mut_slice()).collect();
        integ.sign_many(&mut refs);
        for (item, msg) in items.iter().zip(&msgs) {
            let mut want = vec![0u8; alg.icv_len()];
            integ.sign(msg, &mut want);
            assert_eq!(&item[..msg.len()], &msg[..], "{alg:?}");
            assert_eq!(
                &item[msg.len()..],
                &want[..],
                "{alg:?}, {} bytes",
                msg.len()
            );
        }
    }
}

#[test]
fn verify_many_says_what_verify_says_for_every_transform() {
    // Nineteen items (two full groups of the multi-buffer path and a short one; then one
    // item alone), every third with a flipped bit in its ICV or its message: each answer is
    // the one-by-one `verify`'s.
    for alg in IntegAlg::ALL {
        let key: Vec<u8> = (0..alg.key_len()).map(|i| i as u8 ^ 0x3a).collect();
        let integ = Integ::new(alg, &key).expect("key length");
        let mut items: Vec<Vec<u8>> = (0..19usize)
            .map(|i| {
                let msg: Vec<u8> = (0..i * 97 + 1).map(|b| (b * 5 + i) as u8).collect();
                let mut icv = vec![0u8; alg.icv_len()];
                integ.sign(&msg, &mut icv);
                [msg, icv].concat()
            })
            .collect();
        for (i, item) in items.iter_mut().enumerate() {
            match i % 3 {
                1 => *item.last_mut().unwrap() ^= 0x40,
                2 => item[0] ^= 0x01,
                _ => {}
            }
        }
        for run in [&items[..], &items[..1]] {
            let refs: Vec<&[u8]> = run.iter().map(|i| i.as_slice()).collect();
            let mut ok = vec![true; refs.len()];
            integ.verify_many(&refs, &mut ok);
            for (i, (item, ok)) in run.iter().zip(&ok).enumerate() {
                let (msg, icv) = item.split_at(item.len() - alg.icv_len());
                assert_eq!(*ok, integ.verify(msg, icv), "{alg:?}, item {i}");
                assert_eq!(*ok, i % 3 == 0, "{alg:?}, item {i}");
            }
        }
    }
}
