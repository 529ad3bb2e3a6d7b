//! The decision flow: head checks, routing, destination, model canonicalisation, rules.
//!
//! # Order of evaluation
//!
//! `evaluate_head` runs, in order, and stops at the first refusal:
//! 1. `request::check_head` (method shape, CONNECT/Upgrade, repeated security headers, ...);
//! 2. `request::classify` (the operation; anything outside the catalogue is refused);
//! 3. the destination (`destination::resolve`): `:authority`, canonicalised (lower-cased,
//!    without a `:443` or `:80` port; user information, IP literals, other ports, trailing
//!    dots and malformed names refused), must be exactly one endpoint's `host`, or a zonal
//!    name of a listed VPC endpoint; the original destination address, when the proxy knows
//!    it, must be inside that endpoint's `cidrs`; that endpoint gives the region;
//! 4. the credential (`credentials::detect`), see below;
//! 5. the model: a path-carried id is canonicalised and decided at once; a body-carried one
//!    makes the request wait for its body (`HeadOutcome::NeedBody`) once the head says the body
//!    is JSON, not encoded, and not declared larger than the limit; operations that name no
//!    model are decided on their operation alone.
//!
//! A refusal at steps 3 and 4 or at the identity check keeps the operation and, when the
//! path carries a model id that canonicalises, that model (`Decision::models`, hence the audit
//! record's `modelId`); an id that does not parse is left out, and a body-carried model is
//! not known then (the body of a refused request is never read). Verdict and reason are
//! those of the check that refused.
//!
//! # Credential checks
//!
//! * **SigV4**: the credential scope's region must be the endpoint's region and its service
//!   the endpoint's signing name (`bedrock`; `bedrock-mantle` for mantle hosts), else
//!   `region_not_allowed` naming which; a `SignedHeaders` list that includes the identity
//!   header is `header_invalid` (the filter removes that header before forwarding, which
//!   would break the signature: clients must not sign it). A malformed SigV4 header, an
//!   unknown scheme, a malformed bearer token, or both `Authorization` and `x-api-key` is
//!   `header_invalid`.
//! * **Bedrock API keys** (`Authorization: Bearer` or `x-api-key`) are `bearer_key_not_allowed`
//!   unless `credentials.allow_bearer_api_keys`; long-term (`ABSK`) keys also need
//!   `credentials.allow_long_term_api_keys`. A bearer token of no known Bedrock format could be
//!   either kind, so it needs both settings.
//! * **No credential** is not refused here: in the proxy-signed shape Envoy signs later.
//!
//! # Rule semantics (`evaluate_models`)
//!
//! * **ARN checks come first**, for every model given as an ARN: its partition must be the
//!   endpoint region's partition and its region must be the endpoint's region (an ARN without
//!   a region, such as the IAM-only global foundation-model form, is refused), else
//!   `region_not_allowed`; when the bundle lists `accounts`, an ARN's non-empty account must
//!   be one of them, else `account_not_allowed`.
//! * **Resources** next (`check_named`): every other resource the request names (S3 output
//!   locations, KMS keys, Lambda functions, knowledge bases, guardrails, owner accounts,
//!   async invocation ARNs) must have its API shape's grammar, an ARN of it must be in the
//!   endpoint's partition and region and (when `accounts` is set) an allowed account, and a
//!   resource of a listed kind must match the bundle's `resources` patterns for that kind,
//!   else `resource_not_allowed` (a kind with no pattern is refused wherever it appears).
//! * **Cross-region profile geographies** next, for every plain or ARN system inference
//!   profile: when `network.profile_geographies` is set its prefix must be listed; a known
//!   geography must serve the endpoint's region (`aws::geography_serves`); an unknown
//!   prefix is allowed only when listed explicitly. Else `region_not_allowed`.
//! * **Default deny, explicit deny wins** (as in IAM). A rule matches when its `operations`
//!   (if set) contain the operation, its `models` (if set) match, and its `principals` (if
//!   set) match the verified caller: every category it names (`subjects`, `groups`, each
//!   `claims` entry) must match, any one pattern within a category. An unauthenticated
//!   request never matches a rule that names principals. An allow rule that names an
//!   operation which can carry a model must name `models` (validation refuses it otherwise).
//! * **Identity** (after the credential checks): when the bundle configures identity
//!   providers, a request without a verified token is refused (`identity_missing`,
//!   `identity_invalid` with the verifier's detail code, or `policy_unavailable` when the
//!   issuer's keys are unavailable). The shell authenticates (`identity::authenticate`) and
//!   passes the outcome in `RequestFacts::caller`.
//! * **Every model must be allowed.** A request naming several models (agent-runtime bodies)
//!   is allowed only if each model is allowed by some allow rule; the rule reported is the one
//!   that allowed the first model. A request naming no model is matched by an allow rule
//!   without `models`, or by one that names its operation explicitly in `operations`.
//! * **Allow matching** tries each pattern against the canonical id and, for ARNs, also
//!   against the ARN's resource id, so `anthropic.claude-*` allows
//!   `arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-...` and
//!   `us.anthropic.claude-*` allows the system inference-profile ARN of that profile. Opaque
//!   ARNs (application inference profiles, provisioned, custom and imported models, prompts,
//!   prompt routers, SageMaker endpoints: anything that hides which model runs) are allowed
//!   only by a pattern written as an ARN (starting with `arn:`) that matches the whole ARN, so
//!   `*` alone never allows an opaque resource. A bare opaque name (a plain id without a `.`,
//!   which can only name such a resource) is allowed only by a pattern equal to it, never by
//!   a wildcard.
//! * **Deny matching is broad**: without regard to case, patterns are tried against the
//!   canonical id and the
//!   resource id (opaque or not) and also against the base model id behind a system
//!   inference profile (`us.anthropic.claude-opus-...` is denied by `anthropic.claude-opus-*`),
//!   as IAM does: invoking a profile also needs the foundation model, so a deny on the model
//!   blocks its profiles too.
//! * **Outcome**: an enforced deny rule that matches refuses with `model_denied` (or
//!   `operation_not_allowed` when the request names no model) and the rule's id. Otherwise, if
//!   some model (or, for model-less requests, the operation) has no matching allow rule, the
//!   refusal is `model_not_allowed` (`operation_not_allowed`). Otherwise, if a dry-run deny
//!   rule matches, the verdict is `model_denied` in dry-run mode (recorded, request passes).
//!   Otherwise the request is allowed, with the allow rule's id.
//! * **Bundle-wide dry-run** turns every refusal into a dry-run one (recorded, not enforced),
//!   structural refusals included, except `body_too_large` (a body that was not buffered
//!   cannot be forwarded) and `connect_not_allowed` (a tunnel cannot be inspected at all).
//!
//! Per request the engine only looks things up: everything is compiled in `bundle::compile`,
//! and the allow path allocates nothing beyond the decision's own strings.

