//! `schema`: the JSON Schema (draft 2020-12) of policy bundle v1.
//!
//! It mirrors `bundle::schema` (the serde types: every object refuses unknown members) and the
//! checks of `bundle::compile` that a schema can express: required members, enums, patterns,
//! ranges and defaults. Checks that need more than one field (duplicate ids, a host's region
//! agreeing with its endpoint's, `max_stale_seconds >= refresh_seconds`, ...) are described,
//! not encoded: `bedrock-guard validate` remains the authority.

use serde_json::{json, Value};

use super::args;
use super::{CliError, CliResult, EXIT_OK};
use policies::bundle::schema::{
    DEFAULT_IDENTITY_HEADER, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_TOKEN_BYTES, MAX_TOKEN_BYTES_LIMIT,
};
use policies::bundle::{ALGORITHMS, API_VERSION, KIND};
use policies::request::Operation;

const IDENTIFIER: &str = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$";
const VISIBLE_ASCII: &str = "^[!-~]+$";
const NO_CONTROL: &str = "^[^\\u0000-\\u001f\\u007f]*$";

fn string_list(item: Value, min_items: Option<u64>) -> Value {
    let mut schema = json!({ "type": "array", "items": item, "uniqueItems": true });
    if let (Some(min), Some(obj)) = (min_items, schema.as_object_mut()) {
        obj.insert("minItems".into(), min.into());
    }
    schema
}

fn principal_pattern() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 1024, "pattern": NO_CONTROL })
}

fn claim_name(default: &str) -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 256, "pattern": NO_CONTROL, "default": default })
}

fn mode() -> Value {
    json!({ "type": "string", "enum": ["enforce", "dry-run"] })
}

fn metadata() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "revision"],
        "properties": {
            "name": { "type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$",
                      "description": "1 to 63 characters of a-z, 0-9 and '-'" },
            "revision": { "type": "string", "minLength": 1, "maxLength": 64, "pattern": VISIBLE_ASCII,
                          "description": "1 to 64 visible ASCII characters" }
        }
    })
}

fn identity() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["providers"],
        "properties": {
            "header": {
                "type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[a-z0-9-]+$",
                "default": DEFAULT_IDENTITY_HEADER,
                "description": "lowercase header carrying the workload identity token; not a header that frames, routes or signs the request (host, content-*, x-amz-*, x-amzn-*, x-envoy-*, x-forwarded-*, ...)"
            },
            "providers": { "type": "array", "minItems": 1, "items": { "$ref": "#/$defs/provider" } }
        }
    })
}

fn provider() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "issuer", "audiences", "algorithms"],
        "anyOf": [ { "required": ["jwks"] }, { "required": ["remote_jwks"] } ],
        "description": "names and issuers are unique across providers",
        "properties": {
            "name": { "type": "string", "pattern": IDENTIFIER },
            "issuer": { "type": "string", "maxLength": 2048, "pattern": "^https://[^/?#@\\s]+[!-\"$-~]*$",
                        "description": "an https URL without user information, query or fragment" },
            "audiences": { "type": "array", "minItems": 1, "items": principal_pattern() },
            "algorithms": string_list(json!({ "type": "string", "enum": ALGORITHMS }), Some(1)),
            "jwks": {
                "type": "object",
                "additionalProperties": false,
                "required": ["keys"],
                "properties": {
                    "keys": {
                        "type": "array",
                        "description": "public JWKs (kty RSA, EC or OKP; unique non-empty kid; no private members); empty only with remote_jwks",
                        "items": {
                            "type": "object",
                            "required": ["kty", "kid"],
                            "properties": {
                                "kty": { "type": "string", "enum": ["RSA", "EC", "OKP"] },
                                "kid": { "type": "string", "minLength": 1 },
                                "use": { "const": "sig" }
                            },
                            "not": { "anyOf": [
                                { "required": ["d"] }, { "required": ["p"] }, { "required": ["q"] },
                                { "required": ["dp"] }, { "required": ["dq"] }, { "required": ["qi"] },
                                { "required": ["k"] }
                            ] }
                        }
                    }
                }
            },
            "remote_jwks": {
                "type": "object",
                "additionalProperties": false,
                "required": ["cluster", "path"],
                "properties": {
                    "cluster": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": VISIBLE_ASCII },
                    "path": { "type": "string", "maxLength": 2048, "pattern": "^/[!-\"$-~]*$" },
                    "refresh_seconds": { "type": "integer", "minimum": 30, "maximum": 86400, "default": 300 },
                    "max_stale_seconds": { "type": "integer", "minimum": 30, "default": 3600,
                                           "description": "at least refresh_seconds" }
                }
            },
            "leeway_seconds": { "type": "integer", "minimum": 0, "maximum": 300, "default": 30 },
            "max_lifetime_seconds": { "type": "integer", "minimum": 1 },
            "principal_claim": claim_name("sub"),
            "groups_claim": claim_name("groups"),
            "max_token_bytes": { "type": "integer", "minimum": 1, "maximum": MAX_TOKEN_BYTES_LIMIT,
                                 "default": DEFAULT_MAX_TOKEN_BYTES }
        }
    })
}

