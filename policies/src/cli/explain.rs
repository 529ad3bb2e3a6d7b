//! `explain`: one request through a bundle, with the engine's decision and, rule by rule, an
//! explanation of which rules were considered and which matched.
//!
//! The verdict is always the engine's (`engine::decide`). The rule listing is re-derived here
//! from the bundle with the same public building blocks (operation names, pattern sets, the
//! canonical model references), following the semantics documented in `engine`: deny rules
//! first (the first enforce-mode match decides), then allow rules (each model needs one). It
//! explains; it does not decide.

use serde_json::{json, Value};

use super::args;
use super::http::{self, Decided, IdentityCheck, JwksFile, RequestSpec, Token};
use super::load::{self, LoadedBundle};
use super::{CliError, CliResult, EXIT_OK};
use crate::bundle::schema::{Effect, ModeSpec, Rule};
use crate::decision::{Decision, Reason};
use crate::identity::Caller;
use crate::matcher::PatternSet;
use crate::request::{parse_body_model_id, ModelRef, Operation};

pub(crate) fn explain_command(parser: &mut lexopt::Parser) -> CliResult<u8> {
    use lexopt::prelude::*;
    const CMD: &str = "explain";
    let mut file = None;
    let mut method = None;
    let mut path = None;
    let mut authority = None;
    let mut headers = Vec::new();
    let mut body_file = None;
    let mut request_file = None;
    let mut destination = None;
    let mut caller_sub: Option<String> = None;
    let mut caller_groups: Vec<String> = Vec::new();
    let mut caller_claims = serde_json::Map::new();
    let mut token: Option<Token> = None;
    let mut jwks_files: Vec<JwksFile> = Vec::new();
    let mut now: Option<u64> = None;
    let mut as_json = false;
    while let Some(arg) = parser.next().map_err(|e| args::lex_error(CMD, e))? {
        match arg {
            Short('h') | Long("help") => return args::print_help(CMD),
            Long("method") | Short('X') => method = Some(args::value(parser, CMD)?),
            Long("path") => path = Some(args::value(parser, CMD)?),
            Long("authority") => authority = Some(args::value(parser, CMD)?),
            Long("header") | Short('H') => {
                let line = args::value(parser, CMD)?;
                headers.push(http::parse_header_line(&line).map_err(|e| CliError::usage(CMD, e))?);
            }
            Long("body") => body_file = Some(args::value(parser, CMD)?),
            Long("request") => request_file = Some(args::value(parser, CMD)?),
            Long("destination") => {
                let text = args::value(parser, CMD)?;
                destination = Some(text.parse().map_err(|_| {
                    CliError::usage(CMD, format!("--destination {text:?} is not an IP address"))
                })?);
            }
            Long("caller-sub") => caller_sub = Some(args::value(parser, CMD)?),
            Long("caller-group") => caller_groups.push(args::value(parser, CMD)?),
            Long("caller-claim") => {
                let text = args::value(parser, CMD)?;
                let (name, value) = text.split_once('=').ok_or_else(|| {
                    CliError::usage(CMD, format!("--caller-claim {text:?} is not NAME=VALUE"))
                })?;
                caller_claims
                    .entry(name.to_string())
                    .or_insert_with(|| serde_json::Value::Array(Vec::new()));
                if let Some(serde_json::Value::Array(values)) = caller_claims.get_mut(name) {
                    values.push(serde_json::Value::String(value.to_string()));
                }
            }
            Long("token") => {
                if token.is_some() {
                    return Err(CliError::usage(CMD, "--token is given twice"));
                }
                token = Some(token_value(parser, CMD)?);
            }
            Long("jwks") => http::push_jwks_arg(parser, CMD, &mut jwks_files)?,
            Long("now") => now = Some(now_value(parser, CMD)?),
            Long("json") => as_json = true,
            Value(v) if file.is_none() => file = Some(args::os_to_string(CMD, v)?),
            other => return Err(CliError::usage(CMD, other.unexpected().to_string())),
        }
    }
    let file = file.ok_or_else(|| CliError::usage(CMD, "name the bundle file"))?;
    let mut spec = match (&request_file, &path) {
        (Some(_), Some(_)) => {
            return Err(CliError::usage(
                CMD,
                "give either --request or --path, not both",
            ))
        }
        (None, None) => return Err(CliError::usage(CMD, "give --path (or --request)")),
        (Some(raw), None) => {
            if body_file.is_some() {
                return Err(CliError::usage(
                    CMD,
                    "--body cannot be combined with --request",
                ));
            }
            let bytes = super::source::read_input(raw).map_err(CliError::input)?;
            http::parse_raw_request(&bytes).map_err(|e| CliError::input(format!("{raw}: {e}")))?
        }
        (None, Some(p)) => RequestSpec {
            method: "POST".to_string(),
            path: p.as_bytes().to_vec(),
            scheme: "https".to_string(),
            ..RequestSpec::default()
        },
    };
    if let Some(m) = method {
        spec.method = m;
    }
    if authority.is_some() {
        spec.authority = authority;
    }
    spec.headers.extend(headers);
    if let Some(b) = body_file {
        spec.body = Some(super::source::read_input(&b).map_err(CliError::input)?);
    }
    if destination.is_some() {
        spec.destination = destination;
    }
    if token.is_some() && caller_sub.is_some() {
        return Err(CliError::usage(
            CMD,
            "give either --token (verified against the bundle's identity providers) or \
             --caller-sub (a caller taken as verified), not both",
        ));
    }
    spec.token = token;
    match caller_sub {
        Some(sub) => {
            spec.caller = super::http::verified_caller(sub, caller_groups, caller_claims, None)
        }
        None if !caller_groups.is_empty() || !caller_claims.is_empty() => {
            return Err(CliError::usage(
                CMD,
                "--caller-group and --caller-claim need --caller-sub",
            ))
        }
        None => {}
    }
    let loaded = load::require_bundle(&file)?;
    let mut check = IdentityCheck::new(
        &loaded.policy,
        &jwks_files,
        now.unwrap_or_else(http::system_now),
    )
    .map_err(|e| CliError::usage(CMD, e))?;
    let decided = spec
        .decide(&loaded.policy, &mut check)
        .map_err(|e| CliError::usage(CMD, e.message("--jwks PROVIDER=FILE")))?;
    let caller = match &decided.caller {
        Caller::Verified(p) => Some(p.as_ref()),
        _ => None,
    };
    let rules = explain_rules(&loaded, &decided.decision, caller);
    if as_json {
        let out = explanation_json(&loaded, &spec, &decided, &rules);
        println!(
            "{}",
            serde_json::to_string_pretty(&out).unwrap_or_else(|_| out.to_string())
        );
    } else {
        print!("{}", explanation_text(&loaded, &spec, &decided, &rules));
    }
    Ok(EXIT_OK)
}

