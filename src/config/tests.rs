//! Unit tests of the configuration's private helpers; the public API is exercised by
//! `tests/config.rs`.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::Ipv4Net;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::raw::{json_int, line_col};
use super::validate::{generate_psk, overlaps, parse_cidr, reserved, shown, CidrError};
use super::*;

fn net(s: &str) -> Ipv4Net {
    s.parse().expect("test literal")
}

const MINIMAL: &str = r#"
[gateway]
vpn_gateway_id = "vpn-test0001"
region_id = "local"

[ipsec_server]
local_subnet = ["192.168.0.0/24"]
client_ip_pool = "10.0.0.0/24"
"#;

#[test]
fn parse_cidr_is_strict() {
    assert_eq!(parse_cidr("192.168.0.0/24"), Ok(net("192.168.0.0/24")));
    assert_eq!(parse_cidr("0.0.0.0/0"), Ok(net("0.0.0.0/0")));
    assert_eq!(parse_cidr("10.1.2.3/32"), Ok(net("10.1.2.3/32")));
    for bad in [
        "",
        "/24",
        "1.2.3.4/",
        "1.2.3/24",
        "1.2.3.4/24/1",
        "1.2.3.4 /24",
        " 1.2.3.0/24",
        "+1.2.3.0/24",
        "1.2.3.0/+8",
        "1.2.3.0/-1",
        "01.2.3.0/24",
        "1.2.3.0/08",
        "1.2.3.0/33",
        "1.2.3.0/100",
        "1.2.3.0/２４",
        "256.0.0.0/8",
        "::/0",
        "1.2.3.0\u{0}/24",
    ] {
        assert_eq!(parse_cidr(bad), Err(CidrError::Syntax), "{bad:?}");
    }
    assert_eq!(
        parse_cidr("192.168.0.1/24"),
        Err(CidrError::HostBits(net("192.168.0.0/24")))
    );
    assert_eq!(
        parse_cidr("10.255.0.0/8"),
        Err(CidrError::HostBits(net("10.0.0.0/8")))
    );
}

#[test]
fn reserved_ranges_and_overlap() {
    assert_eq!(
        reserved(net("0.0.0.0/0")),
        None,
        "the default route is not inside 0/8"
    );
    assert_eq!(reserved(net("10.0.0.0/8")), None);
    assert!(reserved(net("127.1.0.0/16")).is_some());
    assert!(reserved(net("0.1.0.0/16")).is_some());
    assert!(reserved(net("239.0.0.0/8")).is_some());
    assert!(reserved(net("255.255.255.255/32")).is_some());

    let (a, b) = (net("10.0.0.0/24"), net("10.0.0.128/25"));
    assert!(overlaps(a, b) && overlaps(b, a));
    assert!(overlaps(a, a));
    assert!(!overlaps(a, net("10.0.1.0/24")));
    assert!(!overlaps(net("10.0.1.0/24"), a));
    assert!(overlaps(net("0.0.0.0/0"), a));
}

#[test]
fn shown_escapes_and_truncates_without_panicking() {
    assert_eq!(shown("aes"), "\"aes\"");
    assert_eq!(shown("a\nb\u{1b}"), "\"a\\nb\\u{1b}\"");
    let long = "é".repeat(70);
    let s = shown(&long);
    assert!(s.ends_with("… (70 characters)"), "{s}");
    assert_eq!(s.matches('é').count(), 64);
}

#[test]
fn line_col_counts_characters() {
    let text = "a = 1\nbé = 2\n";
    assert_eq!(line_col(text, 0), Some((1, 1)));
    assert_eq!(line_col(text, 6), Some((2, 1)));
    assert_eq!(line_col(text, 9), Some((2, 3)), "é is one column");
    assert_eq!(line_col(text, 8), None, "inside é: not a char boundary");
    assert_eq!(line_col(text, 999), None);
}

#[test]
fn json_int_accepts_numbers_and_numeric_strings() {
    use serde_json::json;
    let f = |v| json_int(v, codes::ILLEGAL_IKE_LIFETIME, "IkeLifetime");
    assert_eq!(f(None), Ok(None));
    assert_eq!(f(Some(json!(null))), Ok(None));
    assert_eq!(f(Some(json!(86400))), Ok(Some(86400)));
    assert_eq!(f(Some(json!(-3))), Ok(Some(-3)), "range is checked later");
    assert_eq!(f(Some(json!(" 60 "))), Ok(Some(60)));
    for bad in [
        json!(1.5),
        json!("6o"),
        json!(true),
        json!({}),
        json!(u64::MAX),
    ] {
        let e = f(Some(bad.clone())).expect_err("not an integer");
        assert_eq!(e.code, codes::ILLEGAL_IKE_LIFETIME, "{bad}");
    }
}

