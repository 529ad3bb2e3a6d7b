//! Warnings for bundles that are valid but probably not what their author meant. The checks
//! are conservative: a warning is printed only when it is certain (never-matching allow rules,
//! exact repeats, deny rules whose every request is refused by an earlier check, operations no
//! endpoint serves) or when a pattern cannot look like any Bedrock model id.

use super::load::{Diagnostic, Severity};
use super::source::SourceMap;
use policies::aws::{self, BedrockService};
use policies::bundle::schema::{Bundle, Effect, ModeSpec, Rule};
use policies::bundle::CompiledPolicy;
use policies::engine;
use policies::matcher::{self, Pattern};
use policies::request::{parse_body_model_id, Arn, Operation};

pub(crate) fn warnings(
    bundle: &Bundle,
    policy: &CompiledPolicy,
    map: &SourceMap,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut warn = |path: String, message: String| {
        out.push(Diagnostic {
            severity: Severity::Warning,
            pos: map.position(&path),
            path: Some(path),
            message,
        });
    };
    for (i, rule) in bundle.rules.iter().enumerate() {
        if let Some(j) = bundle
            .rules
            .get(..i)
            .and_then(|before| before.iter().position(|earlier| same_rule(earlier, rule)))
        {
            warn(
                format!("rules[{i}]"),
                format!(
                    "repeats rules[{j}] ({}): same effect and conditions, so it never changes a decision",
                    label(bundle.rules.get(j))
                ),
            );
        } else if rule.effect == Some(Effect::Allow) {
            if let Some(deniers) = never_allows(bundle, rule) {
                warn(
                    format!("rules[{i}]"),
                    format!(
                        "can never allow anything: everything it allows is denied by enforce-mode {}",
                        deniers
                            .iter()
                            .map(|j| format!("rules[{j}] ({})", label(bundle.rules.get(*j))))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        if rule.effect == Some(Effect::Deny) {
            if let Some(why) = refused_before_the_rules(bundle, policy, rule) {
                warn(
                    format!("rules[{i}]"),
                    format!(
                        "can never fire: every request it matches is refused before the rules: {why}"
                    ),
                );
            }
        }
        let folded = rule.effect == Some(Effect::Deny);
        for (k, pattern) in rule.models.iter().flatten().enumerate() {
            if let Some(message) = model_pattern_warning(pattern, folded) {
                warn(format!("rules[{i}].models[{k}]"), message);
            }
        }
        if rule.effect == Some(Effect::Allow) {
            for (j, name) in rule.operations.iter().flatten().enumerate() {
                let Some(op) = Operation::from_name(name) else {
                    continue;
                };
                let served_by = services(op);
                if !policy
                    .endpoints()
                    .iter()
                    .any(|e| served_by.contains(&e.service))
                {
                    let names = served_by
                        .iter()
                        .map(|s| s.label())
                        .collect::<Vec<_>>()
                        .join(" or ");
                    warn(
                        format!("rules[{i}].operations[{j}]"),
                        format!(
                            "allows {op}, a {names} operation, but no endpoint is a {names} endpoint: \
                             such a request could only be sent to an endpoint that does not serve it \
                             (add a {names} endpoint, or remove the operation)"
                        ),
                    );
                }
            }
        }
        if rule.effect == Some(Effect::Allow) {
            for (op, field, empty) in [
                (
                    "StartAsyncInvoke",
                    "s3_outputs",
                    bundle.resources.s3_outputs.is_empty(),
                ),
                (
                    "ApplyGuardrail",
                    "guardrails",
                    bundle.resources.guardrails.is_empty(),
                ),
                (
                    "Retrieve",
                    "knowledge_bases",
                    bundle.resources.knowledge_bases.is_empty(),
                ),
            ] {
                let names_op = rule
                    .operations
                    .as_ref()
                    .is_some_and(|ops| ops.iter().any(|o| o == op));
                if names_op && empty {
                    warn(
                        format!("rules[{i}].operations"),
                        format!(
                            "allows {op}, but resources.{field} lists nothing, so every {op} is refused (resource_not_allowed)"
                        ),
                    );
                }
            }
        }
        // Allow patterns are matched case-sensitively and Bedrock's transparent ids are
        // lower-case: an upper-case letter outside an ARN pattern can never match one.
        if rule.effect == Some(Effect::Allow) {
            for (k, pattern) in rule.models.iter().flatten().enumerate() {
                if !pattern.starts_with("arn:")
                    && pattern.contains('.')
                    && pattern.bytes().any(|b| b.is_ascii_uppercase())
                {
                    warn(
                        format!("rules[{i}].models[{k}]"),
                        format!(
                            "{pattern:?} has upper case: model ids with a '.' are lower-case (an upper-case id is refused as model_invalid), so it never matches"
                        ),
                    );
                }
            }
        }
    }
    out
}

/// The services whose endpoints serve `op` (the guard routes on the path alone, so a request
/// for an operation can be sent to any endpoint; only these answer it).
fn services(op: Operation) -> &'static [BedrockService] {
    use BedrockService::{AgentRuntime, Mantle, Runtime};
    match op {
        Operation::InvokeModel
        | Operation::InvokeModelWithResponseStream
        | Operation::Converse
        | Operation::ConverseStream
        | Operation::CountTokens
        | Operation::InvokeModelWithBidirectionalStream
        | Operation::StartAsyncInvoke
        | Operation::GetAsyncInvoke
        | Operation::ListAsyncInvokes
        | Operation::ApplyGuardrail => &[Runtime],
        // The OpenAI- and Anthropic-compatible APIs are served by bedrock-runtime and by
        // bedrock-mantle.
        Operation::ChatCompletions | Operation::Responses | Operation::AnthropicMessages => {
            &[Runtime, Mantle]
        }
        Operation::InvokeInlineAgent
        | Operation::Retrieve
        | Operation::RetrieveAndGenerate
        | Operation::RetrieveAndGenerateStream
        | Operation::Rerank
        | Operation::OptimizePrompt => &[AgentRuntime],
    }
}

/// When an earlier check of the engine refuses every request a deny rule matches, why. Two
/// ways, each sufficient:
///
/// * every operation the rule names is one whose every request names a resource of a kind the
///   bundle's `resources` does not list (StartAsyncInvoke's S3 output, ApplyGuardrail's
///   guardrail, Retrieve's knowledge base), refused at the resources step;
/// * every model pattern can only match ids refused before the rules: a cross-region profile
///   of a known geography that no endpoint may use (`global.*` when
///   `network.profile_geographies` does not list `global`), or an ARN whose literal partition,
///   region or account no request can reach the rules with.
///
/// Deny patterns match without regard to case, against the canonical id, an ARN's resource
/// id and the base model behind a profile; the reasoning is about the ids Bedrock has (a
/// made-up one-dot id such as `global.x`, which no Bedrock model has, would reach the rule).
fn refused_before_the_rules(
    bundle: &Bundle,
    policy: &CompiledPolicy,
    rule: &Rule,
) -> Option<String> {
    if let Some(ops) = &rule.operations {
        let why: Option<Vec<String>> = ops
            .iter()
            .map(|name| unlisted_resource(bundle, Operation::from_name(name)?))
            .collect();
        if let Some(why) = why.filter(|w| !w.is_empty()) {
            return Some(dedup_join(why));
        }
    }
    let patterns = rule.models.as_ref()?;
    let why: Option<Vec<String>> = patterns
        .iter()
        .map(|p| pattern_refused_early(bundle, policy, p))
        .collect();
    why.filter(|w| !w.is_empty()).map(dedup_join)
}

fn dedup_join(mut reasons: Vec<String>) -> String {
    let mut seen = Vec::new();
    reasons.retain(|r| {
        let new = !seen.contains(r);
        if new {
            seen.push(r.clone());
        }
        new
    });
    reasons.join("; ")
}

/// For an operation whose every request names a resource of one kind, the refusal when the
/// bundle lists no resource of that kind.
fn unlisted_resource(bundle: &Bundle, op: Operation) -> Option<String> {
    let r = &bundle.resources;
    let (field, empty) = match op {
        Operation::StartAsyncInvoke => ("s3_outputs", r.s3_outputs.is_empty()),
        Operation::ApplyGuardrail => ("guardrails", r.guardrails.is_empty()),
        Operation::Retrieve => ("knowledge_bases", r.knowledge_bases.is_empty()),
        _ => return None,
    };
    empty.then(|| {
        format!("{op} is always refused (resource_not_allowed): resources.{field} lists nothing")
    })
}

/// Why every id the deny pattern can match is refused before the rules, if it is.
fn pattern_refused_early(
    bundle: &Bundle,
    policy: &CompiledPolicy,
    pattern: &str,
) -> Option<String> {
    let folded = pattern.to_ascii_lowercase();
    // The part every match starts with (deny patterns ignore case).
    let literal = folded.split(['*', '?']).next().unwrap_or_default();
    let Some(arn) = literal.strip_prefix("arn:") else {
        return geography_refused(policy, pattern, literal);
    };
    // The fields the literal part writes out completely (each followed by its ':').
    // (partition, service, region, account, then the resource, which may go on).
    let mut fields: Vec<&str> = arn.splitn(5, ':').collect();
    let resource = if fields.len() == 5 {
        fields.pop()
    } else {
        // The last field written may go on past the literal part.
        fields.pop();
        None
    };
    let endpoints = policy.endpoints();
    if let Some(partition) = fields.first() {
        if !endpoints.iter().any(|e| e.partition == *partition) {
            return Some(format!(
                "{pattern:?} names ARNs in partition {partition:?}, which no endpoint is in (region_not_allowed)"
            ));
        }
    }
    if let (Some(partition), Some(region)) = (fields.first(), fields.get(2)) {
        if region.is_empty() {
            return Some(format!(
                "{pattern:?} names ARNs without a region, which are always refused (region_not_allowed)"
            ));
        }
        if !endpoints
            .iter()
            .any(|e| e.partition == *partition && e.region == *region)
        {
            return Some(format!(
                "{pattern:?} names ARNs in region {region:?}, which no endpoint is in (region_not_allowed)"
            ));
        }
    }
    if let (Some(account), Some(accounts)) = (fields.get(3), bundle.accounts.as_ref()) {
        if !account.is_empty() && !accounts.iter().any(|a| a == account) {
            return Some(format!(
                "{pattern:?} names ARNs of account {account}, which is not in accounts (account_not_allowed)"
            ));
        }
    }
    // A system profile (or foundation-model) ARN of a geography no endpoint may use.
    let (kind, id) = resource?.split_once('/')?;
    if matches!(kind, "inference-profile" | "foundation-model") {
        return geography_refused(policy, pattern, id);
    }
    None
}

/// For a literal head `geo.` of a known geography: why no endpoint may use its profiles.
/// Only known geographies (`us`, `eu`, `global`, ...): an unknown first label could be a
/// model provider (`anthropic.*` matches base model ids, which have no geography).
fn geography_refused(policy: &CompiledPolicy, pattern: &str, literal: &str) -> Option<String> {
    let (geo, _) = literal.split_once('.')?;
    aws::geography_serves(geo, "")?;
    let endpoints = policy.endpoints();
    if endpoints
        .iter()
        .any(|e| engine::check_geography(policy, geo, &e.region).is_ok())
    {
        return None;
    }
    let listed = policy
        .profile_geographies()
        .is_some_and(|list| list.iter().any(|g| g == geo));
    let why = if policy.profile_geographies().is_some() && !listed {
        format!("network.profile_geographies does not list {geo:?}")
    } else {
        let mut regions: Vec<&str> = endpoints.iter().map(|e| e.region.as_str()).collect();
        regions.sort_unstable();
        regions.dedup();
        format!("the {geo} geography does not serve {}", regions.join(", "))
    };
    Some(format!(
        "{pattern:?} names {geo} cross-region profiles, refused at the geography check (region_not_allowed): {why}"
    ))
}

fn label(rule: Option<&Rule>) -> String {
    rule.and_then(|r| r.id.as_deref())
        .map_or_else(|| "?".to_string(), |id| format!("{id:?}"))
}

fn sorted(list: Option<&Vec<String>>) -> Option<Vec<&str>> {
    list.map(|l| {
        let mut v: Vec<&str> = l.iter().map(String::as_str).collect();
        v.sort_unstable();
        v.dedup();
        v
    })
}

fn same_rule(a: &Rule, b: &Rule) -> bool {
    a.effect == b.effect
        && a.mode.unwrap_or(ModeSpec::Enforce) == b.mode.unwrap_or(ModeSpec::Enforce)
        && a.principals == b.principals
        && sorted(a.models.as_ref()) == sorted(b.models.as_ref())
        && sorted(a.operations.as_ref()) == sorted(b.operations.as_ref())
}

/// When every model (or, without models, the operations) an allow rule could allow is
/// matched by an enforce-mode deny rule without principals whose operations include the allow
/// rule's, the deny rules responsible (in bundle order).
fn never_allows(bundle: &Bundle, allow: &Rule) -> Option<Vec<usize>> {
    if allow.principals.is_some() {
        return None;
    }
    let deny_rules: Vec<(usize, &Rule)> = bundle
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.effect == Some(Effect::Deny)
                && r.principals.is_none()
                && bundle.mode == ModeSpec::Enforce
                && r.mode != Some(ModeSpec::DryRun)
                && covers_operations(r.operations.as_ref(), allow.operations.as_ref())
        })
        .collect();
    let mut responsible = Vec::new();
    match &allow.models {
        None => {
            let (j, _) = deny_rules.iter().find(|(_, d)| d.models.is_none())?;
            responsible.push(*j);
        }
        Some(patterns) => {
            for pattern in patterns {
                let (j, _) = deny_rules.iter().find(|(_, d)| match &d.models {
                    None => true,
                    Some(denied) => denied.iter().any(|dp| pattern_covers(dp, pattern)),
                })?;
                if !responsible.contains(j) {
                    responsible.push(*j);
                }
            }
        }
    }
    responsible.sort_unstable();
    Some(responsible)
}

fn covers_operations(deny: Option<&Vec<String>>, allow: Option<&Vec<String>>) -> bool {
    match (deny, allow) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(d), Some(a)) => a.iter().all(|op| d.contains(op)),
    }
}

