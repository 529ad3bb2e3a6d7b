//! Validation and compilation in one pass: every field is checked (all problems collected,
//! each under its path) and turned into the structures the engine looks things up in.
//!
//! Each bundle section is checked in its own file: `metadata`, `identity` (providers and their
//! keys), `network` (endpoints, geographies, accounts), `resources`, `alerts` and `rules`
//! (operations, models, principals). `compile` calls them in a fixed order, so problems are
//! always reported in the same order.

mod alerts;
mod identity;
mod metadata;
mod network;
mod resources;
mod rules;

pub use network::CompiledEndpoint;
pub use rules::ModelMatcher;
pub(crate) use rules::{CompiledRule, PrincipalMatcher};

use alerts::compile_alerts;
use identity::compile_identity;
use metadata::compile_metadata;
use network::{compile_accounts, compile_endpoints, compile_network};
use resources::{compile_resources, CompiledResources};
use rules::compile_rule;

use super::keys;
use crate::identity::{KeySet, Verifier};
use std::collections::{HashMap, HashSet};

use super::schema::{Alerts, Bundle, Credentials, Effect, ModeSpec, Provider};
use super::validate::{self as v, Errors};
use super::BundleError;
use crate::decision::Mode;
use crate::matcher::PatternSet;
use crate::request::ResourceKind;

/// A validated, compiled bundle. Immutable; shared by every request.
#[derive(Debug)]
pub struct CompiledPolicy {
    name: String,
    revision: String,
    mode: Mode,
    identity_header: String,
    providers: Vec<Provider>,
    /// Identity providers with their inline keys, when the bundle configures identity.
    key_set: Option<KeySet>,
    endpoints: Vec<CompiledEndpoint>,
    endpoint_by_host: HashMap<String, usize>,
    accounts: Option<HashSet<String>>,
    resources: CompiledResources,
    credentials: Credentials,
    fips_required: bool,
    profile_geographies: Option<Vec<String>>,
    max_body_bytes: u64,
    alerts: Option<Alerts>,
    /// Deny rules first, in bundle order; then allow rules, in bundle order.
    pub(crate) deny_rules: Vec<CompiledRule>,
    pub(crate) allow_rules: Vec<CompiledRule>,
}

