//! The bundle as written (serde types). Every struct refuses unknown fields, so a typo is an
//! error rather than a silently ignored rule. Values are checked in `validate`, not here: the
//! types stay permissive (strings, options) wherever a precise, path-naming message is worth
//! more than serde's generic one, and so that every problem is reported in one pass.

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The whole bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// `apiVersion`: required, exactly `bedrock-guard/v1`.
    #[serde(rename = "apiVersion", default)]
    pub api_version: Option<String>,
    /// Required, exactly `PolicyBundle`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Required: the bundle's name and revision.
    #[serde(default)]
    pub metadata: Option<Metadata>,
    /// The bundle-wide mode; `enforce` when omitted.
    #[serde(default)]
    pub mode: ModeSpec,
    /// Workload identity; when present, every request needs a verified token.
    #[serde(default)]
    pub identity: Option<Identity>,
    /// The only destinations a request may name (at least one).
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// FIPS and cross-region profile geographies.
    #[serde(default)]
    pub network: Network,
    /// The 12-digit accounts an ARN in a request may name. `None`: any account; empty: none.
    /// Does not restrict the account whose credentials sign the request.
    #[serde(default)]
    pub accounts: Option<Vec<String>>,
    /// Facts about the AWS side that the guard cannot see on the wire, used only to write the
    /// AWS-side policies (`bedrock-guard iam`); ignored when deciding requests.
    #[serde(default)]
    pub aws: Option<AwsSide>,
    /// Resources other than models that requests may name.
    #[serde(default)]
    pub resources: Resources,
    /// Which kinds of AWS credential a request may carry.
    #[serde(default)]
    pub credentials: Credentials,
    /// Size limits.
    #[serde(default)]
    pub limits: Limits,
    /// The deny-event sink; none when omitted.
    #[serde(default)]
    pub alerts: Option<Alerts>,
    /// The rules, in order. With no allow rule every request is refused.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// Deny alerts: each refusal is POSTed (batched, asynchronously) as a JSON event to an Envoy
/// cluster: a JSON array (`format: "json"`, e.g. to a relay) or Amazon EventBridge `PutEvents`
/// calls (`format: "eventbridge"`, signed by Envoy on the cluster). An unavailable sink never
/// slows or fails requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alerts {
    /// Required: the Envoy cluster that receives the events (letters, digits, `_`, `.`, `-`).
    #[serde(default)]
    pub cluster: Option<String>,
    /// `json` (default): a JSON array POSTed to `path`; `eventbridge`: `PutEvents` calls.
    #[serde(default)]
    pub format: Option<String>,
    /// The path of the POST, starting with `/`, without query or fragment. Required for `json`;
    /// `eventbridge` posts to `/` and accepts only `/` here.
    #[serde(default)]
    pub path: Option<String>,
    /// `eventbridge` only, required: the event bus, a name or an `arn:...:events:...` ARN.
    #[serde(default)]
    pub event_bus: Option<String>,
    /// `eventbridge` only, required: the events endpoint host the calls are addressed to (the
    /// `:authority`, which the signer signs as `host`), e.g. `events.us-east-1.amazonaws.com`
    /// or the events VPC endpoint's DNS name.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The events' source (default `bedrock-guard`).
    #[serde(default)]
    pub source: Option<String>,
    /// The events' detail-type (default `Bedrock request denied`).
    #[serde(default)]
    pub detail_type: Option<String>,
    /// Events per POST: 1 to 500 for `json` (default 20), 1 to 10 for `eventbridge` (default
    /// 10, the `PutEvents` limit).
    #[serde(default)]
    pub batch_size: Option<u64>,
    /// Longest time an event waits before it is sent, in seconds (1 to 60).
    #[serde(default = "default_alert_flush")]
    pub flush_interval_seconds: u64,
    /// Events held per worker while the sink is slow, in flight and waiting for a retry
    /// included (1 to 100 000); beyond this they are dropped and counted.
    #[serde(default = "default_alert_queue")]
    pub queue_capacity: u64,
    /// `eventbridge` only: sends of one event before it is given up (1 to 10, default 4); the
    /// waits between them double from 1 s.
    #[serde(default)]
    pub max_attempts: Option<u64>,
    /// Also alert on dry-run (would-be) denials.
    #[serde(default = "default_true")]
    pub include_dry_run: bool,
}

