//! Reading CloudTrail log files as a trail delivers them to S3: one JSON object
//! `{"Records": [...]}` per file, gzip-compressed (`.json.gz`) or not (the first two bytes
//! decide, not the name).
//!
//! Record fields follow "CloudTrail record contents"
//! (<https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html>)
//! and "Monitor Amazon Bedrock API calls using CloudTrail"
//! (<https://docs.aws.amazon.com/bedrock/latest/userguide/logging-using-cloudtrail.html>).
//! Only Bedrock runtime invocations are kept: `eventSource` `bedrock.amazonaws.com` and an
//! `eventName` that is an operation the guard knows (`InvokeModel`, `Converse`, ...); other
//! events (Bedrock's control plane, other services) are counted and left alone.

use std::io::Read;

use serde_json::Value;

use crate::auditlog::parse_time;
use crate::{CliError, CliResult};

/// The `eventSource` of Bedrock runtime calls (`bedrock-runtime` endpoints).
pub(crate) const BEDROCK_EVENT_SOURCE: &str = "bedrock.amazonaws.com";

/// One Bedrock runtime call recorded by CloudTrail.
#[derive(Debug, Clone)]
pub(crate) struct TrailEvent {
    /// `FILE#INDEX` of the record (index in `Records`, from 0).
    pub(crate) origin: String,
    pub(crate) time_ms: i64,
    pub(crate) event_time: String,
    pub(crate) event_name: String,
    /// `requestID`: Bedrock's request id (the `x-amzn-RequestId` it answered with).
    pub(crate) request_id: String,
    pub(crate) region: Option<String>,
    pub(crate) source_ip: Option<String>,
    /// `userIdentity.arn`, else `principalId`, else `accessKeyId`, else `type`.
    pub(crate) principal: String,
    pub(crate) access_key_id: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) vpc_endpoint_id: Option<String>,
    /// `additionalEventData.inferenceRegion`: where a cross-Region profile ran the call.
    pub(crate) inference_region: Option<String>,
    pub(crate) error_code: Option<String>,
}

/// The Bedrock runtime events of a set of CloudTrail files.
#[derive(Debug, Default)]
pub(crate) struct Trail {
    pub(crate) events: Vec<TrailEvent>,
    /// Records of other services or other Bedrock operations.
    pub(crate) ignored: usize,
    /// Records whose `requestID` was seen before (the same event delivered twice).
    pub(crate) duplicates: usize,
}

/// Read every file into one trail.
pub(crate) fn read_files(names: &[String]) -> CliResult<Trail> {
    let mut trail = Trail::default();
    let mut seen = std::collections::HashSet::new();
    for name in names {
        let bytes = crate::source::read_input(name).map_err(CliError::input)?;
        let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(bytes.as_slice())
                .read_to_end(&mut out)
                .map_err(|e| CliError::input(format!("{name}: not a readable gzip file: {e}")))?;
            out
        } else {
            bytes
        };
        let doc: Value = serde_json::from_slice(&bytes).map_err(|e| {
            CliError::input(format!(
                "{name}: not a CloudTrail log file (one JSON object): {e}"
            ))
        })?;
        let records = doc
            .as_object()
            .and_then(|o| o.get("Records"))
            .and_then(Value::as_array)
            .ok_or_else(|| {
                CliError::input(format!(
                    "{name}: not a CloudTrail log file: no \"Records\" array at the top"
                ))
            })?;
        for (index, record) in records.iter().enumerate() {
            let origin = format!("{name}#{index}");
            let at = |m: String| CliError::input(format!("{name}: Records[{index}]: {m}"));
            let obj = record
                .as_object()
                .ok_or_else(|| at("not a JSON object".into()))?;
            let source = obj.get("eventSource").and_then(Value::as_str);
            let event_name = obj.get("eventName").and_then(Value::as_str);
            let runtime = source == Some(BEDROCK_EVENT_SOURCE)
                && event_name.is_some_and(|n| policies::Operation::from_name(n).is_some());
            if !runtime {
                trail.ignored += 1;
                continue;
            }
            let event = event_from(obj, origin).map_err(at)?;
            if !seen.insert(event.request_id.clone()) {
                trail.duplicates += 1;
                continue;
            }
            trail.events.push(event);
        }
    }
    Ok(trail)
}

type Obj = serde_json::Map<String, Value>;

fn event_from(obj: &Obj, origin: String) -> Result<TrailEvent, String> {
    let req = |key: &str| -> Result<String, String> {
        match obj.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            None | Some(Value::Null) => Err(format!("{key}: missing")),
            Some(_) => Err(format!("{key}: not a non-empty string")),
        }
    };
    let opt = |o: &Obj, key: &str, path: &str| -> Result<Option<String>, String> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{path}: neither a string nor null")),
        }
    };
    let event_time = req("eventTime")?;
    let time_ms = parse_time(&event_time)
        .ok_or_else(|| format!("eventTime: {event_time:?} is not an RFC 3339 UTC time"))?;
    let empty = Obj::new();
    let identity = match obj.get("userIdentity") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(o)) => o,
        Some(_) => return Err("userIdentity: not an object".into()),
    };
    let access_key_id = opt(identity, "accessKeyId", "userIdentity.accessKeyId")?;
    let principal = opt(identity, "arn", "userIdentity.arn")?
        .or(opt(identity, "principalId", "userIdentity.principalId")?)
        .or(access_key_id.clone())
        .or(opt(identity, "type", "userIdentity.type")?)
        .unwrap_or_else(|| "(unknown)".to_string());
    let model = match obj.get("requestParameters") {
        None | Some(Value::Null) => None,
        Some(Value::Object(p)) => opt(p, "modelId", "requestParameters.modelId")?,
        Some(_) => return Err("requestParameters: not an object".into()),
    };
    let inference_region = match obj.get("additionalEventData") {
        None | Some(Value::Null) => None,
        Some(Value::Object(a)) => opt(a, "inferenceRegion", "additionalEventData.inferenceRegion")?,
        Some(_) => return Err("additionalEventData: not an object".into()),
    };
    Ok(TrailEvent {
        origin,
        time_ms,
        event_time,
        event_name: req("eventName")?,
        request_id: req("requestID")?,
        region: opt(obj, "awsRegion", "awsRegion")?,
        source_ip: opt(obj, "sourceIPAddress", "sourceIPAddress")?,
        principal,
        access_key_id,
        model,
        vpc_endpoint_id: opt(obj, "vpcEndpointId", "vpcEndpointId")?,
        inference_region,
        error_code: opt(obj, "errorCode", "errorCode")?,
    })
}
