//! Validation and compilation in one pass: every field is checked (all problems collected,
//! each under its path) and turned into the structures the engine looks things up in.
//!
//! Each bundle section is checked in its own file: `metadata`, `identity` (providers and their
//! keys), `network` (endpoints, geographies, accounts), `resources`, `alerts` and `rules`
//! (operations, models, principals). `compile` calls them in a fixed order, so problems are
//! always reported in the same order.
//!
//! Every section compiler is `#[inline(never)]`. Inlined into one another they made `compile` a
//! single 47 KB wasm function, and V8 (which Envoy runs with TurboFan only, compiling every
//! function when the module loads) needs memory more than linear in a function's size to
//! compile it: that one function cost about 25 MiB of compile-time memory in V8 and 5 to 8 MiB
//! of every Envoy's resident memory afterwards (bench/README.md, "Memory when idle, by build").
//! This is configuration-time code, so the calls cost nothing per request.
//! tests/test_module_shape.py keeps every function of the shipped module under a bound.

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
use network::{check_aws, compile_accounts, compile_endpoints, compile_network};
use resources::{compile_resources, CompiledResources};
use rules::compile_rule;

use super::keys;
use crate::identity::{KeySet, Verifier};
use std::collections::{HashMap, HashSet};

use super::schema::{Alerts, Bundle, Credentials, Effect, ModeSpec, Provider};
use super::validate::{self as v, Errors};
use super::BundleError;
use crate::decision::Mode;
use crate::matcher::{PatternIndex, PatternSet};
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
    /// The model ids the rules name literally (no wildcard), in bundle order, once each.
    literal_models: Vec<String>,
    /// The groups the rules' `principals.groups` name literally, in bundle order, once each.
    literal_groups: Vec<String>,
    /// Deny rules first, in bundle order; then allow rules, in bundle order.
    pub(crate) deny_rules: Vec<CompiledRule>,
    pub(crate) allow_rules: Vec<CompiledRule>,
    /// Where to look first (see [`RuleIndex`]).
    pub(crate) rule_index: RuleIndex,
}

impl CompiledPolicy {
    /// Parse, validate and compile a JSON bundle.
    pub fn from_json(json: &[u8]) -> Result<CompiledPolicy, BundleError> {
        compile(&super::parse_bundle(json)?)
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `metadata.revision`, as written (a signed bundle's is a decimal integer).
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// The bundle-wide mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// `limits.max_body_bytes`: the largest request body the engine will read, in bytes.
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

    /// Every endpoint, in bundle order.
    pub fn endpoints(&self) -> &[CompiledEndpoint] {
        &self.endpoints
    }

    /// The endpoint whose `host` is exactly `host` (already lowercase, without port).
    pub fn endpoint(&self, host: &str) -> Option<&CompiledEndpoint> {
        self.endpoint_index(host)
            .and_then(|i| self.endpoints.get(i))
    }

    /// [`CompiledPolicy::endpoint`], as an index into [`CompiledPolicy::endpoints`].
    pub(crate) fn endpoint_index(&self, host: &str) -> Option<usize> {
        self.endpoint_by_host.get(host).copied()
    }

    /// The model ids the rules name literally (no `*` or `?`), in bundle order, each once: the
    /// only models the shell gives their own stat label (every other model is `other`, so the
    /// set of stat names is bounded by the bundle).
    pub fn literal_models(&self) -> &[String] {
        &self.literal_models
    }

    /// The groups the rules' `principals.groups` name literally (no `*` or `?`), in bundle
    /// order, each once: the only caller groups the shell gives their own stat label.
    pub fn literal_groups(&self) -> &[String] {
        &self.literal_groups
    }

    /// Every rule's id, in bundle order (ids are unique): the shell's rule stat labels.
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> + '_ {
        let mut rules: Vec<&CompiledRule> =
            self.deny_rules.iter().chain(&self.allow_rules).collect();
        rules.sort_by_key(|r| r.index);
        rules.into_iter().map(|r| r.id.as_str())
    }

    /// The allowed accounts, when the bundle restricts them.
    pub fn accounts(&self) -> Option<&HashSet<String>> {
        self.accounts.as_ref()
    }

    /// The patterns that allow resources of `kind` (empty: none allowed). `Account` has no
    /// patterns: owner accounts are checked against `accounts`.
    pub(crate) fn resource_patterns(&self, kind: ResourceKind) -> &PatternSet {
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

    /// `credentials`: which API keys requests may carry.
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
    check_aws(bundle.aws.as_ref(), &mut errs);
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
    let mut rule_index = RuleIndex::default();
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
            let patterns = rule.models.iter().flatten();
            match effect {
                Effect::Deny => {
                    rule_index.add_deny(
                        u32::try_from(deny_rules.len()).unwrap_or(u32::MAX),
                        rule.models.is_some(),
                        patterns,
                    );
                    deny_rules.push(compiled);
                }
                Effect::Allow => {
                    rule_index.add_allow(
                        u32::try_from(allow_rules.len()).unwrap_or(u32::MAX),
                        patterns,
                    );
                    allow_rules.push(compiled);
                }
            }
        }
    }

    if !errs.is_empty() {
        return Err(BundleError::Invalid(errs.0));
    }
    let mut literal_models: Vec<String> = Vec::new();
    for pattern in bundle.rules.iter().flat_map(|r| r.models.iter().flatten()) {
        if crate::matcher::is_literal(pattern) && !literal_models.contains(pattern) {
            literal_models.push(pattern.clone());
        }
    }
    let mut literal_groups: Vec<String> = Vec::new();
    let groups = bundle
        .rules
        .iter()
        .flat_map(|r| r.principals.iter())
        .flat_map(|p| &p.groups);
    for pattern in groups {
        if crate::matcher::is_literal(pattern) && !literal_groups.contains(pattern) {
            literal_groups.push(pattern.clone());
        }
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
        literal_models,
        literal_groups,
        deny_rules,
        allow_rules,
        rule_index,
    })
}

/// The rules' model patterns indexed by rule, so a decision looks only at the rules that can
/// match a request's models instead of trying every rule: with thousands of rules the engine
/// stays at the cost of a few hash lookups. The index only narrows the search; every candidate
/// is still checked with the rule's own predicates, in bundle order, so the outcome is the
/// linear scan's (`bedrock-guard explain` runs that scan, and a test compares the two).
#[derive(Debug, Clone, Default)]
pub(crate) struct RuleIndex {
    /// Allow rules' `models` patterns, as written (allow matching is case-sensitive).
    pub(crate) allow: PatternIndex,
    /// Deny rules' `models` patterns, folded to lower case (deny matching ignores case).
    pub(crate) deny: PatternIndex,
    /// Deny rules without `models`: candidates for every request.
    pub(crate) deny_any_model: Vec<u32>,
}

impl RuleIndex {
    fn add_allow<'p>(&mut self, rule: u32, patterns: impl Iterator<Item = &'p String>) {
        for p in patterns {
            self.allow.insert(p, rule);
        }
    }

    fn add_deny<'p>(
        &mut self,
        rule: u32,
        has_models: bool,
        patterns: impl Iterator<Item = &'p String>,
    ) {
        if !has_models {
            self.deny_any_model.push(rule);
        }
        for p in patterns {
            self.deny.insert(&p.to_ascii_lowercase(), rule);
        }
    }
}
