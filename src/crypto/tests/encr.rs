//! CBC known answers:
//! - AES-128: RFC 3602 §4 test cases 1–4 (hex as in the RFC; cases 1, 2 and 4 cross-read with
//!   strongSwan `test_vectors/aes_cbc.c`),
//! - AES-192 / AES-256: NIST SP 800-38A Appendix F.2.3 / F.2.5 (CBC-AES192/256.Encrypt),
//! - DES: FIPS 81 Appendix C ("Now is the time for all "),
//! - 3DES: NIST 3DES MMT examples 1 and 2 (strongSwan `test_vectors/3des_cbc.c`).

use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).expect("test vector hex")
}

/// `IV || data`, the layout [`Cipher::encrypt`] works on.
fn with_iv(iv: &[u8], data: &[u8]) -> Vec<u8> {
    [iv, data].concat()
}

/// Encrypts `plain` to `cipher` and decrypts it back.
fn kat(alg: EncrAlg, key: &[u8], iv: &[u8], plain: &[u8], cipher: &[u8]) {
    let c = Cipher::new(alg, key).expect("vector key has the right length");
    let mut buf = with_iv(iv, plain);
    c.encrypt(&mut buf).expect("aligned");
    assert_eq!(&buf[..iv.len()], iv, "{alg:?}: IV untouched");
    assert_eq!(
        hex::encode(&buf[iv.len()..]),
        hex::encode(cipher),
        "{alg:?} encrypt"
    );
    let mut out = vec![0u8; cipher.len()];
    c.decrypt(iv, cipher, &mut out).expect("aligned");
    assert_eq!(out, plain, "{alg:?} decrypt");
}

