//! `bedrock-guard reconcile`: join the guard's audit log with CloudTrail on Bedrock's request
//! id and report the calls that went around the guard, the forwarded calls CloudTrail does not
//! have, and the calls both saw but describe differently (operation, model, Region).
//!
//! The join: CloudTrail's `requestID` is Bedrock's request id, the `x-amzn-RequestId` of its
//! answer, which the guard records as `upstreamRequestId`. Envoy's own id (`requestID` in the
//! audit record) never reaches AWS.
//!
//! Which audit records CloudTrail should have: those that reached Bedrock, i.e. with an
//! `upstreamStatus` (allowed requests, and dry-run denials, which are let through). Refused
//! requests never left the guard.
//!
//! The time window: only the overlap of the two inputs' time ranges, shrunk by `--slack`
//! seconds at each end (CloudTrail delivers a call's record minutes after it, in whichever
//! file; clocks differ), is judged. Records outside it are counted, not flagged. Matched pairs
//! are compared wherever they fall.
//!
//! Models: both sides are normalised the same way before comparison: a `foundation-model/` or
//! `inference-profile/` ARN of a base-model or system-profile id becomes that id; any other id
//! or ARN is compared as written. CloudTrail's `modelId` must be one of the record's models.
//!
//! Regions: the audit record's `awsRegion` (the Region of the endpoint the client called) must
//! equal CloudTrail's `awsRegion`. `additionalEventData.inferenceRegion` (where the call ran)
//! may differ from it for a cross-Region inference profile (a `us.`/`eu.`/`global.`... id or
//! ARN) or an opaque model ARN (an application inference profile may route across Regions):
//! such calls are counted as routed, not flagged. For a plain base-model id a different
//! inference Region is a disagreement.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use crate::args;
use crate::auditlog::{self, format_time, AuditRecord};
use crate::cloudtrail::{self, TrailEvent};
use crate::textout::table;
use crate::{CliError, CliResult, EXIT_FAILURE, EXIT_OK};

/// Default `--slack`: CloudTrail delivers a record within about 5 minutes of the call.
const DEFAULT_SLACK_SECONDS: u64 = 300;

struct Options {
    audit: String,
    cloudtrail: Vec<String>,
    slack_seconds: u64,
    json: bool,
}

fn parse_options(parser: &mut lexopt::Parser) -> CliResult<Option<Options>> {
    use lexopt::prelude::*;
    const CMD: &str = "reconcile";
    let mut audit = None;
    let mut cloudtrail = Vec::new();
    let mut slack_seconds = DEFAULT_SLACK_SECONDS;
    let mut json = false;
    while let Some(arg) = parser.next().map_err(|e| args::lex_error(CMD, e))? {
        match arg {
            Short('h') | Long("help") => {
                args::print_help(CMD)?;
                return Ok(None);
            }
            Long("audit") => {
                if audit.is_some() {
                    return Err(CliError::usage(CMD, "--audit given twice"));
                }
                audit = Some(args::value(parser, CMD)?);
            }
            Long("cloudtrail") => {
                let values = parser.values().map_err(|e| args::lex_error(CMD, e))?;
                for v in values {
                    cloudtrail.push(args::os_to_string(CMD, v)?);
                }
            }
            Long("slack") => {
                let v = args::value(parser, CMD)?;
                slack_seconds = v.parse().map_err(|_| {
                    CliError::usage(
                        CMD,
                        format!("--slack: {v:?} is not a whole number of seconds"),
                    )
                })?;
            }
            Long("json") => json = true,
            other => return Err(CliError::usage(CMD, other.unexpected().to_string())),
        }
    }
    let audit = audit.ok_or_else(|| CliError::usage(CMD, "--audit LOG is required"))?;
    if cloudtrail.is_empty() {
        return Err(CliError::usage(CMD, "--cloudtrail FILE... is required"));
    }
    Ok(Some(Options {
        audit,
        cloudtrail,
        slack_seconds,
        json,
    }))
}

