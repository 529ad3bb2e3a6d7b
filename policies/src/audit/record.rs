//! The record itself: [`AuditRecord`] with its setters, [`BundleInfo`] and [`CredentialType`],
//! applying a decision or a response stream's results, and the field order of the JSON line.

use std::sync::Arc;

use crate::bundle::CompiledPolicy;
use crate::credentials::{ApiKeyKind, Credential};
use crate::decision::{Decision, Mode, Reason};
use crate::engine::{Evaluation, HeadOutcome};
use crate::eventstream::EventStreamReader;
use crate::request::Operation;

use super::json::{push_json_str, push_rfc3339_millis, push_str_array, Obj};
use super::redact::{bounded, socket_address, source_ip, text, vpc_endpoint_id, TRUNCATED};
use crate::identity::TokenHash;

/// Longest model id kept (canonical ids and ARNs are at most 2048 characters).
pub const MAX_MODEL_ID_BYTES: usize = 2048;
/// Most groups kept in `userIdentity.groups`.
pub const MAX_GROUPS: usize = 32;
/// Most model ids kept in `requestParameters.modelId`.
pub const MAX_MODELS: usize = 16;

const EVENT_VERSION: &str = "1.0";
const EVENT_SOURCE: &str = "bedrock-guard";

/// How the caller authenticated to AWS (decided by the credentials module, recorded here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialType {
    /// A SigV4-signed request (`sigv4`).
    SigV4,
    /// A short-term Bedrock API key, `bedrock-api-key-…` (`api-key-short-term`).
    BedrockApiKeyShortTerm,
    /// A long-term Bedrock API key, `ABSK…` (`api-key-long-term`).
    BedrockApiKeyLongTerm,
    /// No AWS credential (`none`).
    None,
}

impl CredentialType {
    /// The type recorded for a detected credential; `None` (the field is left out) for a
    /// request without one, a bearer token of no known format, or a malformed header.
    pub(crate) fn of(credential: &Credential<'_>) -> Option<CredentialType> {
        match credential {
            Credential::SigV4(_) => Some(CredentialType::SigV4),
            Credential::ApiKey {
                kind: ApiKeyKind::ShortTerm,
                ..
            } => Some(CredentialType::BedrockApiKeyShortTerm),
            Credential::ApiKey {
                kind: ApiKeyKind::LongTerm,
                ..
            } => Some(CredentialType::BedrockApiKeyLongTerm),
            Credential::None | Credential::UnknownBearer { .. } | Credential::Malformed(_) => None,
        }
    }

    /// The `credentialType` value written in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialType::SigV4 => "sigv4",
            CredentialType::BedrockApiKeyShortTerm => "api-key-short-term",
            CredentialType::BedrockApiKeyLongTerm => "api-key-long-term",
            CredentialType::None => "none",
        }
    }
}

/// The loaded bundle's identification. Built once per configuration and shared by every record
/// (so a record costs no copy of it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BundleInfo {
    name: Option<String>,
    revision: Option<String>,
    digest: Option<String>,
    key_id: Option<String>,
}

impl BundleInfo {
    /// `metadata.name`, `metadata.revision` and the bundle digest (e.g. `sha256:…`), bounded.
    pub fn new(
        name: impl AsRef<[u8]>,
        revision: impl AsRef<[u8]>,
        digest: impl AsRef<[u8]>,
    ) -> BundleInfo {
        BundleInfo {
            name: non_empty(text(name.as_ref())),
            revision: non_empty(text(revision.as_ref())),
            digest: non_empty(text(digest.as_ref())),
            key_id: None,
        }
    }

