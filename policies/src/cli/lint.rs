//! Warnings for bundles that are valid but probably not what their author meant. The checks
//! are conservative: a warning is printed only when it is certain (never-matching allow rules,
//! exact repeats) or when a pattern cannot look like any Bedrock model id.

use super::load::{Diagnostic, Severity};
use super::source::SourceMap;
use crate::bundle::schema::{Bundle, Effect, ModeSpec, Rule};
use crate::matcher::{self, Pattern};
use crate::request::{parse_body_model_id, Arn};

pub(crate) fn warnings(bundle: &Bundle, map: &SourceMap) -> Vec<Diagnostic> {
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
        for (k, pattern) in rule.models.iter().flatten().enumerate() {
            if let Some(message) = model_pattern_warning(pattern) {
                warn(format!("rules[{i}].models[{k}]"), message);
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

/// Why a model pattern cannot look like a Bedrock model id, if it cannot.
fn model_pattern_warning(pattern: &str) -> Option<String> {
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
    if pattern.bytes().any(|b| b.is_ascii_uppercase()) && pattern.contains('.') {
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
