//! A NetworkManager keyfile (`/etc/NetworkManager/system-connections/NAME.nmconnection`,
//! mode 0600) for the strongSwan VPN plugin (NetworkManager-strongswan, whose daemon is
//! charon-nm).
//!
//! The `[vpn]` keys are the ones charon-nm reads (strongswan/strongswan
//! src/charon-nm/nm/nm_service.c): `address`, `server-port`, `method` (`psk`),
//! `local-identity`, `remote-identity`, `virtual`, `encap`, `ipcomp`, `proposal` with `ike`
//! and `esp` (`;`-separated proposals), `remote-ts` (`;`-separated subnets); the PSK is the
//! secret `password`. charon-nm refuses a pre-shared key shorter than 20 characters
//! ("Pre-shared key is too short.", nm_service.c add_auth_cfg_pw; the GNOME dialog's
//! check_validity says "password is too short"), so a shorter PSK is a refusal here.
//! Lifetimes cannot be set: charon-nm rekeys the IKE SA after 10 h and Child SAs after
//! 2 h 50 min, and follows the gateway's AUTH_LIFETIME and rekeys when those are shorter.

use super::clients::{ss_esp_proposal, ss_ike_proposal};
use super::text::derived_uuid;
use super::{Plan, PskSource, Verdict};

/// The shortest PSK charon-nm accepts.
pub const MIN_PSK_LEN: usize = 20;

pub fn render(plan: &Plan, v: &mut Verdict) -> String {
    let s = plan.server();
    let view = plan.view;
    match &view.psk {
        PskSource::Known { .. } if s.psk().len() < MIN_PSK_LEN => v.refuse(format!(
            "the PSK has {} characters and NetworkManager-strongswan refuses pre-shared keys \
             shorter than {MIN_PSK_LEN} (\"Pre-shared key is too short.\", charon-nm \
             nm_service.c): set a psk of at least {MIN_PSK_LEN} characters",
            s.psk().len()
        )),
        PskSource::Known { .. } => {}
        PskSource::GeneratedAtStart => v.refuse(format!(
            "no PSK is configured, and the one the daemon generates (as the API does) has {} \
             characters, fewer than the {MIN_PSK_LEN} NetworkManager-strongswan requires: set \
             a psk of at least {MIN_PSK_LEN} characters",
            crate::config::GENERATED_PSK_LEN
        )),
    }
    let name = format!("ipsec-server {}", plan.server_addr);
    let uuid = derived_uuid(&["nm", &plan.server_addr, &plan.client_id.to_string()]);
    let ts: Vec<String> = s.local_subnets().iter().map(ToString::to_string).collect();
    let mut vpn = vec![
        "service-type=org.freedesktop.NetworkManager.strongswan".to_string(),
        format!("address={}", plan.server_addr),
    ];
    if view.ike_port != 500 {
        vpn.push(format!("server-port={}", view.ike_port));
    }
    vpn.extend([
        "method=psk".to_string(),
        format!("local-identity={}", plan.client_id),
        format!("remote-identity={}", plan.idr),
        "virtual=yes".into(),
        "encap=yes".into(),
        "ipcomp=no".into(),
        "proposal=yes".into(),
        format!("ike={}", ss_ike_proposal(s)),
        format!("esp={}", ss_esp_proposal(s)),
        format!("remote-ts={}", ts.join(";")),
    ]);
    let secrets = match &plan.psk {
        Some(psk) => {
            vpn.push("password-flags=0".into());
            format!("\n[vpn-secrets]\npassword={}\n", psk.as_str())
        }
        None => {
            // Not saved: NetworkManager asks for the PSK when connecting.
            vpn.push("password-flags=2".into());
            String::new()
        }
    };
    v.note(format!(
        "IKE {} / ESP {}; lifetimes are charon-nm's own (IKE rekey 10 h, Child SA 2 h 50 min); \
         the gateway's AUTH_LIFETIME and rekeys cover shorter ones",
        ss_ike_proposal(s),
        ss_esp_proposal(s)
    ));
    v.note(
        "install: copy to /etc/NetworkManager/system-connections/ (mode 0600, root), then \
         `nmcli connection reload` and `nmcli connection up <id>`; needs the \
         network-manager-strongswan package",
    );
    format!(
        "# NetworkManager keyfile for the strongSwan VPN plugin, made by\n\
         # `ipsec-server client-config --format networkmanager` from {source}.\n\
         [connection]\nid={name}\nuuid={uuid}\ntype=vpn\nautoconnect=false\n\n\
         [vpn]\n{vpn}\n{secrets}\n\
         [ipv4]\nmethod=auto\nnever-default=true\n\n\
         [ipv6]\nmethod=disabled\n",
        source = view.source,
        vpn = vpn.join("\n"),
    )
}
