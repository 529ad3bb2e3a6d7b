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
    #[serde(rename = "apiVersion", default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub mode: ModeSpec,
    #[serde(default)]
    pub identity: Option<Identity>,
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub accounts: Option<Vec<String>>,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub credentials: Credentials,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub alerts: Option<Alerts>,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// Deny alerts: each refusal is POSTed (batched, asynchronously) as a JSON event to an Envoy
/// cluster, e.g. a relay into EventBridge. An unavailable sink never slows or fails requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alerts {
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    /// Events per POST.
    #[serde(default = "default_alert_batch")]
    pub batch_size: u64,
    /// Longest time an event waits before it is sent.
    #[serde(default = "default_alert_flush")]
    pub flush_interval_seconds: u64,
    /// Events held per worker while the sink is slow; beyond this they are dropped and counted.
    #[serde(default = "default_alert_queue")]
    pub queue_capacity: u64,
    /// Also alert on dry-run (would-be) denials.
    #[serde(default = "default_true")]
    pub include_dry_run: bool,
}

fn default_alert_batch() -> u64 {
    20
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub revision: Option<String>,
}

/// `enforce` or `dry-run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModeSpec {
    #[default]
    Enforce,
    DryRun,
}

/// `allow` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
}

/// Workload identity (JWT) configuration. Parsed and validated; enforced by a later release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    #[serde(default = "default_identity_header")]
    pub header: String,
    #[serde(default)]
    pub providers: Vec<Provider>,
}

pub const DEFAULT_IDENTITY_HEADER: &str = "x-workload-identity";

fn default_identity_header() -> String {
    DEFAULT_IDENTITY_HEADER.to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub algorithms: Vec<String>,
    #[serde(default)]
    pub jwks: Option<Jwks>,
    #[serde(default)]
    pub remote_jwks: Option<RemoteJwks>,
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    #[serde(default)]
    pub max_lifetime_seconds: Option<u64>,
    #[serde(default = "default_principal_claim")]
    pub principal_claim: String,
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Longest token accepted, in bytes.
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
pub const DEFAULT_MAX_TOKEN_BYTES: u64 = 8192;
pub const MAX_TOKEN_BYTES_LIMIT: u64 = 65_536;
fn default_max_token_bytes() -> u64 {
    DEFAULT_MAX_TOKEN_BYTES
}

/// An inline JSON Web Key Set. Keys stay as JSON values until the verifier is built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jwks {
    pub keys: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteJwks {
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default = "default_refresh")]
    pub refresh_seconds: u64,
    #[serde(default = "default_max_stale")]
    pub max_stale_seconds: u64,
}

fn default_refresh() -> u64 {
    300
}
fn default_max_stale() -> u64 {
    3600
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub private_dns: bool,
    #[serde(default)]
    pub fips: bool,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[serde(default)]
    pub allow_bearer_api_keys: bool,
    #[serde(default)]
    pub allow_long_term_api_keys: bool,
}

pub const DEFAULT_MAX_BODY_BYTES: u64 = 1_048_576;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub effect: Option<Effect>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub mode: Option<ModeSpec>,
    #[serde(default)]
    pub principals: Option<Principals>,
    #[serde(default)]
    pub models: Option<Vec<String>>,
    #[serde(default)]
    pub operations: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principals {
    #[serde(default)]
    pub subjects: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
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