/// The default `alerts.source`.
pub const DEFAULT_ALERT_SOURCE: &str = "bedrock-guard";
/// The default `alerts.detail_type`.
pub const DEFAULT_ALERT_DETAIL_TYPE: &str = "Bedrock request denied";

impl Alerts {
    /// Whether the events go out as EventBridge `PutEvents` calls.
    pub fn is_eventbridge(&self) -> bool {
        self.format.as_deref() == Some("eventbridge")
    }

    /// Events per POST, the format's default when unset.
    pub fn batch_size(&self) -> u64 {
        self.batch_size
            .unwrap_or(if self.is_eventbridge() { 10 } else { 20 })
    }

    /// Sends of one event before it is given up (always 1 for `json`).
    pub fn max_attempts(&self) -> u64 {
        if self.is_eventbridge() {
            self.max_attempts.unwrap_or(4)
        } else {
            1
        }
    }

    /// The events' source.
    pub fn source(&self) -> &str {
        self.source.as_deref().unwrap_or(DEFAULT_ALERT_SOURCE)
    }

    /// The events' detail-type.
    pub fn detail_type(&self) -> &str {
        self.detail_type
            .as_deref()
            .unwrap_or(DEFAULT_ALERT_DETAIL_TYPE)
    }
}

fn default_alert_flush() -> u64 {
    1
}
fn default_alert_queue() -> u64 {
    1000
}
fn default_true() -> bool {
    true
}

/// What the bundle is called and which version of it this is; both appear in audit records
/// and stats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Required: `[a-z0-9][a-z0-9-]{0,62}`.
    #[serde(default)]
    pub name: Option<String>,
    /// Required: 1 to 64 visible ASCII characters. A signed bundle's revision must be a decimal
    /// integer, so that revisions can be ordered.
    #[serde(default)]
    pub revision: Option<String>,
}

/// `enforce` or `dry-run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModeSpec {
    /// Refusals are sent to the client.
    #[default]
    Enforce,
    /// Refusals are recorded and the request goes through (bar those that cannot be
    /// forwarded).
    DryRun,
}

/// `allow` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// The rule allows what it matches.
    Allow,
    /// The rule refuses what it matches, whatever any allow rule says.
    Deny,
}

/// Workload identity (JWT) configuration: where the token is and who may issue it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// The lower-case header that carries the token ([`DEFAULT_IDENTITY_HEADER`] when
    /// omitted); `authorization` means `Authorization: Bearer <jwt>`. Removed before the
    /// request goes upstream.
    #[serde(default = "default_identity_header")]
    pub header: String,
    /// The token issuers (at least one), each with its own keys.
    #[serde(default)]
    pub providers: Vec<Provider>,
}

/// The identity header when `identity.header` is omitted.
pub const DEFAULT_IDENTITY_HEADER: &str = "x-workload-identity";

fn default_identity_header() -> String {
    DEFAULT_IDENTITY_HEADER.to_string()
}

/// One token issuer: its `iss`, the audiences and algorithms it may use, and its keys
/// (inline, remote, or both).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// Required, unique: names the provider in logs and stats.
    #[serde(default)]
    pub name: Option<String>,
    /// Required, unique: the exact `iss` (an https URL). Keys are bound to their issuer.
    #[serde(default)]
    pub issuer: Option<String>,
    /// At least one: a token must name one of them in `aud`.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// At least one, from [`ALGORITHMS`](crate::bundle::ALGORITHMS) (no HMAC, no `none`).
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Inline public keys.
    #[serde(default)]
    pub jwks: Option<Jwks>,
    /// Keys fetched by the filter from an Envoy cluster.
    #[serde(default)]
    pub remote_jwks: Option<RemoteJwks>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds (0 to 300).
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Longest lifetime (`exp - iat`) a token may have, in seconds; `None`: no bound. With a
    /// bound, tokens need `iat`.
    #[serde(default)]
    pub max_lifetime_seconds: Option<u64>,
    /// The claim that names the caller (`sub` when omitted).
    #[serde(default = "default_principal_claim")]
    pub principal_claim: String,
    /// The claim that lists the caller's groups (`groups` when omitted): an array of strings
    /// or a space-separated string.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Longest token accepted, in bytes (1 to [`MAX_TOKEN_BYTES_LIMIT`]); larger tokens are
    /// refused before any parsing.
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: u64,
}