#[test]
fn rfc3602_aes128_cbc() {
    // Case #1: one block.
    kat(
        EncrAlg::AesCbc128,
        &h("06a9214036b8a15b512e03d534120006"),
        &h("3dafba429d9eb430b422da802c9fac41"),
        b"Single block msg",
        &h("e353779c1079aeb82708942dbe77181a"),
    );
    // Case #2: two blocks.
    kat(
        EncrAlg::AesCbc128,
        &h("c286696d887c9aa0611bbb3e2025a45a"),
        &h("562e17996d093d28ddb3ba695a2e6f58"),
        &h("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
        &h("d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1"),
    );
    // Case #3: three blocks.
    kat(
        EncrAlg::AesCbc128,
        &h("6c3ea0477630ce21a2ce334aa746c2cd"),
        &h("c782dc4c098c66cbd9cd27d825682c81"),
        b"This is a 48-byte message (exactly 3 AES blocks)",
        &h(concat!(
            "d0a02b3836451753d493665d33f0e886",
            "2dea54cdb293abc7506939276772f8d5",
            "021c19216bad525c8579695d83ba2684"
        )),
    );
    // Case #4: four blocks.
    kat(
        EncrAlg::AesCbc128,
        &h("56e47a38c5598974bc46903dba290349"),
        &h("8ce82eefbea0da3c44699ed7db51b7d9"),
        &h(concat!(
            "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
            "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
        )),
        &h(concat!(
            "c30e32ffedc0774e6aff6af0869f71aa0f3af07a9a31a9c684db207eb0ef8e4e",
            "35907aa632c3ffdf868bb7b29d3d46ad83ce9f9a102ee99d49a53e87f4c3da55"
        )),
    );
}

/// NIST SP 800-38A Appendix F.2 plaintext (shared by F.2.1–F.2.6).
const SP800_38A_PLAIN: &str = concat!(
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51",
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
);
const SP800_38A_IV: &str = "000102030405060708090a0b0c0d0e0f";

#[test]
fn sp800_38a_aes192_cbc() {
    // F.2.3 CBC-AES192.Encrypt.
    kat(
        EncrAlg::AesCbc192,
        &h("8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b"),
        &h(SP800_38A_IV),
        &h(SP800_38A_PLAIN),
        &h(concat!(
            "4f021db243bc633d7178183a9fa071e8b4d9ada9ad7dedf4e5e738763f69145a",
            "571b242012fb7ae07fa9baac3df102e008b0e27988598881d920a9e64f5615cd"
        )),
    );
}

#[test]
fn sp800_38a_aes256_cbc() {
    // F.2.5 CBC-AES256.Encrypt.
    kat(
        EncrAlg::AesCbc256,
        &h("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4"),
        &h(SP800_38A_IV),
        &h(SP800_38A_PLAIN),
        &h(concat!(
            "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d",
            "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b"
        )),
    );
}

#[test]
fn fips81_des_cbc() {
    // FIPS 81 Appendix C, CBC mode.
    kat(
        EncrAlg::DesCbc,
        &h("0123456789abcdef"),
        &h("1234567890abcdef"),
        b"Now is the time for all ",
        &h("e5c7cdde872bf27c43e934008c389c0f683788499a7c05f6"),
    );
}

#[test]
fn nist_mmt_3des_cbc() {
    // NIST 3DES MMT example 1 (one block) and example 2 (two blocks).
    kat(
        EncrAlg::TripleDesCbc,
        &h("627f460e08104a1043cd265d5840eaf1313edf97df2a8a8c"),
        &h("8e29f75ea77e5475"),
        &h("326a494cd33fe756"),
        &h("b22b8d66de970692"),
    );
    kat(
        EncrAlg::TripleDesCbc,
        &h("37ae5ebf46dff2dc0754b94f31cbb3855e7fd36dc870bfae"),
        &h("3d1de3cc132e3b65"),
        &h("84401f78fe6c10876d8ea23094ea5309"),
        &h("7b1f7c7e3b1c948ebd04a75ffba7d2f5"),
    );
}

#[test]
fn long_buffers_round_trip_for_every_cipher() {
    // Multi-block decryption takes the parallel path of the AES backends; the chain must
    // still match block-by-block CBC (checked by re-encrypting a prefix).
    for alg in EncrAlg::ALL {
        let c = Cipher::new(alg, &vec![0x42; alg.key_len()]).expect("key");
        let iv = vec![0x24; alg.iv_len()];
        let plain: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut buf = with_iv(&iv, &plain);
        c.encrypt(&mut buf).expect("aligned");
        assert_ne!(buf[iv.len()..], plain[..]);
        let mut prefix = with_iv(&iv, &plain[..64]);
        c.encrypt(&mut prefix).expect("aligned");
        assert_eq!(prefix, buf[..iv.len() + 64], "{alg:?}: CBC prefix property");
        let mut out = vec![0u8; plain.len()];
        c.decrypt(&iv, &buf[iv.len()..], &mut out).expect("aligned");
        assert_eq!(out, plain, "{alg:?}");
        // Empty input is a valid no-op.
        c.encrypt(&mut iv.clone()).expect("empty");
        c.decrypt(&iv, &[], &mut []).expect("empty");
    }
}

#[test]
fn interleaved_encryption_matches_one_message_at_a_time() {
    // More items than one interleaved group, of uneven lengths (0, 1, many blocks), each
    // with its own IV: every item must come out as if encrypted alone.
    for alg in EncrAlg::ALL {
        let c = Cipher::new(alg, &vec![0x17; alg.key_len()]).expect("key");
        let bl = alg.block_len();
        let items: Vec<Vec<u8>> = (0..PAR_BLOCKS * 2 + 3)
            .map(|k| {
                let blocks = [0, 1, 88, 3, 88, 88, 2, 87][k % 8];
                (0..(1 + blocks) * bl)
                    .map(|i| (i * 31 + k * 7) as u8)
                    .collect()
            })
            .collect();
        let mut batch = items.clone();
        let mut refs: Vec<&mut [u8]> = batch.iter_mut().map(|v| v.as_mut_slice()).collect();
        c.encrypt_many(&mut refs).expect("aligned");
        for (k, (item, got)) in items.iter().zip(&batch).enumerate() {
            let mut alone = item.clone();
            c.encrypt(&mut alone).expect("aligned");
            assert_eq!(&alone, got, "{alg:?} item {k}");
            let mut back = vec![0u8; item.len() - bl];
            c.decrypt(&item[..bl], &got[bl..], &mut back)
                .expect("aligned");
            assert_eq!(back, item[bl..], "{alg:?} item {k} round trip");
        }
    }
}

#[test]
fn rejects_bad_lengths() {
    for alg in EncrAlg::ALL {
        let c = Cipher::new(alg, &vec![1; alg.key_len()]).expect("key");
        let bl = alg.block_len();
        let iv = vec![0; alg.iv_len()];
        let mut odd = vec![0u8; bl + 1];
        let mut odd_item = with_iv(&iv, &odd);
        assert_eq!(c.encrypt(&mut odd_item), Err(CryptoError::NotBlockAligned));
        assert_eq!(
            c.decrypt(&iv, &odd.clone(), &mut odd),
            Err(CryptoError::NotBlockAligned)
        );
        // Shorter than an IV.
        assert_eq!(
            c.encrypt(&mut iv[1..].to_vec()),
            Err(CryptoError::InvalidIvLength)
        );
        let block = vec![0u8; bl];
        let mut out = vec![0u8; bl];
        let long_iv = vec![0; alg.iv_len() + 1];
        assert_eq!(
            c.decrypt(&long_iv, &block, &mut out),
            Err(CryptoError::InvalidIvLength)
        );
        let mut short_out = vec![0u8; bl - 1];
        assert_eq!(
            c.decrypt(&iv, &block, &mut short_out),
            Err(CryptoError::OutputLength)
        );
        assert_eq!(out, vec![0u8; bl], "untouched on error");
        // One bad item in a batch: nothing is encrypted.
        let mut good = vec![0u8; 3 * bl];
        let mut bad = vec![0u8; 3 * bl + 1];
        assert_eq!(
            c.encrypt_many(&mut [&mut good[..], &mut bad[..]]),
            Err(CryptoError::NotBlockAligned)
        );
        assert_eq!(good, vec![0u8; 3 * bl], "batch untouched on error");
        assert_eq!(
            Cipher::new(alg, &vec![1; alg.key_len() - 1]).err(),
            Some(CryptoError::InvalidKeyLength)
        );
        assert_eq!(
            Cipher::new(alg, &vec![1; alg.key_len() + 1]).err(),
            Some(CryptoError::InvalidKeyLength)
        );
    }
}

#[test]
fn debug_shows_no_key() {
    let c = Cipher::new(EncrAlg::AesCbc128, &[0x5a; 16]).expect("key");
    let text = format!("{c:?} {c:#?}");
    assert!(
        text.contains("redacted") && text.contains("AesCbc128"),
        "{text}"
    );
    assert!(
        !text.to_lowercase().contains("5a5a") && !text.contains("90, 90"),
        "{text}"
    );
}

#[test]
fn transform_mapping() {
    // IANA IKEv2 Transform Type 1; RFC 7296 §3.3.5 Key Length attribute rules.
    assert_eq!(EncrAlg::from_ike(2, None), Some(EncrAlg::DesCbc));
    assert_eq!(EncrAlg::from_ike(3, None), Some(EncrAlg::TripleDesCbc));
    assert_eq!(EncrAlg::from_ike(12, Some(128)), Some(EncrAlg::AesCbc128));
    assert_eq!(EncrAlg::from_ike(12, Some(192)), Some(EncrAlg::AesCbc192));
    assert_eq!(EncrAlg::from_ike(12, Some(256)), Some(EncrAlg::AesCbc256));
    assert_eq!(EncrAlg::from_ike(12, None), None, "AES needs KEY_LENGTH");
    assert_eq!(EncrAlg::from_ike(12, Some(64)), None);
    assert_eq!(
        EncrAlg::from_ike(3, Some(192)),
        None,
        "fixed-size cipher with KEY_LENGTH"
    );
    assert_eq!(
        EncrAlg::from_ike(20, Some(128)),
        None,
        "AES-GCM is not offered"
    );
    for alg in EncrAlg::ALL {
        assert_eq!(
            EncrAlg::from_ike(alg.transform_id(), alg.key_length_attr()),
            Some(alg)
        );
        assert_eq!(alg.iv_len(), alg.block_len());
        assert_eq!(
            alg.is_legacy(),
            matches!(alg, EncrAlg::DesCbc | EncrAlg::TripleDesCbc)
        );
    }
    let lens: Vec<_> = EncrAlg::ALL
        .iter()
        .map(|a| (a.key_len(), a.block_len()))
        .collect();
    assert_eq!(lens, [(8, 8), (24, 8), (16, 16), (24, 16), (32, 16)]);
}