    /// The id of the key that verified the bundle's signature (`None`: unsigned).
    pub fn signed_by(mut self, key_id: Option<&str>) -> BundleInfo {
        self.key_id = key_id.and_then(|k| non_empty(text(k.as_bytes())));
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct UserIdentity {
    issuer: Option<String>,
    subject: Option<String>,
    groups: Vec<String>,
    token_fingerprint: Option<String>,
}

/// One audit record. Build it with [`AuditRecord::from_decision`], complete it with the
/// setters as the request and response pass, then write it with [`AuditRecord::to_json_line`].
///
/// Setters take `&mut self` and return `&mut Self`, so they chain, and work the same whether
/// the record is being built or is stored in a stream context waiting for the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    event_time_ms: u64,
    request_id: Option<String>,
    operation: Option<Operation>,
    region: Option<String>,
    source_ip: Option<String>,
    identity: Option<UserIdentity>,
    access_key_id: Option<String>,
    credential_type: Option<CredentialType>,
    models: Vec<String>,
    endpoint: Option<String>,
    vpc_endpoint_id: Option<String>,
    allow: bool,
    reason: Reason,
    detail: Option<String>,
    rule_id: Option<String>,
    mode: Mode,
    bundle: Option<Arc<BundleInfo>>,
    status: Option<u16>,
    upstream_status: Option<u16>,
    upstream_address: Option<String>,
    upstream_request_id: Option<String>,
    latency_ms: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    stream_errors: Option<u64>,
    stream_exceptions: Option<u64>,
    stream_exception_type: Option<String>,
}

impl AuditRecord {
    /// A record for `decision`, timed at `event_time_ms` (Unix milliseconds, from the host
    /// clock). Verdict, reason, detail, rule, mode, operation and model ids come from the
    /// decision. `status` starts as the refusal status when the request is refused, and unknown
    /// when it goes upstream (set it from the response with [`AuditRecord::status`]).
    pub fn from_decision(decision: &Decision, event_time_ms: u64) -> AuditRecord {
        let mut models = Vec::with_capacity(decision.models.len().min(MAX_MODELS + 1));
        for model in decision.models.iter().take(MAX_MODELS) {
            models.push(bounded(model.as_bytes(), MAX_MODEL_ID_BYTES));
        }
        if decision.models.len() > MAX_MODELS {
            models.push(TRUNCATED.to_string());
        }
        AuditRecord {
            event_time_ms,
            request_id: None,
            operation: decision.operation,
            region: None,
            source_ip: None,
            identity: None,
            access_key_id: None,
            credential_type: None,
            models,
            endpoint: None,
            vpc_endpoint_id: None,
            allow: decision.is_allow(),
            reason: decision.reason,
            detail: non_empty(text(decision.detail.as_bytes())),
            rule_id: decision.rule_id.as_deref().map(|r| text(r.as_bytes())),
            mode: decision.mode,
            bundle: None,
            status: if decision.lets_through() {
                None
            } else {
                Some(decision.status())
            },
            upstream_status: None,
            upstream_address: None,
            upstream_request_id: None,
            latency_ms: None,
            input_tokens: None,
            output_tokens: None,
            stream_errors: None,
            stream_exceptions: None,
            stream_exception_type: None,
        }
    }

    /// The record of a request head as the engine evaluated it: the verdict part from the
    /// decision (or, while the request waits for its body, a `policy_unavailable` placeholder
    /// that [`AuditRecord::apply_decision`] replaces), the endpoint's region, the credential
    /// type and access key id, the verified caller and the identity token's fingerprint. The
    /// shell adds what only it knows (request id, bundle, authority, source address).
    pub fn from_evaluation(
        policy: &CompiledPolicy,
        evaluation: &Evaluation<'_>,
        event_time_ms: u64,
    ) -> AuditRecord {
        let mut record = match &evaluation.outcome {
            HeadOutcome::Decided(decision) => AuditRecord::from_decision(decision, event_time_ms),
            HeadOutcome::NeedBody(pending) => {
                let mut placeholder = AuditRecord::from_decision(
                    &Decision::deny(Reason::PolicyUnavailable, "")
                        .with_operation(pending.operation),
                    event_time_ms,
                );
                placeholder.status = None; // nothing has been sent yet
                placeholder
            }
        };
        if let Some(region) = evaluation.region(policy) {
            record.region(region);
        }
        record.credential_type = CredentialType::of(&evaluation.credential);
        if let Credential::SigV4(scope) = &evaluation.credential {
            record.access_key_id(scope.access_key_id);
        }
        if let Some(p) = &evaluation.principal {
            record.identity(&p.issuer, &p.subject, p.groups.iter());
        }
        if let Some(token) = &evaluation.token {
            record.token_fingerprint(token);
        }
        record
    }