/// Does every id that `allow` can match also match `deny`? Sure answers only: a literal
/// allow pattern is tested directly; a wildcard one is covered by `*`, by an identical
/// pattern, or by `prefix*` when its own literal prefix starts with that prefix.
fn pattern_covers(deny: &str, allow: &str) -> bool {
    if matcher::is_literal(allow) {
        return Pattern::new(deny).matches(allow);
    }
    if deny == "*" || deny == allow {
        return true;
    }
    match deny.strip_suffix('*') {
        Some(prefix) if matcher::is_literal(prefix) => {
            let literal_prefix = allow.split(['*', '?']).next().unwrap_or_default();
            literal_prefix.starts_with(prefix)
        }
        _ => false,
    }
}

/// Why a model pattern cannot look like a Bedrock model id, if it cannot. `folded`: the
/// pattern is matched without regard to case (a deny rule's), so upper case is no problem.
fn model_pattern_warning(pattern: &str, folded: bool) -> Option<String> {
    if pattern.starts_with("arn:") {
        if matcher::is_literal(pattern) {
            if let Err(e) = Arn::parse(pattern) {
                return Some(format!(
                    "{pattern:?} is not a canonical model ARN ({e}), so it can never match"
                ));
            }
        }
        return None;
    }
    if pattern.contains('/') {
        return Some(format!(
            "{pattern:?} has a '/' outside an ARN; no canonical model id does, so it can never match"
        ));
    }
    if !folded && pattern.bytes().any(|b| b.is_ascii_uppercase()) && pattern.contains('.') {
        return Some(format!(
            "{pattern:?} has uppercase letters; Bedrock model ids are lowercase and matching is case-sensitive"
        ));
    }
    if matcher::is_literal(pattern) {
        if !pattern.contains('.') {
            return Some(format!(
                "{pattern:?} has no '.': it can only name a bare resource (a provisioned or custom model name); \
                 foundation models are written provider.model and profiles geo.provider.model"
            ));
        }
        if let Err(e) = parse_body_model_id(pattern) {
            return Some(format!(
                "{pattern:?} is not a canonical model id ({e}), so it can never match"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_is_conservative() {
        assert!(pattern_covers("*", "anthropic.claude-*"));
        assert!(pattern_covers("global.*", "global.anthropic.*"));
        assert!(pattern_covers(
            "*claude-opus*",
            "anthropic.claude-opus-4-v1:0"
        ));
        assert!(!pattern_covers("*claude-opus*", "anthropic.claude-*"));
        assert!(!pattern_covers("global.a*", "global.*"));
    }
}
