//! Resources other than models that a request names: S3 output locations, KMS keys, Lambda
//! functions, knowledge bases, guardrails, owner accounts, async invocations.
//!
//! Each value is read in one unambiguous form or refused: an ARN must have all six parts with
//! a known partition, the service its kind needs, a region and a 12-digit account; bare ids
//! and S3 URIs must match the grammar of their API shape. What is refused here is refused
//! with `resource_not_allowed` (the value names something the guard cannot vouch for).

use super::model::{is_account, is_arn_region};
use super::route::ResourceKind;
use crate::aws::is_partition;

/// The parts of a resource ARN the guard checks (partition, region, account).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResourceArn<'a> {
    /// Shaped like a partition (`aws`, `aws-<name>`).
    pub(crate) partition: &'a str,
    /// `[a-z0-9-]+`.
    pub(crate) service: &'a str,
    /// Empty, or `[a-z0-9-]{1,20}`.
    pub(crate) region: &'a str,
    /// Empty, or 12 digits.
    pub(crate) account: &'a str,
    /// Everything after the fifth `:` (`function:name`, `key/id`, `guardrail/id`, ...).
    pub(crate) resource: &'a str,
}

/// A resource value that passed its grammar: its text, and its ARN parts when it is an ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResourceRef<'a> {
    /// The value as the request wrote it.
    pub(crate) text: &'a str,
    /// Its parts, when it is an ARN.
    pub(crate) arn: Option<ResourceArn<'a>>,
}

/// Longest resource value accepted, in bytes (the longest API shape, an S3 URI, is 1024+).
const MAX_RESOURCE_LEN: usize = 2048;

/// Parse `value` as a resource of `kind`. The error is a short, fixed-vocabulary explanation.
pub(crate) fn parse_resource(
    kind: ResourceKind,
    value: &str,
) -> Result<ResourceRef<'_>, &'static str> {
    if value.is_empty() || value.len() > MAX_RESOURCE_LEN {
        return Err("is empty or longer than 2048 bytes");
    }
    if !value.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err("contains whitespace, a control character or a non-ASCII byte");
    }
    let bare = |ok: bool, why: &'static str| {
        if ok {
            Ok(ResourceRef {
                text: value,
                arn: None,
            })
        } else {
            Err(why)
        }
    };
    match kind {
        ResourceKind::S3Output => bare(is_s3_uri(value), "is not an s3://bucket/key URI"),
        ResourceKind::Account => bare(is_account(value), "is not a 12-digit account id"),
        ResourceKind::KmsKey => arn_of(value, "kms", |r| {
            r.strip_prefix("key/")
                .or_else(|| r.strip_prefix("alias/"))
                .is_some_and(|id| !id.is_empty())
        }),
        ResourceKind::Lambda => arn_of(value, "lambda", |r| {
            r.strip_prefix("function:")
                .is_some_and(|name| !name.is_empty())
        }),
        ResourceKind::KnowledgeBase if value.starts_with("arn:") => arn_of(value, "bedrock", |r| {
            r.strip_prefix("knowledge-base/")
                .is_some_and(is_knowledge_base_id)
        }),
        ResourceKind::KnowledgeBase => bare(
            is_knowledge_base_id(value),
            "is not a knowledge base id ([0-9a-zA-Z]{1,10})",
        ),
        ResourceKind::Guardrail if value.starts_with("arn:") => arn_of(value, "bedrock", |r| {
            r.strip_prefix("guardrail/").is_some_and(is_guardrail_id)
        }),
        ResourceKind::Guardrail => bare(
            is_guardrail_id(value),
            "is not a guardrail id ([a-z0-9]{1,64})",
        ),
    }
}

/// Parse an async invocation ARN (`arn:<p>:bedrock:<region>:<account>:async-invoke/<id>`).
pub(crate) fn parse_async_invocation(value: &str) -> Result<ResourceRef<'_>, &'static str> {
    arn_of(value, "bedrock", |r| {
        r.strip_prefix("async-invoke/")
            .is_some_and(|id| !id.is_empty())
    })
}

fn arn_of<'a>(
    value: &'a str,
    service: &str,
    resource_ok: impl Fn(&str) -> bool,
) -> Result<ResourceRef<'a>, &'static str> {
    let arn = parse_arn(value).ok_or("is not a well-formed ARN")?;
    if arn.service != service {
        return Err("is an ARN of another service");
    }
    if arn.region.is_empty() || arn.account.is_empty() {
        return Err("is an ARN without a region or an account");
    }
    if !resource_ok(arn.resource) {
        return Err("is an ARN of another resource type");
    }
    Ok(ResourceRef {
        text: value,
        arn: Some(arn),
    })
}

/// `arn:<partition>:<service>:<region>:<account>:<resource>` with a known partition shape, a
/// lower-case region, an empty or 12-digit account and a non-empty resource.
pub(crate) fn parse_arn(value: &str) -> Option<ResourceArn<'_>> {
    let mut parts = value.splitn(6, ':');
    if parts.next() != Some("arn") {
        return None;
    }
    let partition = parts.next().filter(|p| is_partition(p))?;
    let service = parts.next().filter(|s| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })?;
    let region = parts.next().filter(|r| is_arn_region(r))?;
    let account = parts.next().filter(|a| a.is_empty() || is_account(a))?;
    let resource = parts.next().filter(|r| !r.is_empty())?;
    Some(ResourceArn {
        partition,
        service,
        region,
        account,
        resource,
    })
}

/// `s3://<bucket>` or `s3://<bucket>/<key>`: the bucket 3 to 63 characters of `[a-z0-9.-]`,
/// starting and ending with a letter or digit, without `..`; the key any printable ASCII.
fn is_s3_uri(value: &str) -> bool {
    let Some(rest) = value.strip_prefix("s3://") else {
        return false;
    };
    let bucket = rest.split_once('/').map_or(rest, |(bucket, _)| bucket);
    is_s3_bucket(bucket)
}

/// An S3 bucket name (the subset the Bedrock shapes accept).
pub(crate) fn is_s3_bucket(bucket: &str) -> bool {
    let edge = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && edge(bucket.bytes().next())
        && edge(bucket.bytes().last())
        && !bucket.contains("..")
}

/// `[0-9a-zA-Z]{1,10}`.
fn is_knowledge_base_id(id: &str) -> bool {
    (1..=10).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `[a-z0-9]{1,64}`.
fn is_guardrail_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}