/// The value of `--token`: the token, or `@FILE`. Never echoed in messages.
pub(crate) fn token_value(parser: &mut lexopt::Parser, command: &'static str) -> CliResult<Token> {
    let raw = parser.value().map_err(|e| args::lex_error(command, e))?;
    let text = raw
        .into_string()
        .map_err(|_| CliError::usage(command, "--token is not valid UTF-8"))?;
    Token::from_arg(&text).map_err(CliError::input)
}

/// The value of `--now`: seconds since the epoch.
pub(crate) fn now_value(parser: &mut lexopt::Parser, command: &'static str) -> CliResult<u64> {
    let text = args::value(parser, command)?;
    text.parse().map_err(|_| {
        CliError::usage(
            command,
            format!("--now {text:?} is not a time in seconds since the epoch"),
        )
    })
}

/// Who the request was decided for, for the text report (never the token: its fingerprint).
fn caller_text(loaded: &LoadedBundle, decided: &Decided) -> String {
    let fingerprint = decided
        .token_fingerprint
        .as_deref()
        .map(|f| format!("token {f}"))
        .unwrap_or_else(|| "token".to_string());
    let at = decided
        .verified_at
        .map(|t| format!(" at {t}"))
        .unwrap_or_default();
    match &decided.caller {
        Caller::Verified(p) if decided.given => format!(
            "{} (given by hand, not verified; groups: {})",
            p.subject,
            groups_text(&p.groups)
        ),
        Caller::Verified(p) => format!(
            "{} (groups: {}; {fingerprint} verified{at}, issuer {})",
            p.subject,
            groups_text(&p.groups),
            p.issuer
        ),
        Caller::Invalid(e) => format!("none: {fingerprint} refused{at}: {e}"),
        Caller::Missing => format!(
            "none: no token in the identity header {} (give one with --token)",
            loaded.policy.identity_header()
        ),
        Caller::Unavailable => "none: the identity provider's keys are unavailable".to_string(),
        Caller::Anonymous => {
            "anonymous (the bundle has no identity block: rules naming principals never match)"
                .to_string()
        }
    }
}

