//! `iam`: the AWS-side policies that mirror a bundle. An identity-based policy for the
//! workloads' roles, a VPC endpoint policy for the bundle's endpoints and, with `--scp`, a
//! service control policy; plus the list of what IAM cannot express. See docs/iam.md for the
//! mapping and its sources.
//!
//! Everything here reads the validated bundle (the engine's public schema types and compiled
//! endpoints); nothing decides requests. The policies are a second layer behind the guard, so
//! where IAM is coarser than the bundle the generator says so (`cannot_express`) rather than
//! guessing.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::args;
use super::load::{self, LoadedBundle};
use super::{CliError, CliResult, EXIT_OK};
use policies::audit::vpc_endpoint_id;
use policies::aws::{BedrockService, EndpointKind};
use policies::bundle::schema::{Effect, ModeSpec, Rule};
use policies::request::{ModelLocation, Operation};

/// The IAM policy language version every document is written in.
const VERSION: &str = "2012-10-17";

const INVOKE: &str = "bedrock:InvokeModel";
const INVOKE_STREAM: &str = "bedrock:InvokeModelWithResponseStream";

/// Where an action that is not authorised on the model applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    /// The action has no resource type: `"*"`.
    Any,
    /// The guardrails of `resources.guardrails`.
    Guardrails,
    /// The knowledge bases of `resources.knowledge_bases`.
    KnowledgeBases,
    /// The caller's async invocations (`async-invoke/*`).
    AsyncInvocations,
}

/// The IAM actions an operation needs: those authorised on the model resources it names, and
/// the others with where they apply. Sources in docs/iam.md ("Operations and actions").
fn op_actions(op: Operation) -> (&'static [&'static str], &'static [(&'static str, Scope)]) {
    match op {
        Operation::InvokeModel
        | Operation::Converse
        | Operation::StartAsyncInvoke
        | Operation::InvokeModelWithBidirectionalStream => (&[INVOKE], &[]),
        Operation::InvokeModelWithResponseStream | Operation::ConverseStream => {
            (&[INVOKE_STREAM], &[])
        }
        Operation::CountTokens => (&["bedrock:CountTokens"], &[]),
        // Streaming or not is a body member (`stream`): both actions.
        Operation::ChatCompletions | Operation::Responses | Operation::AnthropicMessages => {
            (&[INVOKE, INVOKE_STREAM], &[])
        }
        Operation::GetAsyncInvoke => (&[], &[("bedrock:GetAsyncInvoke", Scope::AsyncInvocations)]),
        Operation::ListAsyncInvokes => (&[], &[("bedrock:ListAsyncInvokes", Scope::Any)]),
        Operation::ApplyGuardrail => (&[], &[("bedrock:ApplyGuardrail", Scope::Guardrails)]),
        Operation::InvokeInlineAgent => (&[INVOKE], &[("bedrock:InvokeInlineAgent", Scope::Any)]),
        Operation::Retrieve => (&[INVOKE], &[("bedrock:Retrieve", Scope::KnowledgeBases)]),
        Operation::RetrieveAndGenerate | Operation::RetrieveAndGenerateStream => (
            &[INVOKE],
            &[
                ("bedrock:RetrieveAndGenerate", Scope::Any),
                ("bedrock:Retrieve", Scope::KnowledgeBases),
            ],
        ),
        Operation::Rerank => (&[INVOKE], &[("bedrock:Rerank", Scope::Any)]),
        Operation::OptimizePrompt => (&[INVOKE], &[("bedrock:OptimizePrompt", Scope::Any)]),
    }
}

/// The operation → action table, for the output (so tools, and the tests' evaluator, read the
/// generator's own mapping rather than a copy): per operation, the actions authorised on the
/// models it names and the others.
fn action_table() -> Value {
    let mut table = Map::new();
    for op in Operation::ALL {
        let (model, other) = op_actions(op);
        let other: Vec<&str> = other.iter().map(|(a, _)| *a).collect();
        table.insert(
            op.as_str().to_string(),
            json!({ "model": model, "other": other }),
        );
    }
    Value::Object(table)
}