fn endpoint() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["host", "region"],
        "description": "hosts are unique; a service name (bedrock-runtime.REGION.amazonaws.com) needs private_dns and cidrs, a vpce-... name must not set private_dns",
        "properties": {
            "host": { "type": "string", "maxLength": 253,
                      "pattern": "^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
                      "description": "lowercase DNS name of a Bedrock endpoint, without port or trailing dot" },
            "region": { "type": "string", "maxLength": 32, "pattern": "^[a-z]{2,}(-[a-z]+)+-[0-9]{1,3}$" },
            "private_dns": { "type": "boolean", "default": false },
            "fips": { "type": "boolean", "default": false },
            "cidrs": string_list(json!({ "type": "string", "description": "IPv4 or IPv6 CIDR block" }), None)
        }
    })
}

fn network() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "fips_required": { "type": "boolean", "default": false },
            "profile_geographies": string_list(
                json!({ "type": "string", "pattern": "^[a-z][a-z-]{0,6}[a-z]$" }),
                None
            )
        }
    })
}

fn alerts() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["cluster"],
        "description": "deny events POSTed in batches to an Envoy cluster: a JSON array (format \"json\", path required) or EventBridge PutEvents calls (format \"eventbridge\", event_bus and endpoint required, batch_size at most 10)",
        "properties": {
            "cluster": { "type": "string", "pattern": "^[A-Za-z0-9_.-]+$" },
            "format": { "enum": ["json", "eventbridge"], "default": "json" },
            "path": { "type": "string", "pattern": "^/[!-\"$->@-~]*$",
                      "description": "starts with '/'; no spaces, query or fragment; required for json, only \"/\" for eventbridge" },
            "event_bus": { "type": "string", "minLength": 1, "maxLength": 1600,
                           "description": "eventbridge: the bus name or ARN" },
            "endpoint": { "type": "string", "minLength": 1, "maxLength": 253,
                          "description": "eventbridge: the events endpoint host (:authority, signed as host)" },
            "source": { "type": "string", "minLength": 1, "maxLength": 256, "default": "bedrock-guard" },
            "detail_type": { "type": "string", "minLength": 1, "maxLength": 128, "default": "Bedrock request denied" },
            "batch_size": { "type": "integer", "minimum": 1, "maximum": 500,
                            "description": "default 20 (json) or 10 (eventbridge, at most 10)" },
            "flush_interval_seconds": { "type": "integer", "minimum": 1, "maximum": 60, "default": 1 },
            "queue_capacity": { "type": "integer", "minimum": 1, "maximum": 100000, "default": 1000 },
            "max_attempts": { "type": "integer", "minimum": 1, "maximum": 10, "default": 4,
                              "description": "eventbridge: sends of one event before it is dropped" },
            "include_dry_run": { "type": "boolean", "default": true }
        }
    })
}

fn principals() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "minProperties": 1,
        "description": "needs an identity block; names at least one subject, group or claim",
        "properties": {
            "subjects": { "type": "array", "items": principal_pattern() },
            "groups": { "type": "array", "items": principal_pattern() },
            "claims": {
                "type": "object",
                "propertyNames": { "minLength": 1, "maxLength": 256, "pattern": NO_CONTROL },
                "additionalProperties": { "type": "array", "minItems": 1, "items": principal_pattern() }
            }
        }
    })
}

fn rule() -> Value {
    let operations: Vec<&str> = Operation::ALL.iter().map(|op| op.as_str()).collect();
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["id", "effect"],
        "description": "ids are unique; an allow rule names models or operations; only deny rules take a mode",
        "properties": {
            "id": { "type": "string", "pattern": IDENTIFIER },
            "effect": { "type": "string", "enum": ["allow", "deny"] },
            "description": { "type": "string", "maxLength": 1024, "pattern": NO_CONTROL },
            "mode": mode(),
            "principals": { "$ref": "#/$defs/principals" },
            "models": string_list(
                json!({ "type": "string", "minLength": 1, "maxLength": 2048,
                        "pattern": "^[A-Za-z0-9._:/*?-]+$",
                        "description": "IAM-style pattern: * any run, ? one character" }),
                Some(1)
            ),
            "operations": string_list(json!({ "type": "string", "enum": operations }), Some(1))
        },
        "if": { "properties": { "effect": { "const": "allow" } }, "required": ["effect"] },
        "then": { "not": { "required": ["mode"] }, "anyOf": [ { "required": ["models"] }, { "required": ["operations"] } ] }
    })
}

