//! The decision value: one verdict and one stable reason code, used alike by the deny
//! response, the audit record and the metrics.

use crate::request::{ModelRef, Operation};

/// Stable reason codes. The string form (`as_str`) is part of the public contract: it appears
/// in error bodies, audit records and stat names, so never rename a variant's string.
/// docs/reasons.md says what each code means to a caller and what to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// `allowed`: a rule allowed the request.
    Allowed,
    /// `model_not_allowed`: no allow rule names the model for this operation.
    ModelNotAllowed,
    /// `model_denied`: an enforced deny rule matched (deny wins over allow).
    ModelDenied,
    /// `model_unparseable`: the model id, or the path around it, is ambiguous (double
    /// encoding, dot or empty segments, a `/` outside an ARN resource, a malformed ARN, ...).
    ModelUnparseable,
    /// `model_invalid`: the model id parses but is not in Bedrock's canonical, lower-case
    /// form.
    ModelInvalid,
    /// `operation_unknown`: the method and path are not a Bedrock operation this filter knows.
    OperationUnknown,
    /// `operation_not_allowed`: a request that names no model, and no rule allows its
    /// operation.
    OperationNotAllowed,
    /// `query_not_allowed`: a query string where the operation defines none, or an unknown or
    /// repeated query parameter.
    QueryNotAllowed,
    /// `header_invalid`: a repeated security-relevant header, a malformed `content-length`, a
    /// lower-case method, a malformed credential header, a signed identity header, ...
    HeaderInvalid,
    /// `identity_missing`: the bundle configures identity and the request carries no token.
    IdentityMissing,
    /// `identity_invalid`: the token failed verification (the detail is the verifier's code).
    IdentityInvalid,
    /// `destination_not_privatelink`: the authority is no endpoint of the bundle, an address
    /// is outside the endpoint's `cidrs`, or the endpoint is quarantined.
    DestinationNotPrivatelink,
    /// `region_not_allowed`: an ARN, the SigV4 scope or a cross-region profile does not agree
    /// with the endpoint's partition, region or signing name, or a profile's geography is not
    /// allowed.
    RegionNotAllowed,
    /// `account_not_allowed`: an ARN's account, or an output bucket's owner, is not in
    /// `accounts`.
    AccountNotAllowed,
    /// `bearer_key_not_allowed`: a Bedrock API key the bundle's `credentials` do not accept.
    BearerKeyNotAllowed,
    /// `connect_not_allowed`: `CONNECT` or `Upgrade`, a tunnel the filter could not inspect.
    ConnectNotAllowed,
    /// `body_too_large` (413): the body exceeds `limits.max_body_bytes`.
    BodyTooLarge,
    /// `body_unparseable`: the body is not strict JSON in UTF-8, or is not declared as
    /// `application/json`.
    BodyUnparseable,
    /// `policy_unavailable`: no valid bundle is loaded, or the keys to verify the caller's
    /// token are unavailable.
    PolicyUnavailable,
    /// `resource_not_allowed`: the request names a resource (output bucket, KMS key, Lambda,
    /// knowledge base, guardrail) that the bundle's `resources` do not list.
    ResourceNotAllowed,
}

impl Reason {
    /// Every reason, in declaration order.
    pub const ALL: [Reason; 20] = [
        Reason::Allowed,
        Reason::ModelNotAllowed,
        Reason::ModelDenied,
        Reason::ModelUnparseable,
        Reason::ModelInvalid,
        Reason::OperationUnknown,
        Reason::OperationNotAllowed,
        Reason::QueryNotAllowed,
        Reason::HeaderInvalid,
        Reason::IdentityMissing,
        Reason::IdentityInvalid,
        Reason::DestinationNotPrivatelink,
        Reason::RegionNotAllowed,
        Reason::AccountNotAllowed,
        Reason::BearerKeyNotAllowed,
        Reason::ConnectNotAllowed,
        Reason::BodyTooLarge,
        Reason::BodyUnparseable,
        Reason::PolicyUnavailable,
        Reason::ResourceNotAllowed,
    ];

