//! Every supported suite × every format, and the details of each format.

use super::*;
use crate::config::{AuthAlg, Config, DhGroup, EncAlg};
use rand::rngs::mock::StepRng;

const PSK20: &str = "a-psk-of-24-characters!!";

fn toml(enc: EncAlg, auth: AuthAlg, dh: DhGroup, pfs: Option<DhGroup>, extra: &str) -> String {
    format!(
        r#"[gateway]
vpn_gateway_id = "vpn-test"
region_id = "local"
listen_addrs = ["0.0.0.0"]
{extra}
[ipsec_server]
local_subnet = ["192.168.0.0/24", "192.168.5.0/24"]
client_ip_pool = "10.0.0.0/24"
psk = "{PSK20}"
dns = ["192.168.0.53"]
[ipsec_server.ike_config]
ike_enc_alg = "{enc}"
ike_auth_alg = "{auth}"
ike_pfs = "{dh}"
ike_lifetime = 3600
local_id = "gw.example.com"
[ipsec_server.ipsec_config]
ipsec_enc_alg = "{enc}"
ipsec_auth_alg = "{auth}"
ipsec_pfs = "{pfs}"
ipsec_lifetime = 1800
"#,
        pfs = pfs.map_or("disabled", DhGroup::api_name)
    )
}

fn view_of(text: &str) -> ServerView {
    let cfg = Config::from_toml_str(text, &[], &mut StepRng::new(1, 1)).expect("valid config");
    ServerView::new(
        cfg.gateway(),
        cfg.ipsec_server().unwrap(),
        "test".into(),
        PskSource::Known {
            hint: "test".into(),
        },
    )
}

fn opts() -> Options {
    Options {
        server: Some("203.0.113.7".into()),
        client_id: None,
        with_secret: true,
    }
}

/// A tiny plist reader for the test: `<key>K</key>` followed by a scalar, within `text`.
fn plist_values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    let tag = format!("<key>{key}</key>");
    text.match_indices(&tag)
        .filter_map(|(i, _)| {
            let rest = text[i + tag.len()..].trim_start();
            let open = rest.find('>')?;
            let close = rest.find("</")?;
            (open < close).then(|| &rest[open + 1..close])
        })
        .collect()
}