fn groups_text(groups: &[String]) -> String {
    if groups.is_empty() {
        "-".to_string()
    } else {
        groups.join(", ")
    }
}

fn caller_json(loaded: &LoadedBundle, decided: &Decided) -> Value {
    let (status, principal, error) = match &decided.caller {
        Caller::Verified(p) if decided.given => ("given", Some(p), None),
        Caller::Verified(p) => ("verified", Some(p), None),
        Caller::Invalid(e) => ("invalid", None, Some(e)),
        Caller::Missing => ("missing", None, None),
        Caller::Unavailable => ("unavailable", None, None),
        Caller::Anonymous => ("anonymous", None, None),
    };
    json!({
        "status": status,
        "identity_header": loaded.policy.has_identity().then(|| loaded.policy.identity_header()),
        "token_fingerprint": decided.token_fingerprint,
        "verified_at": decided.verified_at,
        "subject": principal.map(|p| p.subject.as_str()),
        "groups": principal.map(|p| p.groups.clone()),
        "issuer": principal.filter(|_| !decided.given).map(|p| p.issuer.as_str()),
        "error": error.map(|e| e.as_str()),
        "error_message": error.map(|e| e.to_string()),
    })
}

/// One rule, as the explanation sees it.
#[derive(Debug, Clone)]
pub(crate) struct RuleView {
    pub(crate) index: usize,
    pub(crate) id: String,
    pub(crate) effect: &'static str,
    /// The rule's effective mode (deny rules in a dry-run bundle are dry-run).
    pub(crate) mode: &'static str,
    pub(crate) considered: bool,
    /// `None` when the rule has no such condition.
    pub(crate) operation_matches: Option<bool>,
    pub(crate) models_matched: Option<usize>,
    /// The rule names principals (which only a verified caller can match).
    pub(crate) needs_principal: bool,
    /// Whether the caller given to `explain` matches them (`None`: no caller given).
    pub(crate) principal_matches: Option<bool>,
    pub(crate) matched: bool,
    pub(crate) decided: bool,
}

fn rules_reached(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::Allowed
            | Reason::ModelDenied
            | Reason::ModelNotAllowed
            | Reason::OperationNotAllowed
    )
}

use crate::bundle::ModelMatcher;
use crate::engine::{model_allowed_by, model_denied_by};

fn matcher(patterns: &[String]) -> ModelMatcher {
    ModelMatcher::new(patterns.iter().map(String::as_str))
}

/// The engine's principal semantics: every category the rule names must match, any pattern
/// within a category.
fn principals_match(
    p: &crate::bundle::schema::Principals,
    who: &crate::identity::Principal,
) -> bool {
    let set = |patterns: &[String]| PatternSet::new(patterns.iter().map(String::as_str));
    (p.subjects.is_empty() || set(&p.subjects).matches(&who.subject))
        && (p.groups.is_empty() || who.groups.iter().any(|g| set(&p.groups).matches(g)))
        && p.claims
            .0
            .iter()
            .all(|(name, patterns)| who.claim_strings(name).any(|v| set(patterns).matches(v)))
}

