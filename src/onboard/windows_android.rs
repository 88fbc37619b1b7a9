//! The two built-in clients that take no configuration file: Windows (a refusal: its IKEv2
//! client has no pre-shared-key authentication) and Android (the settings to type into its
//! "IKEv2/IPSec PSK" profile, which has no import format; what it accepts is in
//! [`super::clients`]).

use super::clients::{android_dh, android_enc, android_integ};
use super::{Plan, Verdict};

/// Windows: always refused, with what works instead.
pub fn windows(_plan: &Plan, v: &mut Verdict) -> String {
    v.refuse(
        "Windows' built-in IKEv2 client cannot authenticate with a pre-shared key: \
         Add-VpnConnection -TunnelType Ikev2 offers only -AuthenticationMethod Eap or \
         MachineCertificate (PAP, CHAP and MSCHAPv2 are for the other tunnel types), and \
         -L2tpPsk is for L2TP/IPsec only. This gateway offers IKEv2 with a PSK and nothing else \
         (no certificates, no EAP), so no Windows built-in profile can connect to it. Use a \
         third-party IKEv2 client on Windows that supports PSK authentication with the \
         settings of `--format swanctl` (suite, identities, PSK)",
    );
    String::new()
}

/// Android: the settings, or a refusal naming the setting to change.
pub fn android(plan: &Plan, v: &mut Verdict) -> String {
    let s = plan.server();
    let (ike, esp) = (s.ike(), s.ipsec());
    for (key, alg) in [("ike_enc_alg", ike.enc()), ("ipsec_enc_alg", esp.enc())] {
        if !android_enc(alg) {
            v.refuse(format!(
                "{key} = {alg}: Android proposes only AES (CBC/CTR/GCM) and ChaCha20-Poly1305, \
                 no DES or 3DES: set {key} = aes256 (or aes, aes192)"
            ));
        }
    }
    for (key, alg) in [("ike_auth_alg", ike.auth()), ("ipsec_auth_alg", esp.auth())] {
        if !android_integ(alg) {
            v.refuse(format!(
                "{key} = {alg}: Android rejects HMAC-MD5 and HMAC-SHA1 as insecure and proposes \
                 HMAC-SHA2-256/384/512: set {key} = sha256 (or sha384, sha512)"
            ));
        }
    }
    if !android_dh(ike.dh_group()) {
        v.refuse(format!(
            "ike_pfs = {}: of this gateway's groups Android proposes only MODP-2048 (its others \
             are MODP-3072/4096 and Curve25519): set ike_pfs = group14",
            ike.dh_group()
        ));
    }
    if let Some(g) = esp.pfs() {
        v.refuse(format!(
            "ipsec_pfs = {g}: Android's Child SA proposals carry no DH group, so every Child SA \
             rekey would fail against a gateway that requires PFS: set ipsec_pfs = disabled"
        ));
    }
    if !plan.view.force_udp_encap {
        v.note(
            "force_udp_encap = false: an Android device that is not behind a NAT sends raw ESP \
             (IP protocol 50), which this gateway does not receive; keep force_udp_encap = true",
        );
    }
    if plan.idr.to_string() != plan.server_addr {
        v.note(format!(
            "Android (AOSP VpnIkev2Utils) uses the server address it is given as the identity \
             it expects from the gateway, and the gateway sends {idr}: if Android refuses the \
             gateway's identity, set local_id = \"{server}\" (the address clients dial) and \
             render again",
            idr = plan.idr,
            server = plan.server_addr
        ));
    }
    let dns: Vec<String> = s.dns().iter().map(ToString::to_string).collect();
    format!(
        "Android built-in VPN (Android 11 or later): Settings > Network & internet > VPN > +\n\
         \n\
         Name:                   ipsec-server {server}\n\
         Type:                   IKEv2/IPSec PSK\n\
         Server address:         {server}\n\
         IPSec identifier:       {id}\n\
         IPSec pre-shared key:   {psk}\n\
         \n\
         Nothing else is set by hand: Android proposes its own algorithms, and the gateway's\n\
         (IKE {ie}/{ia}/{ig}, ESP {ee}/{ea}, no PFS) are among them. The gateway assigns the\n\
         virtual IP, {dns}and routes {ts} through the tunnel.\n",
        server = plan.server_addr,
        id = plan.client_id,
        psk = plan.psk_or_placeholder(),
        ie = ike.enc(),
        ia = ike.auth(),
        ig = ike.dh_group(),
        ee = esp.enc(),
        ea = esp.auth(),
        dns = if dns.is_empty() {
            String::new()
        } else {
            format!("the DNS server(s) {} ", dns.join(", "))
        },
        ts = s
            .local_subnets()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    )
}