#[test]
fn algorithm_names_round_trip_and_map_to_iana() {
    for a in EncAlg::ALL {
        assert_eq!(EncAlg::from_api_name(a.api_name()), Some(a));
        assert_eq!(a.to_string(), a.api_name());
        assert_eq!(a.key_length_attr().is_some(), a.iana_id() == 12);
        assert!(a.key_len() >= 8 && a.block_len() >= 8);
    }
    for a in AuthAlg::ALL {
        assert_eq!(AuthAlg::from_api_name(a.api_name()), Some(a));
    }
    for g in DhGroup::ALL {
        assert_eq!(DhGroup::from_api_name(g.api_name()), Some(g));
        assert_eq!(g.api_name(), format!("group{}", g.iana_id()));
    }
    for p in UniquePolicy::ALL {
        assert_eq!(UniquePolicy::from_name(p.name()), Some(p));
    }
    assert_eq!(EncAlg::from_api_name("aes128"), None);
    assert_eq!(EncAlg::from_api_name("3des"), Some(EncAlg::TripleDes));
    assert_eq!(EncAlg::Aes256.key_length_attr(), Some(256));
    assert_eq!(EncAlg::TripleDes.iana_id(), 3);
    assert_eq!(AuthAlg::Sha256.integ_id(), 12);
    assert_eq!(AuthAlg::Sha256.prf_id(), 5);
    assert_eq!(AuthAlg::Sha512.icv_len(), 32);
    assert_eq!(
        DhGroup::ALL.map(DhGroup::iana_id),
        [1, 2, 5, 14, 24],
        "iana_id as specified"
    );
    let legacy: Vec<&str> = EncAlg::ALL
        .iter()
        .filter(|a| a.legacy_reason().is_some())
        .map(|a| a.api_name())
        .chain(
            AuthAlg::ALL
                .iter()
                .filter(|a| a.legacy_reason().is_some())
                .map(|a| a.api_name()),
        )
        .chain(
            DhGroup::ALL
                .iter()
                .filter(|g| g.legacy_reason().is_some())
                .map(|g| g.api_name()),
        )
        .collect();
    assert_eq!(legacy, ["des", "3des", "md5", "group1"]);
}

#[test]
fn identities_parse_like_strongswan_and_round_trip() {
    let cases = [
        ("192.0.2.1", Identity::Ipv4(Ipv4Addr::new(192, 0, 2, 1)), 1),
        (
            "2001:db8::1",
            Identity::Ipv6("2001:db8::1".parse::<Ipv6Addr>().expect("v6")),
            5,
        ),
        ("gw.example.com", Identity::Fqdn("gw.example.com".into()), 2),
        (
            "@gw.example.com",
            Identity::Fqdn("gw.example.com".into()),
            2,
        ),
        ("@192.0.2.1", Identity::Fqdn("192.0.2.1".into()), 2),
        (
            "alice@example.com",
            Identity::Rfc822("alice@example.com".into()),
            3,
        ),
        ("@#0a0B", Identity::KeyId(vec![0x0a, 0x0b]), 11),
    ];
    for (text, id, ty) in cases {
        let parsed = Identity::parse(text).expect(text);
        assert_eq!(parsed, id, "{text}");
        assert_eq!(parsed.id_type(), ty, "{text}");
        assert_eq!(Identity::parse(&parsed.to_string()), Ok(parsed), "{text}");
    }
    assert_eq!(
        Identity::Ipv4(Ipv4Addr::new(10, 0, 0, 1)).data(),
        [10, 0, 0, 1]
    );
    assert_eq!(Identity::Fqdn("a.b".into()).data(), b"a.b");
    for bad in ["@", "@#", "@#abc", "@#zz", "a b", "tab\there", "nul\0"] {
        assert!(Identity::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn generated_psk_is_deterministic_under_a_seeded_rng() {
    let a = generate_psk(&mut StdRng::seed_from_u64(7));
    let b = generate_psk(&mut StdRng::seed_from_u64(7));
    let c = generate_psk(&mut StdRng::seed_from_u64(8));
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.len(), GENERATED_PSK_LEN);
    assert!(a.expose().iter().all(u8::is_ascii_alphanumeric));

    let raw = ConfigRaw::from_toml_str(MINIMAL).expect("raw");
    let x = Config::from_raw(&raw, &[], &mut StdRng::seed_from_u64(1)).expect("valid");
    let y = Config::from_raw(&raw, &[], &mut StdRng::seed_from_u64(1)).expect("valid");
    assert_eq!(x, y);
    assert!(x.ipsec_server().is_some_and(|s| s.psk_generated()));
}

/// A small in-process fuzz: random edits of a valid config and of API JSON must produce a
/// `Result`, never a panic.
#[test]
fn random_edits_never_panic() {
    const ALPHABET: &[char] = &[
        '[', ']', '"', '\'', '=', ',', '.', '/', '\n', ' ', '0', '9', '-', '#', '{', '}', ':', 'a',
        'z', 'é', '\u{0}', '\\',
    ];
    let json = r#"{"IkeVersion":"ikev2","IkeMode":"main","IkeEncAlg":"aes","IkeLifetime":86400}"#;
    let mut rng = StdRng::seed_from_u64(0x1b5e);
    for _ in 0..3000 {
        for base in [MINIMAL, json] {
            let mut chars: Vec<char> = base.chars().collect();
            for _ in 0..rng.gen_range(1..4) {
                let i = rng.gen_range(0..chars.len());
                match rng.gen_range(0..3) {
                    0 => {
                        chars.remove(i);
                    }
                    1 => chars.insert(i, ALPHABET[rng.gen_range(0..ALPHABET.len())]),
                    _ => chars[i] = ALPHABET[rng.gen_range(0..ALPHABET.len())],
                }
            }
            let text: String = chars.into_iter().collect();
            let _ =
                Config::from_toml_str(&text, &[net("10.0.0.0/8")], &mut StdRng::seed_from_u64(0));
            let _ = IkeConfigRaw::from_api_json(&text);
            let _ = IpsecConfigRaw::from_api_json(&text);
            let _ = parse_local_subnet(&text);
        }
    }
}