pub(crate) fn reconcile_command(parser: &mut lexopt::Parser) -> CliResult<u8> {
    let Some(opts) = parse_options(parser)? else {
        return Ok(EXIT_OK);
    };
    let log = auditlog::read(&opts.audit)?;
    if log.records.is_empty() {
        return Err(CliError::input(format!(
            "{}: no audit records ({} line(s) that are not records)",
            log.name, log.skipped
        )));
    }
    if let Some(r) = log
        .records
        .iter()
        .find(|r| r.forwarded() && r.upstream_request_id.is_none())
    {
        return Err(CliError::input(format!(
            "{}:{}: a forwarded record without an upstreamRequestId member: the log was \
             written by a guard that does not record Bedrock's request id, and cannot be \
             joined with CloudTrail",
            log.name, r.line
        )));
    }
    let trail = cloudtrail::read_files(&opts.cloudtrail)?;
    let result = reconcile(&log.records, &trail.events, opts.slack_seconds);
    let mut warnings = Vec::new();
    if let Some(w) = log.skipped_warning() {
        warnings.push(w);
    }
    if trail.events.is_empty() {
        warnings.push(
            "the CloudTrail files hold no Bedrock runtime event: nothing could be judged".into(),
        );
    }
    if trail.duplicates > 0 {
        warnings.push(format!(
            "{} CloudTrail record(s) repeat a requestID already read; counted once",
            trail.duplicates
        ));
    }
    let doc = json!({
        "audit": {
            "file": log.name,
            "records": log.records.len(),
            "forwarded": log.records.iter().filter(|r| r.forwarded()).count(),
            "skippedLines": log.skipped,
        },
        "cloudtrail": {
            "files": opts.cloudtrail,
            "events": trail.events.len(),
            "ignored": trail.ignored,
            "duplicates": trail.duplicates,
        },
        "window": result.window.map(|(s, e)| json!({
            "start": format_time(s), "end": format_time(e), "slackSeconds": opts.slack_seconds,
        })),
        "matched": result.matched,
        "routedCrossRegion": result.routed,
        "notJudged": {"audit": result.not_judged_audit, "cloudtrail": result.not_judged_trail},
        "aroundGuard": result.around.iter().map(|e| trail_json(e)).collect::<Vec<_>>(),
        "aroundGuardBy": {
            "principal": tally(result.around.iter().map(|e| e.principal.clone())),
            "sourceIPAddress": tally(result.around.iter().map(|e| or_none(&e.source_ip))),
            "vpcEndpointId": tally(result.around.iter().map(|e| or_none(&e.vpc_endpoint_id))),
        },
        "missingFromCloudTrail": result.missing.iter().map(|r| audit_json(r)).collect::<Vec<_>>(),
        "withoutUpstreamRequestId":
            result.unjoinable.iter().map(|r| audit_json(r)).collect::<Vec<_>>(),
        "disagreements": result.disagreements.iter().map(Disagreement::to_json).collect::<Vec<_>>(),
        "findings": result.findings(),
        "warnings": warnings,
    });
    if opts.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string())
        );
    } else {
        for w in &warnings {
            eprintln!("bedrock-guard: warning: {w}");
        }
        print!("{}", render_text(&doc, &result, opts.slack_seconds));
    }
    Ok(if result.findings() > 0 {
        EXIT_FAILURE
    } else {
        EXIT_OK
    })
}

struct Disagreement<'a> {
    record: &'a AuditRecord,
    event: &'a TrailEvent,
    field: &'static str,
    guard: String,
    cloudtrail: String,
}

impl Disagreement<'_> {
    fn to_json(&self) -> Value {
        json!({
            "field": self.field,
            "guard": self.guard,
            "cloudtrail": self.cloudtrail,
            "upstreamRequestId": self.event.request_id,
            "requestID": self.record.request_id,
            "auditLine": self.record.line,
            "cloudtrailRecord": self.event.origin,
            "eventTime": self.event.event_time,
        })
    }
}

