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
//! and the allow path allocates nothing beyond the decision's own strings. The rule steps try
//! only the rules the bundle's rule index (`RuleIndex`: literal and prefix patterns in hash
//! maps, other patterns one by one) says can match the request's models, in bundle order and
//! with the same predicates as a scan of every rule, so a decision costs about the same with
//! 10 rules or 10,000 (`make bench`); an observer that scans every rule gets that scan.
//!
//! # Watching a decision
//!
//! The deciding code reports each step it starts ([`Step`], the rows of [`DECISION_STEPS`])
//! and each rule it tries, with what it found, to a [`RuleObserver`]. It is generic over the
//! observer: the filter's path ([`evaluate`], [`evaluate_body`], [`decide`]) uses the
//! zero-sized [`Unobserved`], whose empty calls compile away. `decide_traced` records a
//! [`RuleTrace`], which `bedrock-guard explain` prints: the engine's own account, not a second
//! implementation of the matching.
//!
//! The observed entry points (`decide_observed`, `decide_traced`) and the trace's recording
//! are for tools on the host and are not compiled for wasm32, the filter's target. There the
//! deciding functions have one instance, the unobserved one, and nothing generic is reachable
//! from outside the crate: a public generic function would make the private helpers it calls
//! exported symbols, and LLVM would then inline them differently (measured: about 400 bytes
//! more module). So the module is the same size as without the observer, give or take the
//! rule's bundle index (`make build` prints the size).

use std::sync::Arc;

use crate::aws;
use crate::bundle::schema::Effect;
use crate::bundle::{
    CompiledEndpoint, CompiledPolicy, CompiledRule, ModelMatcher, PrincipalMatcher,
};
use crate::credentials::{self, ApiKeyKind, Credential};
use crate::decision::{Decision, Mode, Reason};
use crate::destination::Target;
use crate::identity::{Caller, Principal, TokenHash};
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
    /// The operation (one that carries its model in the body).
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
    /// The head was enough: the decision.
    Decided(Decision),
    /// The model is in the body: hold the request until the whole body has arrived (within
    /// `Pending::max_body_bytes`) and decide it with `evaluate_body`.
    NeedBody(Pending),
}

/// Everything the engine computed about a request head, handed to the shell as one value:
/// where the request goes, the credential it carries, the identity token's hash and the
/// outcome (the decision with its canonical models, or the wait for the body). The shell
/// builds the audit record from it (`AuditRecord::from_evaluation`) and re-derives none of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation<'a> {
    /// The canonical authority and its endpoint.
    pub target: Target,
    /// The credential the request carries (`credentials::detect`).
    pub credential: Credential<'a>,
    /// The verified caller, when there is one.
    pub principal: Option<Arc<Principal>>,
    /// SHA-256 of the identity token, from `RequestFacts::token`.
    pub token: Option<TokenHash>,
    /// The decision, or the wait for the body.
    pub outcome: HeadOutcome,
}

impl Evaluation<'_> {
    /// The region of the endpoint the request is bound for.
    pub fn region<'p>(&self, policy: &'p CompiledPolicy) -> Option<&'p str> {
        self.target.endpoint(policy).map(|e| e.region.as_str())
    }
}

/// Evaluate a request head: the decision (or the wait for the body) together with what was
/// learned on the way (see [`Evaluation`]).
pub fn evaluate<'a>(policy: &CompiledPolicy, facts: &RequestFacts<'a>) -> Evaluation<'a> {
    let target = Target::of(policy, facts.authority);
    let credential = credentials::detect(facts.headers, policy.identity_header());
    let outcome = match head(policy, facts, &target, &credential) {
        HeadOutcome::Decided(d) => HeadOutcome::Decided(finish(policy, d)),
        pending => pending,
    };
    let principal = match &facts.caller {
        Caller::Verified(p) => Some(Arc::clone(p)),
        _ => None,
    };
    Evaluation {
        target,
        credential,
        principal,
        token: facts.token,
        outcome,
    }
}

