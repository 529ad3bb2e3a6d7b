//! `explain`: one request through a bundle, with the engine's decision and its own trace of
//! the decision: the step that decided and, rule by rule, which rules the engine tried and what
//! it found (`engine::decide_traced`). Nothing here matches a rule: it prints the trace.

use serde_json::{json, Value};

use super::args;
use super::http::{self, Decided, IdentityCheck, JwksFile, RequestSpec, Token};
use super::load::{self, LoadedBundle};
use super::{CliError, CliResult, EXIT_OK};
use policies::bundle::schema::Effect;
use policies::decision::Decision;
use policies::engine::{Step, TracedRule};
use policies::identity::Caller;
use policies::request::Operation;

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
    if as_json {
        let out = explanation_json(&loaded, &spec, &decided);
        println!(
            "{}",
            serde_json::to_string_pretty(&out).unwrap_or_else(|_| out.to_string())
        );
    } else {
        print!("{}", explanation_text(&loaded, &spec, &decided));
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

fn effect_str(effect: Effect) -> &'static str {
    match effect {
        Effect::Allow => "allow",
        Effect::Deny => "deny",
    }
}

/// The request's models a rule's `models` matched, by name.
fn model_names<'d>(decision: &'d Decision, positions: &[usize]) -> Vec<&'d str> {
    positions
        .iter()
        .filter_map(|&i| decision.models.get(i).map(String::as_str))
        .collect()
}

fn verdict(decision: &Decision) -> &'static str {
    if decision.is_allow() {
        "allow"
    } else {
        "deny"
    }
}

fn explanation_json(loaded: &LoadedBundle, spec: &RequestSpec, decided: &Decided) -> Value {
    let decision = &decided.decision;
    let trace = &decided.trace;
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
        "step": trace.step.map(Step::name),
        "rules_reached": trace.rules_reached(),
        "rules": trace.rules.iter().map(|r| json!({
            "index": r.index,
            "id": r.id,
            "effect": effect_str(r.effect),
            "mode": r.mode.as_str(),
            "considered": r.tried,
            "order": trace.order.iter().position(|&i| i == r.index),
            "operation_matches": r.operation_matches,
            "models_matched": r.models_matched.as_ref().map(Vec::len),
            "matched_models": r.models_matched.as_deref().map(|m| model_names(decision, m)),
            "models_tried": (r.effect == Effect::Allow && r.tried)
                .then(|| model_names(decision, &r.models_tried)),
            "needs_principal": r.names_principals,
            "principal_matches": r.principals_match,
            "matched": r.matched,
            "decided": r.decided,
        })).collect::<Vec<_>>(),
    })
}

fn explanation_text(loaded: &LoadedBundle, spec: &RequestSpec, decided: &Decided) -> String {
    let decision = &decided.decision;
    let trace = &decided.trace;
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
    line("step:", trace.step.map_or("-", Step::name));
    out.push_str(&format!(
        "\nrules (the engine's trace, bundle {} rev {}; in the order tried):\n",
        loaded.policy.name(),
        loaded.policy.revision()
    ));
    if !trace.rules_reached() {
        let hint = match (trace.step, &decided.caller) {
            (Some(Step::Identity), Caller::Missing) => {
                "; no caller given (--token or --caller-sub)"
            }
            _ => "",
        };
        out.push_str(&format!(
            "  not reached: the request was refused at step \"{}\" ({}) before any rule was tried{hint}\n",
            trace.step.map_or("-", Step::name),
            decision.reason
        ));
    }
    let verified = matches!(decided.caller, Caller::Verified(_));
    let untried = trace.rules.iter().filter(|r| !r.tried);
    for r in trace.tried().chain(untried) {
        out.push_str(&rule_line(r, decision, verified));
    }
    out
}

/// One rule of the trace, as a line of the text report.
fn rule_line(r: &TracedRule, decision: &Decision, verified: bool) -> String {
    let head = format!(
        "  rules[{}] {} ({} {})",
        r.index,
        r.id,
        effect_str(r.effect),
        r.mode.as_str()
    );
    if !r.tried {
        return format!("{head} -> not considered\n");
    }
    let operation = match r.operation_matches {
        None => "any",
        Some(true) => "match",
        Some(false) => "no match",
    };
    let models = match &r.models_matched {
        None => "any".to_string(),
        Some(_) if decision.models.is_empty() => "none named by the request".to_string(),
        Some(m) => format!("{} of {} match", m.len(), decision.models.len()),
    };
    let tried_for = if r.effect == Effect::Allow && decision.models.len() > 1 {
        format!(
            "; tried for {}",
            model_names(decision, &r.models_tried).join(", ")
        )
    } else {
        String::new()
    };
    let principals = match r.principals_match {
        None => "",
        Some(true) => "; principals match",
        Some(false) if !verified => "; principals no match (no verified caller)",
        Some(false) => "; principals no match",
    };
    let result = if r.decided {
        "MATCH (decided)"
    } else if r.matched {
        "match"
    } else {
        "no match"
    };
    format!("{head}: operation {operation}; models {models}{principals}{tried_for} -> {result}\n")
}