struct Reconciled<'a> {
    window: Option<(i64, i64)>,
    matched: usize,
    routed: usize,
    not_judged_audit: usize,
    not_judged_trail: usize,
    around: Vec<&'a TrailEvent>,
    missing: Vec<&'a AuditRecord>,
    unjoinable: Vec<&'a AuditRecord>,
    disagreements: Vec<Disagreement<'a>>,
}

impl Reconciled<'_> {
    fn findings(&self) -> usize {
        self.around.len() + self.missing.len() + self.unjoinable.len() + self.disagreements.len()
    }
}

fn reconcile<'a>(
    records: &'a [AuditRecord],
    events: &'a [TrailEvent],
    slack_seconds: u64,
) -> Reconciled<'a> {
    let slack_ms = i64::try_from(slack_seconds.saturating_mul(1000)).unwrap_or(i64::MAX / 4);
    let range = |times: &mut dyn Iterator<Item = i64>| -> Option<(i64, i64)> {
        times.fold(None, |acc, t| match acc {
            None => Some((t, t)),
            Some((lo, hi)) => Some((lo.min(t), hi.max(t))),
        })
    };
    let audit_range = range(&mut records.iter().map(|r| r.time_ms));
    let trail_range = range(&mut events.iter().map(|e| e.time_ms));
    let window = match (audit_range, trail_range) {
        (Some((a0, a1)), Some((c0, c1))) => {
            let (start, end) = (a0.max(c0).saturating_add(slack_ms), a1.min(c1) - slack_ms);
            (start <= end).then_some((start, end))
        }
        _ => None,
    };
    let judged = |t: i64| window.is_some_and(|(s, e)| s <= t && t <= e);

    let mut by_upstream: HashMap<&str, &AuditRecord> = HashMap::new();
    for r in records {
        if let Some(Some(id)) = &r.upstream_request_id {
            by_upstream.entry(id.as_str()).or_insert(r);
        }
    }
    let trail_ids: HashMap<&str, &TrailEvent> =
        events.iter().map(|e| (e.request_id.as_str(), e)).collect();

    let mut out = Reconciled {
        window,
        matched: 0,
        routed: 0,
        not_judged_audit: 0,
        not_judged_trail: 0,
        around: Vec::new(),
        missing: Vec::new(),
        unjoinable: Vec::new(),
        disagreements: Vec::new(),
    };
    for e in events {
        match by_upstream.get(e.request_id.as_str()) {
            Some(r) => {
                out.matched += 1;
                compare(r, e, &mut out);
            }
            None if judged(e.time_ms) => out.around.push(e),
            None => out.not_judged_trail += 1,
        }
    }
    for r in records.iter().filter(|r| r.forwarded()) {
        match &r.upstream_request_id {
            Some(Some(id)) if trail_ids.contains_key(id.as_str()) => {}
            _ if !judged(r.time_ms) => out.not_judged_audit += 1,
            Some(Some(_)) => out.missing.push(r),
            _ => out.unjoinable.push(r),
        }
    }
    out
}

/// A model id as compared: the id inside a transparent `foundation-model/` or
/// `inference-profile/` ARN, any other id or ARN as written.
fn normal_model(text: &str) -> String {
    match policies::request::parse_body_model_id(text) {
        Ok(m) if !m.is_opaque() => m.resource_id().unwrap_or(m.canonical()).to_string(),
        Ok(m) => m.canonical().to_string(),
        Err(_) => text.to_string(),
    }
}

/// May this model run in another Region than the one called? System inference profiles
/// (geography prefix) and opaque ARNs (application inference profiles among them).
fn may_route_across_regions(text: &str) -> bool {
    match policies::request::parse_body_model_id(text) {
        Ok(m) => m.profile_prefix().is_some() || m.is_opaque(),
        Err(_) => false,
    }
}