    /// Replace the verdict part (verdict, reason, detail, rule, mode, operation, models and the
    /// refusal status) with `decision`'s, keeping the request context already recorded. The
    /// shell builds the record's context before the engine decides.
    pub fn apply_decision(&mut self, decision: &Decision) -> &mut Self {
        let fresh = AuditRecord::from_decision(decision, self.event_time_ms);
        self.operation = fresh.operation.or(self.operation);
        if !fresh.models.is_empty() {
            self.models = fresh.models;
        }
        self.allow = fresh.allow;
        self.reason = fresh.reason;
        self.detail = fresh.detail;
        self.rule_id = fresh.rule_id;
        self.mode = fresh.mode;
        self.status = fresh.status;
        self
    }

    /// The request ended before the filter could decide it (a body-carried request whose body
    /// never completed): record `decision` as its verdict, like
    /// [`AuditRecord::apply_decision`], but keep the status already recorded from an answer
    /// Envoy sent (none when the client got no answer), since no refusal was sent.
    pub fn undecided(&mut self, decision: &Decision) -> &mut Self {
        let sent = self.status;
        self.apply_decision(decision);
        self.status = sent;
        self
    }

    /// The token counts recorded so far (from headers or a stream).
    pub fn token_counts(&self) -> Option<(u64, u64)> {
        self.input_tokens.zip(self.output_tokens)
    }

    /// Malformed event-stream frames seen in the response, when it was a stream.
    pub fn malformed_frames(&self) -> Option<u64> {
        self.stream_errors
    }

    /// `requestID`: the request id the client sees (`x-amzn-RequestId`, or Envoy's id).
    pub fn request_id(&mut self, id: impl AsRef<[u8]>) -> &mut Self {
        self.request_id = non_empty(text(id.as_ref()));
        self
    }

    /// `awsRegion`: the region of the endpoint the request was bound for.
    pub fn region(&mut self, region: impl AsRef<[u8]>) -> &mut Self {
        self.region = non_empty(text(region.as_ref()));
        self
    }

    /// `sourceIPAddress`: the downstream address. `ip`, `ip:port` and `[v6]:port` are reduced
    /// to the address; anything else is kept as bounded text.
    pub fn source_address(&mut self, address: impl AsRef<[u8]>) -> &mut Self {
        self.source_ip = non_empty(source_ip(address.as_ref()));
        self
    }

    /// `userIdentity.issuer`, `.subject` and `.groups` of the verified principal. Never pass
    /// the token itself: use [`AuditRecord::token_fingerprint`] for that.
    pub fn identity<I, G>(
        &mut self,
        issuer: impl AsRef<[u8]>,
        subject: impl AsRef<[u8]>,
        groups: I,
    ) -> &mut Self
    where
        I: IntoIterator<Item = G>,
        G: AsRef<[u8]>,
    {
        let identity = self.identity.get_or_insert_with(UserIdentity::default);
        identity.issuer = non_empty(text(issuer.as_ref()));
        identity.subject = non_empty(text(subject.as_ref()));
        identity.groups.clear();
        let mut groups = groups.into_iter();
        for group in groups.by_ref().take(MAX_GROUPS) {
            identity.groups.push(text(group.as_ref()));
        }
        if groups.next().is_some() {
            identity.groups.push(TRUNCATED.to_string());
        }
        self
    }

    /// `userIdentity.tokenFingerprint`: the first 12 hex digits of the SHA-256 of the identity
    /// token (as hashed once by `identity::authenticate`), so records of one token can be
    /// correlated (also for an invalid token) without the token.
    pub fn token_fingerprint(&mut self, token: &TokenHash) -> &mut Self {
        self.identity
            .get_or_insert_with(UserIdentity::default)
            .token_fingerprint = Some(token.fingerprint());
        self
    }