fn effective_mode(bundle_mode: ModeSpec, rule: &Rule) -> &'static str {
    match (rule.effect, bundle_mode, rule.mode) {
        (Some(Effect::Deny), ModeSpec::DryRun, _)
        | (Some(Effect::Deny), _, Some(ModeSpec::DryRun)) => "dry-run",
        _ => "enforce",
    }
}

/// Explain every rule of the bundle for this decision.
pub(crate) fn explain_rules(
    loaded: &LoadedBundle,
    decision: &Decision,
    caller: Option<&crate::identity::Principal>,
) -> Vec<RuleView> {
    let bundle = &loaded.bundle;
    let reached = rules_reached(decision.reason) && decision.operation.is_some();
    let op = decision.operation;
    let models: Vec<ModelRef> = decision
        .models
        .iter()
        .filter_map(|m| parse_body_model_id(m).ok())
        .collect();
    let mut views: Vec<RuleView> = bundle
        .rules
        .iter()
        .enumerate()
        .map(|(index, rule)| {
            let operation_matches = rule.operations.as_ref().map(|ops| {
                op.is_some_and(|op| ops.iter().any(|n| Operation::from_name(n) == Some(op)))
            });
            let needs_principal = rule.principals.is_some();
            let principal_ok = match (&rule.principals, caller) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(p), Some(who)) => principals_match(p, who),
            };
            let applies = principal_ok && operation_matches.unwrap_or(true);
            let is_deny = rule.effect == Some(Effect::Deny);
            let models_matched = rule.models.as_ref().map(|patterns| {
                models
                    .iter()
                    .filter(|m| {
                        if is_deny {
                            model_denied_by(&matcher(patterns), m)
                        } else {
                            model_allowed_by(&matcher(patterns), m)
                        }
                    })
                    .count()
            });
            let some_model_matches = models_matched.is_none_or(|n| n > 0);
            // A request that names no model is matched by an allow rule without models or one
            // that names its operation explicitly (the engine's `evaluate_request`).
            let matched = reached
                && applies
                && if is_deny || !models.is_empty() {
                    some_model_matches
                } else {
                    rule.models.is_none() || rule.operations.is_some()
                };
            RuleView {
                index,
                id: rule.id.clone().unwrap_or_default(),
                effect: if is_deny { "deny" } else { "allow" },
                mode: effective_mode(bundle.mode, rule),
                considered: reached,
                operation_matches,
                models_matched,
                needs_principal,
                principal_matches: rule
                    .principals
                    .as_ref()
                    .and_then(|p| caller.map(|who| principals_match(p, who))),
                matched,
                decided: false,
            }
        })
        .collect();
    if reached {
        // Deny rules are tried in order and the first enforce-mode match ends the evaluation.
        let stop = views
            .iter()
            .find(|v| v.effect == "deny" && v.matched && v.mode == "enforce")
            .map(|v| v.index);
        if let Some(stop) = stop {
            for v in &mut views {
                let later_deny = v.effect == "deny" && v.index > stop;
                if later_deny || v.effect == "allow" {
                    v.considered = false;
                    v.matched = false;
                }
            }
        }
    }
    if let Some(rule) = &decision.rule_id {
        for v in &mut views {
            v.decided = v.considered && v.matched && &v.id == rule;
        }
    }
    views
}

fn verdict(decision: &Decision) -> &'static str {
    if decision.is_allow() {
        "allow"
    } else {
        "deny"
    }
}

