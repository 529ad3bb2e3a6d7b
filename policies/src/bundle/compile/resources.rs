//! `resources`: the S3 outputs, KMS keys, Lambda functions, knowledge bases and guardrails a
//! request may name, each list checked for its kind's shape.

use crate::bundle::schema::Resources;
use crate::bundle::validate::Errors;
use crate::matcher::PatternSet;
use crate::request::resource::{is_s3_bucket, parse_arn};
use crate::request::ResourceKind;

/// `resources`, compiled (see `schema::Resources`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CompiledResources {
    pub(super) s3_outputs: PatternSet,
    pub(super) kms_keys: PatternSet,
    pub(super) lambdas: PatternSet,
    pub(super) knowledge_bases: PatternSet,
    pub(super) guardrails: PatternSet,
    /// Always empty.
    pub(super) none: PatternSet,
}

/// `resources`: each list's patterns checked for their kind's shape, no duplicates.
#[inline(never)] // config-time: kept out of `compile` (see compile/mod.rs)
pub(super) fn compile_resources(r: &Resources, errs: &mut Errors) -> CompiledResources {
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
