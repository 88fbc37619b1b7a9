//! Protocol number registries (RFC 7296 §3 and the IANA "IKEv2 Parameters" registry) as
//! newtypes over the raw number.
//!
//! Invariant: any number fits, known or not; a number is never an error here. Associated
//! constants name the known values, and `Debug`/`Display` print the name when there is one
//! (`NOTIFY`), else the type and number (`PayloadType(99)`).

use std::fmt;

/// Defines a registry newtype: associated constants, `name()`, `Debug`, `Display`, `From`.
macro_rules! registry {
    (
        $(#[$meta:meta])*
        pub struct $name:ident($repr:ty);
        $( $(#[$cmeta:meta])* $konst:ident = $value:literal; )*
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $repr);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: Self = Self($value); )*

            /// The registry name of this number, `None` when we do not know it.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some(stringify!($konst)), )*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }

        impl From<$repr> for $name {
            fn from(raw: $repr) -> Self {
                Self(raw)
            }
        }

        impl From<$name> for $repr {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

registry! {
    /// Exchange Type, IKE header octet 18 (RFC 7296 §3.1).
    pub struct ExchangeType(u8);
    /// RFC 7296 §1.2
    IKE_SA_INIT = 0x22;
    /// RFC 7296 §1.2
    IKE_AUTH = 0x23;
    /// RFC 7296 §1.3
    CREATE_CHILD_SA = 0x24;
    /// RFC 7296 §1.4
    INFORMATIONAL = 0x25;
    /// RFC 5723 §4.1
    IKE_SESSION_RESUME = 0x26;
    /// RFC 9242 §3
    IKE_INTERMEDIATE = 0x2b;
    /// RFC 9370 §2.2.2
    IKE_FOLLOWUP_KE = 0x2c;
}

registry! {
    /// Payload Type, carried in the previous Next Payload field (RFC 7296 §3.2).
    pub struct PayloadType(u8);
    /// No next payload (RFC 7296 §3.2)
    NONE = 0x00;
    /// Security Association (RFC 7296 §3.3)
    SA = 0x21;
    /// Key Exchange (RFC 7296 §3.4)
    KE = 0x22;
    /// Identification - Initiator (RFC 7296 §3.5)
    IDI = 0x23;
    /// Identification - Responder (RFC 7296 §3.5)
    IDR = 0x24;
    /// Certificate (RFC 7296 §3.6)
    CERT = 0x25;
    /// Certificate Request (RFC 7296 §3.7)
    CERTREQ = 0x26;
    /// Authentication (RFC 7296 §3.8)
    AUTH = 0x27;
    /// Nonce (RFC 7296 §3.9)
    NONCE = 0x28;
    /// Notify (RFC 7296 §3.10)
    NOTIFY = 0x29;
    /// Delete (RFC 7296 §3.11)
    DELETE = 0x2a;
    /// Vendor ID (RFC 7296 §3.12)
    VENDOR_ID = 0x2b;
    /// Traffic Selector - Initiator (RFC 7296 §3.13)
    TSI = 0x2c;
    /// Traffic Selector - Responder (RFC 7296 §3.13)
    TSR = 0x2d;
    /// Encrypted and Authenticated (RFC 7296 §3.14)
    SK = 0x2e;
    /// Configuration (RFC 7296 §3.15)
    CP = 0x2f;
    /// Extensible Authentication (RFC 7296 §3.16)
    EAP = 0x30;
    /// Encrypted and Authenticated Fragment (RFC 7383 §2.5)
    SKF = 0x35;
}

registry! {
    /// Notify Message Type (RFC 7296 §3.10.1; IANA "IKEv2 Notify Message Types").
    /// 1..=16383 report errors, 16384..=65535 carry status.
    pub struct NotifyType(u16);
    /// RFC 7296 §3.10.1
    UNSUPPORTED_CRITICAL_PAYLOAD = 0x0001;
    /// RFC 7296 §3.10.1
    INVALID_IKE_SPI = 0x0004;
    /// RFC 7296 §3.10.1
    INVALID_MAJOR_VERSION = 0x0005;
    /// RFC 7296 §3.10.1
    INVALID_SYNTAX = 0x0007;
    /// RFC 7296 §3.10.1
    INVALID_MESSAGE_ID = 0x0009;
    /// RFC 7296 §3.10.1
    INVALID_SPI = 0x000b;
    /// RFC 7296 §3.10.1
    NO_PROPOSAL_CHOSEN = 0x000e;
    /// RFC 7296 §3.10.1
    INVALID_KE_PAYLOAD = 0x0011;
    /// RFC 7296 §3.10.1
    AUTHENTICATION_FAILED = 0x0018;
    /// RFC 7296 §3.10.1
    SINGLE_PAIR_REQUIRED = 0x0022;
    /// RFC 7296 §3.10.1
    NO_ADDITIONAL_SAS = 0x0023;
    /// RFC 7296 §3.10.1
    INTERNAL_ADDRESS_FAILURE = 0x0024;
    /// RFC 7296 §3.10.1
    FAILED_CP_REQUIRED = 0x0025;
    /// RFC 7296 §3.10.1
    TS_UNACCEPTABLE = 0x0026;
    /// RFC 7296 §3.10.1
    INVALID_SELECTORS = 0x0027;
    /// RFC 4555 §4.7
    UNACCEPTABLE_ADDRESSES = 0x0028;
    /// RFC 4555 §4.7
    UNEXPECTED_NAT_DETECTED = 0x0029;
    /// RFC 5026 §8.4
    USE_ASSIGNED_HOA = 0x002a;
    /// RFC 7296 §3.10.1
    TEMPORARY_FAILURE = 0x002b;
    /// RFC 7296 §3.10.1
    CHILD_SA_NOT_FOUND = 0x002c;
    /// RFC 7296 §3.10.1
    INITIAL_CONTACT = 0x4000;
    /// RFC 7296 §3.10.1
    SET_WINDOW_SIZE = 0x4001;
    /// RFC 7296 §3.10.1
    ADDITIONAL_TS_POSSIBLE = 0x4002;
    /// RFC 7296 §3.10.1
    IPCOMP_SUPPORTED = 0x4003;
    /// RFC 7296 §2.23
    NAT_DETECTION_SOURCE_IP = 0x4004;
    /// RFC 7296 §2.23
    NAT_DETECTION_DESTINATION_IP = 0x4005;
    /// RFC 7296 §2.6
    COOKIE = 0x4006;
    /// RFC 7296 §1.3.1
    USE_TRANSPORT_MODE = 0x4007;
    /// RFC 7296 §3.10.1
    HTTP_CERT_LOOKUP_SUPPORTED = 0x4008;
    /// RFC 7296 §1.3.3
    REKEY_SA = 0x4009;
    /// RFC 7296 §1.3.1
    ESP_TFC_PADDING_NOT_SUPPORTED = 0x400a;
    /// RFC 7296 §1.3.1
    NON_FIRST_FRAGMENTS_ALSO = 0x400b;
    /// RFC 4555 §4.3
    MOBIKE_SUPPORTED = 0x400c;
    /// RFC 4555 §4.3
    ADDITIONAL_IP4_ADDRESS = 0x400d;
    /// RFC 4555 §4.3
    ADDITIONAL_IP6_ADDRESS = 0x400e;
    /// RFC 4555 §4.3
    NO_ADDITIONAL_ADDRESSES = 0x400f;
    /// RFC 4555 §4.3
    UPDATE_SA_ADDRESSES = 0x4010;
    /// RFC 4555 §4.3
    COOKIE2 = 0x4011;
    /// RFC 4555 §4.3
    NO_NATS_ALLOWED = 0x4012;
    /// RFC 4478 §3
    AUTH_LIFETIME = 0x4013;
    /// RFC 4739 §3.2
    MULTIPLE_AUTH_SUPPORTED = 0x4014;
    /// RFC 4739 §3.2
    ANOTHER_AUTH_FOLLOWS = 0x4015;
    /// RFC 5685 §4
    REDIRECT_SUPPORTED = 0x4016;
    /// RFC 5685 §4
    REDIRECT = 0x4017;
    /// RFC 5685 §4
    REDIRECTED_FROM = 0x4018;
    /// RFC 5723 §4.3
    TICKET_LT_OPAQUE = 0x4019;
    /// RFC 5723 §4.3
    TICKET_REQUEST = 0x401a;
    /// RFC 5723 §4.3
    TICKET_ACK = 0x401b;
    /// RFC 5723 §4.3
    TICKET_NACK = 0x401c;
    /// RFC 5723 §4.3
    TICKET_OPAQUE = 0x401d;
    /// RFC 5739 §5
    LINK_ID = 0x401e;
    /// RFC 5840 §3
    USE_WESP_MODE = 0x401f;
    /// RFC 5857 §3
    ROHC_SUPPORTED = 0x4020;
    /// RFC 5998 §4
    EAP_ONLY_AUTHENTICATION = 0x4021;
    /// RFC 6023 §3
    CHILDLESS_IKEV2_SUPPORTED = 0x4022;
    /// RFC 6290 §4
    QUICK_CRASH_DETECTION = 0x4023;
    /// RFC 6311 §4
    IKEV2_MESSAGE_ID_SYNC_SUPPORTED = 0x4024;
    /// RFC 6311 §4
    IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED = 0x4025;
    /// RFC 6311 §4
    IKEV2_MESSAGE_ID_SYNC = 0x4026;
    /// RFC 6311 §4
    IPSEC_REPLAY_COUNTER_SYNC = 0x4027;
    /// RFC 6467 §3
    SECURE_PASSWORD_METHODS = 0x4028;
    /// RFC 6631 §3
    PSK_PERSIST = 0x4029;
    /// RFC 6631 §3
    PSK_CONFIRM = 0x402a;
    /// RFC 6867 §3
    ERX_SUPPORTED = 0x402b;
    /// 3GPP TS 24.303 annex B.2
    IFOM_CAPABILITY = 0x402c;
    /// draft-yeung-g-ikev2
    SENDER_REQUEST_ID = 0x402d;
    /// RFC 7383 §2.3
    IKEV2_FRAGMENTATION_SUPPORTED = 0x402e;
    /// RFC 7427 §4
    SIGNATURE_HASH_ALGORITHMS = 0x402f;
    /// RFC 7791 §3
    CLONE_IKE_SA_SUPPORTED = 0x4030;
    /// RFC 7791 §3
    CLONE_IKE_SA = 0x4031;
    /// RFC 8019 §8.1
    PUZZLE = 0x4032;
    /// RFC 8784 §3
    USE_PPK = 0x4033;
    /// RFC 8784 §3
    PPK_IDENTITY = 0x4034;
    /// RFC 8784 §3
    NO_PPK_AUTH = 0x4035;
    /// RFC 9242 §3
    INTERMEDIATE_EXCHANGE_SUPPORTED = 0x4036;
    /// RFC 8983 §3
    IP4_ALLOWED = 0x4037;
    /// RFC 8983 §3
    IP6_ALLOWED = 0x4038;
    /// RFC 9370 §2.2.4
    ADDITIONAL_KEY_EXCHANGE = 0x4039;
    /// RFC 9347 §3
    USE_AGGFRAG = 0x403a;
}

impl NotifyType {
    /// RFC 7296 §3.10.1: types below 16384 report errors, the rest carry status.
    pub const FIRST_STATUS: u16 = 0x4000;

    /// An error notify (RFC 7296 §3.10.1: "Types in the range 0 - 16383 are intended for
    /// reporting errors").
    pub fn is_error(self) -> bool {
        self.0 < Self::FIRST_STATUS
    }
}

registry! {
    /// Protocol ID of a proposal, notify or delete (RFC 7296 §3.3.1, §3.10, §3.11).
    pub struct ProtocolId(u8);
    /// Notify without SPI (RFC 7296 §3.10: "sent as zero and ignored on receipt")
    NONE = 0x00;
    /// RFC 7296 §3.3.1
    IKE = 0x01;
    /// RFC 7296 §3.3.1
    AH = 0x02;
    /// RFC 7296 §3.3.1
    ESP = 0x03;
}

registry! {
    /// Transform Type (RFC 7296 §3.3.2).
    pub struct TransformType(u8);
    /// Encryption Algorithm (RFC 7296 §3.3.2)
    ENCR = 0x01;
    /// Pseudorandom Function (RFC 7296 §3.3.2)
    PRF = 0x02;
    /// Integrity Algorithm (RFC 7296 §3.3.2)
    INTEG = 0x03;
    /// Diffie-Hellman Group, "Key Exchange Method" since RFC 9370 (RFC 7296 §3.3.2)
    DH = 0x04;
    /// Extended Sequence Numbers (RFC 7296 §3.3.2)
    ESN = 0x05;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_names_when_known() {
        assert_eq!(format!("{:?}", PayloadType::NOTIFY), "NOTIFY");
        assert_eq!(format!("{:?}", PayloadType(0x63)), "PayloadType(99)");
        assert_eq!(
            format!("{:?}", NotifyType(16430)),
            "IKEV2_FRAGMENTATION_SUPPORTED"
        );
        assert_eq!(format!("{}", ExchangeType::IKE_SA_INIT), "IKE_SA_INIT");
        assert_eq!(format!("{:?}", TransformType(0x09)), "TransformType(9)");
        assert_eq!(ProtocolId::ESP.name(), Some("ESP"));
    }

    #[test]
    fn numbers_match_the_registry() {
        assert_eq!(ExchangeType::INFORMATIONAL.0, 37);
        assert_eq!(PayloadType::SKF.0, 53);
        assert_eq!(NotifyType::CHILD_SA_NOT_FOUND.0, 44);
        assert_eq!(NotifyType::UPDATE_SA_ADDRESSES.0, 16400);
        assert_eq!(NotifyType::SIGNATURE_HASH_ALGORITHMS.0, 16431);
        assert_eq!(NotifyType::IKEV2_MESSAGE_ID_SYNC_SUPPORTED.0, 16420);
    }

    #[test]
    fn error_and_status_ranges() {
        assert!(NotifyType::NO_PROPOSAL_CHOSEN.is_error());
        assert!(NotifyType(16383).is_error());
        assert!(!NotifyType::INITIAL_CONTACT.is_error());
        assert!(!NotifyType(0xffff).is_error());
    }
}