fn explanation_json(
    loaded: &LoadedBundle,
    spec: &RequestSpec,
    decided: &Decided,
    rules: &[RuleView],
) -> Value {
    let decision = &decided.decision;
    let (authority, defaulted) = spec.effective_authority(&loaded.policy);
    json!({
        "bundle": {
            "name": loaded.policy.name(),
            "revision": loaded.policy.revision(),
            "digest": loaded.digest,
        },
        "request": {
            "method": spec.method,
            "path": String::from_utf8_lossy(&spec.path),
            "authority": authority,
            "authority_defaulted": defaulted,
        },
        "caller": caller_json(loaded, decided),
        "verdict": verdict(decision),
        "lets_through": decision.lets_through(),
        "reason": decision.reason.as_str(),
        "detail": decision.detail,
        "rule": decision.rule_id,
        "mode": decision.mode.as_str(),
        "operation": decision.operation.map(Operation::as_str),
        "models": decision.models,
        "status": decision.status(),
        "response_body": if decision.is_allow() { Value::Null } else { Value::String(decision.error_body()) },
        "rules_reached": rules_reached(decision.reason) && decision.operation.is_some(),
        "rules": rules.iter().map(|r| json!({
            "index": r.index,
            "id": r.id,
            "effect": r.effect,
            "mode": r.mode,
            "considered": r.considered,
            "operation_matches": r.operation_matches,
            "models_matched": r.models_matched,
            "needs_principal": r.needs_principal,
            "principal_matches": r.principal_matches,
            "matched": r.matched,
            "decided": r.decided,
        })).collect::<Vec<_>>(),
    })
}

fn explanation_text(
    loaded: &LoadedBundle,
    spec: &RequestSpec,
    decided: &Decided,
    rules: &[RuleView],
) -> String {
    let decision = &decided.decision;
    let (authority, defaulted) = spec.effective_authority(&loaded.policy);
    let mut out = String::new();
    let mut line = |k: &str, v: &str| out.push_str(&format!("{k:<11} {v}\n"));
    line(
        "request:",
        &format!(
            "{} {} (authority {authority}{})",
            spec.method,
            String::from_utf8_lossy(&spec.path),
            if defaulted {
                ", the bundle's first endpoint"
            } else {
                ""
            }
        ),
    );
    line("caller:", &caller_text(loaded, decided));
    let verdict_text = match (decision.is_allow(), decision.lets_through()) {
        (true, _) => "allow".to_string(),
        (false, true) => "deny (dry-run: recorded, the request goes through)".to_string(),
        (false, false) => "deny".to_string(),
    };
    line("verdict:", &verdict_text);
    line("reason:", decision.reason.as_str());
    if !decision.detail.is_empty() {
        line("detail:", &decision.detail);
    }
    line("rule:", decision.rule_id.as_deref().unwrap_or("-"));
    line("mode:", decision.mode.as_str());
    line(
        "operation:",
        decision.operation.map_or("-", Operation::as_str),
    );
    line(
        "models:",
        &if decision.models.is_empty() {
            "-".to_string()
        } else {
            decision.models.join(", ")
        },
    );
    if decision.is_allow() {
        line("response:", "forwarded upstream");
    } else {
        line(
            "response:",
            &format!("{} {}", decision.status(), decision.error_body()),
        );
    }
    out.push_str(&format!(
        "\nrules (an explanation re-derived from bundle {} rev {}; the verdict above is the engine's):\n",
        loaded.policy.name(),
        loaded.policy.revision()
    ));
    let reached = rules_reached(decision.reason) && decision.operation.is_some();
    if !reached {
        out.push_str(&format!(
            "  not reached: the request was refused ({}) before any rule was evaluated\n",
            decision.reason
        ));
    }
    let no_caller = match decided.caller {
        Caller::Invalid(_) | Caller::Unavailable => "; principals: no verified caller",
        _ => "; principals: no caller given (--token or --caller-sub)",
    };
    for r in rules {
        let operation = match r.operation_matches {
            None => "any".to_string(),
            Some(true) => "match".to_string(),
            Some(false) => "no match".to_string(),
        };
        let models = match r.models_matched {
            None => "any".to_string(),
            Some(n) => format!("{n} of {} match", decision.models.len()),
        };
        let result = if !r.considered {
            "not considered"
        } else if r.decided {
            "MATCH (decided)"
        } else if r.matched {
            "match"
        } else {
            "no match"
        };
        out.push_str(&format!(
            "  rules[{}] {} ({} {}): operation {operation}; models {models}{} -> {result}\n",
            r.index,
            r.id,
            r.effect,
            r.mode,
            match (r.needs_principal, r.principal_matches) {
                (false, _) => "",
                (true, None) => no_caller,
                (true, Some(true)) => "; principals match",
                (true, Some(false)) => "; principals no match",
            },
        ));
    }
    out
}
