//! `swanctl.conf` for Linux strongSwan (5.9; docs/STRONGSWAN.md "Client (initiator)
//! swanctl.conf essentials"), loadable as is with `swanctl --load-all --file F`.
//!
//! Lifetimes follow the gateway's: a Child SA is rekeyed at 80 % of `ipsec_lifetime` (less up
//! to 10 % jitter) and never lives longer than it, before the gateway's own rekey at 90 %;
//! the client authenticates again (`reauth_time`) within `ike_lifetime`, which is the
//! gateway's re-authentication deadline (README "Re-authentication"). A zero lifetime sets no
//! limit, and strongSwan's defaults apply. `encap = yes` always: the gateway receives ESP only
//! inside UDP (README "Every client's ESP in UDP").

use super::clients::{ss_esp_proposal, ss_ike_proposal};
use super::text::secs;
use super::{Plan, Verdict};

/// The connection and child names in the rendered file.
pub const CONNECTION: &str = "ipsec-server";
pub const CHILD: &str = "lan";

pub fn render(plan: &Plan, v: &mut Verdict) -> String {
    let s = plan.server();
    let view = plan.view;
    let mut conn = Vec::new();
    conn.push("version = 2".to_string());
    conn.push(format!("remote_addrs = {}", plan.server_addr));
    if view.ike_port != 500 {
        conn.push(format!("remote_port = {}", view.ike_port));
    }
    conn.push("vips = 0.0.0.0".into());
    conn.push("encap = yes".into());
    conn.push(format!("proposals = {}", ss_ike_proposal(s)));
    let dpd = view.dpd_interval.map_or(30, |d| d.as_secs().max(1));
    conn.push(format!("dpd_delay = {}", secs(dpd)));
    let ike_life = s.ike().lifetime().as_secs();
    if ike_life > 0 {
        conn.push(format!("reauth_time = {}", secs(part(ike_life, 8))));
        conn.push(format!(
            "over_time = {}",
            secs(ike_life - part(ike_life, 8))
        ));
        conn.push(format!("rand_time = {}", secs(part(ike_life, 1))));
    }
    let mut child = Vec::new();
    let ts: Vec<String> = s.local_subnets().iter().map(ToString::to_string).collect();
    child.push(format!("remote_ts = {}", ts.join(",")));
    child.push(format!("esp_proposals = {}", ss_esp_proposal(s)));
    let esp_life = s.ipsec().lifetime().as_secs();
    if esp_life > 0 {
        child.push(format!("rekey_time = {}", secs(part(esp_life, 8))));
        child.push(format!("life_time = {}", secs(esp_life)));
        child.push(format!("rand_time = {}", secs(part(esp_life, 1))));
    }
    child.push("dpd_action = restart".into());
    child.push("start_action = none".into());

    let dns = if s.dns().is_empty() {
        String::new()
    } else {
        let list: Vec<String> = s.dns().iter().map(ToString::to_string).collect();
        format!(
            "# The gateway pushes DNS server(s) {}: charon's `resolve` plugin installs them.\n",
            list.join(", ")
        )
    };
    let secret = match &plan.psk {
        Some(psk) if !psk.contains(['"', '\\']) => format!("\"{}\"", psk.as_str()),
        Some(psk) => format!(
            "0x{}",
            psk.bytes().map(|b| format!("{b:02x}")).collect::<String>()
        ),
        None => format!("\"{}\"", super::PSK_PLACEHOLDER),
    };
    let ind = |lines: &[String], n: usize| -> String {
        lines
            .iter()
            .map(|l| format!("{}{l}\n", " ".repeat(n)))
            .collect()
    };
    let lifetimes = match (ike_life, esp_life) {
        (0, 0) => "the gateway limits neither lifetime: strongSwan's defaults apply".to_string(),
        _ => format!(
            "gateway lifetimes: IKE {ike_life} s (authenticate again within it), ESP {esp_life} s \
             (0 = unlimited)"
        ),
    };
    v.note(format!(
        "IKE {} / ESP {}; {lifetimes}",
        ss_ike_proposal(s),
        ss_esp_proposal(s)
    ));
    format!(
        "# swanctl.conf for strongSwan 5.9+ (Linux), made by `ipsec-server client-config --format swanctl`\n\
         # from {source}.\n\
         # Load: swanctl --load-all --file THIS_FILE; connect: swanctl --initiate --child {CHILD}\n\
         # The gateway accepts exactly this suite and these identities.\n\
         {dns}connections {{\n    {CONNECTION} {{\n{conn}        local {{\n            auth = psk\n            id = \"{id}\"\n        }}\n        remote {{\n            auth = psk\n            id = \"{idr}\"\n        }}\n        children {{\n            {CHILD} {{\n{child}            }}\n        }}\n    }}\n}}\n\
         secrets {{\n    ike-{CONNECTION} {{\n        id-client = \"{id}\"\n        id-gateway = \"{idr}\"\n        secret = {secret}\n    }}\n}}\n",
        source = plan.view.source,
        conn = ind(&conn, 8),
        child = ind(&child, 16),
        id = plan.client_id,
        idr = plan.idr,
    )
}

/// `n` tenths of `total` seconds, at least 1.
fn part(total: u64, n: u64) -> u64 {
    (total * n / 10).max(1)
}
