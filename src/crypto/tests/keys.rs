//! Key schedule known answers (NIST SP 800-135 IKEv2 KDF, CAVS/ACVP format):
//!
//! - SHA-1, 256-bit g^ir: the NIST CAVS sample (tcId 100 in ACVP form) as published in
//!   libreswan `programs/cavp/test.acvp.ikev2.run` / `.json`; the same SKEYSEED, DKM and
//!   rekey SKEYSEED appear as "from NIST samples" in NSS
//!   `gtests/common/testvectors/ike-sha1-vectors.h` (vectors 6–8).
//! - SHA-1, 1024-bit g^ir: the IKEv2 KAT of Cisco's FIPS OpenSSL `crypto/kdf/kdftest.c`
//!   (`test_ikev2_kdf`, "vectors taken from NIST"), e.g. github.com/fliphil/openssl.
//! - SHA-256 and SHA-384: NSS `gtests/common/testvectors/ike-sha{256,384}-vectors.h`
//!   vectors 6–8 ("these vectors are from this NIST samples"): SKEYSEED, DKM and rekey
//!   SKEYSEED (NSS has no child DKM for these).
//!
//! As in SP 800-135 §7.1 / the CAVS tests: DKM = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr),
//! SK_d = the first PRF-length bytes of DKM, DKM(Child SA) = prf+(SK_d, Ni | Nr),
//! DKM(Child SA D-H) = prf+(SK_d, g^ir(new) | Ni | Nr),
//! SKEYSEED(Rekey) = prf(SK_d, g^ir(new) | Ni | Nr).

use super::*;
use crate::crypto::{CryptoError, DhGroup, DhPrivate};
use hmac::{Hmac, Mac};
use rand::rngs::StdRng;
use rand::SeedableRng;
use sha2::Sha256;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).expect("test vector hex")
}

fn spi(s: &str) -> u64 {
    u64::from_str_radix(s, 16).expect("spi hex")
}

struct KdfVector {
    prf: PrfAlg,
    ni: &'static str,
    nr: &'static str,
    g_ir: &'static str,
    g_ir_new: &'static str,
    spi_i: &'static str,
    spi_r: &'static str,
    skeyseed: &'static str,
    dkm: &'static str,
    child_dkm: Option<&'static str>,
    child_dkm_dh: Option<&'static str>,
    skeyseed_rekey: &'static str,
}

const NIST_SHA1: KdfVector = KdfVector {
    prf: PrfAlg::HmacSha1,
    ni: "32b50d5f4a3763f3",
    nr: "9206a04b26564cb1",
    g_ir: "4b2c1f971981a8ad8d0abeafabf38cf75fc8349c148142465ed9c8b516b8be52",
    g_ir_new: "863f3c9d06efd39d2b907b97f8699e5dd5251ef64a2a176f36ee40c87d4f9330",
    spi_i: "34c9e7c188868785",
    spi_r: "3ff77d760d2b2199",
    skeyseed: "a9a7b222b59f8f48645f28a1db5b5f5d7479cba7",
    dkm: concat!(
        "a14293677cc80ff8f9cc0eee30d895da9d8f405666e30ef0dfcb63c634a46002",
        "a2a63080e514a062768b76606f9fa5e992204fc5a670bde3f10d6b027113936a",
        "5c55b648a194ae587b0088d52204b702c979fa280870d2ed41efa9c549fd1119",
        "8af1670b143d384bd275c5f594cf266b05ebadca855e4249520a441a81157435",
        "a7a56cc4",
    ),
    child_dkm: Some(concat!(
        "8059e3ee8810e6c3a91bc8bcd2a7a41151b8d0e6ae239c7b38093ad85ef4c581",
        "1a8e7b5d1cdabd9560b2d5e092d1f24e2d4b85eccdf0ad0dc9abd94b51ee7181",
        "4ca6dbc8bb51b6309f5b9545c7eb35cf5580b1e521a8fe20754a2d883ba0c2cf",
        "285f524aea6545b33106bc03e614296d319d41d4b50b3f510b1c0a22f3e66499",
        "4d234cb4",
    )),
    child_dkm_dh: Some(concat!(
        "bb43244c1860ad65ee1e211ffe8bb3661750c8f89cb9f547df7f4fa61d373016",
        "28190e38c66232eab4b3ab14c400a5197dd3730ed4820a8a10394d51e1c04000",
        "52f63ebd36b0e7ef53aaed31eba4a5080d7d4b5666023a8bbb5ffb7857240f9a",
        "05884d1b7d2f933708450b7b3288f1fc863ab49fa901227cffc06e27899c7054",
        "d56fd74c",
    )),
    skeyseed_rekey: "63e81194946ebd05df7df5ebf5d8750056bf1f1d",
};