fn default_leeway() -> u64 {
    30
}
fn default_principal_claim() -> String {
    "sub".to_string()
}
fn default_groups_claim() -> String {
    "groups".to_string()
}
/// `max_token_bytes` when omitted.
pub const DEFAULT_MAX_TOKEN_BYTES: u64 = 8192;
/// The largest `max_token_bytes` a bundle may set.
pub const MAX_TOKEN_BYTES_LIMIT: u64 = 65_536;
fn default_max_token_bytes() -> u64 {
    DEFAULT_MAX_TOKEN_BYTES
}

/// An inline JSON Web Key Set. Keys stay as JSON values until the verifier is built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jwks {
    /// Public keys as JWKs: RSA, EC or OKP, each with a unique `kid`; `oct` keys and private
    /// key members are refused.
    pub keys: Vec<serde_json::Value>,
}

/// A JWKS document the filter fetches through an Envoy cluster: per worker at start, every
/// `refresh_seconds`, and on a token with an unknown `kid` (rate-limited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteJwks {
    /// Required: the Envoy cluster that serves the document.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Required: the request path of the document.
    #[serde(default)]
    pub path: Option<String>,
    /// Seconds between scheduled fetches (30 to 86 400; 300 when omitted).
    #[serde(default = "default_refresh")]
    pub refresh_seconds: u64,
    /// How long the last good keys stay in force without a successful fetch, in seconds (at
    /// least `refresh_seconds`; 3600 when omitted). Past it, the provider's tokens are
    /// refused as `policy_unavailable`.
    #[serde(default = "default_max_stale")]
    pub max_stale_seconds: u64,
}

fn default_refresh() -> u64 {
    300
}
fn default_max_stale() -> u64 {
    3600
}

/// A destination requests may name: a Bedrock endpoint-specific VPC endpoint name or a
/// service name reached through private DNS (see `destination`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Required, unique: the lower-case host name.
    #[serde(default)]
    pub host: Option<String>,
    /// Required: the region, agreeing with the host's region label.
    #[serde(default)]
    pub region: Option<String>,
    /// The host is a service name that reaches PrivateLink through the VPC's private hosted
    /// zone: required for service names (with `cidrs`), refused on VPC endpoint names.
    #[serde(default)]
    pub private_dns: bool,
    /// The host is a FIPS endpoint; must agree with the host's service label.
    #[serde(default)]
    pub fips: bool,
    /// The endpoint's network blocks (`10.20.0.0/16`, host bits zero), checked against the
    /// original destination and every response's upstream address.
    #[serde(default)]
    pub cidrs: Vec<String>,
}

/// Where traffic may go beyond the endpoint list: FIPS, and which cross-region inference
/// profile geographies may fan a request out to other regions.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Every endpoint must be a FIPS endpoint (`bedrock-runtime-fips`, ...).
    #[serde(default)]
    pub fips_required: bool,
    /// Allowed cross-region profile geographies (`us`, `eu`, `apac`, `global`, ...). Absent:
    /// every known geography that serves the endpoint's region. Empty: no cross-region
    /// profile at all.
    #[serde(default)]
    pub profile_geographies: Option<Vec<String>>,
}

/// Resources other than models that requests may name and that receive customer data. Each
/// list holds patterns (IAM wildcards `*` and `?`, case-sensitive); a kind with no pattern is
/// refused wherever a request names it (`resource_not_allowed`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Where StartAsyncInvoke may write the model's output: `s3://bucket` or
    /// `s3://bucket/key-pattern`, the bucket written out. None listed: StartAsyncInvoke is
    /// refused.
    #[serde(default)]
    pub s3_outputs: Vec<String>,
    /// KMS key ARNs (patterns) that may encrypt output or session data.
    #[serde(default)]
    pub kms_keys: Vec<String>,
    /// Lambda function ARNs (patterns) an agent may call (action groups, prompt-override and
    /// custom-orchestration executors).
    #[serde(default)]
    pub lambdas: Vec<String>,
    /// Knowledge bases a request may query: ids (`ABCDEFGHIJ`) or ARNs.
    #[serde(default)]
    pub knowledge_bases: Vec<String>,
    /// Guardrails a request may name: ids or ARNs.
    #[serde(default)]
    pub guardrails: Vec<String>,
}