#[test]
fn every_suite_times_every_format() {
    let mut checked = 0;
    for enc in EncAlg::ALL {
        for auth in AuthAlg::ALL {
            for dh in DhGroup::ALL {
                for pfs in [None, Some(dh)] {
                    let view = view_of(&toml(enc, auth, dh, pfs, ""));
                    for format in Format::ALL {
                        let r = render(&view, format, &opts()).expect("renders");
                        check(&view, format, &r, enc, auth, dh, pfs);
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 5 * 5 * 5 * 2 * 5);
}

#[allow(clippy::too_many_arguments)]
fn check(
    view: &ServerView,
    format: Format,
    r: &Rendered,
    enc: EncAlg,
    auth: AuthAlg,
    dh: DhGroup,
    pfs: Option<DhGroup>,
) {
    let ctx = format!("{format} {enc}-{auth}-{dh} pfs {pfs:?}");
    assert_eq!(
        r.text.is_empty(),
        r.verdict.refused(),
        "{ctx}: refused ⇔ no text"
    );
    assert_eq!(r.contains_secret, !r.verdict.refused(), "{ctx}");
    if !r.verdict.refused() {
        assert!(
            r.text.contains(PSK20),
            "{ctx}: --with-secret writes the PSK"
        );
    }
    let ike_p = format!(
        "{}-{}-{}",
        clients::ss_enc(enc),
        clients::ss_integ(auth),
        clients::ss_dh(dh)
    );
    let esp_p = match pfs {
        Some(g) => format!(
            "{}-{}-{}",
            clients::ss_enc(enc),
            clients::ss_integ(auth),
            clients::ss_dh(g)
        ),
        None => format!("{}-{}", clients::ss_enc(enc), clients::ss_integ(auth)),
    };
    match format {
        Format::Swanctl => {
            assert!(!r.verdict.refused(), "{ctx}: strongSwan speaks every suite");
            assert!(r.text.contains(&format!("proposals = {ike_p}\n")), "{ctx}");
            assert!(
                r.text.contains(&format!("esp_proposals = {esp_p}\n")),
                "{ctx}"
            );
            assert!(
                r.text
                    .contains("remote_ts = 192.168.0.0/24,192.168.5.0/24\n"),
                "{ctx}"
            );
        }
        Format::NetworkManager => {
            assert!(!r.verdict.refused(), "{ctx}: a 24-character PSK qualifies");
            assert!(r.text.contains(&format!("\nike={ike_p}\n")), "{ctx}");
            assert!(r.text.contains(&format!("\nesp={esp_p}\n")), "{ctx}");
            assert!(
                r.text
                    .contains("\nremote-ts=192.168.0.0/24;192.168.5.0/24\n"),
                "{ctx}"
            );
        }
        Format::Apple => {
            let lacks = enc == EncAlg::Aes192
                || auth == AuthAlg::Md5
                || dh == DhGroup::Group24
                || pfs == Some(DhGroup::Group24);
            assert_eq!(r.verdict.refused(), lacks, "{ctx}: {:?}", r.verdict);
            if !lacks {
                let want_enc = match enc {
                    EncAlg::Aes128 => "AES-128",
                    EncAlg::Aes256 => "AES-256",
                    EncAlg::Des => "DES",
                    EncAlg::TripleDes => "3DES",
                    EncAlg::Aes192 => unreachable!(),
                };
                let want_integ = match auth {
                    AuthAlg::Sha1 => "SHA1-96",
                    AuthAlg::Sha256 => "SHA2-256",
                    AuthAlg::Sha384 => "SHA2-384",
                    AuthAlg::Sha512 => "SHA2-512",
                    AuthAlg::Md5 => unreachable!(),
                };
                assert_eq!(
                    plist_values(&r.text, "EncryptionAlgorithm"),
                    [want_enc; 2],
                    "{ctx}"
                );
                assert_eq!(
                    plist_values(&r.text, "IntegrityAlgorithm"),
                    [want_integ; 2],
                    "{ctx}"
                );
                let child_group = pfs.map_or(14, |g| g.iana_id()).to_string();
                assert_eq!(
                    plist_values(&r.text, "DiffieHellmanGroup"),
                    [child_group.as_str(), &dh.iana_id().to_string()],
                    "{ctx}: Child SA dict first (alphabetical), then IKE"
                );
                assert_eq!(
                    plist_values(&r.text, "EnablePFS"),
                    [if pfs.is_some() { "1" } else { "0" }],
                    "{ctx}"
                );
                // 90 % of 1800 s and 3600 s, in minutes.
                assert_eq!(
                    plist_values(&r.text, "LifeTimeInMinutes"),
                    ["27", "54"],
                    "{ctx}"
                );
            }
        }
        Format::Windows => {
            assert!(r.verdict.refused(), "{ctx}: Windows is always refused");
            assert!(r.verdict.refusals[0].contains("pre-shared key"), "{ctx}");
        }
        Format::Android => {
            let ok = matches!(enc, EncAlg::Aes128 | EncAlg::Aes192 | EncAlg::Aes256)
                && matches!(auth, AuthAlg::Sha256 | AuthAlg::Sha384 | AuthAlg::Sha512)
                && dh == DhGroup::Group14
                && pfs.is_none();
            assert_eq!(!r.verdict.refused(), ok, "{ctx}: {:?}", r.verdict);
            // Every refusal names the setting to change.
            for refusal in &r.verdict.refusals {
                assert!(refusal.contains(": set "), "{ctx}: {refusal}");
            }
            if ok {
                assert!(r.text.contains("IKEv2/IPSec PSK"), "{ctx}");
                assert!(
                    r.text.contains("Server address:         203.0.113.7\n"),
                    "{ctx}"
                );
            }
        }
    }
    let _ = view;
}

#[test]
fn without_secret_a_placeholder_and_where_to_get_it() {
    let view = view_of(&toml(
        EncAlg::Aes256,
        AuthAlg::Sha256,
        DhGroup::Group14,
        None,
        "",
    ));
    let o = Options {
        with_secret: false,
        ..opts()
    };
    for format in [
        Format::Swanctl,
        Format::NetworkManager,
        Format::Apple,
        Format::Android,
    ] {
        let r = render(&view, format, &o).unwrap();
        assert!(
            !r.text.contains(PSK20),
            "{format}: no PSK without --with-secret"
        );
        assert!(!r.contains_secret, "{format}");
        assert!(
            r.verdict.notes.iter().any(|n| n.contains("show-psk")),
            "{format}: says where to get the PSK: {:?}",
            r.verdict.notes
        );
    }
    let nm = render(&view, Format::NetworkManager, &o).unwrap();
    assert!(nm.text.contains("password-flags=2"), "NM asks for the PSK");
    assert!(!nm.text.contains("[vpn-secrets]"));
}

#[test]
fn networkmanager_refuses_a_psk_shorter_than_20() {
    let text = toml(EncAlg::Aes128, AuthAlg::Sha256, DhGroup::Group14, None, "")
        .replace(PSK20, "nineteen-characters");
    assert_eq!("nineteen-characters".len(), 19);
    let r = render(&view_of(&text), Format::NetworkManager, &opts()).unwrap();
    assert!(r.verdict.refused());
    assert!(
        r.verdict.refusals[0].contains("at least 20"),
        "{:?}",
        r.verdict
    );
    let ok = toml(EncAlg::Aes128, AuthAlg::Sha256, DhGroup::Group14, None, "")
        .replace(PSK20, "twenty-characters!!!");
    assert!(!render(&view_of(&ok), Format::NetworkManager, &opts())
        .unwrap()
        .verdict
        .refused());
}

#[test]
fn identities_follow_what_the_gateway_sends() {
    // local_id set: IDr is local_id whatever --server says.
    let base = toml(EncAlg::Aes128, AuthAlg::Sha256, DhGroup::Group14, None, "");
    let r = render(&view_of(&base), Format::Swanctl, &opts()).unwrap();
    assert!(r.text.contains("id = \"gw.example.com\""));
    assert!(r.text.contains("id = \"client1\""), "default client id");
    // No local_id, wildcard listen, --server an IP: that IP, with the 1:1 NAT warning.
    let no_id = base.replace("local_id = \"gw.example.com\"\n", "");
    let r = render(&view_of(&no_id), Format::Swanctl, &opts()).unwrap();
    assert!(r.text.contains("id = \"203.0.113.7\""));
    assert!(r.verdict.notes.iter().any(|n| n.contains("1:1 NAT")));
    // … --server a name: no IDr can be known.
    let named = Options {
        server: Some("vpn.example.com".into()),
        ..opts()
    };
    let e = render(&view_of(&no_id), Format::Swanctl, &named)
        .err()
        .unwrap();
    assert!(e.0.contains("set local_id"), "{e}");
    // A specific listen address behind 1:1 NAT: the gateway sends its own (private) address.
    let private = no_id.replace(
        "listen_addrs = [\"0.0.0.0\"]",
        "listen_addrs = [\"10.1.2.3\"]",
    );
    let r = render(&view_of(&private), Format::Swanctl, &named).unwrap();
    assert!(r.text.contains("id = \"10.1.2.3\""), "{}", r.text.as_str());
    assert!(r.text.contains("remote_addrs = vpn.example.com"));
    assert!(r
        .verdict
        .notes
        .iter()
        .any(|n| n.contains("1:1 NAT") && n.contains("10.1.2.3")));
    // … and without --server it is dialled too.
    let none = Options {
        server: None,
        ..opts()
    };
    let r = render(&view_of(&private), Format::Swanctl, &none).unwrap();
    assert!(r.text.contains("remote_addrs = 10.1.2.3"));
    // Wildcard and no --server: an error that says --server.
    let e = render(&view_of(&base), Format::Swanctl, &none)
        .err()
        .unwrap();
    assert!(e.0.contains("--server"), "{e}");
    // remote_id set: it is the client's identity; another --id is an error.
    let rid = base.replace(
        "local_id =",
        "remote_id = \"phone@example.com\"\nlocal_id =",
    );
    let r = render(&view_of(&rid), Format::Apple, &opts()).unwrap();
    assert_eq!(
        plist_values(&r.text, "LocalIdentifier"),
        ["phone@example.com"]
    );
    assert_eq!(
        plist_values(&r.text, "RemoteIdentifier"),
        ["gw.example.com"]
    );
    let other = Options {
        client_id: Some("laptop".into()),
        ..opts()
    };
    assert!(render(&view_of(&rid), Format::Apple, &other).is_err());
}

#[test]
fn hostile_values_are_refused_not_written() {
    let view = view_of(&toml(
        EncAlg::Aes128,
        AuthAlg::Sha256,
        DhGroup::Group14,
        None,
        "",
    ));
    for bad in ["a b", "x\ny", "evil\"}", "<x>", ""] {
        let o = Options {
            server: Some(bad.into()),
            ..opts()
        };
        assert!(
            render(&view, Format::Swanctl, &o).is_err(),
            "--server {bad:?}"
        );
        let o = Options {
            client_id: Some(bad.into()),
            ..opts()
        };
        assert!(render(&view, Format::Swanctl, &o).is_err(), "--id {bad:?}");
    }
}

#[test]
fn generated_psk_cannot_be_written() {
    let text = toml(EncAlg::Aes128, AuthAlg::Sha256, DhGroup::Group14, None, "")
        .replace(&format!("psk = \"{PSK20}\"\n"), "");
    let cfg = Config::from_toml_str(&text, &[], &mut StepRng::new(1, 1)).unwrap();
    let view = ServerView::new(
        cfg.gateway(),
        cfg.ipsec_server().unwrap(),
        "t".into(),
        PskSource::GeneratedAtStart,
    );
    assert!(render(&view, Format::Swanctl, &opts()).is_err());
    let o = Options {
        with_secret: false,
        ..opts()
    };
    assert!(render(&view, Format::Swanctl, &o).is_ok());
    assert!(render(&view, Format::NetworkManager, &o)
        .unwrap()
        .verdict
        .refused());
}

#[test]
fn lifetimes_and_dns() {
    let view = view_of(&toml(
        EncAlg::Aes128,
        AuthAlg::Sha256,
        DhGroup::Group14,
        None,
        "dpd_interval = 20",
    ));
    let r = render(&view, Format::Swanctl, &opts()).unwrap();
    for line in [
        "reauth_time = 2880s",
        "over_time = 720s",
        "rekey_time = 1440s",
        "life_time = 1800s",
        "dpd_delay = 20s",
        "encap = yes",
        "vips = 0.0.0.0",
    ] {
        assert!(r.text.contains(line), "{line} in\n{}", r.text.as_str());
    }
    assert!(r.text.contains("192.168.0.53"));
    let outside = toml(EncAlg::Aes128, AuthAlg::Sha256, DhGroup::Group14, None, "")
        .replace("192.168.0.53", "8.8.8.8");
    let r = render(&view_of(&outside), Format::Apple, &opts()).unwrap();
    assert!(r
        .verdict
        .notes
        .iter()
        .any(|n| n.contains("8.8.8.8") && n.contains("outside")));
    assert!(r.text.contains("<string>8.8.8.8</string>"));
}

#[test]
fn uuids_are_stable_and_well_formed() {
    let a = text::derived_uuid(&["x", "y"]);
    assert_eq!(a, text::derived_uuid(&["x", "y"]));
    assert_ne!(a, text::derived_uuid(&["xy", ""]));
    assert_eq!(a.len(), 36);
    assert_eq!(&a[14..15], "8");
}

/// `load`: the file's server, the API-created one once the API state exists, or a clear
/// "there is no IPsec server".
#[test]
fn load_finds_the_server_the_daemon_serves() {
    use crate::api::state;
    let dir = std::env::temp_dir().join(format!("onboard-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let state_dir = dir.join("state");
    let gateway = format!(
        "[gateway]\nvpn_gateway_id = \"vpn-test\"\nregion_id = \"local\"\nstate_dir = \"{}\"\n",
        state_dir.display()
    );
    let t = toml(EncAlg::Aes128, AuthAlg::Sha256, DhGroup::Group14, None, "");
    let server = &t[t.find("[ipsec_server]").unwrap()..];
    let api = "[api]\nlisten = \"127.0.0.1:18080\"\n[[api.access_keys]]\naccess_key_id = \"k\"\n\
               access_key_secret = \"secret-of-the-key\"\n";
    let path = dir.join("c.toml");
    let load = |text: String| {
        std::fs::write(&path, text).unwrap();
        super::load(&path, &|_| Vec::new(), &mut StepRng::new(1, 1))
    };
    // The file's server.
    let v = load(format!("{gateway}{server}")).unwrap();
    assert!(v.source.contains("[ipsec_server]"), "{}", v.source);
    assert!(matches!(&v.psk, PskSource::Known { hint } if hint.contains("`psk`")));
    // [api] without state: still the file's server (the API adopts it).
    let with_api = format!("{gateway}{server}{api}");
    assert!(load(with_api.clone())
        .unwrap()
        .source
        .contains("[ipsec_server]"));
    // Once the API state exists it wins: another suite, created "through the API".
    let other = view_of(&toml(
        EncAlg::Aes256,
        AuthAlg::Sha512,
        DhGroup::Group14,
        None,
        "",
    ));
    let rec = state::ServerRecord::from_config("iss-test".into(), "now".into(), &other.server);
    let mut p = state::Persisted {
        version: 1,
        server: Some(rec),
        tokens: Vec::new(),
    };
    state::store(&state::path(&state_dir), &p).unwrap();
    let v = load(with_api.clone()).unwrap();
    assert!(v.source.contains("iss-test"), "{}", v.source);
    let r = render(&v, Format::Swanctl, &opts()).unwrap();
    assert!(r.text.contains("proposals = aes256-sha512-modp2048\n"));
    // A server deleted through the API: said so.
    p.server = None;
    state::store(&state::path(&state_dir), &p).unwrap();
    let e = load(with_api).err().unwrap().to_string();
    assert!(e.contains("there is no IPsec server"), "{e}");
    // No [ipsec_server], no state: said so.
    std::fs::remove_file(state::path(&state_dir)).unwrap();
    let e = load(format!("{gateway}{api}")).err().unwrap().to_string();
    assert!(e.contains("there is no IPsec server"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