const CISCO_SHA1: KdfVector = KdfVector {
    prf: PrfAlg::HmacSha1,
    ni: "3651fef5c9c35e93",
    nr: "c09a8b90a3f04d59",
    g_ir: concat!(
        "d084a30166a50fb7325c3960874a839449ef9741c2f4f947d0201dd8c1269273",
        "d79509f37e3ca3eb4fa2fe2a28254e289cd3f34dad4eb4df1a07685a4b8a94fa",
        "61e2491f7598b3ce65547ff133b3f63d1ac4175eaa695033f3cedb026a6873a3",
        "6455172a8540b8a5d23a0143bed0390ee49b168269d75fffee9fb62be965993c",
    ),
    g_ir_new: concat!(
        "52f00ab174c25d5b7139ae5ff4e8e9eddee5992d2e36adf8a559ffd90dab1442",
        "e4fbe429d320c0f33552a17d1557fa41ea70e8fb916c4fa27ed52b5f8ebd8461",
        "afa78f1159159a64055ac5f6319e29c28eae58cbc6847770f32c3fed1d047504",
        "84f854790f95e9ec01bc5bc461f24966462e359511329305038e94deb6dd42c2",
    ),
    spi_i: "8e5c3ae507221684",
    spi_r: "b1f201bb155c3acd",
    skeyseed: "cd2e8050137832245f1dbacc6e4f0a92f94d45d6",
    dkm: concat!(
        "6f1b12cad3cbe097b35430356d869d54cddb0198ec859174d53ceb92dddedbe2",
        "436db69f60977c58fa63bbb667f8d36920b109baae8f6c61a9ac49feda018432",
        "25d080ec5539d5881a25521ffb2a0a91874a9c0a27fcc2d717eb8963a9e3a89c",
        "7ab264757284c28cf8c3ca40576f4220b052b1fb8e9ad60ba3c80557323331a8",
        "cbb89f20",
    ),
    child_dkm: Some(concat!(
        "4727dc0ef94eb326ce131cf282fb652faa638ad0ddae3786a11bcc0309876009",
        "f8c485de011ad962c5b1ca8a41ff8145445749079c5686e26ffebbc342f06981",
        "f3da745e11ca0976424d1f8caec623d59dc7186deb20a27b411d1dcb70a36544",
        "0bf7de905088b0692e8addc094e18d1939bdb67e89798ca6b239e2ccb81c2409",
        "dac0106c",
    )),
    child_dkm_dh: Some(concat!(
        "b109c21ad4c0797768c1cec9e63554681e48f224bca7f23c20c4ea7041983451",
        "e9aa1d5408656c8a975ff1b9d9a12c75ffeb64bdecb30174664cccb4e14f1c37",
        "7b7f6d1525af77c7092aac3e47f917ebae8297fb5539d2008ce830823a09cc19",
        "7361d4a289c72745f6ce9fefe812be5bf55b3200fbb82e41a4a40877d3fe106d",
        "b909707b",
    )),
    skeyseed_rekey: "3b03bce748c96d5e8306918d2ff89b68f0648da3",
};

const NSS_SHA256: KdfVector = KdfVector {
    prf: PrfAlg::HmacSha256,
    ni: "3f302be1abcb28e1",
    nr: "8c332ee006064c9b",
    g_ir: "0f4d257d7a58fc4545c7d7a88119eee5d5c9690c5b4c989171d3abbfd99d1d29",
    g_ir_new: "25f3b12d6f282739256e39bf54eda53b60ffcf379bb7bcc90c27b4c4c578616c",
    spi_i: "40dac39e1e1a8640",
    spi_r: "8619a1cf9a6e4c07",
    skeyseed: "5f00d1bd2c58ec224b1e6b71fa0f19a1faa7a193952c444411b47c1a9d8ba6fe",
    dkm: concat!(
        "0b137d669b0947d7d026d593f0305ad401ff0c471357d695778a9c7f4b4869ec",
        "e98aca531188d16041b3bb936d2dbb3b4993a6e768a809160de45d0283f273a6",
        "cdf6854379e31be72b8d3d1fa990cf9c5b015ca9f918a7df6253c958114a09d4",
        "e1c19bdcd4db14b29d98db1a74ad405c588662c14a04d0d36aa4ab55e90f8986",
        "d12d4aad",
    ),
    child_dkm: None,
    child_dkm_dh: None,
    skeyseed_rekey: "2d63f6debc92048b4fef3889c4c99ca67d6496e0fac14a2bca9a2d6566ff2398",
};

