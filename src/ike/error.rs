//! Responder errors and the notify each one sends back (RFC 7296 §3.10.1).

use std::net::SocketAddr;

use tracing::warn;

use crate::wire::{NotifyType, Payload, WireError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IkeError {
    #[error("malformed message: {0}")]
    Wire(#[from] WireError),
    #[error("invalid syntax: {0}")]
    InvalidSyntax(&'static str),
    #[error("no acceptable proposal")]
    NoProposalChosen,
    #[error("KE payload uses group {got}, we want group {want}")]
    InvalidKe { got: u16, want: u16 },
    #[error("authentication failed")]
    AuthenticationFailed,
    #[error("traffic selectors unacceptable")]
    TsUnacceptable,
    #[error("no internal address available: {0}")]
    InternalAddressFailure(String),
    #[error("configuration payload required")]
    FailedCpRequired,
    #[error("unsupported critical payload type {0}")]
    UnsupportedCriticalPayload(u8),
    #[error("integrity check failed")]
    IntegrityCheckFailed,
    #[error("no additional SAs accepted")]
    NoAdditionalSas,
    #[error("no Child SA with SPI {0:08x} to rekey")]
    ChildSaNotFound(u32),
}

impl IkeError {
    /// The error notify sent for this error, if any (ICV failures are dropped silently).
    pub fn notify(&self) -> Option<NotifyType> {
        Some(match self {
            IkeError::Wire(WireError::UnsupportedCriticalPayload(_))
            | IkeError::UnsupportedCriticalPayload(_) => NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD,
            IkeError::Wire(_) | IkeError::InvalidSyntax(_) => NotifyType::INVALID_SYNTAX,
            IkeError::NoProposalChosen => NotifyType::NO_PROPOSAL_CHOSEN,
            IkeError::InvalidKe { .. } => NotifyType::INVALID_KE_PAYLOAD,
            IkeError::AuthenticationFailed => NotifyType::AUTHENTICATION_FAILED,
            IkeError::TsUnacceptable => NotifyType::TS_UNACCEPTABLE,
            IkeError::InternalAddressFailure(_) => NotifyType::INTERNAL_ADDRESS_FAILURE,
            IkeError::FailedCpRequired => NotifyType::FAILED_CP_REQUIRED,
            IkeError::NoAdditionalSas => NotifyType::NO_ADDITIONAL_SAS,
            IkeError::ChildSaNotFound(_) => NotifyType::CHILD_SA_NOT_FOUND,
            IkeError::IntegrityCheckFailed => return None,
        })
    }

    /// Notification data: the wanted group for INVALID_KE_PAYLOAD (§3.10.1), the payload
    /// type for UNSUPPORTED_CRITICAL_PAYLOAD.
    pub fn notify_data(&self) -> Vec<u8> {
        match self {
            IkeError::InvalidKe { want, .. } => want.to_be_bytes().to_vec(),
            IkeError::UnsupportedCriticalPayload(t)
            | IkeError::Wire(WireError::UnsupportedCriticalPayload(t)) => vec![*t],
            _ => Vec::new(),
        }
    }
}

/// Encodes our response to a peer's request with `encode` (sealing it, or emitting an
/// unprotected IKE_SA_INIT answer). Payloads we built can be too long or too many for their
/// fields (say, more than 255 narrowed traffic selectors for the one-octet Number of TSs,
/// RFC 7296 §3.13); that must not take the responder down. Such a failure is logged and the
/// peer gets a response carrying only N(INVALID_SYNTAX) instead (§3.10.1); `None` if even
/// that cannot be encoded, and then nothing is sent.
pub(crate) fn encode_response<T>(
    remote: SocketAddr,
    payloads: &[Payload],
    mut encode: impl FnMut(&[Payload]) -> Result<T, IkeError>,
) -> Option<T> {
    encode(payloads)
        .or_else(|e| {
            // Only the error's kind and the sizes involved: no payload content.
            warn!(%remote, "cannot encode our response, answering INVALID_SYNTAX: {e}");
            encode(&[Payload::notify(NotifyType::INVALID_SYNTAX, Vec::new())])
        })
        .map_err(|e| warn!(%remote, "cannot encode an INVALID_SYNTAX response either: {e}"))
        .ok()
}