impl CompiledPolicy {
    /// Parse, validate and compile a JSON bundle.
    pub fn from_json(json: &[u8]) -> Result<CompiledPolicy, BundleError> {
        compile(&super::parse_bundle(json)?)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// The bundle-wide mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The largest request body the engine will read.
    pub fn max_body_bytes(&self) -> u64 {
        self.max_body_bytes
    }

    /// The (lowercase) header that carries the workload identity token.
    pub fn identity_header(&self) -> &str {
        &self.identity_header
    }

    /// The validated identity providers (empty when the bundle has no `identity` block).
    pub fn identity_providers(&self) -> &[Provider] {
        &self.providers
    }

    /// The deny-alert sink, when configured (validated).
    pub fn alerts(&self) -> Option<&Alerts> {
        self.alerts.as_ref()
    }

    /// Does the bundle require a verified workload identity on every request?
    pub fn has_identity(&self) -> bool {
        self.key_set.is_some()
    }

    /// A fresh verifier (keys from the inline JWKS; remote keys are loaded by the shell with
    /// `Verifier::set_keys`), or `None` when the bundle has no identity providers. Each VM
    /// owns one: it holds the verified-token cache.
    pub fn new_verifier(&self) -> Option<Verifier> {
        self.key_set.clone().map(Verifier::new)
    }

    pub fn endpoints(&self) -> &[CompiledEndpoint] {
        &self.endpoints
    }

    /// The endpoint whose `host` is exactly `host` (already lowercase, without port).
    pub fn endpoint(&self, host: &str) -> Option<&CompiledEndpoint> {
        self.endpoint_by_host
            .get(host)
            .and_then(|&i| self.endpoints.get(i))
    }

    /// The allowed accounts, when the bundle restricts them.
    pub fn accounts(&self) -> Option<&HashSet<String>> {
        self.accounts.as_ref()
    }

    /// The patterns that allow resources of `kind` (empty: none allowed). `Account` has no
    /// patterns: owner accounts are checked against `accounts`.
    pub fn resource_patterns(&self, kind: ResourceKind) -> &PatternSet {
        let r = &self.resources;
        match kind {
            ResourceKind::S3Output => &r.s3_outputs,
            ResourceKind::KmsKey => &r.kms_keys,
            ResourceKind::Lambda => &r.lambdas,
            ResourceKind::KnowledgeBase => &r.knowledge_bases,
            ResourceKind::Guardrail => &r.guardrails,
            ResourceKind::Account => &r.none,
        }
    }

    pub fn credentials(&self) -> Credentials {
        self.credentials
    }

    /// `network.fips_required`: every endpoint is a FIPS endpoint (checked at compile time).
    pub fn fips_required(&self) -> bool {
        self.fips_required
    }

    /// `network.profile_geographies`: the allowed cross-region profile geographies, when the
    /// bundle restricts them.
    pub fn profile_geographies(&self) -> Option<&[String]> {
        self.profile_geographies.as_deref()
    }

    /// Number of rules (deny and allow).
    pub fn rule_count(&self) -> usize {
        self.deny_rules.len() + self.allow_rules.len()
    }
}

fn mode_of(spec: ModeSpec) -> Mode {
    match spec {
        ModeSpec::Enforce => Mode::Enforce,
        ModeSpec::DryRun => Mode::DryRun,
    }
}

/// Validate a bundle completely and compile it. Every problem is reported, each under its
/// field path.
pub fn compile(bundle: &Bundle) -> Result<CompiledPolicy, BundleError> {
    let mut errs = Errors::default();

    match bundle.api_version.as_deref() {
        Some(v::API_VERSION) => {}
        Some(other) => errs.push(
            "apiVersion",
            format!("{other:?} is not supported (expected {:?})", v::API_VERSION),
        ),
        None => errs.push(
            "apiVersion",
            format!("required (expected {:?})", v::API_VERSION),
        ),
    }
    match bundle.kind.as_deref() {
        Some(v::KIND) => {}
        Some(other) => errs.push("kind", format!("{other:?} must be {:?}", v::KIND)),
        None => errs.push("kind", format!("required (expected {:?})", v::KIND)),
    }

    let (name, revision) = compile_metadata(bundle, &mut errs);
    let mode = mode_of(bundle.mode);
    let before_identity = errs.0.len();
    let (identity_header, providers) = compile_identity(bundle.identity.as_ref(), &mut errs);
    // The key set is built from providers whose fields are all valid, whatever is wrong
    // elsewhere in the bundle, so its problems (an unusable inline key) are reported too.
    let key_set = if errs.0.len() == before_identity {
        keys::compile_key_set(&providers, &mut errs)
    } else {
        None
    };
    let (endpoints, endpoint_by_host) =
        compile_endpoints(&bundle.endpoints, bundle.network.fips_required, &mut errs);
    let profile_geographies = compile_network(&bundle.network, &mut errs);
    let accounts = compile_accounts(bundle.accounts.as_deref(), &mut errs);
    let resources = compile_resources(&bundle.resources, &mut errs);

    if bundle.credentials.allow_long_term_api_keys && !bundle.credentials.allow_bearer_api_keys {
        errs.push(
            "credentials.allow_long_term_api_keys",
            "long-term API keys are bearer keys: also set allow_bearer_api_keys, or leave this false",
        );
    }
    let max_body_bytes = bundle.limits.max_body_bytes;
    if !(1..=v::MAX_BODY_LIMIT).contains(&max_body_bytes) {
        errs.push(
            "limits.max_body_bytes",
            format!(
                "{max_body_bytes} is out of range (1 to {})",
                v::MAX_BODY_LIMIT
            ),
        );
    }

    if let Some(alerts) = &bundle.alerts {
        compile_alerts(alerts, &mut errs);
    }

    let mut deny_rules = Vec::new();
    let mut allow_rules = Vec::new();
    let mut seen_ids: HashMap<&str, usize> = HashMap::new();
    for (i, rule) in bundle.rules.iter().enumerate() {
        if let Some(id) = rule.id.as_deref() {
            if let Some(first) = seen_ids.insert(id, i) {
                errs.push(
                    format!("rules[{i}].id"),
                    format!("duplicate rule id {id:?} (also rules[{first}])"),
                );
            }
        }
        if let Some((effect, compiled)) =
            compile_rule(i, rule, mode, bundle.identity.is_some(), &mut errs)
        {
            match effect {
                Effect::Deny => deny_rules.push(compiled),
                Effect::Allow => allow_rules.push(compiled),
            }
        }
    }

    if !errs.is_empty() {
        return Err(BundleError::Invalid(errs.0));
    }
    Ok(CompiledPolicy {
        name,
        revision,
        mode,
        identity_header,
        providers,
        key_set,
        endpoints,
        endpoint_by_host,
        accounts,
        resources,
        credentials: bundle.credentials,
        fips_required: bundle.network.fips_required,
        profile_geographies,
        max_body_bytes,
        alerts: bundle.alerts.clone(),
        deny_rules,
        allow_rules,
    })
}