const NSS_SHA384: KdfVector = KdfVector {
    prf: PrfAlg::HmacSha384,
    ni: "fd1b572a8e735591",
    nr: "6013b0ef88dacd3d",
    g_ir: "d3288cd87565101e88fe3bad918f31939d8dd26ff1071f8b2d7f447524e58d7c",
    g_ir_new: "3358f620539473aee8d07e779764c4c6a9aabddc79a28e136b3bac021dbde44a",
    spi_i: "2116ad07ce61f749",
    spi_r: "24880e55f11a65b7",
    skeyseed: concat!(
        "69fe7a1ac94adaeb711295f5fe004b1a8d6a0b65d05692758ce8ad2f7a45f59d",
        "7d0b596f51f7dfcf3330061888f6a94f",
    ),
    dkm: concat!(
        "4f904c2025c90c817ea5ff9b662a6fdb445a73b57cdf09eacd379b95e1f03cac",
        "b04cd6deeda4f952191dd9bc1f7a9502471a648d74dc06d38112de48a42501f6",
        "b1a3ad55c2099cd9a648e5f17e5bf3e34bf9b5953decb768a34f875fe2b78dca",
        "0c2fcca81ec1a412006dfaed38fa06882e61f4c148105fb8e231fdb33c4d484c",
        "001721d4",
    ),
    child_dkm: None,
    child_dkm_dh: None,
    skeyseed_rekey: concat!(
        "e0548c1682e13bce454026b3b1bdf42985b24e4e7408095a7c529de38c3d1fcb",
        "04c9fe6868042a34c9614c6c99e3fcea",
    ),
};

fn ike_keys_concat(keys: &IkeKeys) -> Vec<u8> {
    [
        &keys.sk_d,
        &keys.sk_ai,
        &keys.sk_ar,
        &keys.sk_ei,
        &keys.sk_er,
        &keys.sk_pi,
        &keys.sk_pr,
    ]
    .iter()
    .flat_map(|k| k.expose().to_vec())
    .collect()
}

fn child_keys_concat(keys: &ChildKeys) -> Vec<u8> {
    [&keys.encr_i, &keys.integ_i, &keys.encr_r, &keys.integ_r]
        .iter()
        .flat_map(|k| k.expose().to_vec())
        .collect()
}

fn run_kdf(v: &KdfVector, encr: EncrAlg, integ: IntegAlg) {
    let (ni, nr, g_ir, g_ir_new) = (h(v.ni), h(v.nr), h(v.g_ir), h(v.g_ir_new));
    let dkm = h(v.dkm);

    let seed = skeyseed(v.prf, &ni, &nr, &g_ir);
    assert_eq!(hex::encode(seed.expose()), v.skeyseed, "SKEYSEED");

    // DKM as the raw prf+ stream, and as split IKE SA keys (a prefix of the same stream).
    let raw = v
        .prf
        .prf_plus_parts(
            seed.expose(),
            &[&ni, &nr, &h(v.spi_i), &h(v.spi_r)],
            dkm.len(),
        )
        .expect("132 bytes");
    assert_eq!(raw.expose(), dkm.as_slice(), "DKM");
    let keys = derive_ike_keys(
        v.prf,
        encr,
        integ,
        seed.expose(),
        &ni,
        &nr,
        spi(v.spi_i),
        spi(v.spi_r),
    );
    let split = ike_keys_concat(&keys);
    let n = split.len().min(dkm.len());
    assert_eq!(split[..n], dkm[..n], "IKE SA keys are DKM in §2.14 order");
    assert_eq!(keys.sk_d.len(), v.prf.key_len());
    assert_eq!(keys.sk_ai.len(), integ.key_len());
    assert_eq!(keys.sk_ei.len(), encr.key_len());
    assert_eq!(keys.sk_pr.len(), v.prf.key_len());

    // SK_d = first PRF-length bytes of DKM; the rekey SKEYSEED is keyed with it.
    let sk_d = &dkm[..v.prf.key_len()];
    assert_eq!(keys.sk_d.expose(), sk_d);
    let rekey = rekey_skeyseed(v.prf, sk_d, &g_ir_new, &ni, &nr);
    assert_eq!(
        hex::encode(rekey.expose()),
        v.skeyseed_rekey,
        "SKEYSEED(Rekey)"
    );

    // derive_ike_sa is the same two steps, for IKE_SA_INIT and for a rekey.
    let (spis, nonces) = ((spi(v.spi_i), spi(v.spi_r)), (&ni[..], &nr[..]));
    let init = SkeyseedFrom::Init { g_ir: &g_ir };
    assert_eq!(derive_ike_sa(v.prf, encr, integ, init, nonces, spis), keys);
    let rekeyed = SkeyseedFrom::Rekey {
        old_sk_d: sk_d,
        g_ir: &g_ir_new,
    };
    assert_eq!(
        derive_ike_sa(v.prf, encr, integ, rekeyed, nonces, spis),
        derive_ike_keys(v.prf, encr, integ, rekey.expose(), &ni, &nr, spis.0, spis.1)
    );

    for (g, expected) in [
        (None, v.child_dkm),
        (Some(g_ir_new.as_slice()), v.child_dkm_dh),
    ] {
        let Some(expected) = expected else { continue };
        let expected = h(expected);
        let km = child_keymat(v.prf, sk_d, g, &ni, &nr, expected.len()).expect("132 bytes");
        assert_eq!(
            km.expose(),
            expected.as_slice(),
            "child DKM, DH: {}",
            g.is_some()
        );
        let child = derive_child_keys(v.prf, sk_d, g, &ni, &nr, encr, integ);
        let split = child_keys_concat(&child);
        assert_eq!(
            split[..],
            expected[..split.len()],
            "Child SA keys in §2.17 order"
        );
    }
}