/// What the AWS side should enforce that the guard cannot: the account (or organization) whose
/// credentials sign the request. An access key id does not say which account it belongs to
/// without asking AWS, so the guard never decides on these; `bedrock-guard iam` writes them
/// into the VPC endpoint policy and the service control policy as `aws:PrincipalAccount` /
/// `aws:PrincipalOrgID` conditions.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSide {
    /// The 12-digit accounts whose principals may call Bedrock through the endpoints.
    #[serde(default)]
    pub principal_accounts: Option<Vec<String>>,
    /// The AWS Organizations id (`o-` and 10 to 32 lowercase letters or digits) whose
    /// principals may call Bedrock through the endpoints.
    #[serde(default)]
    pub principal_org_id: Option<String>,
}

/// Which AWS credentials a request may carry besides SigV4 signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Accept Bedrock API keys (`Authorization: Bearer bedrock-api-key-…`, `x-api-key`).
    #[serde(default)]
    pub allow_bearer_api_keys: bool,
    /// Also accept long-term `ABSK…` keys; needs `allow_bearer_api_keys`.
    #[serde(default)]
    pub allow_long_term_api_keys: bool,
}

/// `limits.max_body_bytes` when omitted (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1_048_576;

/// Size limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest body read for operations that carry the model in the body, in bytes
    /// (1 to 25 000 000); a larger one is `body_too_large`.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

fn default_max_body() -> u64 {
    DEFAULT_MAX_BODY_BYTES
}

/// One rule: an effect on the requests it matches (by operation, model and principal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Required, unique: names the rule in refusals, audit records and stats.
    #[serde(default)]
    pub id: Option<String>,
    /// Required.
    #[serde(default)]
    pub effect: Option<Effect>,
    /// Free text, for people.
    #[serde(default)]
    pub description: Option<String>,
    /// Deny rules only: `dry-run` records the would-be refusal and lets the request through.
    #[serde(default)]
    pub mode: Option<ModeSpec>,
    /// Whom the rule applies to; `None`: everyone.
    #[serde(default)]
    pub principals: Option<Principals>,
    /// Model patterns (IAM-style `*` and `?`). Required on an allow rule that names an
    /// operation which can carry a model; an allow rule without `models` allows no model.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Operation names; `None`: every operation.
    #[serde(default)]
    pub operations: Option<Vec<String>>,
}

/// Whom a rule applies to (a verified caller only): every category given must match, any
/// pattern within it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principals {
    /// Patterns for the verified caller's subject (its principal claim).
    #[serde(default)]
    pub subjects: Vec<String>,
    /// Patterns one of the caller's groups must match.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Patterns per claim of the caller's token; each claim named is a category of its own.
    #[serde(default)]
    pub claims: ClaimPatterns,
}

/// `{claim-name: [patterns]}`, in document order. Unlike a plain map it refuses a repeated
/// claim name instead of letting the last one win.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClaimPatterns(pub Vec<(String, Vec<String>)>);

impl<'de> Deserialize<'de> for ClaimPatterns {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ClaimsVisitor;

        impl<'de> Visitor<'de> for ClaimsVisitor {
            type Value = ClaimPatterns;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object mapping claim names to lists of patterns")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, Vec<String>)> = Vec::new();
                while let Some((name, patterns)) = map.next_entry::<String, Vec<String>>()? {
                    if entries.iter().any(|(n, _)| *n == name) {
                        return Err(serde::de::Error::custom(format_args!(
                            "duplicate claim `{name}`"
                        )));
                    }
                    entries.push((name, patterns));
                }
                Ok(ClaimPatterns(entries))
            }
        }

        deserializer.deserialize_map(ClaimsVisitor)
    }
}

impl Serialize for ClaimPatterns {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}
