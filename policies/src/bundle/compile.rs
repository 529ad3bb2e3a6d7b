//! Validation and compilation in one pass: every field is checked (all problems collected,
//! each under its path) and turned into the structures the engine looks things up in.

use super::keys;
use crate::identity::{KeySet, Verifier};
use std::collections::{HashMap, HashSet};

use super::cidr::Cidr;
use super::schema::{
    Alerts, Bundle, Credentials, Effect, Endpoint, Identity, ModeSpec, Network, Principals,
    Provider, Resources, Rule, DEFAULT_IDENTITY_HEADER, MAX_TOKEN_BYTES_LIMIT,
};
use super::validate::{self as v, Errors};
use super::BundleError;
use crate::decision::Mode;
use crate::destination::{self, BedrockService, EndpointKind};
use crate::matcher::{FoldedPatternSet, PatternSet};
use crate::request::resource::{is_s3_bucket, parse_arn};
use crate::request::{ModelLocation, Operation, ResourceKind};

// Operation sets are bit sets indexed by the operation's position in `Operation::ALL`.
const _: () = assert!(Operation::ALL.len() <= 64);

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

/// One endpoint, compiled. See `destination` for how requests are matched against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledEndpoint {
    pub host: String,
    pub region: String,
    /// The ARN partition of `region` (`aws`, `aws-us-gov`, `aws-cn`, ...).
    pub partition: &'static str,
    /// A VPC endpoint name or a service name (reached through private DNS).
    pub kind: EndpointKind,
    /// The Bedrock service the host serves (gives the expected SigV4 signing name).
    pub service: BedrockService,
    pub private_dns: bool,
    /// The host is a FIPS endpoint (read from the host's service label).
    pub fips: bool,
    pub cidrs: Vec<Cidr>,
}

/// A set of operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct OpSet(u64);

impl OpSet {
    fn bit(op: Operation) -> u64 {
        Operation::ALL
            .iter()
            .position(|o| *o == op)
            .and_then(|i| 1u64.checked_shl(u32::try_from(i).unwrap_or(u32::MAX)))
            .unwrap_or(0)
    }

    fn insert(&mut self, op: Operation) {
        self.0 |= OpSet::bit(op);
    }

    pub(crate) fn contains(self, op: Operation) -> bool {
        self.0 & OpSet::bit(op) != 0
    }
}

/// `resources`, compiled (see `schema::Resources`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CompiledResources {
    s3_outputs: PatternSet,
    kms_keys: PatternSet,
    lambdas: PatternSet,
    knowledge_bases: PatternSet,
    guardrails: PatternSet,
    /// Always empty.
    none: PatternSet,
}

/// A rule's model patterns, compiled three times: `all` for ordinary ids, `arn_only` (the
/// patterns written as ARNs) for opaque resources, which an allow rule may only name by ARN,
/// and `folded` (every pattern, matched without regard to case) for deny rules, so that no
/// case variant of a denied id escapes the deny.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelMatcher {
    pub(crate) all: PatternSet,
    pub(crate) arn_only: PatternSet,
    pub(crate) folded: FoldedPatternSet,
}

impl ModelMatcher {
    /// Compile a rule's `models` patterns (already validated).
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> ModelMatcher {
        let mut all = PatternSet::default();
        let mut arn_only = PatternSet::default();
        let mut folded = FoldedPatternSet::default();
        for p in patterns {
            all.insert(p);
            folded.insert(p);
            if p.starts_with("arn:") {
                arn_only.insert(p);
            }
        }
        ModelMatcher {
            all,
            arn_only,
            folded,
        }
    }
}