/// Every model action of the table (the PrivateLink deny covers them).
fn all_model_actions() -> BTreeSet<&'static str> {
    Operation::ALL
        .iter()
        .flat_map(|op| op_actions(*op).0.iter().copied())
        .collect()
}

/// Every action of the table that is not a model action.
fn all_other_actions() -> BTreeSet<&'static str> {
    Operation::ALL
        .iter()
        .flat_map(|op| op_actions(*op).1.iter().map(|(a, _)| *a))
        .filter(|a| !all_model_actions().contains(a))
        .collect()
}

/// One region the bundle's endpoints are in, with its partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Place {
    partition: String,
    region: String,
}

/// What the generator knows about the AWS side, from the bundle and the flags.
struct Facts {
    places: Vec<Place>,
    partitions: Vec<String>,
    /// The accounts in account-scoped ARNs (inference profiles, guardrails, ...): `accounts`,
    /// else `aws.principal_accounts`, else `*`.
    accounts: Vec<String>,
    vpce_ids: Vec<String>,
    principal_condition: Option<Value>,
}

/// A statement being built: effect, actions, resources, condition.
#[derive(Debug, Clone)]
struct Stmt {
    sid: String,
    effect: &'static str,
    actions: BTreeSet<String>,
    resources: Vec<String>,
    condition: Option<Value>,
}

impl Stmt {
    fn new(sid: String, effect: &'static str) -> Stmt {
        Stmt {
            sid,
            effect,
            actions: BTreeSet::new(),
            resources: Vec::new(),
            condition: None,
        }
    }

    fn add_resource(&mut self, r: String) {
        if !self.resources.contains(&r) {
            self.resources.push(r);
        }
    }

    fn to_json(&self, principal: bool) -> Value {
        let mut s = Map::new();
        s.insert("Sid".into(), json!(self.sid));
        s.insert("Effect".into(), json!(self.effect));
        if principal {
            s.insert("Principal".into(), json!("*"));
        }
        s.insert("Action".into(), json!(self.actions));
        s.insert("Resource".into(), json!(self.resources));
        if let Some(c) = &self.condition {
            s.insert("Condition".into(), c.clone());
        }
        Value::Object(s)
    }
}

/// A `cannot_express` entry.
fn limit(class: &str, subject: impl Into<String>, why: impl Into<String>) -> Value {
    json!({ "class": class, "subject": subject.into(), "why": why.into() })
}

/// Does a plain (non-ARN) model pattern start with a literal geography prefix (`us.`), and if
/// so, what follows it (the base model pattern)?
fn base_of_profile_pattern(p: &str) -> Option<&str> {
    let (first, rest) = p.split_once('.')?;
    let literal = !first.is_empty() && !first.contains(['*', '?']);
    (literal && rest.contains('.')).then_some(rest)
}

/// Could a plain pattern name a system inference profile (an id with two or more dots)?
fn may_name_profile(p: &str) -> bool {
    p.contains(['*', '?']) || p.matches('.').count() >= 2
}

/// The resource type of an ARN pattern (`foundation-model`, ...), when it has one.
fn arn_resource(p: &str) -> Option<(&str, &str)> {
    let resource = p.splitn(6, ':').nth(5)?;
    resource.split_once('/')
}

fn rule_name(i: usize, rule: &Rule) -> String {
    format!("rules[{i}] ({})", rule.id.as_deref().unwrap_or("?"))
}

fn rule_ops(rule: &Rule) -> Vec<Operation> {
    match &rule.operations {
        Some(names) => names
            .iter()
            .filter_map(|n| Operation::from_name(n))
            .collect(),
        None => Operation::ALL.to_vec(),
    }
}

/// The resources that allow what a plain pattern or an ARN pattern names, directly, and the
/// foundation-model resources a profile it names may route to (with the profile ARNs that
/// condition them).
struct Grant {
    direct: Vec<String>,
    via_profile: Vec<(String, String)>,
}