    /// `accessKeyId`: the access key id only (from the SigV4 `Credential` scope or a decoded
    /// short-term API key). Anything but `[A-Z0-9]{16,128}` is not recorded.
    pub fn access_key_id(&mut self, akid: impl AsRef<[u8]>) -> &mut Self {
        let akid = akid.as_ref();
        let valid = (16..=128).contains(&akid.len())
            && akid
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        self.access_key_id = if valid {
            std::str::from_utf8(akid).ok().map(str::to_string)
        } else {
            None
        };
        self
    }

    /// `credentialType`.
    pub fn credential_type(&mut self, kind: CredentialType) -> &mut Self {
        self.credential_type = Some(kind);
        self
    }

    /// `endpoint` (the `:authority` host) and, when it is an endpoint-specific PrivateLink name,
    /// `vpcEndpointId`.
    pub fn endpoint(&mut self, host: impl AsRef<[u8]>) -> &mut Self {
        let host = host.as_ref();
        self.endpoint = non_empty(text(host));
        self.vpc_endpoint_id = vpc_endpoint_id(host);
        self
    }

    /// `bundleName`, `bundleRevision`, `bundleDigest`.
    pub fn bundle(&mut self, bundle: Arc<BundleInfo>) -> &mut Self {
        self.bundle = Some(bundle);
        self
    }

    /// `status`: the HTTP status sent to the client.
    pub fn status(&mut self, status: u16) -> &mut Self {
        self.status = Some(status);
        self
    }

    /// `upstreamStatus`: the HTTP status the upstream answered with (also when the filter
    /// withheld that answer and the client got a refusal: `status` is then the refusal's).
    pub fn upstream_status(&mut self, status: u16) -> &mut Self {
        self.upstream_status = Some(status);
        self
    }

    /// `upstreamAddress`: the address the answer came from (Envoy's `upstream.address`).
    /// `ip:port` and `[v6]:port` are re-printed from the parsed address (a bare address is
    /// kept as an address); anything else is kept as bounded text.
    pub fn upstream_address(&mut self, address: impl AsRef<[u8]>) -> &mut Self {
        self.upstream_address = non_empty(socket_address(address.as_ref()));
        self
    }

    /// `upstreamRequestId`: Bedrock's own request id (the `x-amzn-RequestId` response header
    /// the upstream answered with), the `requestID` of the call's CloudTrail record; `null`
    /// when the request never reached Bedrock. Bounded text, like every header-derived field.
    pub fn upstream_request_id(&mut self, id: impl AsRef<[u8]>) -> &mut Self {
        self.upstream_request_id = non_empty(text(id.as_ref()));
        self
    }

    /// `latencyMs`: from the request's first byte to the last byte of the response.
    pub fn latency_ms(&mut self, ms: u64) -> &mut Self {
        self.latency_ms = Some(ms);
        self
    }

    /// `inputTokens`, `outputTokens` (from the `X-Amzn-Bedrock-*-Token-Count` response headers,
    /// see [`crate::eventstream::usage_from_headers`], or a unary answer's body, see
    /// [`crate::usage::UsageScanner`]).
    pub fn tokens(&mut self, input: u64, output: u64) -> &mut Self {
        self.input_tokens = Some(input);
        self.output_tokens = Some(output);
        self
    }

    /// Everything a response stream reader learnt: token usage (when the stream reported it),
    /// `streamErrors` (malformed frames), `streamExceptions` and `streamExceptionType`.
    pub fn stream(&mut self, reader: &EventStreamReader) -> &mut Self {
        if let Some((input, output)) = reader.usage() {
            self.tokens(input, output);
        }
        self.stream_errors = Some(reader.malformed_frames());
        self.stream_exceptions = Some(reader.exceptions());
        self.stream_exception_type = reader.last_exception().map(str::to_string);
        self
    }