/// Principal conditions (kept compiled for when verified identities arrive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrincipalMatcher {
    pub(crate) subjects: PatternSet,
    pub(crate) groups: PatternSet,
    pub(crate) claims: Vec<(String, PatternSet)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompiledRule {
    pub(crate) id: String,
    /// Deny rules: the effective mode (rule `mode`, forced to dry-run by a dry-run bundle).
    /// Allow rules: always enforce.
    pub(crate) mode: Mode,
    pub(crate) operations: Option<OpSet>,
    pub(crate) models: Option<ModelMatcher>,
    pub(crate) principals: Option<PrincipalMatcher>,
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

fn compile_alerts(a: &Alerts, errs: &mut Errors) {
    match a.cluster.as_deref() {
        None | Some("") => errs.push(
            "alerts.cluster",
            "required: the Envoy cluster that receives deny events",
        ),
        Some(c)
            if !c
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) =>
        {
            errs.push(
                "alerts.cluster",
                format!("{c:?} is not a cluster name (letters, digits, '_', '.', '-')"),
            )
        }
        Some(_) => {}
    }
    match a.path.as_deref() {
        None => errs.push("alerts.path", "required (e.g. \"/events\")"),
        Some(p)
            if !p.starts_with('/')
                || !p.bytes().all(|b| b.is_ascii_graphic())
                || p.contains(['?', '#']) =>
        {
            errs.push(
                "alerts.path",
                "must start with '/' and contain no spaces, query or fragment",
            )
        }
        Some(_) => {}
    }
    let ranges: [(&str, u64, u64, u64); 3] = [
        ("alerts.batch_size", a.batch_size, 1, 500),
        (
            "alerts.flush_interval_seconds",
            a.flush_interval_seconds,
            1,
            60,
        ),
        ("alerts.queue_capacity", a.queue_capacity, 1, 100_000),
    ];
    for (path, value, lo, hi) in ranges {
        if !(lo..=hi).contains(&value) {
            errs.push(path, format!("{value} is out of range ({lo} to {hi})"));
        }
    }
}

fn compile_metadata(bundle: &Bundle, errs: &mut Errors) -> (String, String) {
    let Some(meta) = bundle.metadata.as_ref() else {
        errs.push("metadata", "required (with name and revision)");
        return (String::new(), String::new());
    };
    let name = match meta.name.as_deref() {
        Some(name) => {
            errs.check(|| "metadata.name".into(), v::bundle_name(name));
            name.to_string()
        }
        None => {
            errs.push("metadata.name", "required");
            String::new()
        }
    };
    let revision = match meta.revision.as_deref() {
        Some(rev) => {
            errs.check(|| "metadata.revision".into(), v::revision(rev));
            rev.to_string()
        }
        None => {
            errs.push("metadata.revision", "required");
            String::new()
        }
    };
    (name, revision)
}