#[test]
fn nist_cavs_ikev2_kdf_sha1() {
    // 132-byte DKM = exactly SK_d|SK_ai|SK_ar|SK_ei|SK_er|SK_pi|SK_pr for
    // PRF-SHA1 / AUTH_HMAC_SHA1_96 / AES-128-CBC (3·20 + 2·20 + 2·16).
    run_kdf(&NIST_SHA1, EncrAlg::AesCbc128, IntegAlg::HmacSha1_96);
    let keys = derive_ike_keys(
        PrfAlg::HmacSha1,
        EncrAlg::AesCbc128,
        IntegAlg::HmacSha1_96,
        &h(NIST_SHA1.skeyseed),
        &h(NIST_SHA1.ni),
        &h(NIST_SHA1.nr),
        spi(NIST_SHA1.spi_i),
        spi(NIST_SHA1.spi_r),
    );
    assert_eq!(ike_keys_concat(&keys), h(NIST_SHA1.dkm));
}

#[test]
fn nist_cavs_ikev2_kdf_sha1_1024_bit_dh() {
    run_kdf(&CISCO_SHA1, EncrAlg::AesCbc128, IntegAlg::HmacSha1_96);
    run_kdf(&CISCO_SHA1, EncrAlg::TripleDesCbc, IntegAlg::HmacMd5_96);
}

#[test]
fn nist_ikev2_kdf_sha256() {
    run_kdf(&NSS_SHA256, EncrAlg::AesCbc128, IntegAlg::HmacSha256_128);
    run_kdf(&NSS_SHA256, EncrAlg::AesCbc256, IntegAlg::HmacSha512_256);
}

#[test]
fn nist_ikev2_kdf_sha384() {
    run_kdf(&NSS_SHA384, EncrAlg::AesCbc256, IntegAlg::HmacSha384_192);
}

#[test]
fn child_keymat_limit() {
    assert!(matches!(
        child_keymat(PrfAlg::HmacMd5, b"k", None, b"n", b"n", 255 * 16 + 1),
        Err(CryptoError::PrfPlusTooLong { .. })
    ));
}