use std::sync::Arc;

use crate::aws;
use crate::bundle::{
    CompiledEndpoint, CompiledPolicy, CompiledRule, ModelMatcher, PrincipalMatcher,
};
use crate::credentials::{self, ApiKeyKind, Credential};
use crate::decision::{Decision, Mode, Reason};
use crate::destination;
use crate::identity::{Caller, Principal};
use crate::request::resource::{self, ResourceArn};
use crate::request::{
    self, ModelLocation, ModelRef, Operation, PathResource, RequestFacts, ResourceKind,
};

/// The ARN partition a region belongs to (an AWS naming fact; see `aws`).
pub use crate::aws::partition_of_region;

/// The checks of a decision, in the order the engine makes them, each with the reason codes
/// it can refuse with. `docs/policy.md` ("How a request is decided") lists exactly these rows
/// (a test keeps them in step) and `tests/engine/engine_order.rs` shows the order holds: a request
/// that fails two checks is refused by the earlier one. The first refusal ends the decision.
pub const DECISION_STEPS: &[(&str, &[Reason])] = &[
    (
        "request head",
        &[
            Reason::ConnectNotAllowed,
            Reason::HeaderInvalid,
            Reason::DestinationNotPrivatelink,
        ],
    ),
    (
        "route",
        &[
            Reason::OperationUnknown,
            Reason::ModelUnparseable,
            Reason::QueryNotAllowed,
        ],
    ),
    ("destination", &[Reason::DestinationNotPrivatelink]),
    (
        "credential",
        &[
            Reason::RegionNotAllowed,
            Reason::HeaderInvalid,
            Reason::BearerKeyNotAllowed,
        ],
    ),
    (
        "identity",
        &[
            Reason::IdentityMissing,
            Reason::IdentityInvalid,
            Reason::PolicyUnavailable,
        ],
    ),
    (
        "model id and body head",
        &[
            Reason::ModelUnparseable,
            Reason::ModelInvalid,
            Reason::BodyUnparseable,
            Reason::BodyTooLarge,
        ],
    ),
    (
        "body",
        &[
            Reason::BodyTooLarge,
            Reason::BodyUnparseable,
            Reason::ModelUnparseable,
            Reason::ModelInvalid,
        ],
    ),
    (
        "model ARNs",
        &[Reason::RegionNotAllowed, Reason::AccountNotAllowed],
    ),
    (
        "resources",
        &[
            Reason::ResourceNotAllowed,
            Reason::RegionNotAllowed,
            Reason::AccountNotAllowed,
        ],
    ),
    ("geography", &[Reason::RegionNotAllowed]),
    (
        "enforced deny rules",
        &[Reason::ModelDenied, Reason::OperationNotAllowed],
    ),
    (
        "allow rules",
        &[Reason::ModelNotAllowed, Reason::OperationNotAllowed],
    ),
    ("dry-run deny rules", &[Reason::ModelDenied]),
    ("allowed", &[Reason::Allowed]),
];