/// The schema document.
pub fn bundle_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:bedrock-guard:policy-bundle:v1",
        "title": "bedrock-guard policy bundle v1",
        "description": "Which Bedrock requests may leave the VPC. Default deny; an enforce-mode deny rule wins over any allow.",
        "type": "object",
        "additionalProperties": false,
        "required": ["apiVersion", "kind", "metadata", "endpoints"],
        "properties": {
            "apiVersion": { "const": API_VERSION },
            "kind": { "const": KIND },
            "metadata": { "$ref": "#/$defs/metadata" },
            "mode": { "type": "string", "enum": ["enforce", "dry-run"], "default": "enforce" },
            "identity": { "$ref": "#/$defs/identity" },
            "endpoints": { "type": "array", "minItems": 1, "items": { "$ref": "#/$defs/endpoint" } },
            "network": { "$ref": "#/$defs/network" },
            "accounts": string_list(json!({ "type": "string", "pattern": "^[0-9]{12}$" }), Some(1)),
            "aws": {
                "type": "object",
                "additionalProperties": false,
                "minProperties": 1,
                "description": "facts for the AWS-side policies (bedrock-guard iam); the guard does not decide on them",
                "properties": {
                    "principal_accounts": string_list(json!({ "type": "string", "pattern": "^[0-9]{12}$" }), Some(1)),
                    "principal_org_id": { "type": "string", "pattern": "^o-[a-z0-9]{10,32}$" }
                }
            },
            "resources": {
                "type": "object",
                "additionalProperties": false,
                "description": "resources other than models that requests may name and that receive customer data; a kind with no pattern is refused wherever a request names it (resource_not_allowed)",
                "properties": {
                    "s3_outputs": string_list(json!({ "type": "string", "pattern": "^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[!-~]*)?$",
                        "description": "where StartAsyncInvoke may write output: s3://bucket (the whole bucket) or s3://bucket/key-pattern; the bucket written out" }), None),
                    "kms_keys": string_list(json!({ "type": "string", "pattern": "^arn:[!-~]*:kms:[!-~]*$",
                        "description": "KMS key ARN patterns (async output kmsKeyId, agent customerEncryptionKeyArn, session kmsKeyArn)" }), None),
                    "lambdas": string_list(json!({ "type": "string", "pattern": "^arn:[!-~]*:lambda:[!-~]*$",
                        "description": "Lambda function ARN patterns agents may call" }), None),
                    "knowledge_bases": string_list(json!({ "type": "string", "pattern": "^([0-9a-zA-Z*?]{1,10}|arn:[!-~]*:bedrock:[!-~]*)$",
                        "description": "knowledge base ids or ARNs (patterns)" }), None),
                    "guardrails": string_list(json!({ "type": "string", "pattern": "^([a-z0-9*?]{1,64}|arn:[!-~]*:bedrock:[!-~]*)$",
                        "description": "guardrail ids or ARNs (patterns)" }), None)
                }
            },
            "credentials": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "allow_bearer_api_keys": { "type": "boolean", "default": false },
                    "allow_long_term_api_keys": { "type": "boolean", "default": false,
                                                  "description": "needs allow_bearer_api_keys" }
                }
            },
            "limits": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "max_body_bytes": { "type": "integer", "minimum": 1, "maximum": 25_000_000,
                                        "default": DEFAULT_MAX_BODY_BYTES }
                }
            },
            "alerts": { "$ref": "#/$defs/alerts" },
            "rules": { "type": "array", "items": { "$ref": "#/$defs/rule" }, "default": [] }
        },
        "$defs": {
            "metadata": metadata(),
            "identity": identity(),
            "provider": provider(),
            "endpoint": endpoint(),
            "network": network(),
            "alerts": alerts(),
            "principals": principals(),
            "rule": rule()
        }
    })
}

pub(crate) fn schema_command(parser: &mut lexopt::Parser) -> CliResult<u8> {
    use lexopt::prelude::*;
    if let Some(arg) = parser.next().map_err(|e| args::lex_error("schema", e))? {
        return match arg {
            Short('h') | Long("help") => args::print_help("schema"),
            other => Err(CliError::usage("schema", other.unexpected().to_string())),
        };
    }
    let schema = bundle_schema();
    println!(
        "{}",
        serde_json::to_string_pretty(&schema).unwrap_or_else(|_| schema.to_string())
    );
    Ok(EXIT_OK)
}