/// Both ends of an exchange, fed the same public inputs, derive the same keys and AUTH
/// values; the two directions differ, and a wrong PSK or a tampered message does not verify.
#[test]
fn psk_auth_both_sides_agree() {
    let mut rng = StdRng::seed_from_u64(2_15);
    let (prf, encr, integ) = (
        PrfAlg::HmacSha256,
        EncrAlg::AesCbc128,
        IntegAlg::HmacSha256_128,
    );
    let ni = [0x11u8; 32];
    let nr = [0x22u8; 32];
    let (spi_i, spi_r) = (0x0102_0304_0506_0708, 0x1112_1314_1516_1718);
    let init_dh = DhPrivate::generate(DhGroup::Modp1024, &mut rng);
    let resp_dh = DhPrivate::generate(DhGroup::Modp1024, &mut rng);

    let derive = |own: &DhPrivate, peer: &[u8]| {
        let g_ir = own.shared_secret(peer).expect("valid");
        let seed = skeyseed(prf, &ni, &nr, g_ir.expose());
        derive_ike_keys(prf, encr, integ, seed.expose(), &ni, &nr, spi_i, spi_r)
    };
    let init_keys = derive(&init_dh, resp_dh.public_value());
    let resp_keys = derive(&resp_dh, init_dh.public_value());
    assert_eq!(init_keys, resp_keys);

    let psk = b"change-me";
    let sa_init_request = b"IKE_SA_INIT request bytes";
    let sa_init_response = b"IKE_SA_INIT response bytes";
    let idi_body = b"\x02\x00\x00\x00client.example"; // ID_FQDN, RESERVED, data
    let idr_body = b"\x02\x00\x00\x00gw.example.com";

    // Initiator signs (message 1, Nr, SK_pi, IDi); responder recomputes to verify.
    let auth_i = psk_auth(
        prf,
        psk,
        sa_init_request,
        &nr,
        init_keys.sk_pi.expose(),
        idi_body,
    );
    let check_i = psk_auth(
        prf,
        psk,
        sa_init_request,
        &nr,
        resp_keys.sk_pi.expose(),
        idi_body,
    );
    assert!(check_i.ct_eq(auth_i.expose()));
    assert_eq!(auth_i.len(), prf.output_len());

    // Responder signs (message 2, Ni, SK_pr, IDr); initiator verifies.
    let auth_r = psk_auth(
        prf,
        psk,
        sa_init_response,
        &ni,
        resp_keys.sk_pr.expose(),
        idr_body,
    );
    let check_r = psk_auth(
        prf,
        psk,
        sa_init_response,
        &ni,
        init_keys.sk_pr.expose(),
        idr_body,
    );
    assert!(check_r.ct_eq(auth_r.expose()));
    assert_ne!(auth_i, auth_r);

    let wrong_psk = psk_auth(
        prf,
        b"change-me!",
        sa_init_request,
        &nr,
        resp_keys.sk_pi.expose(),
        idi_body,
    );
    assert!(!wrong_psk.ct_eq(auth_i.expose()));
    let tampered = psk_auth(
        prf,
        psk,
        b"IKE_SA_INIT request byteZ",
        &nr,
        resp_keys.sk_pi.expose(),
        idi_body,
    );
    assert!(!tampered.ct_eq(auth_i.expose()));
}

/// Cross-check of the §2.15 formula against a direct HMAC composition (not a published
/// vector: none was found; this pins the order of the signed octets and the key pad).
#[test]
fn psk_auth_matches_the_rfc_formula() {
    fn hmac256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().to_vec()
    }
    let (psk, msg, nonce, sk_p, id) = (
        b"secret",
        b"message",
        b"nonce",
        [9u8; 32],
        b"\x01\0\0\0\xc0\x00\x02\x01",
    );
    let pad = hmac256(psk, &[b"Key Pad for IKEv2"]);
    let maced_id = hmac256(&sk_p, &[id]);
    let expected = hmac256(&pad, &[msg, nonce, &maced_id]);
    let auth = psk_auth(PrfAlg::HmacSha256, psk, msg, nonce, &sk_p, id);
    assert_eq!(auth.expose(), expected.as_slice());
    assert_eq!(KEY_PAD_IKEV2.len(), 17);
}

#[test]
fn debug_of_key_sets_shows_no_key_bytes() {
    let keys = derive_ike_keys(
        PrfAlg::HmacSha1,
        EncrAlg::AesCbc128,
        IntegAlg::HmacSha1_96,
        &h(NIST_SHA1.skeyseed),
        &h(NIST_SHA1.ni),
        &h(NIST_SHA1.nr),
        spi(NIST_SHA1.spi_i),
        spi(NIST_SHA1.spi_r),
    );
    let child = derive_child_keys(
        PrfAlg::HmacSha1,
        keys.sk_d.expose(),
        None,
        b"ni",
        b"nr",
        EncrAlg::AesCbc256,
        IntegAlg::HmacSha256_128,
    );
    let text = format!("{keys:?} {keys:#?} {child:?}");
    assert!(text.contains("redacted"), "{text}");
    for key in [
        &keys.sk_d,
        &keys.sk_ei,
        &keys.sk_pr,
        &child.encr_i,
        &child.integ_r,
    ] {
        let hex = hex::encode(&key.expose()[..4]);
        assert!(!text.to_lowercase().contains(&hex), "{hex} in {text}");
        let dec = format!("{}, {}", key.expose()[0], key.expose()[1]);
        assert!(!text.contains(&dec), "{dec} in {text}");
    }
}