fn compare<'a>(r: &'a AuditRecord, e: &'a TrailEvent, out: &mut Reconciled<'a>) {
    let mut flag = |field: &'static str, guard: String, cloudtrail: String| {
        out.disagreements.push(Disagreement {
            record: r,
            event: e,
            field,
            guard,
            cloudtrail,
        })
    };
    if let Some(op) = &r.event_name {
        if *op != e.event_name {
            flag("operation", op.clone(), e.event_name.clone());
        }
    }
    if let Some(model) = &e.model {
        if !r.models.is_empty() {
            let theirs = normal_model(model);
            if !r.models.iter().any(|m| normal_model(m) == theirs) {
                flag("model", r.models.join(","), model.clone());
            }
        }
    }
    if let (Some(ours), Some(theirs)) = (&r.region, &e.region) {
        if ours != theirs {
            flag("region", ours.clone(), theirs.clone());
        }
    }
    if let (Some(ran), Some(called)) = (&e.inference_region, &e.region) {
        if ran != called {
            let model = e.model.as_deref().or(r.models.first().map(String::as_str));
            if model.is_some_and(may_route_across_regions) {
                out.routed += 1;
            } else {
                out.disagreements.push(Disagreement {
                    record: r,
                    event: e,
                    field: "inferenceRegion",
                    guard: r.region.clone().unwrap_or_else(|| called.clone()),
                    cloudtrail: ran.clone(),
                });
            }
        }
    }
}

fn or_none(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "(none)".to_string())
}

fn tally(keys: impl Iterator<Item = String>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for k in keys {
        *out.entry(k).or_insert(0) += 1;
    }
    out
}

fn trail_json(e: &TrailEvent) -> Value {
    json!({
        "eventTime": e.event_time,
        "eventName": e.event_name,
        "requestID": e.request_id,
        "principal": e.principal,
        "accessKeyId": e.access_key_id,
        "sourceIPAddress": e.source_ip,
        "vpcEndpointId": e.vpc_endpoint_id,
        "modelId": e.model,
        "awsRegion": e.region,
        "inferenceRegion": e.inference_region,
        "errorCode": e.error_code,
        "cloudtrailRecord": e.origin,
    })
}