/// Decide what can be decided from the request head ([`evaluate`] without the rest).
pub fn evaluate_head(policy: &CompiledPolicy, facts: &RequestFacts) -> HeadOutcome {
    evaluate(policy, facts).outcome
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

/// [`decide`], reporting to `observer` each step the engine starts and each rule it tries (see
/// [`RuleObserver`]). The decision is `decide`'s: the same code runs, with the observer's calls
/// in it (with [`Unobserved`] they are nothing, which is what [`decide`] and the filter run).
#[cfg(not(target_arch = "wasm32"))]
pub fn decide_observed<O: RuleObserver>(
    policy: &CompiledPolicy,
    facts: &RequestFacts,
    observer: &mut O,
) -> Decision {
    let target = Target::of(policy, facts.authority);
    let credential = credentials::detect(facts.headers, policy.identity_header());
    let decision = match head_observed(policy, facts, &target, &credential, observer) {
        HeadOutcome::Decided(d) => d,
        HeadOutcome::NeedBody(p) => {
            body_decision_observed(policy, &p, facts.body.unwrap_or_default(), observer)
        }
    };
    finish(policy, decision)
}

/// [`decide`] with the engine's own trace of the decision: the step that decided and, for every
/// rule of the bundle, whether the engine tried it and what it found (see [`RuleTrace`]). For
/// `bedrock-guard explain`, which shows this trace rather than working the matching out again.
#[cfg(not(target_arch = "wasm32"))]
pub fn decide_traced(policy: &CompiledPolicy, facts: &RequestFacts) -> (Decision, RuleTrace) {
    let mut trace = RuleTrace::new(policy);
    let decision = decide_observed(policy, facts, &mut trace);
    (decision, trace)
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

fn head(
    policy: &CompiledPolicy,
    facts: &RequestFacts,
    target: &Target,
    credential: &Credential<'_>,
) -> HeadOutcome {
    head_observed(policy, facts, target, credential, &mut Unobserved)
}

fn head_observed<O: RuleObserver>(
    policy: &CompiledPolicy,
    facts: &RequestFacts,
    target: &Target,
    credential: &Credential<'_>,
    obs: &mut O,
) -> HeadOutcome {
    obs.step(Step::RequestHead);
    let info = match request::check_head(facts, policy.identity_header()) {
        Ok(info) => info,
        Err(e) => return HeadOutcome::Decided(Decision::deny(e.reason(), e.to_string())),
    };
    obs.step(Step::Route);
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
    obs.step(Step::Destination);
    let endpoint = match target.resolve(policy, facts.original_destination) {
        Ok(endpoint) => endpoint,
        Err(e) => return refuse_early(e.reason(), &e.to_string()),
    };
    obs.step(Step::Credential);
    if let Err((reason, detail)) = check_credentials(policy, endpoint, credential) {
        return refuse_early(reason, &detail);
    }
    obs.step(Step::Identity);
    let principal = match caller_principal(policy, &facts.caller) {
        Ok(principal) => principal,
        Err((reason, detail)) => return refuse_early(reason, detail),
    };
    let refuse = |reason: Reason, detail: &str| {
        HeadOutcome::Decided(Decision::deny(reason, detail).with_operation(op))
    };
    let who = principal.as_deref();
    obs.step(Step::ModelIdAndBodyHead);
    match op.model_location() {
        ModelLocation::Path => {
            let Some(segment) = route.model_segment else {
                return refuse(Reason::ModelUnparseable, "the path names no model");
            };
            match request::parse_path_model_id(segment) {
                Ok(model) => HeadOutcome::Decided(evaluate_request_observed(
                    policy,
                    op,
                    std::slice::from_ref(&model),
                    path_named,
                    &endpoint.region,
                    who,
                    obs,
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
        ModelLocation::None => HeadOutcome::Decided(evaluate_request_observed(
            policy,
            op,
            &[],
            path_named,
            &endpoint.region,
            who,
            obs,
        )),
    }
}

fn body_decision(policy: &CompiledPolicy, pending: &Pending, body: &[u8]) -> Decision {
    body_decision_observed(policy, pending, body, &mut Unobserved)
}

fn body_decision_observed<O: RuleObserver>(
    policy: &CompiledPolicy,
    pending: &Pending,
    body: &[u8],
    obs: &mut O,
) -> Decision {
    obs.step(Step::Body);
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
    evaluate_request_observed(
        policy,
        op,
        &models,
        &named,
        &pending.endpoint_region,
        pending.principal.as_deref(),
        obs,
    )
}

/// The credential checks (see the module documentation).
fn check_credentials(
    policy: &CompiledPolicy,
    endpoint: &CompiledEndpoint,
    credential: &Credential<'_>,
) -> Result<(), (Reason, String)> {
    let identity_header = policy.identity_header();
    let allowed = policy.credentials();
    match *credential {
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
    evaluate_request_observed(
        policy,
        op,
        models,
        named,
        endpoint_region,
        principal,
        &mut Unobserved,
    )
}

/// [`evaluate_request`], reporting its steps and every rule it tries to `obs`.
fn evaluate_request_observed<O: RuleObserver>(
    policy: &CompiledPolicy,
    op: Operation,
    models: &[ModelRef],
    named: &[Named<'_>],
    endpoint_region: &str,
    principal: Option<&Principal>,
    obs: &mut O,
) -> Decision {
    let refuse = |reason: Reason, detail: String| {
        Decision::deny(reason, detail)
            .with_operation(op)
            .with_models(models)
    };
    // What the observer is told about one rule the engine tried.
    let check = |rule, effect, model, matched| RuleCheck {
        rule,
        effect,
        op,
        models,
        model,
        principal,
        matched,
    };

    obs.step(Step::ModelArns);
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
    obs.step(Step::Resources);
    for resource in named {
        if let Err((reason, detail)) = check_named(policy, *resource, endpoint_region, partition) {
            return refuse(reason, detail);
        }
    }
    obs.step(Step::Geography);
    for geo in models.iter().filter_map(ModelRef::profile_prefix) {
        if let Err(detail) = check_geography(policy, geo, endpoint_region) {
            return refuse(Reason::RegionNotAllowed, detail);
        }
    }

    obs.step(Step::EnforcedDenyRules);
    let mut dry_run_denial: Option<&CompiledRule> = None;
    let mut picked = Vec::new();
    let deny_rules = if O::SCANS_EVERY_RULE {
        None
    } else {
        deny_candidates(policy, models, &mut picked);
        Some(picked.as_slice())
    };
    for rule in in_order(&policy.deny_rules, deny_rules) {
        let hit = denies(rule, op, models, principal);
        obs.tried(&check(rule, Effect::Deny, None, hit));
        if !hit {
            continue;
        }
        if rule.mode == Mode::Enforce {
            obs.decided(rule.index);
            return denial(rule, op, models, Mode::Enforce);
        }
        dry_run_denial.get_or_insert(rule);
    }

    obs.step(Step::AllowRules);
    let allowed_by = if models.is_empty() {
        // A request naming no model: a rule without `models`, or one that names the
        // operation explicitly (Retrieve without a reranking model under a rule
        // `{operations: [Retrieve], models: [...]}`).
        let found = policy
            .allow_rules
            .iter()
            .find(|r| applies(r, op, principal) && (r.models.is_none() || r.operations.is_some()));
        report_tried(obs, &policy.allow_rules, found, |rule, hit| {
            check(rule, Effect::Allow, None, hit)
        });
        match found {
            Some(rule) => rule,
            None => return refuse(Reason::OperationNotAllowed, format!("no rule allows {op}")),
        }
    } else {
        let mut first = None;
        let mut picked = Vec::new();
        for model in models {
            // Only the rules the index says can allow the model are tried, in bundle order:
            // the first that does is the linear scan's first (an observer that scans every
            // rule gets the linear scan, and `report_tried` reports it).
            let allow_rules = if O::SCANS_EVERY_RULE {
                None
            } else {
                picked.clear();
                allow_candidates(policy, model, &mut picked);
                Some(picked.as_slice())
            };
            let found = in_order(&policy.allow_rules, allow_rules)
                .find(|r| allows(r, op, model, principal));
            report_tried(obs, &policy.allow_rules, found, |rule, hit| {
                check(rule, Effect::Allow, Some(model), hit)
            });
            match found {
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

    obs.step(Step::DryRunDenyRules);
    if let Some(rule) = dry_run_denial {
        obs.decided(rule.index);
        return denial(rule, op, models, Mode::DryRun);
    }
    obs.step(Step::Allowed);
    obs.decided(allowed_by.index);
    Decision::allow(Some(allowed_by.id.clone()), op, Vec::new()).with_models(models)
}

/// Tell `obs` which allow rules a `find` tried, in order: each rule up to the one it `found`
/// (every rule when it found none), all failing but that one. Reported after the search, so
/// the search itself is the unobserved one; with [`Unobserved`] this loop does nothing and is
/// compiled away.
fn report_tried<'a, O: RuleObserver>(
    obs: &mut O,
    rules: &'a [CompiledRule],
    found: Option<&'a CompiledRule>,
    check: impl Fn(&'a CompiledRule, bool) -> RuleCheck<'a>,
) {
    for rule in rules {
        let hit = found.is_some_and(|f| std::ptr::eq(f, rule));
        obs.tried(&check(rule, hit));
        if hit {
            break;
        }
    }
}

/// `rules` in bundle order: all of them, or only those at the (sorted) positions `picked`.
fn in_order<'r: 'p, 'p>(
    rules: &'r [CompiledRule],
    picked: Option<&'p [u32]>,
) -> impl Iterator<Item = &'r CompiledRule> + 'p {
    let (all, some) = match picked {
        None => (Some(rules.iter()), None),
        Some(picked) => (
            None,
            Some(
                picked
                    .iter()
                    .filter_map(|&i| rules.get(usize::try_from(i).unwrap_or(usize::MAX))),
            ),
        ),
    };
    all.into_iter().flatten().chain(some.into_iter().flatten())
}

/// The deny rules that can match one of `models` (by the index of their folded patterns,
/// against the canonical id, an ARN's resource id and the base model behind a system
/// profile, as `model_denied_by` matches) and those without `models`: sorted, each once.
fn deny_candidates(policy: &CompiledPolicy, models: &[ModelRef], out: &mut Vec<u32>) {
    let index = &policy.rule_index;
    out.extend_from_slice(&index.deny_any_model);
    for model in models {
        for text in [
            Some(model.canonical()),
            model.resource_id(),
            base_model(model),
        ]
        .into_iter()
        .flatten()
        {
            if text.bytes().any(|b| b.is_ascii_uppercase()) {
                index.deny.candidates(&text.to_ascii_lowercase(), out);
            } else {
                index.deny.candidates(text, out);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
}

/// The allow rules that can allow `model` (by the index of their patterns, against the
/// canonical id and an ARN's resource id, as `model_allowed_by` matches): sorted, each once.
fn allow_candidates(policy: &CompiledPolicy, model: &ModelRef, out: &mut Vec<u32>) {
    let index = &policy.rule_index.allow;
    index.candidates(model.canonical(), out);
    if let Some(id) = model.resource_id() {
        index.candidates(id, out);
    }
    out.sort_unstable();
    out.dedup();
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
/// The geography check [`decide`] makes for a profile model id; `Err` says why not.
/// Public for tools that explain a bundle without a request (`bedrock-guard validate` warns
/// about a model pattern no endpoint may use).
pub fn check_geography(policy: &CompiledPolicy, geo: &str, region: &str) -> Result<(), String> {
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
    principals_apply(rule, principal) && operation_applies(rule, op)
}

/// The rule's `principals` (if any) match the caller.
fn principals_apply(rule: &CompiledRule, principal: Option<&Principal>) -> bool {
    match (&rule.principals, principal) {
        (None, _) => true,
        // A rule that names principals never matches an unauthenticated request.
        (Some(_), None) => false,
        (Some(m), Some(p)) => principal_matches(m, p),
    }
}

/// The rule's `operations` (if any) contain `op`.
fn operation_applies(rule: &CompiledRule, op: Operation) -> bool {
    rule.operations.is_none_or(|ops| ops.contains(op))
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

/// One of the checks of [`DECISION_STEPS`], in the same order (`Step::ALL[i]` is
/// `DECISION_STEPS[i]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// Method shape, CONNECT/Upgrade, repeated security headers, ...
    RequestHead,
    /// The operation from method and path (the route catalogue).
    Route,
    /// The authority's endpoint and the original destination address.
    Destination,
    /// The SigV4 scope or the Bedrock API key.
    Credential,
    /// The verified workload identity, when the bundle requires one.
    Identity,
    /// A path-carried model id, or the head of a body-carried request.
    ModelIdAndBodyHead,
    /// The body of a body-carried request (models and named resources).
    Body,
    /// Partition, region and account of model ARNs.
    ModelArns,
    /// The other resources the request names.
    Resources,
    /// Cross-region profile geographies.
    Geography,
    /// Deny rules in enforce mode (the first match refuses).
    EnforcedDenyRules,
    /// Allow rules (every model needs one).
    AllowRules,
    /// Deny rules in dry-run mode (recorded, not enforced).
    DryRunDenyRules,
    /// Nothing refused: allowed.
    Allowed,
}

const _: () = assert!(Step::ALL.len() == DECISION_STEPS.len());

impl Step {
    /// Every step, in the engine's order.
    pub const ALL: [Step; 14] = [
        Step::RequestHead,
        Step::Route,
        Step::Destination,
        Step::Credential,
        Step::Identity,
        Step::ModelIdAndBodyHead,
        Step::Body,
        Step::ModelArns,
        Step::Resources,
        Step::Geography,
        Step::EnforcedDenyRules,
        Step::AllowRules,
        Step::DryRunDenyRules,
        Step::Allowed,
    ];

    /// The step's name in [`DECISION_STEPS`] (and in docs/policy.md).
    pub fn name(self) -> &'static str {
        DECISION_STEPS
            .get(self as usize)
            .map_or("", |(name, _)| name)
    }

    /// The reason codes the step can decide with.
    pub fn reasons(self) -> &'static [Reason] {
        DECISION_STEPS
            .get(self as usize)
            .map_or(&[], |(_, reasons)| reasons)
    }

    /// Is this one of the rule steps (enforced deny rules and later)?
    pub fn is_rule_step(self) -> bool {
        self >= Step::EnforcedDenyRules
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Watches a decision being made: every step the engine starts and every rule it tries, as it
/// tries them. Every method does nothing unless implemented.
///
/// The deciding functions are generic over the observer, so each observer gets its own copy of
/// them; the one the filter runs ([`decide`], [`evaluate`], [`evaluate_body`]) is made with
/// [`Unobserved`], whose calls are empty and compile to nothing. [`RuleTrace`] records
/// everything for `bedrock-guard explain`.
pub trait RuleObserver {
    /// Whether the rule steps must try every rule in bundle order (so each one is reported),
    /// or may try only those the bundle's rule index says can match (the filter's path).
    /// Every rule tried is checked with the same predicate, so the outcome is the same;
    /// `policies/tests/engine/engine_index.rs` compares the two.
    const SCANS_EVERY_RULE: bool = false;

    /// The engine starts `step`. The last step started is the one that decided: a refusal of
    /// that step's check, or (for the rule steps) its outcome.
    fn step(&mut self, step: Step) {
        let _ = step;
    }

    /// The engine tried a rule: deny rules once each (against every model of the request),
    /// allow rules once per model they are tried for (once for a request naming no model),
    /// each in bundle order until one matches (see the module documentation).
    fn tried(&mut self, check: &RuleCheck<'_>) {
        let _ = check;
    }

    /// The rule at `rules[index]` decided the request: the enforced or dry-run deny rule that
    /// refused it, or the allow rule reported for an allowed request (the one that allowed the
    /// first model).
    fn decided(&mut self, index: usize) {
        let _ = index;
    }
}

/// The observer that observes nothing (zero-sized; its calls compile to nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unobserved;

impl RuleObserver for Unobserved {}

/// One rule the engine tried, and what it found. The conditions are worked out only when
/// asked for, by the engine's own predicates.
#[derive(Debug, Clone, Copy)]
pub struct RuleCheck<'a> {
    rule: &'a CompiledRule,
    effect: Effect,
    op: Operation,
    models: &'a [ModelRef],
    model: Option<&'a ModelRef>,
    principal: Option<&'a Principal>,
    matched: bool,
}

impl RuleCheck<'_> {
    /// The rule's position in the bundle's `rules`.
    pub fn index(&self) -> usize {
        self.rule.index
    }

    /// The rule's id.
    pub fn id(&self) -> &str {
        &self.rule.id
    }

    /// Allow or deny.
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// The rule's effective mode: a deny rule's own `mode`, dry-run in a dry-run bundle; an
    /// allow rule is always enforce.
    pub fn mode(&self) -> Mode {
        self.rule.mode
    }

    /// For an allow rule, the position (in the request's models) of the model it was tried
    /// for; `None` for a deny rule (tried against every model at once) and for a request that
    /// names no model.
    pub fn model(&self) -> Option<usize> {
        let model = self.model?;
        self.models.iter().position(|m| std::ptr::eq(m, model))
    }

    /// What the engine concluded: the deny rule matches the request, or the allow rule allows
    /// the model (for a request naming no model: the operation).
    pub fn matched(&self) -> bool {
        self.matched
    }

    /// Whether the rule's `operations` contain the request's operation; `None` when the rule
    /// names no operations.
    pub fn operation_matches(&self) -> Option<bool> {
        self.rule
            .operations
            .is_some()
            .then(|| operation_applies(self.rule, self.op))
    }

    /// Whether the rule's `principals` match the verified caller (never an unauthenticated
    /// one); `None` when the rule names no principals.
    pub fn principals_match(&self) -> Option<bool> {
        self.rule
            .principals
            .is_some()
            .then(|| principals_apply(self.rule, self.principal))
    }

    /// The positions (in the request's models) of the models the rule's `models` match, with
    /// the matching of the rule's effect (broad for deny rules, see the module documentation);
    /// `None` when the rule names no models.
    pub fn models_matched(&self) -> Option<Vec<usize>> {
        let matcher = self.rule.models.as_ref()?;
        let matches = |model: &ModelRef| match self.effect {
            Effect::Deny => model_denied_by(matcher, model),
            Effect::Allow => model_allowed_by(matcher, model),
        };
        Some(
            self.models
                .iter()
                .enumerate()
                .filter(|(_, model)| matches(model))
                .map(|(i, _)| i)
                .collect(),
        )
    }
}

/// The engine's own account of one decision ([`decide_traced`]): the step that decided and,
/// for every rule of the bundle, whether it was tried and what was found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleTrace {
    /// The step that decided (`None` only before a decision was made).
    pub step: Option<Step>,
    /// Every rule of the bundle, in bundle order (`rules[i].index == i`).
    pub rules: Vec<TracedRule>,
    /// The bundle positions of the rules tried, in the order the engine first tried them.
    pub order: Vec<usize>,
    /// The bundle position of the rule that decided, when a rule did.
    pub decided_by: Option<usize>,
}

/// One rule of the bundle in a [`RuleTrace`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracedRule {
    /// The rule's position in the bundle's `rules`.
    pub index: usize,
    /// The rule's `id`.
    pub id: String,
    /// Allow or deny.
    pub effect: Effect,
    /// The effective mode (see [`RuleCheck::mode`]).
    pub mode: Mode,
    /// The rule has an `operations` condition.
    pub names_operations: bool,
    /// The rule has a `models` condition.
    pub names_models: bool,
    /// The rule has a `principals` condition.
    pub names_principals: bool,
    /// The engine tried the rule. A rule it did not try (the request was refused before the
    /// rules, an enforced deny rule decided first, or an earlier allow rule allowed every
    /// model) has no findings.
    pub tried: bool,
    /// See [`RuleCheck::operation_matches`]; `None` also when not tried.
    pub operation_matches: Option<bool>,
    /// See [`RuleCheck::principals_match`]; `None` also when not tried.
    pub principals_match: Option<bool>,
    /// See [`RuleCheck::models_matched`]; `None` also when not tried.
    pub models_matched: Option<Vec<usize>>,
    /// The positions of the request's models the (allow) rule was tried for.
    pub models_tried: Vec<usize>,
    /// The engine found the rule matching on some attempt (see [`RuleCheck::matched`]).
    pub matched: bool,
    /// The rule decided the request.
    pub decided: bool,
}

impl RuleTrace {
    /// An empty trace for a decision under `policy`: every rule listed, none tried yet.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(policy: &CompiledPolicy) -> RuleTrace {
        let entry = |rule: &CompiledRule, effect| TracedRule {
            index: rule.index,
            id: rule.id.clone(),
            effect,
            mode: rule.mode,
            names_operations: rule.operations.is_some(),
            names_models: rule.models.is_some(),
            names_principals: rule.principals.is_some(),
            tried: false,
            operation_matches: None,
            principals_match: None,
            models_matched: None,
            models_tried: Vec::new(),
            matched: false,
            decided: false,
        };
        let mut rules: Vec<TracedRule> = policy
            .deny_rules
            .iter()
            .map(|r| entry(r, Effect::Deny))
            .chain(policy.allow_rules.iter().map(|r| entry(r, Effect::Allow)))
            .collect();
        rules.sort_by_key(|r| r.index);
        RuleTrace {
            step: None,
            rules,
            order: Vec::new(),
            decided_by: None,
        }
    }

    /// Did the decision reach the rule steps? A request refused earlier tried no rule.
    pub fn rules_reached(&self) -> bool {
        self.step.is_some_and(Step::is_rule_step)
    }

    /// The rule at bundle position `index`.
    pub fn rule(&self, index: usize) -> Option<&TracedRule> {
        self.rules.iter().find(|r| r.index == index)
    }

    /// The rules tried, in the order the engine first tried them.
    pub fn tried(&self) -> impl Iterator<Item = &TracedRule> + '_ {
        self.order.iter().filter_map(|&i| self.rule(i))
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn rule_mut(&mut self, index: usize) -> Option<&mut TracedRule> {
        self.rules.iter_mut().find(|r| r.index == index)
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl RuleObserver for RuleTrace {
    const SCANS_EVERY_RULE: bool = true;

    fn step(&mut self, step: Step) {
        self.step = Some(step);
    }

    fn tried(&mut self, check: &RuleCheck<'_>) {
        let index = check.index();
        let first = !self.order.contains(&index);
        if first {
            self.order.push(index);
        }
        let Some(rule) = self.rule_mut(index) else {
            return;
        };
        if first {
            rule.tried = true;
            rule.operation_matches = check.operation_matches();
            rule.principals_match = check.principals_match();
            rule.models_matched = check.models_matched();
        }
        if let Some(model) = check.model() {
            rule.models_tried.push(model);
        }
        rule.matched |= check.matched();
    }

    fn decided(&mut self, index: usize) {
        self.decided_by = Some(index);
        if let Some(rule) = self.rule_mut(index) {
            rule.decided = true;
        }
    }
}
