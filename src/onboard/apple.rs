//! An Apple configuration profile (`.mobileconfig`, an XML property list) with one
//! `com.apple.vpn.managed` payload of `VPNType` IKEv2 and `AuthenticationMethod` SharedSecret,
//! for macOS and iOS. Keys and values as Apple documents them (apple/device-management,
//! mdm/profiles/com.apple.vpn.managed.yaml; see [`super::clients`]).
//!
//! The IKE SA and Child SA parameters name exactly the gateway's suite; `EnablePFS` is set
//! when `ipsec_pfs` is (the gateway then requires that group in CREATE_CHILD_SA rekeys).
//! `LifeTimeInMinutes` is Apple's rekey interval, 10..=1440: 90 % of the gateway's lifetime
//! (rounded down), so the client rekeys before the gateway expires the SA; a lifetime the
//! range cannot express is clamped and the verdict says what the gateway does instead. The
//! gateway's DNS servers are set in the payload's `DNS` dictionary (they are inside
//! LocalSubnet, hence reached through the tunnel; the verdict warns otherwise), and only
//! LocalSubnet is routed into the tunnel: no default route, nothing else leaves through it.

use super::clients::{apple_dh, apple_enc, apple_integ};
use super::text::{derived_uuid, xml_escape};
use super::{Plan, Verdict};
use crate::config::{AuthAlg, DhGroup, EncAlg};

/// Apple's range of LifeTimeInMinutes.
pub const MIN_MINUTES: u64 = 10;
pub const MAX_MINUTES: u64 = 1440;
/// Apple's default DiffieHellmanGroup.
const DEFAULT_GROUP: u16 = 14;

pub fn render(plan: &Plan, v: &mut Verdict) -> String {
    let s = plan.server();
    let (ike, esp) = (s.ike(), s.ipsec());
    let ike_sa = sa_dict(
        "ike",
        ike.enc(),
        ike.auth(),
        Some(ike.dh_group()),
        ike.lifetime().as_secs(),
        v,
    );
    let child_sa = sa_dict(
        "ipsec",
        esp.enc(),
        esp.auth(),
        esp.pfs(),
        esp.lifetime().as_secs(),
        v,
    );
    for (what, id) in [
        ("RemoteIdentifier", &plan.idr),
        ("LocalIdentifier", &plan.client_id),
    ] {
        if let crate::config::Identity::KeyId(_) = id {
            v.refuse(format!(
                "{what} {id} is a key id (ID_KEY_ID), which Apple's profile cannot express: \
                 use an FQDN, e-mail or IP address identity ({})",
                if what == "RemoteIdentifier" {
                    "local_id"
                } else {
                    "remote_id / --id"
                }
            ));
        }
    }
    if !plan.view.force_udp_encap {
        v.note(
            "force_udp_encap = false: an Apple device that is not behind a NAT sends raw ESP \
             (IP protocol 50), which this gateway does not receive; keep force_udp_encap = true",
        );
    }
    let name = format!("ipsec-server {}", plan.server_addr);
    let id = plan.client_id.to_string();
    let profile_uuid = derived_uuid(&["apple-profile", &plan.server_addr, &id]);
    let vpn_uuid = derived_uuid(&["apple-vpn", &plan.server_addr, &id]);
    let dns = if s.dns().is_empty() {
        String::new()
    } else {
        let servers: String = s
            .dns()
            .iter()
            .map(|d| format!("\t\t\t\t\t<string>{d}</string>\n"))
            .collect();
        format!(
            "\t\t\t<key>DNS</key>\n\t\t\t<dict>\n\t\t\t\t<key>ServerAddresses</key>\n\t\t\t\t<array>\n{servers}\t\t\t\t</array>\n\t\t\t</dict>\n"
        )
    };
    let x = |s: &str| xml_escape(s);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- made by ipsec-server client-config (format apple) from {source} -->
<plist version="1.0">
<dict>
	<key>PayloadContent</key>
	<array>
		<dict>
{dns}			<key>IKEv2</key>
			<dict>
				<key>AuthenticationMethod</key>
				<string>SharedSecret</string>
				<key>ChildSecurityAssociationParameters</key>
{child_sa}				<key>DeadPeerDetectionRate</key>
				<string>Medium</string>
				<key>DisableMOBIKE</key>
				<integer>0</integer>
				<key>DisableRedirect</key>
				<integer>1</integer>
				<key>EnablePFS</key>
				<integer>{pfs}</integer>
				<key>ExtendedAuthEnabled</key>
				<integer>0</integer>
				<key>IKESecurityAssociationParameters</key>
{ike_sa}				<key>LocalIdentifier</key>
				<string>{local_id}</string>
				<key>RemoteAddress</key>
				<string>{server}</string>
				<key>RemoteIdentifier</key>
				<string>{remote_id}</string>
				<key>SharedSecret</key>
				<string>{psk}</string>
				<key>UseConfigurationAttributeInternalIPSubnet</key>
				<integer>0</integer>
			</dict>
			<key>IPv4</key>
			<dict>
				<key>OverridePrimary</key>
				<integer>0</integer>
			</dict>
			<key>PayloadDescription</key>
			<string>IKEv2 VPN to {server}</string>
			<key>PayloadDisplayName</key>
			<string>{name}</string>
			<key>PayloadIdentifier</key>
			<string>com.apple.vpn.managed.{vpn_uuid}</string>
			<key>PayloadType</key>
			<string>com.apple.vpn.managed</string>
			<key>PayloadUUID</key>
			<string>{vpn_uuid}</string>
			<key>PayloadVersion</key>
			<integer>1</integer>
			<key>UserDefinedName</key>
			<string>{name}</string>
			<key>VPNType</key>
			<string>IKEv2</string>
		</dict>
	</array>
	<key>PayloadDisplayName</key>
	<string>{name}</string>
	<key>PayloadIdentifier</key>
	<string>ipsec-server.{profile_uuid}</string>
	<key>PayloadRemovalDisallowed</key>
	<false/>
	<key>PayloadType</key>
	<string>Configuration</string>
	<key>PayloadUUID</key>
	<string>{profile_uuid}</string>
	<key>PayloadVersion</key>
	<integer>1</integer>
</dict>
</plist>
"#,
        source = xml_comment(&plan.view.source),
        pfs = u8::from(esp.pfs().is_some()),
        local_id = x(&id),
        remote_id = x(&plan.idr.to_string()),
        server = x(&plan.server_addr),
        name = x(&name),
        psk = x(plan.psk_or_placeholder()),
    )
}