fn audit_json(r: &AuditRecord) -> Value {
    json!({
        "eventTime": r.event_time,
        "auditLine": r.line,
        "requestID": r.request_id,
        "upstreamRequestId": r.upstream_request_id.clone().flatten(),
        "eventName": r.event_name,
        "modelId": r.models,
        "awsRegion": r.region,
        "caller": r.caller(),
        "sourceIPAddress": r.source_ip,
        "vpcEndpointId": r.vpc_endpoint_id,
        "decision": if r.allow { "allow" } else { "deny" },
        "mode": r.mode,
        "status": r.status,
        "upstreamStatus": r.upstream_status,
    })
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "-".to_string(),
        Value::Array(items) => items.iter().map(s).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn render_text(doc: &Value, result: &Reconciled<'_>, slack: u64) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "audit log {}: {} record(s), {} forwarded to Bedrock\n",
        s(&doc["audit"]["file"]),
        doc["audit"]["records"],
        doc["audit"]["forwarded"]
    ));
    out.push_str(&format!(
        "CloudTrail: {} file(s), {} Bedrock runtime event(s), {} other record(s) ignored\n",
        doc["cloudtrail"]["files"].as_array().map_or(0, Vec::len),
        doc["cloudtrail"]["events"],
        doc["cloudtrail"]["ignored"]
    ));
    match result.window {
        Some((a, b)) => out.push_str(&format!(
            "window judged: {} .. {} (overlap of both inputs, {slack} s slack at each end)\n",
            format_time(a),
            format_time(b)
        )),
        None => out.push_str(&format!(
            "window judged: none (the inputs do not overlap by more than twice the {slack} s \
             slack)\n"
        )),
    }
    out.push_str(&format!(
        "matched: {}; routed to another Region by a cross-Region profile: {}; outside the \
         window, not judged: {} audit record(s), {} CloudTrail event(s)\n",
        result.matched, result.routed, result.not_judged_audit, result.not_judged_trail
    ));

    out.push_str(&format!(
        "\nCalls in CloudTrail the guard never saw (egress around the guard): {}\n",
        result.around.len()
    ));
    if !result.around.is_empty() {
        for (title, key) in [
            ("principal", "principal"),
            ("source IP", "sourceIPAddress"),
            ("VPC endpoint", "vpcEndpointId"),
        ] {
            out.push_str(&format!("  by {title}:\n"));
            if let Some(map) = doc["aroundGuardBy"][key].as_object() {
                for (k, n) in map {
                    out.push_str(&format!("    {n:>5}  {k}\n"));
                }
            }
        }
        let rows: Vec<Vec<String>> = doc["aroundGuard"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                [
                    "eventTime",
                    "eventName",
                    "modelId",
                    "principal",
                    "sourceIPAddress",
                    "vpcEndpointId",
                    "requestID",
                ]
                .iter()
                .map(|k| s(&e[*k]))
                .collect()
            })
            .collect();
        out.push_str(&table(
            &[
                "time",
                "operation",
                "model",
                "principal",
                "source IP",
                "VPC endpoint",
                "requestID",
            ],
            &rows,
        ));
    }

    let audit_rows = |key: &str| -> Vec<Vec<String>> {
        doc[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                [
                    "eventTime",
                    "auditLine",
                    "eventName",
                    "modelId",
                    "caller",
                    "requestID",
                    "upstreamRequestId",
                ]
                .iter()
                .map(|k| s(&r[*k]))
                .collect()
            })
            .collect()
    };
    let audit_header = [
        "time",
        "line",
        "operation",
        "model",
        "caller",
        "requestID (Envoy)",
        "upstreamRequestId",
    ];
    out.push_str(&format!(
        "\nCalls the guard forwarded that are missing from CloudTrail: {}\n",
        result.missing.len()
    ));
    if !result.missing.is_empty() {
        out.push_str(&table(&audit_header, &audit_rows("missingFromCloudTrail")));
    }
    out.push_str(&format!(
        "\nForwarded calls without Bedrock's request id (cannot be joined): {}\n",
        result.unjoinable.len()
    ));
    if !result.unjoinable.is_empty() {
        out.push_str(&table(
            &audit_header,
            &audit_rows("withoutUpstreamRequestId"),
        ));
    }
    out.push_str(&format!(
        "\nDisagreements in operation, model or Region: {}\n",
        result.disagreements.len()
    ));
    if !result.disagreements.is_empty() {
        let rows: Vec<Vec<String>> = result
            .disagreements
            .iter()
            .map(|d| {
                vec![
                    d.field.to_string(),
                    d.guard.clone(),
                    d.cloudtrail.clone(),
                    d.record.line.to_string(),
                    d.event.request_id.clone(),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "field",
                "guard",
                "CloudTrail",
                "line",
                "requestID (Bedrock)",
            ],
            &rows,
        ));
    }
    let findings = result.findings();
    if findings == 0 {
        out.push_str("\nreconciled: no findings\n");
    } else {
        out.push_str(&format!("\n{findings} finding(s)\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_normalise_transparent_arns_only() {
        assert_eq!(
            normal_model("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"),
            "anthropic.claude-3-haiku-20240307-v1:0"
        );
        assert_eq!(
            normal_model("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0"),
            "us.anthropic.claude-3-haiku-20240307-v1:0"
        );
        let app = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123";
        assert_eq!(normal_model(app), app);
        assert!(may_route_across_regions(app));
        assert!(may_route_across_regions(
            "eu.anthropic.claude-3-haiku-20240307-v1:0"
        ));
        assert!(!may_route_across_regions(
            "anthropic.claude-3-haiku-20240307-v1:0"
        ));
    }
}