    /// The record as one line of JSON (no trailing newline; printable ASCII only).
    pub fn to_json_line(&self) -> String {
        let mut out = String::with_capacity(self.size_hint());
        let mut obj = Obj::open(&mut out);
        obj.str("eventVersion", Some(EVENT_VERSION));
        obj.key("eventTime");
        obj.out.push('"');
        push_rfc3339_millis(obj.out, self.event_time_ms);
        obj.out.push('"');
        obj.str("eventSource", Some(EVENT_SOURCE));
        obj.str("requestID", self.request_id.as_deref());
        obj.str("eventName", self.operation.map(Operation::as_str));
        obj.str("awsRegion", self.region.as_deref());
        obj.str("sourceIPAddress", self.source_ip.as_deref());
        obj.key("userIdentity");
        match &self.identity {
            None => obj.out.push_str("null"),
            Some(identity) => {
                let mut inner = Obj::open(obj.out);
                inner.str("issuer", identity.issuer.as_deref());
                inner.str("subject", identity.subject.as_deref());
                inner.key("groups");
                push_str_array(inner.out, &identity.groups);
                inner.str("tokenFingerprint", identity.token_fingerprint.as_deref());
                inner.close();
            }
        }
        obj.str("accessKeyId", self.access_key_id.as_deref());
        obj.str(
            "credentialType",
            self.credential_type.map(CredentialType::as_str),
        );
        obj.key("requestParameters");
        match self.models.as_slice() {
            [] => obj.out.push_str("null"),
            models => {
                let mut inner = Obj::open(obj.out);
                inner.key("modelId");
                match models {
                    [single] => push_json_str(inner.out, single),
                    many => push_str_array(inner.out, many),
                }
                inner.close();
            }
        }
        obj.str("endpoint", self.endpoint.as_deref());
        obj.str("vpcEndpointId", self.vpc_endpoint_id.as_deref());
        obj.str("decision", Some(if self.allow { "allow" } else { "deny" }));
        obj.str("reason", Some(self.reason.as_str()));
        obj.str("detail", self.detail.as_deref());
        obj.str("ruleId", self.rule_id.as_deref());
        obj.str("mode", Some(self.mode.as_str()));
        let bundle = self.bundle.as_deref();
        obj.str("bundleName", bundle.and_then(|b| b.name.as_deref()));
        obj.str("bundleRevision", bundle.and_then(|b| b.revision.as_deref()));
        obj.str("bundleDigest", bundle.and_then(|b| b.digest.as_deref()));
        obj.str("bundleKeyId", bundle.and_then(|b| b.key_id.as_deref()));
        obj.num("status", self.status.map(u64::from));
        obj.num("upstreamStatus", self.upstream_status.map(u64::from));
        obj.str("upstreamAddress", self.upstream_address.as_deref());
        obj.str("upstreamRequestId", self.upstream_request_id.as_deref());
        obj.num("latencyMs", self.latency_ms);
        obj.num("inputTokens", self.input_tokens);
        obj.num("outputTokens", self.output_tokens);
        obj.num("streamErrors", self.stream_errors);
        obj.num("streamExceptions", self.stream_exceptions);
        obj.str("streamExceptionType", self.stream_exception_type.as_deref());
        obj.close();
        out
    }

    /// A capacity that a typical line fits in without growing.
    fn size_hint(&self) -> usize {
        let len = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let identity = self.identity.as_ref().map_or(0, |i| {
            len(&i.issuer) + len(&i.subject) + i.groups.iter().map(|g| g.len() + 3).sum::<usize>()
        });
        768 + len(&self.request_id)
            + len(&self.endpoint)
            + len(&self.upstream_address)
            + len(&self.upstream_request_id)
            + len(&self.detail)
            + len(&self.rule_id)
            + identity
            + self.models.iter().map(|m| m.len() + 3).sum::<usize>()
    }
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() {
        None
    } else {
        Some(s)
    }
}