/// A request whose decision waits for its body.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub operation: Operation,
    /// The body limit in force for this request.
    pub max_body_bytes: u64,
    /// The region of the endpoint the request is bound for.
    pub endpoint_region: String,
    /// The verified caller, when the bundle has identity providers.
    pub principal: Option<Arc<Principal>>,
    /// A resource the path names (Retrieve's knowledge base), checked with the body's.
    pub path_resource: Option<PathResource>,
}

/// A resource other than a model that a request names (see [`ResourceKind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named<'a> {
    /// A resource the bundle must list (and whose ARN, if it is one, is checked).
    Listed(ResourceKind, &'a str),
    /// An async invocation ARN (GetAsyncInvoke): its ARN is checked, nothing is listed.
    AsyncInvocation(&'a str),
}

impl<'a> Named<'a> {
    fn of_path(resource: &'a PathResource) -> Named<'a> {
        match resource {
            PathResource::AsyncInvocation(arn) => Named::AsyncInvocation(arn),
            PathResource::Listed(kind, value) => Named::Listed(*kind, value),
        }
    }
}

/// What the head of a request leads to.
#[derive(Debug, Clone, PartialEq)]
pub enum HeadOutcome {
    Decided(Decision),
    NeedBody(Pending),
}

/// Decide what can be decided from the request head.
pub fn evaluate_head(policy: &CompiledPolicy, facts: &RequestFacts) -> HeadOutcome {
    match head(policy, facts) {
        HeadOutcome::Decided(d) => HeadOutcome::Decided(finish(policy, d)),
        pending => pending,
    }
}

/// Decide a request that waited for its body. `body` is the complete body.
pub fn evaluate_body(policy: &CompiledPolicy, pending: &Pending, body: &[u8]) -> Decision {
    finish(policy, body_decision(policy, pending, body))
}

/// Head then (when needed) body, in one call: for the CLI and tests.
pub fn decide(policy: &CompiledPolicy, facts: &RequestFacts) -> Decision {
    match evaluate_head(policy, facts) {
        HeadOutcome::Decided(d) => d,
        HeadOutcome::NeedBody(p) => evaluate_body(policy, &p, facts.body.unwrap_or_default()),
    }
}

/// Apply the bundle-wide mode to a finished decision.
fn finish(policy: &CompiledPolicy, mut d: Decision) -> Decision {
    if policy.mode() == Mode::DryRun
        && !d.is_allow()
        && !matches!(d.reason, Reason::BodyTooLarge | Reason::ConnectNotAllowed)
    {
        d.mode = Mode::DryRun;
    }
    d
}

fn head(policy: &CompiledPolicy, facts: &RequestFacts) -> HeadOutcome {
    let info = match request::check_head(facts, policy.identity_header()) {
        Ok(info) => info,
        Err(e) => return HeadOutcome::Decided(Decision::deny(e.reason(), e.to_string())),
    };
    let route = match request::classify(facts.method, facts.path) {
        Ok(route) => route,
        Err(e) => return HeadOutcome::Decided(Decision::deny(e.reason(), e.to_string())),
    };
    let op = route.operation;
    let path_named = route.resource.as_ref().map(Named::of_path);
    let path_named = path_named.as_slice();
    // A refusal before the model step (destination, credential, identity) still records the
    // model a path names, when it parses: the audit record then says what was asked for. The
    // id is parsed only for such a refusal, and a body is never read for one.
    let refuse_early = |reason: Reason, detail: &str| {
        let decision = Decision::deny(reason, detail).with_operation(op);
        let model = match (op.model_location(), route.model_segment) {
            (ModelLocation::Path, Some(segment)) => request::parse_path_model_id(segment).ok(),
            _ => None,
        };
        HeadOutcome::Decided(match model {
            Some(model) => decision.with_models(std::slice::from_ref(&model)),
            None => decision,
        })
    };
    let endpoint = match destination::resolve(policy, facts.authority, facts.original_destination) {
        Ok(endpoint) => endpoint,
        Err(e) => return refuse_early(e.reason(), &e.to_string()),
    };
    if let Err((reason, detail)) = check_credentials(policy, endpoint, facts.headers) {
        return refuse_early(reason, &detail);
    }
    let principal = match caller_principal(policy, &facts.caller) {
        Ok(principal) => principal,
        Err((reason, detail)) => return refuse_early(reason, detail),
    };
    let refuse = |reason: Reason, detail: &str| {
        HeadOutcome::Decided(Decision::deny(reason, detail).with_operation(op))
    };
    let who = principal.as_deref();
    match op.model_location() {
        ModelLocation::Path => {
            let Some(segment) = route.model_segment else {
                return refuse(Reason::ModelUnparseable, "the path names no model");
            };
            match request::parse_path_model_id(segment) {
                Ok(model) => HeadOutcome::Decided(evaluate_request(
                    policy,
                    op,
                    std::slice::from_ref(&model),
                    path_named,
                    &endpoint.region,
                    who,
                )),
                Err(e) => refuse(e.reason(), &e.to_string()),
            }
        }
        ModelLocation::BodyField(_) | ModelLocation::BodyAnywhere(_) => {
            if let Some(problem) = info.content_type_refusal() {
                return refuse(Reason::BodyUnparseable, &problem.to_string());
            }
            if !info.content_encoding_identity {
                return refuse(
                    Reason::BodyUnparseable,
                    "content-encoding must be absent or identity",
                );
            }
            let max_body_bytes = policy.max_body_bytes();
            if info.content_length.is_some_and(|len| len > max_body_bytes) {
                return refuse(
                    Reason::BodyTooLarge,
                    "content-length exceeds the policy's body limit",
                );
            }
            HeadOutcome::NeedBody(Pending {
                operation: op,
                max_body_bytes,
                endpoint_region: endpoint.region.clone(),
                principal,
                path_resource: route.resource.clone(),
            })
        }
        ModelLocation::None => HeadOutcome::Decided(evaluate_request(
            policy,
            op,
            &[],
            path_named,
            &endpoint.region,
            who,
        )),
    }
}

fn body_decision(policy: &CompiledPolicy, pending: &Pending, body: &[u8]) -> Decision {
    let op = pending.operation;
    let refuse = |reason: Reason, detail: &str| Decision::deny(reason, detail).with_operation(op);
    let too_large = u64::try_from(body.len()).map_or(true, |len| len > pending.max_body_bytes);
    if too_large {
        return refuse(Reason::BodyTooLarge, "body exceeds the policy's body limit");
    }
    let location = op.model_location();
    let required = match location {
        ModelLocation::BodyField(_) => true,
        ModelLocation::BodyAnywhere(_) => false,
        ModelLocation::Path | ModelLocation::None => {
            return refuse(
                Reason::PolicyUnavailable,
                "operation does not carry its model in the body",
            )
        }
    };
    if required && body.is_empty() {
        return refuse(Reason::BodyUnparseable, "the body is empty");
    }
    let values = match request::extract_body_values(body, location, op.resource_fields()) {
        Ok(values) => values,
        Err(e) => return refuse(e.reason(), &e.to_string()),
    };
    if required && values.models.is_empty() {
        return refuse(Reason::BodyUnparseable, "the body names no model");
    }
    let mut models = Vec::with_capacity(values.models.len());
    for value in &values.models {
        match request::parse_body_model_id(value) {
            Ok(model) => models.push(model),
            Err(e) => return refuse(e.reason(), &e.to_string()).with_models(&models),
        }
    }
    let writes_output = values
        .resources
        .iter()
        .any(|(kind, _)| *kind == ResourceKind::S3Output);
    if op == Operation::StartAsyncInvoke && !writes_output {
        return refuse(
            Reason::BodyUnparseable,
            "StartAsyncInvoke names no outputDataConfig.s3OutputDataConfig.s3Uri",
        )
        .with_models(&models);
    }
    let mut named: Vec<Named<'_>> = pending.path_resource.iter().map(Named::of_path).collect();
    named.extend(
        values
            .resources
            .iter()
            .map(|(kind, value)| Named::Listed(*kind, value)),
    );
    evaluate_request(
        policy,
        op,
        &models,
        &named,
        &pending.endpoint_region,
        pending.principal.as_deref(),
    )
}

/// The credential checks (see the module documentation).
fn check_credentials(
    policy: &CompiledPolicy,
    endpoint: &CompiledEndpoint,
    headers: &[(&str, &[u8])],
) -> Result<(), (Reason, String)> {
    let identity_header = policy.identity_header();
    let allowed = policy.credentials();
    match credentials::detect(headers, identity_header) {
        Credential::None => Ok(()),
        Credential::SigV4(scope) => {
            if scope.region != endpoint.region {
                return Err((
                    Reason::RegionNotAllowed,
                    format!(
                        "SigV4 credential scope names region {}, the endpoint is in {}",
                        scope.region, endpoint.region
                    ),
                ));
            }
            let expected = endpoint.service.signing_name();
            if scope.service != expected {
                return Err((
                    Reason::RegionNotAllowed,
                    format!(
                        "SigV4 credential scope names service {}, the endpoint expects {expected}",
                        scope.service
                    ),
                ));
            }
            // The header is only removed when the bundle verifies identities.
            if policy.has_identity() && scope.signs(identity_header) {
                return Err((
                    Reason::HeaderInvalid,
                    format!(
                        "SignedHeaders includes the identity header {identity_header}, which is \
                         removed before forwarding: clients must not sign it"
                    ),
                ));
            }
            Ok(())
        }
        Credential::ApiKey { kind, .. } => {
            let permitted = allowed.allow_bearer_api_keys
                && (kind == ApiKeyKind::ShortTerm || allowed.allow_long_term_api_keys);
            if permitted {
                Ok(())
            } else {
                Err((
                    Reason::BearerKeyNotAllowed,
                    format!("{}s are not allowed by this policy", kind.describe()),
                ))
            }
        }
        Credential::UnknownBearer { .. } => {
            if allowed.allow_bearer_api_keys && allowed.allow_long_term_api_keys {
                Ok(())
            } else {
                Err((
                    Reason::BearerKeyNotAllowed,
                    "a bearer token of no known Bedrock API key format is not allowed by this policy"
                        .to_string(),
                ))
            }
        }
        Credential::Malformed(e) => Err((Reason::HeaderInvalid, e.to_string())),
    }
}

/// Decide a recognised operation and its canonical models against the rules. See the module
/// documentation for the semantics.
pub fn evaluate_models(
    policy: &CompiledPolicy,
    op: Operation,
    models: &[ModelRef],
    endpoint_region: &str,
    principal: Option<&Principal>,
) -> Decision {
    evaluate_request(policy, op, models, &[], endpoint_region, principal)
}

/// Decide a recognised operation, its canonical models and the other resources it names.
/// See the module documentation for the semantics and the order of the checks.
pub fn evaluate_request(
    policy: &CompiledPolicy,
    op: Operation,
    models: &[ModelRef],
    named: &[Named<'_>],
    endpoint_region: &str,
    principal: Option<&Principal>,
) -> Decision {
    let refuse = |reason: Reason, detail: String| {
        Decision::deny(reason, detail)
            .with_operation(op)
            .with_models(models)
    };

    let partition = partition_of_region(endpoint_region);
    for model in models {
        let ModelRef::Arn(arn) = model else { continue };
        if arn.partition != partition {
            return refuse(
                Reason::RegionNotAllowed,
                format!(
                    "model ARN is in partition {}, the endpoint in {partition}",
                    arn.partition
                ),
            );
        }
        if arn.region.is_empty() {
            return refuse(
                Reason::RegionNotAllowed,
                "model ARN names no region".to_string(),
            );
        }
        if arn.region != endpoint_region {
            return refuse(
                Reason::RegionNotAllowed,
                format!(
                    "model ARN is in region {}, the endpoint in {endpoint_region}",
                    arn.region
                ),
            );
        }
        if let Some(accounts) = policy.accounts() {
            if !arn.account.is_empty() && !accounts.contains(&arn.account) {
                return refuse(
                    Reason::AccountNotAllowed,
                    format!("account {} is not an allowed account", arn.account),
                );
            }
        }
    }
    for resource in named {
        if let Err((reason, detail)) = check_named(policy, *resource, endpoint_region, partition) {
            return refuse(reason, detail);
        }
    }
    for geo in models.iter().filter_map(ModelRef::profile_prefix) {
        if let Err(detail) = check_geography(policy, geo, endpoint_region) {
            return refuse(Reason::RegionNotAllowed, detail);
        }
    }

    let mut dry_run_denial: Option<&CompiledRule> = None;
    for rule in &policy.deny_rules {
        if !denies(rule, op, models, principal) {
            continue;
        }
        if rule.mode == Mode::Enforce {
            return denial(rule, op, models, Mode::Enforce);
        }
        dry_run_denial.get_or_insert(rule);
    }

    let allowed_by =
        if models.is_empty() {
            // A request naming no model: a rule without `models`, or one that names the
            // operation explicitly (Retrieve without a reranking model under a rule
            // `{operations: [Retrieve], models: [...]}`).
            match policy.allow_rules.iter().find(|r| {
                applies(r, op, principal) && (r.models.is_none() || r.operations.is_some())
            }) {
                Some(rule) => rule,
                None => return refuse(Reason::OperationNotAllowed, format!("no rule allows {op}")),
            }
        } else {
            let mut first = None;
            for model in models {
                match policy
                    .allow_rules
                    .iter()
                    .find(|r| allows(r, op, model, principal))
                {
                    Some(rule) => {
                        first.get_or_insert(rule);
                    }
                    None => {
                        return refuse(
                            Reason::ModelNotAllowed,
                            format!("no rule allows model {} for {op}", model.canonical()),
                        )
                    }
                }
            }
            match first {
                Some(rule) => rule,
                None => return refuse(Reason::ModelNotAllowed, format!("no rule allows {op}")),
            }
        };

    if let Some(rule) = dry_run_denial {
        return denial(rule, op, models, Mode::DryRun);
    }
    Decision::allow(Some(allowed_by.id.clone()), op, Vec::new()).with_models(models)
}

/// The checks on one non-model resource: its grammar, its ARN (partition, region, account,
/// like a model ARN), an owner account against `accounts`, and the bundle's `resources` list
/// for its kind.
fn check_named(
    policy: &CompiledPolicy,
    named: Named<'_>,
    endpoint_region: &str,
    partition: &str,
) -> Result<(), (Reason, String)> {
    let (kind, parsed) = match named {
        Named::AsyncInvocation(arn) => (None, resource::parse_async_invocation(arn)),
        Named::Listed(kind, value) => (Some(kind), resource::parse_resource(kind, value)),
    };
    let what = kind.map_or("async invocation", ResourceKind::describe);
    let parsed = parsed.map_err(|why| {
        (
            Reason::ResourceNotAllowed,
            format!("the request's {what} {why}"),
        )
    })?;
    if let Some(arn) = parsed.arn {
        check_resource_arn(policy, &arn, what, endpoint_region, partition)?;
    }
    let Some(kind) = kind else {
        return Ok(());
    };
    if kind == ResourceKind::Account {
        return match policy.accounts() {
            Some(accounts) if !accounts.contains(parsed.text) => Err((
                Reason::AccountNotAllowed,
                format!("{what} {} is not an allowed account", parsed.text),
            )),
            _ => Ok(()),
        };
    }
    if policy.resource_patterns(kind).matches(parsed.text) {
        Ok(())
    } else {
        Err((
            Reason::ResourceNotAllowed,
            format!(
                "{what} {} is not listed in {}",
                parsed.text,
                kind.bundle_field()
            ),
        ))
    }
}

/// Partition, region and account of a resource ARN, as for model ARNs.
fn check_resource_arn(
    policy: &CompiledPolicy,
    arn: &ResourceArn<'_>,
    what: &str,
    endpoint_region: &str,
    partition: &str,
) -> Result<(), (Reason, String)> {
    if arn.partition != partition {
        return Err((
            Reason::RegionNotAllowed,
            format!(
                "{what} ARN is in partition {}, the endpoint in {partition}",
                arn.partition
            ),
        ));
    }
    if arn.region != endpoint_region {
        return Err((
            Reason::RegionNotAllowed,
            format!(
                "{what} ARN is in region {}, the endpoint in {endpoint_region}",
                arn.region
            ),
        ));
    }
    if let Some(accounts) = policy.accounts() {
        if !accounts.contains(arn.account) {
            return Err((
                Reason::AccountNotAllowed,
                format!(
                    "{what} ARN is in account {}, not an allowed account",
                    arn.account
                ),
            ));
        }
    }
    Ok(())
}

/// May a cross-region profile of geography `geo` be used through an endpoint in `region`?
pub(crate) fn check_geography(
    policy: &CompiledPolicy,
    geo: &str,
    region: &str,
) -> Result<(), String> {
    let listed = policy
        .profile_geographies()
        .map(|list| list.iter().any(|g| g == geo));
    if listed == Some(false) {
        return Err(format!(
            "cross-region profile geography `{geo}` is not allowed"
        ));
    }
    match aws::geography_serves(geo, region) {
        Some(true) => Ok(()),
        Some(false) => Err(format!(
            "cross-region profile geography `{geo}` does not serve the endpoint region {region}"
        )),
        None if listed == Some(true) => Ok(()),
        None => Err(format!(
            "cross-region profile geography `{geo}` is not a known geography; list it in network.profile_geographies to allow it"
        )),
    }
}

fn denial(rule: &CompiledRule, op: Operation, models: &[ModelRef], mode: Mode) -> Decision {
    let reason = if models.is_empty() {
        Reason::OperationNotAllowed
    } else {
        Reason::ModelDenied
    };
    Decision::deny(reason, format!("denied by rule {}", rule.id))
        .with_operation(op)
        .with_models(models)
        .with_rule(Some(rule.id.clone()), mode)
}

/// Operation and principal conditions (the parts that do not depend on the model).
fn applies(rule: &CompiledRule, op: Operation, principal: Option<&Principal>) -> bool {
    let who = match (&rule.principals, principal) {
        (None, _) => true,
        // A rule that names principals never matches an unauthenticated request.
        (Some(_), None) => false,
        (Some(m), Some(p)) => principal_matches(m, p),
    };
    who && rule.operations.is_none_or(|ops| ops.contains(op))
}

/// Every category the rule names must match (subjects AND groups AND each claim); within a
/// category any one pattern is enough.
fn principal_matches(m: &PrincipalMatcher, p: &Principal) -> bool {
    (m.subjects.is_empty() || m.subjects.matches(&p.subject))
        && (m.groups.is_empty() || p.groups.iter().any(|g| m.groups.matches(g)))
        && m.claims
            .iter()
            .all(|(name, set)| p.claim_strings(name).any(|v| set.matches(v)))
}

/// The identity step: with identity providers configured every request needs a verified
/// token; without them the caller is anonymous and rules naming principals never match.
fn caller_principal(
    policy: &CompiledPolicy,
    caller: &Caller,
) -> Result<Option<Arc<Principal>>, (Reason, &'static str)> {
    if !policy.has_identity() {
        return Ok(None);
    }
    match caller {
        Caller::Verified(p) => Ok(Some(Arc::clone(p))),
        Caller::Anonymous | Caller::Missing => Err((
            Reason::IdentityMissing,
            "no workload identity token in the identity header",
        )),
        Caller::Invalid(e) => Err((Reason::IdentityInvalid, e.as_str())),
        Caller::Unavailable => Err((
            Reason::PolicyUnavailable,
            "the identity provider's keys are unavailable",
        )),
    }
}

/// Does deny rule `rule` match this request?
fn denies(
    rule: &CompiledRule,
    op: Operation,
    models: &[ModelRef],
    principal: Option<&Principal>,
) -> bool {
    if !applies(rule, op, principal) {
        return false;
    }
    let Some(matcher) = &rule.models else {
        return true;
    };
    models.iter().any(|model| model_denied_by(matcher, model))
}

/// Does a deny rule's `models` match `model`? Without regard to case, against the canonical
/// id, an ARN's resource id and the base model behind a system profile.
pub fn model_denied_by(matcher: &ModelMatcher, model: &ModelRef) -> bool {
    let set = &matcher.folded;
    set.matches(model.canonical())
        || model.resource_id().is_some_and(|id| set.matches(id))
        || base_model(model).is_some_and(|base| set.matches(base))
}

/// Does allow rule `rule` allow `model` for `op`?
fn allows(
    rule: &CompiledRule,
    op: Operation,
    model: &ModelRef,
    principal: Option<&Principal>,
) -> bool {
    if !applies(rule, op, principal) {
        return false;
    }
    // Validation requires `models` on every allow rule that names an operation carrying a
    // model; a rule without them never allows a model.
    let Some(matcher) = &rule.models else {
        return false;
    };
    model_allowed_by(matcher, model)
}

/// Does an allow rule's `models` allow `model`? Case-sensitive; an opaque resource only by an
/// ARN pattern matching the whole ARN (a bare opaque name only by its exact name).
pub fn model_allowed_by(matcher: &ModelMatcher, model: &ModelRef) -> bool {
    if is_opaque(model) {
        return match model {
            // A bare name of an opaque resource: only the exact name, never a wildcard.
            ModelRef::Plain { id, .. } => matcher.all.contains_exact(id),
            ModelRef::Arn(arn) => matcher.arn_only.matches(&arn.raw),
        };
    }
    matcher.all.matches(model.canonical())
        || model
            .resource_id()
            .is_some_and(|id| matcher.all.matches(id))
}

/// Does the model reference hide which model runs? Anything but a foundation model or a system
/// inference profile does (see `ModelRef::is_opaque`); ARNs of unknown resource types never
/// get this far (they are refused as unparseable).
pub fn is_opaque(model: &ModelRef) -> bool {
    model.is_opaque()
}

/// The base model behind a system inference profile, plain (`us.anthropic.claude-x`) or as an
/// ARN (`...:inference-profile/us.anthropic.claude-x`): `anthropic.claude-x`.
pub fn base_model(model: &ModelRef) -> Option<&str> {
    let prefix = model.profile_prefix()?;
    let id = match model {
        ModelRef::Plain { id, .. } => id.as_str(),
        ModelRef::Arn(arn) => arn.resource_id.as_str(),
    };
    id.strip_prefix(prefix)?.strip_prefix('.')
}