fn allow_resources(pattern: &str, facts: &Facts) -> Grant {
    let mut direct = Vec::new();
    let mut via_profile = Vec::new();
    if pattern.starts_with("arn:") {
        direct.push(pattern.to_string());
        let partition = pattern.split(':').nth(1).unwrap_or("aws");
        match arn_resource(pattern) {
            Some(("inference-profile", id)) => {
                let base = base_of_profile_pattern(id).unwrap_or(id);
                via_profile.push((
                    pattern.to_string(),
                    format!("arn:{partition}:bedrock:*::foundation-model/{base}"),
                ));
            }
            Some(("application-inference-profile", _)) => via_profile.push((
                pattern.to_string(),
                format!("arn:{partition}:bedrock:*::foundation-model/*"),
            )),
            _ => {}
        }
        return Grant {
            direct,
            via_profile,
        };
    }
    for Place { partition, region } in &facts.places {
        direct.push(format!(
            "arn:{partition}:bedrock:{region}::foundation-model/{pattern}"
        ));
        if may_name_profile(pattern) {
            for account in &facts.accounts {
                let profile = format!(
                    "arn:{partition}:bedrock:{region}:{account}:inference-profile/{pattern}"
                );
                direct.push(profile.clone());
                let base = base_of_profile_pattern(pattern).unwrap_or(pattern);
                via_profile.push((
                    profile,
                    format!("arn:{partition}:bedrock:*::foundation-model/{base}"),
                ));
            }
        }
    }
    Grant {
        direct,
        via_profile,
    }
}

fn deny_resources(pattern: &str, facts: &Facts) -> Vec<String> {
    if pattern.starts_with("arn:") {
        return vec![pattern.to_string()];
    }
    let mut out = Vec::new();
    for partition in &facts.partitions {
        for kind in [
            "foundation-model",
            "inference-profile",
            "application-inference-profile",
        ] {
            out.push(format!("arn:{partition}:bedrock:*:*:{kind}/{pattern}"));
        }
        if !pattern.starts_with('*') {
            out.push(format!(
                "arn:{partition}:bedrock:*:*:inference-profile/*.{pattern}"
            ));
        }
    }
    out
}

fn scope_resources(scope: Scope, loaded: &LoadedBundle, facts: &Facts) -> Vec<String> {
    let listed = |patterns: &[String], kind: &str| -> Vec<String> {
        let mut out = Vec::new();
        for p in patterns {
            if p.starts_with("arn:") {
                out.push(p.clone());
                continue;
            }
            for Place { partition, region } in &facts.places {
                for account in &facts.accounts {
                    out.push(format!(
                        "arn:{partition}:bedrock:{region}:{account}:{kind}/{p}"
                    ));
                }
            }
        }
        out
    };
    let resources = &loaded.bundle.resources;
    match scope {
        Scope::Any => vec!["*".to_string()],
        Scope::Guardrails => listed(&resources.guardrails, "guardrail"),
        Scope::KnowledgeBases => listed(&resources.knowledge_bases, "knowledge-base"),
        Scope::AsyncInvocations => listed(&["*".to_string()], "async-invoke"),
    }
}