fn compile_identity(identity: Option<&Identity>, errs: &mut Errors) -> (String, Vec<Provider>) {
    let Some(identity) = identity else {
        return (DEFAULT_IDENTITY_HEADER.to_string(), Vec::new());
    };
    errs.check(
        || "identity.header".into(),
        v::identity_header(&identity.header),
    );
    if identity.providers.is_empty() {
        errs.push(
            "identity.providers",
            "at least one provider is required (omit identity to run without workload identity)",
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut issuers: HashMap<&str, usize> = HashMap::new();
    for (i, p) in identity.providers.iter().enumerate() {
        let at = format!("identity.providers[{i}]");
        match p.name.as_deref() {
            Some(name) => {
                errs.check(|| format!("{at}.name"), v::identifier(name));
                if let Some(first) = names.insert(name, i) {
                    errs.push(
                        format!("{at}.name"),
                        format!(
                            "duplicate provider name {name:?} (also identity.providers[{first}])"
                        ),
                    );
                }
            }
            None => errs.push(format!("{at}.name"), "required"),
        }
        match p.issuer.as_deref() {
            Some(issuer) => {
                errs.check(|| format!("{at}.issuer"), v::issuer(issuer));
                if let Some(first) = issuers.insert(issuer, i) {
                    errs.push(
                        format!("{at}.issuer"),
                        format!("duplicate issuer {issuer:?} (also identity.providers[{first}]): keys must be bound to one provider"),
                    );
                }
            }
            None => errs.push(format!("{at}.issuer"), "required"),
        }
        if p.audiences.is_empty() {
            errs.push(
                format!("{at}.audiences"),
                "at least one audience is required",
            );
        }
        for (j, aud) in p.audiences.iter().enumerate() {
            errs.check(|| format!("{at}.audiences[{j}]"), v::principal_pattern(aud));
        }
        if p.algorithms.is_empty() {
            errs.push(
                format!("{at}.algorithms"),
                "at least one algorithm is required",
            );
        }
        for (j, alg) in p.algorithms.iter().enumerate() {
            errs.check(|| format!("{at}.algorithms[{j}]"), v::algorithm(alg));
            if p.algorithms
                .get(..j)
                .is_some_and(|before| before.contains(alg))
            {
                errs.push(
                    format!("{at}.algorithms[{j}]"),
                    format!("duplicate algorithm {alg:?}"),
                );
            }
        }
        compile_keys(&at, p, errs);
        if p.leeway_seconds > 300 {
            errs.push(
                format!("{at}.leeway_seconds"),
                format!("{} is out of range (0 to 300)", p.leeway_seconds),
            );
        }
        if !(1..=MAX_TOKEN_BYTES_LIMIT).contains(&p.max_token_bytes) {
            errs.push(
                format!("{at}.max_token_bytes"),
                format!(
                    "{} is out of range (1 to {MAX_TOKEN_BYTES_LIMIT})",
                    p.max_token_bytes
                ),
            );
        }
        if p.max_lifetime_seconds == Some(0) {
            errs.push(format!("{at}.max_lifetime_seconds"), "must be at least 1");
        }
        errs.check(
            || format!("{at}.principal_claim"),
            v::claim_name(&p.principal_claim),
        );
        errs.check(
            || format!("{at}.groups_claim"),
            v::claim_name(&p.groups_claim),
        );
    }
    (identity.header.clone(), identity.providers.clone())
}

fn compile_keys(at: &str, p: &Provider, errs: &mut Errors) {
    if p.jwks.is_none() && p.remote_jwks.is_none() {
        errs.push(at.to_string(), "needs keys: set jwks, remote_jwks, or both");
    }
    if let Some(jwks) = &p.jwks {
        if jwks.keys.is_empty() && p.remote_jwks.is_none() {
            errs.push(
                format!("{at}.jwks.keys"),
                "is empty and there is no remote_jwks: no token could ever be verified",
            );
        }
        let mut kids: HashMap<&str, usize> = HashMap::new();
        for (k, key) in jwks.keys.iter().enumerate() {
            let kat = format!("{at}.jwks.keys[{k}]");
            let Some(obj) = key.as_object() else {
                errs.push(kat, "must be a JSON Web Key object");
                continue;
            };
            match obj.get("kty").and_then(|v| v.as_str()) {
                Some("RSA" | "EC" | "OKP") => {}
                Some("oct") => errs.push(
                    format!("{kat}.kty"),
                    "symmetric (\"oct\") keys are refused: a shared secret must not be distributed in a bundle",
                ),
                Some(other) => errs.push(
                    format!("{kat}.kty"),
                    format!("unsupported key type {other:?} (expected RSA, EC or OKP)"),
                ),
                None => errs.push(format!("{kat}.kty"), "required (RSA, EC or OKP)"),
            }
            match obj.get("kid").and_then(|v| v.as_str()) {
                Some("") | None => errs.push(format!("{kat}.kid"), "required (a non-empty string)"),
                Some(kid) => {
                    if let Some(first) = kids.insert(kid, k) {
                        errs.push(
                            format!("{kat}.kid"),
                            format!("duplicate key id {kid:?} (also {at}.jwks.keys[{first}])"),
                        );
                    }
                }
            }
            for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                if obj.contains_key(private) {
                    errs.push(
                        format!("{kat}.{private}"),
                        "private key material must never be in a bundle; publish the public key only",
                    );
                }
            }
            match obj.get("use") {
                None => {}
                Some(u) if u.as_str() == Some("sig") => {}
                Some(_) => errs.push(format!("{kat}.use"), "must be \"sig\" when present"),
            }
        }
    }
    if let Some(remote) = &p.remote_jwks {
        let rat = format!("{at}.remote_jwks");
        match remote.cluster.as_deref() {
            Some(cluster) => errs.check(|| format!("{rat}.cluster"), v::cluster_name(cluster)),
            None => errs.push(format!("{rat}.cluster"), "required"),
        }
        match remote.path.as_deref() {
            Some(path) => errs.check(|| format!("{rat}.path"), v::jwks_path(path)),
            None => errs.push(format!("{rat}.path"), "required"),
        }
        if !(30..=86_400).contains(&remote.refresh_seconds) {
            errs.push(
                format!("{rat}.refresh_seconds"),
                format!("{} is out of range (30 to 86400)", remote.refresh_seconds),
            );
        }
        if remote.max_stale_seconds < remote.refresh_seconds {
            errs.push(
                format!("{rat}.max_stale_seconds"),
                format!(
                    "{} is less than refresh_seconds ({})",
                    remote.max_stale_seconds, remote.refresh_seconds
                ),
            );
        }
    }
}

fn compile_endpoints(
    endpoints: &[Endpoint],
    fips_required: bool,
    errs: &mut Errors,
) -> (Vec<CompiledEndpoint>, HashMap<String, usize>) {
    if endpoints.is_empty() {
        errs.push(
            "endpoints",
            "at least one endpoint is required (requests may only go to listed endpoints)",
        );
    }
    let mut compiled = Vec::with_capacity(endpoints.len());
    let mut by_host: HashMap<String, usize> = HashMap::new();
    for (i, ep) in endpoints.iter().enumerate() {
        let at = format!("endpoints[{i}]");
        let region_ok = match ep.region.as_deref() {
            Some(region) => {
                let r = v::region(region);
                let ok = r.is_ok();
                errs.check(|| format!("{at}.region"), r);
                ok
            }
            None => {
                errs.push(format!("{at}.region"), "required");
                false
            }
        };
        let mut shape = None;
        match ep.host.as_deref() {
            Some(host) => {
                let region = ep.region.as_deref().filter(|_| region_ok);
                let dns_ok = v::host(host, region);
                if dns_ok.is_ok() {
                    match destination::parse_endpoint_host(host) {
                        Ok(s) => shape = Some(s),
                        Err(message) => errs.push(format!("{at}.host"), message),
                    }
                }
                errs.check(|| format!("{at}.host"), dns_ok);
                if let Some(first) = by_host.get(host) {
                    errs.push(
                        format!("{at}.host"),
                        format!("duplicate host {host:?} (also endpoints[{first}])"),
                    );
                }
            }
            None => errs.push(format!("{at}.host"), "required"),
        }
        let mut cidrs = Vec::with_capacity(ep.cidrs.len());
        for (j, text) in ep.cidrs.iter().enumerate() {
            match Cidr::parse(text) {
                Ok(c) => {
                    if cidrs.contains(&c) {
                        errs.push(format!("{at}.cidrs[{j}]"), format!("duplicate block {c}"));
                    }
                    cidrs.push(c);
                }
                Err(message) => errs.push(format!("{at}.cidrs[{j}]"), message),
            }
        }
        if let Some(shape) = shape {
            check_endpoint_shape(&at, ep, &shape, fips_required, errs);
        }
        if ep.private_dns && ep.cidrs.is_empty() {
            errs.push(
                format!("{at}.cidrs"),
                "a private_dns endpoint needs cidrs: its host name also resolves to the public endpoint, so only the address proves the PrivateLink path",
            );
        }
        let host = ep.host.clone().unwrap_or_default();
        let region = ep.region.clone().unwrap_or_default();
        by_host.entry(host.clone()).or_insert(i);
        compiled.push(CompiledEndpoint {
            partition: crate::engine::partition_of_region(&region),
            host,
            region,
            kind: shape.map(|s| s.kind).unwrap_or_default(),
            service: shape.map(|s| s.service).unwrap_or_default(),
            private_dns: ep.private_dns,
            fips: shape.is_some_and(|s| s.fips),
            cidrs,
        });
    }
    (compiled, by_host)
}

/// The rules that depend on what the host is: private DNS only (and always) for service
/// names, the `fips` flag and `network.fips_required` against the host's service label.
fn check_endpoint_shape(
    at: &str,
    ep: &Endpoint,
    shape: &destination::HostShape<'_>,
    fips_required: bool,
    errs: &mut Errors,
) {
    match shape.kind {
        EndpointKind::ServiceName if !ep.private_dns => errs.push(
            format!("{at}.private_dns"),
            "a service name reaches PrivateLink only through the VPC endpoint's private DNS zone: \
             set private_dns: true and list the endpoint's cidrs, or name the endpoint by its \
             endpoint-specific vpce-....vpce.amazonaws.com name",
        ),
        EndpointKind::VpcEndpoint if ep.private_dns => errs.push(
            format!("{at}.private_dns"),
            "applies to service names only: an endpoint-specific vpce name always resolves to \
             the endpoint's own addresses; remove private_dns",
        ),
        _ => {}
    }
    if ep.fips && !shape.fips {
        errs.push(
            format!("{at}.fips"),
            "the host is not a FIPS endpoint (its service label has no -fips); \
             use bedrock-runtime-fips or bedrock-agent-runtime-fips",
        );
    }
    if fips_required && !shape.fips {
        errs.push(
            format!("{at}.host"),
            "network.fips_required is set but this is not a FIPS endpoint; use the \
             bedrock-runtime-fips (or bedrock-agent-runtime-fips) host",
        );
    }
}

/// `network.profile_geographies`: each a profile prefix (`[a-z-]`, 2 to 8 characters), no
/// duplicates. An empty list is allowed and refuses every cross-region profile.
fn compile_network(network: &Network, errs: &mut Errors) -> Option<Vec<String>> {
    let geographies = network.profile_geographies.as_ref()?;
    for (j, geo) in geographies.iter().enumerate() {
        errs.check(
            || format!("network.profile_geographies[{j}]"),
            v::profile_geography(geo),
        );
        if geographies
            .get(..j)
            .is_some_and(|before| before.contains(geo))
        {
            errs.push(
                format!("network.profile_geographies[{j}]"),
                format!("duplicate geography {geo:?}"),
            );
        }
    }
    Some(geographies.clone())
}

fn compile_accounts(accounts: Option<&[String]>, errs: &mut Errors) -> Option<HashSet<String>> {
    let accounts = accounts?;
    if accounts.is_empty() {
        errs.push(
            "accounts",
            "is empty, which would refuse every account-scoped ARN; omit the field to allow any account",
        );
    }
    let mut set = HashSet::with_capacity(accounts.len());
    for (i, account) in accounts.iter().enumerate() {
        errs.check(|| format!("accounts[{i}]"), v::account(account));
        if !set.insert(account.clone()) {
            errs.push(
                format!("accounts[{i}]"),
                format!("duplicate account {account:?}"),
            );
        }
    }
    Some(set)
}

fn compile_rule(
    i: usize,
    rule: &Rule,
    bundle_mode: Mode,
    has_identity: bool,
    errs: &mut Errors,
) -> Option<(Effect, CompiledRule)> {
    let at = format!("rules[{i}]");
    let before = errs.0.len();

    match rule.id.as_deref() {
        Some(id) => errs.check(|| format!("{at}.id"), v::identifier(id)),
        None => errs.push(format!("{at}.id"), "required"),
    }
    if rule.effect.is_none() {
        errs.push(format!("{at}.effect"), "required (\"allow\" or \"deny\")");
    }
    if let Some(text) = rule.description.as_deref() {
        errs.check(|| format!("{at}.description"), v::description(text));
    }
    if rule.effect == Some(Effect::Allow) && rule.mode.is_some() {
        errs.push(
            format!("{at}.mode"),
            "only deny rules take a mode: a dry-run allow has no meaning (set the bundle's mode to \"dry-run\" to trial a whole bundle)",
        );
    }

    let operations = rule.operations.as_deref().map(|ops| {
        let mut set = OpSet::default();
        if ops.is_empty() {
            errs.push(
                format!("{at}.operations"),
                "must not be empty (omit it to match every operation)",
            );
        }
        for (j, name) in ops.iter().enumerate() {
            match Operation::from_name(name) {
                Some(op) => {
                    if set.contains(op) {
                        errs.push(
                            format!("{at}.operations[{j}]"),
                            format!("duplicate operation {name:?}"),
                        );
                    }
                    set.insert(op);
                }
                None => errs.push(
                    format!("{at}.operations[{j}]"),
                    format!("unknown operation {name:?} (known: {})", known_operations()),
                ),
            }
        }
        (set, ops)
    });

    let models = rule.models.as_deref().map(|patterns| {
        if patterns.is_empty() {
            errs.push(
                format!("{at}.models"),
                "must not be empty (omit it to match every model)",
            );
        }
        for (j, p) in patterns.iter().enumerate() {
            errs.check(|| format!("{at}.models[{j}]"), v::model_pattern(p));
            if patterns.get(..j).is_some_and(|before| before.contains(p)) {
                errs.push(
                    format!("{at}.models[{j}]"),
                    format!("duplicate pattern {p:?}"),
                );
            }
        }
        ModelMatcher::new(patterns.iter().map(String::as_str))
    });

    if let (Some(_), Some((_, names))) = (&models, &operations) {
        let any_with_model = names
            .iter()
            .filter_map(|n| Operation::from_name(n))
            .any(|op| op.model_location() != ModelLocation::None);
        let all_known = names.iter().all(|n| Operation::from_name(n).is_some());
        if !names.is_empty() && all_known && !any_with_model {
            errs.push(
                format!("{at}.models"),
                "can never match: none of the rule's operations names a model",
            );
        }
    }

    if rule.effect == Some(Effect::Allow) && rule.models.is_none() && rule.operations.is_none() {
        errs.push(
            at.clone(),
            "an allow rule without models or operations would allow everything; name models or operations",
        );
    }
    // An allow rule without `models` would allow any model (opaque ones included) for its
    // operations: every operation that can carry a model needs `models` (`["*"]` for any
    // transparent model).
    if let (Some(Effect::Allow), None, Some((_, names))) = (rule.effect, &rule.models, &operations)
    {
        let carrying: Vec<&str> = names
            .iter()
            .filter_map(|n| Operation::from_name(n))
            .filter(|op| op.model_location() != ModelLocation::None)
            .map(Operation::as_str)
            .collect();
        if !carrying.is_empty() {
            errs.push(
                format!("{at}.models"),
                format!(
                    "required: {} can name a model, so this allow rule must say which (models: \
                     [\"*\"] allows any transparent model; opaque resources need ARN patterns); \
                     put the operations that name no model ({}) in a rule of their own",
                    carrying.join(", "),
                    model_less_operations()
                ),
            );
        }
    }

    let principals = rule
        .principals
        .as_ref()
        .map(|p| compile_principals(&at, p, has_identity, errs));

    if errs.0.len() != before {
        return None;
    }
    let effect = rule.effect?;
    let mode = match effect {
        Effect::Allow => Mode::Enforce,
        Effect::Deny => match (bundle_mode, rule.mode) {
            (Mode::DryRun, _) | (_, Some(ModeSpec::DryRun)) => Mode::DryRun,
            _ => Mode::Enforce,
        },
    };
    Some((
        effect,
        CompiledRule {
            id: rule.id.clone().unwrap_or_default(),
            mode,
            operations: operations.map(|(set, _)| set),
            models,
            principals,
        },
    ))
}

fn compile_principals(
    at: &str,
    p: &Principals,
    has_identity: bool,
    errs: &mut Errors,
) -> PrincipalMatcher {
    let pat = format!("{at}.principals");
    if !has_identity {
        errs.push(
            pat.clone(),
            "principals need an identity block: without verified tokens no caller can match",
        );
    }
    if p.subjects.is_empty() && p.groups.is_empty() && p.claims.0.is_empty() {
        errs.push(
            pat.clone(),
            "names no subjects, groups or claims; omit principals to match every caller",
        );
    }
    let mut set_of = |field: &str, values: &[String]| {
        for (j, value) in values.iter().enumerate() {
            errs.check(
                || format!("{pat}.{field}[{j}]"),
                v::principal_pattern(value),
            );
        }
        PatternSet::new(values.iter().map(String::as_str))
    };
    let subjects = set_of("subjects", &p.subjects);
    let groups = set_of("groups", &p.groups);
    let mut claims = Vec::with_capacity(p.claims.0.len());
    for (name, values) in &p.claims.0 {
        let cat = format!("{pat}.claims.{name}");
        errs.check(|| format!("{pat}.claims"), v::claim_name(name));
        if values.is_empty() {
            errs.push(cat.clone(), "must list at least one pattern");
        }
        for (j, value) in values.iter().enumerate() {
            errs.check(|| format!("{cat}[{j}]"), v::principal_pattern(value));
        }
        claims.push((
            name.clone(),
            PatternSet::new(values.iter().map(String::as_str)),
        ));
    }
    PrincipalMatcher {
        subjects,
        groups,
        claims,
    }
}

fn model_less_operations() -> String {
    Operation::ALL
        .iter()
        .filter(|op| op.model_location() == ModelLocation::None)
        .map(|op| op.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `resources`: each list's patterns checked for their kind's shape, no duplicates.
fn compile_resources(r: &Resources, errs: &mut Errors) -> CompiledResources {
    let mut list = |field: &str, kind: ResourceKind, patterns: &[String]| {
        let mut set = PatternSet::default();
        for (j, p) in patterns.iter().enumerate() {
            let at = || format!("resources.{field}[{j}]");
            errs.check(at, resource_pattern(kind, p));
            if patterns.get(..j).is_some_and(|before| before.contains(p)) {
                errs.push(at(), format!("duplicate pattern {p:?}"));
            }
            set.insert(p);
            // `s3://bucket` stands for the whole bucket.
            if kind == ResourceKind::S3Output && !p.trim_start_matches("s3://").contains('/') {
                set.insert(&format!("{p}/*"));
            }
        }
        set
    };
    CompiledResources {
        s3_outputs: list("s3_outputs", ResourceKind::S3Output, &r.s3_outputs),
        kms_keys: list("kms_keys", ResourceKind::KmsKey, &r.kms_keys),
        lambdas: list("lambdas", ResourceKind::Lambda, &r.lambdas),
        knowledge_bases: list(
            "knowledge_bases",
            ResourceKind::KnowledgeBase,
            &r.knowledge_bases,
        ),
        guardrails: list("guardrails", ResourceKind::Guardrail, &r.guardrails),
        none: PatternSet::default(),
    }
}

/// One `resources` pattern: printable ASCII, and the shape of its kind with wildcards allowed
/// where the kind allows them (never in an S3 bucket name, never in an ARN's service).
fn resource_pattern(kind: ResourceKind, p: &str) -> Result<(), String> {
    if p.is_empty() || p.len() > 2048 {
        return Err("must be 1 to 2048 characters".to_string());
    }
    if !p.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(format!(
            "{p:?} contains whitespace, a control character or a non-ASCII character"
        ));
    }
    let arn_service = |p: &str, service: &str| -> Result<(), String> {
        let parts: Vec<&str> = p.splitn(6, ':').collect();
        let shaped = parts.len() == 6 && parts.first() == Some(&"arn");
        if !shaped || parts.get(2) != Some(&service) {
            return Err(format!(
                "{p:?} must be an ARN of service {service} (arn:PARTITION:{service}:REGION:ACCOUNT:RESOURCE; wildcards allowed outside the service)"
            ));
        }
        // With the wildcards read as literal characters, the fixed parts must still parse.
        let literal = p.replace(['*', '?'], "x");
        if parse_arn(&literal).is_none() && !p.contains(['*', '?']) {
            return Err(format!("{p:?} is not a well-formed ARN"));
        }
        Ok(())
    };
    match kind {
        ResourceKind::S3Output => {
            let Some(rest) = p.strip_prefix("s3://") else {
                return Err(format!("{p:?} must start with s3://"));
            };
            let bucket = rest.split_once('/').map_or(rest, |(b, _)| b);
            if !is_s3_bucket(bucket) {
                return Err(format!(
                    "{p:?}: write the bucket name out (3 to 63 characters of a-z, 0-9, '.', '-'; no wildcard): a wildcard in the bucket could match another owner's bucket"
                ));
            }
            Ok(())
        }
        ResourceKind::KmsKey => arn_service(p, "kms"),
        ResourceKind::Lambda => arn_service(p, "lambda"),
        ResourceKind::KnowledgeBase | ResourceKind::Guardrail if p.starts_with("arn:") => {
            arn_service(p, "bedrock")
        }
        ResourceKind::KnowledgeBase => {
            if (1..=10).contains(&p.len())
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?')
            {
                Ok(())
            } else {
                Err(format!(
                    "{p:?} must be a knowledge base id ([0-9a-zA-Z]{{1,10}}, wildcards allowed) or an ARN"
                ))
            }
        }
        ResourceKind::Guardrail => {
            if (1..=64).contains(&p.len())
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'*' || b == b'?')
            {
                Ok(())
            } else {
                Err(format!(
                    "{p:?} must be a guardrail id ([a-z0-9]{{1,64}}, wildcards allowed) or an ARN"
                ))
            }
        }
        ResourceKind::Account => Ok(()),
    }
}

fn known_operations() -> String {
    Operation::ALL
        .iter()
        .map(|op| op.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