    /// The stable code (`model_denied`): never renamed.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Allowed => "allowed",
            Reason::ModelNotAllowed => "model_not_allowed",
            Reason::ModelDenied => "model_denied",
            Reason::ModelUnparseable => "model_unparseable",
            Reason::ModelInvalid => "model_invalid",
            Reason::OperationUnknown => "operation_unknown",
            Reason::OperationNotAllowed => "operation_not_allowed",
            Reason::QueryNotAllowed => "query_not_allowed",
            Reason::HeaderInvalid => "header_invalid",
            Reason::IdentityMissing => "identity_missing",
            Reason::IdentityInvalid => "identity_invalid",
            Reason::DestinationNotPrivatelink => "destination_not_privatelink",
            Reason::RegionNotAllowed => "region_not_allowed",
            Reason::AccountNotAllowed => "account_not_allowed",
            Reason::BearerKeyNotAllowed => "bearer_key_not_allowed",
            Reason::ConnectNotAllowed => "connect_not_allowed",
            Reason::BodyTooLarge => "body_too_large",
            Reason::BodyUnparseable => "body_unparseable",
            Reason::PolicyUnavailable => "policy_unavailable",
            Reason::ResourceNotAllowed => "resource_not_allowed",
        }
    }

    /// HTTP status of the refusal. Never 5xx: SDKs retry those.
    pub fn status(self) -> u16 {
        match self {
            Reason::Allowed => 200,
            Reason::BodyTooLarge => 413,
            _ => 403,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a verdict is carried out or only recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The verdict is carried out.
    Enforce,
    /// A refusal is recorded and the request goes through.
    DryRun,
}

impl Mode {
    /// `enforce` or `dry-run`, as in the bundle and the audit record.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::DryRun => "dry-run",
        }
    }
}

/// The outcome of evaluating one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// `Allowed` for an allow; the refusal reason otherwise.
    pub reason: Reason,
    /// A short, fixed-vocabulary human explanation (never contains request bytes that were not
    /// validated first).
    pub detail: String,
    /// The rule that decided, if one did.
    pub rule_id: Option<String>,
    /// Enforce, or dry-run (the would-be verdict is recorded and the request continues).
    pub mode: Mode,
    /// The operation, once recognised.
    pub operation: Option<Operation>,
    /// The canonical model id(s), once parsed (only validated, canonical ids).
    pub models: Vec<String>,
}

impl Decision {
    /// An allow by `rule_id` (enforced) of `operation` naming `models` (canonical ids).
    pub fn allow(rule_id: Option<String>, operation: Operation, models: Vec<String>) -> Self {
        Decision {
            reason: Reason::Allowed,
            detail: String::new(),
            rule_id,
            mode: Mode::Enforce,
            operation: Some(operation),
            models,
        }
    }

    /// An enforced refusal for `reason`, with a fixed-vocabulary `detail` (may be empty); no
    /// rule, operation or models yet.
    pub fn deny(reason: Reason, detail: impl Into<String>) -> Self {
        Decision {
            reason,
            detail: detail.into(),
            rule_id: None,
            mode: Mode::Enforce,
            operation: None,
            models: Vec::new(),
        }
    }

    /// The same decision, for `op`.
    pub fn with_operation(mut self, op: Operation) -> Self {
        self.operation = Some(op);
        self
    }

    /// The same decision, naming `models` by their canonical ids.
    pub(crate) fn with_models(mut self, models: &[ModelRef]) -> Self {
        self.models = models.iter().map(|m| m.canonical().to_string()).collect();
        self
    }

    /// The same decision, made by `rule_id` in `mode`.
    pub fn with_rule(mut self, rule_id: Option<String>, mode: Mode) -> Self {
        self.rule_id = rule_id;
        self.mode = mode;
        self
    }

    /// Would the policy let this request through if enforced?
    pub fn is_allow(&self) -> bool {
        self.reason == Reason::Allowed
    }

    /// Does the request continue upstream (allowed, or denied only in dry-run)?
    pub fn lets_through(&self) -> bool {
        self.is_allow() || self.mode == Mode::DryRun
    }

    /// The HTTP status a refusal is answered with.
    pub fn status(&self) -> u16 {
        self.reason.status()
    }

    /// The message placed in the AWS-shaped error body:
    /// `bedrock-guard: <reason>: <explanation>`.
    pub fn message(&self) -> String {
        if self.detail.is_empty() {
            format!("bedrock-guard: {}", self.reason)
        } else {
            format!("bedrock-guard: {}: {}", self.reason, self.detail)
        }
    }

    /// The whole JSON error body, escaped.
    pub fn error_body(&self) -> String {
        let msg = serde_json::Value::String(self.message());
        format!("{{\"message\":{msg}}}")
    }
}