/// The allow statements of one allow rule.
fn allow_statements(i: usize, rule: &Rule, loaded: &LoadedBundle, facts: &Facts) -> Vec<Stmt> {
    let ops = rule_ops(rule);
    let mut out = Vec::new();
    if let Some(models) = &rule.models {
        let actions: BTreeSet<String> = ops
            .iter()
            .flat_map(|op| op_actions(*op).0.iter().map(|a| a.to_string()))
            .collect();
        if !actions.is_empty() {
            let mut direct = Stmt::new(format!("AllowRule{i}Models"), "Allow");
            direct.actions = actions.clone();
            let mut via: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for p in models {
                let grant = allow_resources(p, facts);
                grant
                    .direct
                    .into_iter()
                    .for_each(|r| direct.add_resource(r));
                for (profile, fm) in grant.via_profile {
                    let profiles = via.entry(fm).or_default();
                    if !profiles.contains(&profile) {
                        profiles.push(profile);
                    }
                }
            }
            out.push(direct);
            // One statement per destination pattern, conditioned on the profiles that route
            // to it, so a bare model is not callable through another profile's grant.
            for (n, (fm, profiles)) in via.into_iter().enumerate() {
                let mut s = Stmt::new(format!("AllowRule{i}ProfileDestinations{n}"), "Allow");
                s.actions = actions.clone();
                s.add_resource(fm);
                s.condition =
                    Some(json!({ "ArnLike": { "bedrock:InferenceProfileArn": profiles } }));
                out.push(s);
            }
        }
    }
    // Actions not authorised on a model: for a rule without models, or one that names the
    // operation itself (docs/policy.md: how a model-less request is allowed).
    let named = |op: &Operation| {
        rule.models.is_none()
            || rule
                .operations
                .as_ref()
                .is_some_and(|names| names.iter().any(|n| n == op.as_str()))
    };
    let mut by_scope: BTreeMap<Scope, BTreeSet<String>> = BTreeMap::new();
    for op in ops.iter().filter(|op| named(op)) {
        for (action, scope) in op_actions(*op).1 {
            by_scope
                .entry(*scope)
                .or_default()
                .insert(action.to_string());
        }
    }
    for (scope, actions) in by_scope {
        let resources = scope_resources(scope, loaded, facts);
        if resources.is_empty() {
            continue;
        }
        let mut s = Stmt::new(format!("AllowRule{i}{scope:?}"), "Allow");
        s.actions = actions;
        resources.into_iter().for_each(|r| s.add_resource(r));
        out.push(s);
    }
    out
}

/// The explicit deny statement of one enforced deny rule.
fn deny_statement(i: usize, rule: &Rule, facts: &Facts) -> Option<Stmt> {
    let ops = rule_ops(rule);
    let mut s = Stmt::new(format!("DenyRule{i}"), "Deny");
    match &rule.models {
        Some(models) => {
            s.actions = ops
                .iter()
                .flat_map(|op| op_actions(*op).0.iter().map(|a| a.to_string()))
                .collect();
            for p in models {
                deny_resources(p, facts)
                    .into_iter()
                    .for_each(|r| s.add_resource(r));
            }
        }
        None => {
            for op in &ops {
                let (model, other) = op_actions(*op);
                s.actions.extend(model.iter().map(|a| a.to_string()));
                s.actions.extend(other.iter().map(|(a, _)| a.to_string()));
            }
            s.add_resource("*".to_string());
        }
    }
    (!s.actions.is_empty() && !s.resources.is_empty()).then_some(s)
}

/// The statements every document shares: PrivateLink only, and no API keys unless allowed.
fn guard_statements(loaded: &LoadedBundle, facts: &Facts) -> Vec<Stmt> {
    let mut out = Vec::new();
    let mut models = Stmt::new("DenyModelsOutsidePrivateLink".into(), "Deny");
    models.actions = all_model_actions().iter().map(|a| a.to_string()).collect();
    models.add_resource("*".into());
    // The destination-Region authorisation of a cross-Region profile is exempt: its profile
    // was authorised (with aws:SourceVpce) first.
    models.condition = Some(json!({
        "StringNotEquals": { "aws:SourceVpce": facts.vpce_ids },
        "Null": { "bedrock:InferenceProfileArn": "true" }
    }));
    out.push(models);
    let mut others = Stmt::new("DenyOthersOutsidePrivateLink".into(), "Deny");
    others.actions = all_other_actions().iter().map(|a| a.to_string()).collect();
    others.add_resource("*".into());
    others.condition = Some(json!({ "StringNotEquals": { "aws:SourceVpce": facts.vpce_ids } }));
    out.push(others);
    let credentials = loaded.bundle.credentials;
    if !credentials.allow_bearer_api_keys {
        let mut s = Stmt::new("DenyBedrockApiKeys".into(), "Deny");
        s.actions.insert("bedrock:CallWithBearerToken".into());
        s.add_resource("*".into());
        out.push(s);
    } else if !credentials.allow_long_term_api_keys {
        let mut s = Stmt::new("DenyLongTermBedrockApiKeys".into(), "Deny");
        s.actions.insert("bedrock:CallWithBearerToken".into());
        s.add_resource("*".into());
        s.condition = Some(json!({ "StringEquals": { "bedrock:BearerTokenType": "LONG_TERM" } }));
        out.push(s);
    }
    out
}

