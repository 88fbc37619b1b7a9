//! The API's error answers: [`ApiError`] and one constructor per error code the actions and
//! the dispatch return, so codes, HTTP statuses and messages are found in one place (the
//! signature checks in [`super::sign`] build theirs where they are detected). Codes and
//! messages are those of the cloud API the SDKs expect; README lists them.

use crate::config::ConfigError;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }
    pub fn forbidden(why: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!("User not authorized to operate on the specified resource: {why}."),
        )
    }
    pub fn access_key_not_found() -> Self {
        Self::new(
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        )
    }
    pub fn signature_mismatch() -> Self {
        Self::new(
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation.",
        )
    }
    pub fn nonce_used() -> Self {
        Self::new(
            400,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        )
    }
    pub fn internal() -> Self {
        Self::new(
            500,
            "InternalError",
            "The request processing has failed due to some unknown error.",
        )
    }
    pub(super) fn missing(name: &str) -> Self {
        Self::new(
            400,
            &format!("MissingParam.{name}"),
            format!("The input parameter {name} is mandatory."),
        )
    }
    pub(super) fn illegal(name: &str, why: impl Into<String>) -> Self {
        Self::new(400, &format!("IllegalParam.{name}"), why)
    }
    pub(super) fn config(e: ConfigError) -> Self {
        Self::new(400, e.code, e.message)
    }
    pub(super) fn configuring() -> Self {
        Self::new(
            400,
            "VpnGateway.Configuring",
            "The specified service is configuring.",
        )
    }
    pub(super) fn conflict() -> Self {
        Self::new(
            409,
            "OperationConflict",
            "The operation against this instance is too frequent, please try again later.",
        )
    }
    pub(super) fn dry_run() -> Self {
        Self::new(
            400,
            "DryRunOperation",
            "Request validation has been passed with DryRun flag set.",
        )
    }
    pub(super) fn invalid_version(version: &str) -> Self {
        Self::new(
            400,
            "InvalidVersion",
            format!(
                "Specified parameter Version {:?} is not valid; this endpoint speaks {}.",
                truncate(version),
                super::VERSION
            ),
        )
    }
    pub(super) fn region_not_found(region: &str) -> Self {
        Self::new(
            404,
            "InvalidRegionId.NotFound",
            format!(
                "The specified region {:?} does not exist.",
                truncate(region)
            ),
        )
    }
    pub(super) fn missing_action() -> Self {
        Self::new(
            400,
            "MissingParameter",
            "The input parameter Action is mandatory.",
        )
    }
    pub(super) fn action_not_found(action: &str) -> Self {
        Self::new(
            404,
            "InvalidAction.NotFound",
            format!("Specified api {:?} is not found; this endpoint implements CreateIpsecServer, UpdateIpsecServer, DeleteIpsecServer, ListIpsecServers and DescribeVpnGateway.", truncate(action)),
        )
    }
    pub(super) fn gateway_not_found() -> Self {
        Self::new(
            404,
            "InvalidVpnGatewayInstanceId.NotFound",
            "The specified vpn gateway instance id does not exist.",
        )
    }
    pub(super) fn server_not_found() -> Self {
        Self::new(
            404,
            "InvalidIpsecServerId.NotFound",
            "The specified IPsec server does not exist.",
        )
    }
    pub(super) fn server_exists() -> Self {
        Self::new(
            400,
            "OperationFailed.IPsecServerExist",
            "An IPsec server already exists in the VPN gateway.",
        )
    }
    pub(super) fn token_mismatch() -> Self {
        Self::new(
            400,
            "IdempotentParameterMismatch",
            "The request uses the same ClientToken as a previous, but non-identical request.",
        )
    }
    pub(super) fn not_saved() -> Self {
        Self::new(
            500,
            "InternalError",
            "The state could not be saved; nothing was changed.",
        )
    }
}

/// A caller's value as quoted in a message: at most 64 characters.
pub(super) fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}