/// One SecurityAssociationParameters dictionary; refusals for what Apple lacks.
fn sa_dict(
    prefix: &str,
    enc: EncAlg,
    auth: AuthAlg,
    dh: Option<DhGroup>,
    lifetime: u64,
    v: &mut Verdict,
) -> String {
    let enc_s = apple_enc(enc).unwrap_or_else(|| {
        v.refuse(format!(
            "{prefix}_enc_alg = {enc}: Apple offers AES-128 and AES-256 but not AES-192 \
             (EncryptionAlgorithm): set {prefix}_enc_alg = aes or aes256"
        ));
        ""
    });
    let integ_s = apple_integ(auth).unwrap_or_else(|| {
        v.refuse(format!(
            "{prefix}_auth_alg = {auth}: Apple has no HMAC-MD5 (IntegrityAlgorithm SHA1-96, \
             SHA2-256/384/512): set {prefix}_auth_alg = sha256"
        ));
        ""
    });
    // Without PFS (`ipsec_pfs = disabled`, EnablePFS 0) Apple ignores the Child SA's group:
    // its default, 14, keeps the dictionary complete.
    let group = dh.map_or(Some(DEFAULT_GROUP), apple_dh).unwrap_or_else(|| {
        let key = if prefix == "ike" {
            "ike_pfs"
        } else {
            "ipsec_pfs"
        };
        v.refuse(format!(
            "{key} = group24: Apple has no DH group 24 (DiffieHellmanGroup 1, 2, 5, 14–21, 31, \
             32): set {key} = group14"
        ));
        0
    });
    let minutes = if lifetime == 0 {
        MAX_MINUTES
    } else {
        let m = lifetime * 9 / 10 / 60;
        if m < MIN_MINUTES {
            v.note(format!(
                "{prefix}_lifetime = {lifetime} s is shorter than Apple's shortest rekey \
                 interval ({MIN_MINUTES} min): {}",
                if prefix == "ike" {
                    "the gateway asks the device to authenticate again (AUTH_LIFETIME) and \
                     deletes the IKE SA if it does not; the device then reconnects"
                } else {
                    "the gateway rekeys the Child SA itself at 90 % of its lifetime"
                }
            ));
        }
        m.clamp(MIN_MINUTES, MAX_MINUTES)
    };
    format!(
        "\t\t\t\t<dict>\n\
         \t\t\t\t\t<key>DiffieHellmanGroup</key>\n\t\t\t\t\t<integer>{group}</integer>\n\
         \t\t\t\t\t<key>EncryptionAlgorithm</key>\n\t\t\t\t\t<string>{enc_s}</string>\n\
         \t\t\t\t\t<key>IntegrityAlgorithm</key>\n\t\t\t\t\t<string>{integ_s}</string>\n\
         \t\t\t\t\t<key>LifeTimeInMinutes</key>\n\t\t\t\t\t<integer>{minutes}</integer>\n\
         \t\t\t\t</dict>\n"
    )
}

/// Text for inside an XML comment, which may not contain `--` nor end with `-`.
fn xml_comment(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    for c in s.chars() {
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    if out.ends_with('-') {
        out.push(' ');
    }
    out
}