fn document(statements: &[Stmt], principal: bool) -> Value {
    json!({
        "Version": VERSION,
        "Statement": statements.iter().map(|s| s.to_json(principal)).collect::<Vec<_>>()
    })
}

fn facts(loaded: &LoadedBundle, extra_vpce: &[String]) -> CliResult<(Facts, Vec<Value>)> {
    let mut notes = Vec::new();
    let mut places: Vec<Place> = Vec::new();
    let mut vpce_ids: Vec<String> = Vec::new();
    let mut unnamed = Vec::new();
    for (i, ep) in loaded.policy.endpoints().iter().enumerate() {
        let place = Place {
            partition: ep.partition.to_string(),
            region: ep.region.clone(),
        };
        if !places.contains(&place) {
            places.push(place);
        }
        match ep.kind {
            EndpointKind::VpcEndpoint => {
                if let Some(id) = vpc_endpoint_id(ep.host.as_bytes()) {
                    if !vpce_ids.contains(&id) {
                        vpce_ids.push(id);
                    }
                }
            }
            EndpointKind::ServiceName => unnamed.push(format!("endpoints[{i}] ({})", ep.host)),
        }
    }
    for id in extra_vpce {
        if !vpce_ids.contains(id) {
            vpce_ids.push(id.clone());
        }
    }
    if vpce_ids.is_empty() {
        return Err(CliError::usage(
            "iam",
            format!(
                "no VPC endpoint id: {} {} named by service name (private DNS), which does not \
                 carry the endpoint's id; give it with --vpce-id vpce-...",
                unnamed.join(", "),
                if unnamed.len() == 1 { "is" } else { "are" }
            ),
        ));
    }
    if !unnamed.is_empty() && extra_vpce.is_empty() {
        notes.push(json!(format!(
            "{} {} named by service name: aws:SourceVpce lists only {}; calls through another \
             VPC endpoint are refused by IAM (add its id with --vpce-id)",
            unnamed.join(", "),
            if unnamed.len() == 1 { "is" } else { "are" },
            vpce_ids.join(", ")
        )));
    }
    let mut partitions: Vec<String> = places.iter().map(|p| p.partition.clone()).collect();
    partitions.dedup();
    let aws = loaded.bundle.aws.clone().unwrap_or_default();
    let accounts = loaded
        .bundle
        .accounts
        .clone()
        .or_else(|| aws.principal_accounts.clone())
        .unwrap_or_else(|| vec!["*".to_string()]);
    let mut principal = Map::new();
    if let Some(accounts) = &aws.principal_accounts {
        principal.insert("aws:PrincipalAccount".into(), json!(accounts));
    }
    if let Some(org) = &aws.principal_org_id {
        principal.insert("aws:PrincipalOrgID".into(), json!(org));
    }
    let principal_condition =
        (!principal.is_empty()).then(|| json!({ "StringEquals": Value::Object(principal) }));
    if principal_condition.is_none() {
        notes.push(json!(
            "the bundle has no aws.principal_accounts or aws.principal_org_id: the VPC endpoint \
             policy admits principals of any account (set one of them to restrict the caller's \
             own account, which the guard cannot see)"
        ));
    }
    Ok((
        Facts {
            places,
            partitions,
            accounts,
            vpce_ids,
            principal_condition,
        },
        notes,
    ))
}

/// What IAM cannot express for this bundle: the bundle-specific entries first, then the checks
/// of the guard that have no IAM counterpart at all.
fn cannot_express(loaded: &LoadedBundle) -> Vec<Value> {
    let bundle = &loaded.bundle;
    let mut out = Vec::new();
    for (i, rule) in bundle.rules.iter().enumerate() {
        let name = rule_name(i, rule);
        if rule.principals.is_some() {
            let what = match rule.effect {
                Some(Effect::Deny) => "left out of every policy: a deny for everyone would refuse callers the rule does not name",
                _ => "granted to every role the identity policy is attached to",
            };
            out.push(limit(
                "jwt_principals",
                name.clone(),
                format!("applies to JWT principals (subjects, groups, claims), which IAM never sees; {what}"),
            ));
        }
        if rule.effect == Some(Effect::Deny) && rule.mode == Some(ModeSpec::DryRun) {
            out.push(limit(
                "dry_run",
                name.clone(),
                "a dry-run deny only records; IAM has no record-only statement, so it is left out",
            ));
        }
        if rule.effect == Some(Effect::Deny) && rule.models.is_some() {
            out.push(limit(
                "deny_case",
                name.clone(),
                "the guard matches deny patterns without regard to case; IAM matches resources case-sensitively (Bedrock's ids are lower-case, and the guard refuses upper-case ones)",
            ));
        }
        // Operations that share an action with one the rule lists, but that it does not list.
        if let Some(names) = &rule.operations {
            let listed: Vec<Operation> = rule_ops(rule);
            let actions: BTreeSet<&str> = listed
                .iter()
                .flat_map(|op| op_actions(*op).0.iter().copied())
                .collect();
            let widened: Vec<&str> = Operation::ALL
                .iter()
                .filter(|op| !names.iter().any(|n| n == op.as_str()))
                .filter(|op| op_actions(**op).0.iter().any(|a| actions.contains(a)))
                .map(|op| op.as_str())
                .collect();
            if rule.models.is_some() && !widened.is_empty() {
                out.push(json!({
                    "class": "operation_granularity",
                    "subject": name,
                    "operations": widened,
                    "why": format!(
                        "IAM authorises actions, not operations: the actions of the operations this rule lists also authorise {}",
                        widened.join(", ")
                    )
                }));
            }
        }
    }
    if bundle.mode == ModeSpec::DryRun {
        out.push(limit(
            "dry_run",
            "mode",
            "the bundle is in dry-run mode; the AWS-side policies enforce what the guard only records",
        ));
    }
    if bundle.network.profile_geographies.is_some() {
        out.push(limit(
            "profile_geographies",
            "network.profile_geographies",
            "a wildcard model pattern grants inference profiles of every geography; IAM has no geography key (the guard refuses the others as region_not_allowed)",
        ));
    }
    out.push(limit(
        "output_locations",
        "resources.s3_outputs, resources.kms_keys, resources.lambdas",
        "named in request bodies (StartAsyncInvoke's output location and key, agents' executors and keys); Bedrock's invocation actions have no condition key for them",
    ));
    for ep in loaded.policy.endpoints() {
        if ep.service == BedrockService::Mantle {
            out.push(limit(
                "mantle",
                ep.host.clone(),
                "bedrock-mantle authorises with its own service prefix (bedrock-mantle:), which this generator does not map",
            ));
        }
    }
    for op in Operation::ALL {
        if let ModelLocation::BodyField(_) | ModelLocation::BodyAnywhere(_) = op.model_location() {
            out.push(limit(
                "request_body",
                op.as_str(),
                "the guard reads the model from the body strictly (one JSON object, no duplicate or escaped keys, declared content type and size); IAM sees only the model Bedrock parsed",
            ));
        }
    }
    out.push(limit(
        "request_syntax",
        "path, headers and query",
        "the guard refuses ambiguous paths, repeated or folded security headers, unknown routes and query strings before anything reaches AWS; IAM sees only requests AWS accepted",
    ));
    out.push(limit(
        "network_path",
        "endpoints[].cidrs",
        "the guard checks the addresses the request goes to; IAM sees only which VPC endpoint a request came through (aws:SourceVpce)",
    ));
    out.push(limit(
        "audit",
        "audit records and alerts",
        "the guard's audit record and deny alerts have no IAM counterpart (CloudTrail records the calls AWS receives)",
    ));
    out
}

/// `vpce-` and 8 or 17 lowercase hex digits.
fn is_vpce_id(id: &str) -> bool {
    id.strip_prefix("vpce-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17)
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The command line of `iam`: the bundle file, `--scp`, the extra VPC endpoint ids.
fn parse_args(parser: &mut lexopt::Parser) -> CliResult<Option<(String, bool, Vec<String>)>> {
    use lexopt::prelude::*;
    let mut file = None;
    let mut scp = false;
    let mut extra_vpce = Vec::new();
    while let Some(arg) = parser.next().map_err(|e| args::lex_error("iam", e))? {
        match arg {
            Short('h') | Long("help") => {
                args::print_help("iam")?;
                return Ok(None);
            }
            Long("scp") => scp = true,
            Long("vpce-id") => {
                let id = args::value(parser, "iam")?;
                if !is_vpce_id(&id) {
                    return Err(CliError::usage(
                        "iam",
                        format!("--vpce-id {id:?} is not a VPC endpoint id (vpce- and 8 or 17 lowercase hex digits)"),
                    ));
                }
                extra_vpce.push(id);
            }
            Value(v) if file.is_none() => file = Some(args::os_to_string("iam", v)?),
            other => return Err(CliError::usage("iam", other.unexpected().to_string())),
        }
    }
    let file = file.ok_or_else(|| CliError::usage("iam", "missing FILE (the bundle)"))?;
    Ok(Some((file, scp, extra_vpce)))
}

pub(crate) fn iam_command(parser: &mut lexopt::Parser) -> CliResult<u8> {
    let Some((file, scp, extra_vpce)) = parse_args(parser)? else {
        return Ok(EXIT_OK);
    };
    let loaded = load::require_bundle(&file)?;
    let (facts, notes) = facts(&loaded, &extra_vpce)?;

    let mut allows = Vec::new();
    let mut denies = Vec::new();
    for (i, rule) in loaded.bundle.rules.iter().enumerate() {
        match rule.effect {
            Some(Effect::Allow) => allows.extend(allow_statements(i, rule, &loaded, &facts)),
            Some(Effect::Deny)
                if rule.principals.is_none() && rule.mode != Some(ModeSpec::DryRun) =>
            {
                denies.extend(deny_statement(i, rule, &facts));
            }
            _ => {}
        }
    }
    let guards = guard_statements(&loaded, &facts);

    let identity: Vec<Stmt> = allows
        .iter()
        .chain(&denies)
        .chain(&guards)
        .cloned()
        .collect();
    let endpoint: Vec<Stmt> = allows
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.condition = match (s.condition.take(), &facts.principal_condition) {
                (Some(Value::Object(mut c)), Some(Value::Object(p))) => {
                    c.extend(p.clone());
                    Some(Value::Object(c))
                }
                (c, p) => c.or_else(|| p.clone()),
            };
            s
        })
        .chain(denies.iter().cloned())
        .chain(guards.iter().filter(|s| s.sid.contains("ApiKeys")).cloned())
        .collect();
    let mut policies = Map::new();
    policies.insert("identity_policy".into(), document(&identity, false));
    policies.insert("vpc_endpoint_policy".into(), document(&endpoint, true));
    if scp {
        let mut logging = Stmt::new("DenyModelInvocationLogging".into(), "Deny");
        logging
            .actions
            .insert("bedrock:PutModelInvocationLoggingConfiguration".into());
        logging.add_resource("*".into());
        let statements: Vec<Stmt> = std::iter::once(logging)
            .chain(denies.iter().cloned())
            .chain(guards.iter().cloned())
            .collect();
        policies.insert(
            "service_control_policy".into(),
            document(&statements, false),
        );
    }
    let out = json!({
        "bundle": {
            "name": loaded.policy.name(),
            "revision": loaded.policy.revision(),
            "digest": loaded.digest,
        },
        "vpc_endpoint_ids": facts.vpce_ids,
        "actions": action_table(),
        "policies": Value::Object(policies),
        "cannot_express": cannot_express(&loaded),
        "notes": notes,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&out).unwrap_or_else(|_| out.to_string())
    );
    Ok(EXIT_OK)
}
