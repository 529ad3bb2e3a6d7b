//! Reading an audit log: Envoy's access log of `%FILTER_STATE(wasm.bedrock_guard_audit:PLAIN)%`
//! lines, one JSON record per request (see docs/operations.md "Audit records").
//!
//! Tolerant of what is not a record (blank lines, Envoy's `-` for a request the filter never
//! saw, any line that does not start with `{`): such lines are counted and reported as one
//! warning. Strict about what is a record: a line that starts with `{` must be one strict JSON
//! object (the engine's reader: no duplicate member) with the fields read here of the right
//! type, or the command stops with `FILE:LINE: field: message` (exit 2).

use serde_json::Value;

use crate::{CliError, CliResult};

/// One audit record, the fields `report` and `reconcile` use.
#[derive(Debug, Clone)]
pub(crate) struct AuditRecord {
    /// 1-based line in the file.
    pub(crate) line: usize,
    /// `eventTime`, milliseconds since the epoch (UTC).
    pub(crate) time_ms: i64,
    /// `eventTime` as written.
    pub(crate) event_time: String,
    /// `requestID`: Envoy's x-request-id.
    pub(crate) request_id: Option<String>,
    /// `upstreamRequestId`: Bedrock's `x-amzn-RequestId`. `None` inside when null; the outer
    /// `Option` is `None` when the record has no such member at all (an older plugin).
    pub(crate) upstream_request_id: Option<Option<String>>,
    pub(crate) event_name: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) source_ip: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) groups: Vec<String>,
    pub(crate) access_key_id: Option<String>,
    pub(crate) models: Vec<String>,
    pub(crate) vpc_endpoint_id: Option<String>,
    /// `decision == "allow"`.
    pub(crate) allow: bool,
    pub(crate) reason: String,
    pub(crate) mode: String,
    pub(crate) status: Option<u64>,
    pub(crate) upstream_status: Option<u64>,
    pub(crate) input_tokens: Option<u64>,
    pub(crate) output_tokens: Option<u64>,
}

impl AuditRecord {
    /// Did the request reach an upstream (Bedrock)? Allowed requests, and dry-run denials that
    /// were let through, carry the upstream's status; refused requests carry none.
    pub(crate) fn forwarded(&self) -> bool {
        self.upstream_status.is_some()
    }

    /// Who called: the verified identity's subject, else the access key id, else `(anonymous)`.
    pub(crate) fn caller(&self) -> String {
        if let Some(sub) = &self.subject {
            return format!("sub:{sub}");
        }
        if let Some(akid) = &self.access_key_id {
            return format!("key:{akid}");
        }
        "(anonymous)".to_string()
    }

    /// The model(s) named, joined by `,`; `(none)` when the record names none.
    pub(crate) fn model_key(&self) -> String {
        if self.models.is_empty() {
            "(none)".to_string()
        } else {
            self.models.join(",")
        }
    }
}

/// An audit log read from one file.
#[derive(Debug)]
pub(crate) struct AuditLog {
    pub(crate) name: String,
    pub(crate) records: Vec<AuditRecord>,
    /// Lines that are not records: blank, `-`, or not starting with `{`.
    pub(crate) skipped: usize,
    /// The first skipped line that was neither blank nor `-` (line number), for the warning.
    pub(crate) first_foreign: Option<usize>,
}

impl AuditLog {
    /// The warning for skipped lines, if any.
    pub(crate) fn skipped_warning(&self) -> Option<String> {
        if self.skipped == 0 {
            return None;
        }
        let foreign = match self.first_foreign {
            Some(line) => format!(" (first line that is not JSON: {}:{line})", self.name),
            None => String::new(),
        };
        Some(format!(
            "{}: {} line(s) skipped: blank, `-` or not an audit record{foreign}",
            self.name, self.skipped
        ))
    }
}

/// Read the audit log in file `name` (`-`: stdin).
pub(crate) fn read(name: &str) -> CliResult<AuditLog> {
    let bytes = crate::source::read_input(name).map_err(CliError::input)?;
    parse(name, &bytes)
}

pub(crate) fn parse(name: &str, bytes: &[u8]) -> CliResult<AuditLog> {
    let mut log = AuditLog {
        name: name.to_string(),
        records: Vec::new(),
        skipped: 0,
        first_foreign: None,
    };
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    // The empty piece after the final newline is not a line.
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    for (i, raw) in lines.into_iter().enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let trimmed = raw.trim_ascii();
        if !trimmed.starts_with(b"{") {
            if !trimmed.is_empty() && trimmed != b"-" && log.first_foreign.is_none() {
                log.first_foreign = Some(line);
            }
            log.skipped += 1;
            continue;
        }
        let at = |message: String| CliError::input(format!("{name}:{line}: {message}"));
        let value = policies::canonical::parse_strict(trimmed).map_err(|e| {
            at(format!(
                "a line that starts with `{{` is not one strict JSON object: {e}"
            ))
        })?;
        let record = record_from(&value, line).map_err(at)?;
        log.records.push(record);
    }
    Ok(log)
}

fn record_from(v: &Value, line: usize) -> Result<AuditRecord, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| "not a JSON object".to_string())?;
    let event_time = req_str(obj, "eventTime")?;
    let time_ms = parse_time(&event_time)
        .ok_or_else(|| format!("eventTime: {event_time:?} is not an RFC 3339 UTC time"))?;
    let decision = req_str(obj, "decision")?;
    let allow = match decision.as_str() {
        "allow" => true,
        "deny" => false,
        other => {
            return Err(format!(
                "decision: {other:?} is neither \"allow\" nor \"deny\""
            ))
        }
    };
    let (subject, groups) = match obj.get("userIdentity") {
        None | Some(Value::Null) => (None, Vec::new()),
        Some(Value::Object(id)) => {
            let subject = opt_str(id, "subject").map_err(|e| format!("userIdentity.{e}"))?;
            let groups = match id.get("groups") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|g| {
                        g.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| "userIdentity.groups: not an array of strings".into())
                    })
                    .collect::<Result<_, String>>()?,
                Some(_) => return Err("userIdentity.groups: not an array".into()),
            };
            (subject, groups)
        }
        Some(_) => return Err("userIdentity: neither an object nor null".into()),
    };
    let models = match obj.get("requestParameters") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(params)) => match params.get("modelId") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|m| {
                    m.as_str().map(str::to_string).ok_or_else(|| {
                        "requestParameters.modelId: not a string or an array of strings".into()
                    })
                })
                .collect::<Result<_, String>>()?,
            Some(_) => {
                return Err("requestParameters.modelId: not a string or an array of strings".into())
            }
        },
        Some(_) => return Err("requestParameters: neither an object nor null".into()),
    };
    let upstream_request_id = match obj.get("upstreamRequestId") {
        None => None,
        Some(_) => Some(opt_str(obj, "upstreamRequestId")?),
    };
    Ok(AuditRecord {
        line,
        time_ms,
        event_time,
        request_id: opt_str(obj, "requestID")?,
        upstream_request_id,
        event_name: opt_str(obj, "eventName")?,
        region: opt_str(obj, "awsRegion")?,
        source_ip: opt_str(obj, "sourceIPAddress")?,
        subject,
        groups,
        access_key_id: opt_str(obj, "accessKeyId")?,
        models,
        vpc_endpoint_id: opt_str(obj, "vpcEndpointId")?,
        allow,
        reason: req_str(obj, "reason")?,
        mode: req_str(obj, "mode")?,
        status: opt_num(obj, "status")?,
        upstream_status: opt_num(obj, "upstreamStatus")?,
        input_tokens: opt_num(obj, "inputTokens")?,
        output_tokens: opt_num(obj, "outputTokens")?,
    })
}

type Obj = serde_json::Map<String, Value>;

fn req_str(obj: &Obj, key: &str) -> Result<String, String> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        None => Err(format!("{key}: missing")),
        Some(_) => Err(format!("{key}: not a string")),
    }
}

fn opt_str(obj: &Obj, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{key}: neither a string nor null")),
    }
}

fn opt_num(obj: &Obj, key: &str) -> Result<Option<u64>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("{key}: neither a non-negative integer nor null")),
    }
}

// ---- Time ------------------------------------------------------------------------------------

/// Milliseconds since the epoch of an RFC 3339 time in UTC: `YYYY-MM-DDTHH:MM:SS[.fraction]`
/// followed by `Z` (or `+00:00`). Audit records write milliseconds, CloudTrail whole seconds.
pub(crate) fn parse_time(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let rest = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix("+00:00"))?;
    if b.len() < 20 || !rest.is_ascii() {
        return None;
    }
    let rb = rest.as_bytes();
    if rb.len() < 19
        || rb[4] != b'-'
        || rb[7] != b'-'
        || !(rb[10] == b'T' || rb[10] == b't')
        || rb[13] != b':'
        || rb[16] != b':'
    {
        return None;
    }
    let num = |s: &str| -> Option<i64> {
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let year = num(rest.get(0..4)?)?;
    let month = num(rest.get(5..7)?)?;
    let day = num(rest.get(8..10)?)?;
    let hour = num(rest.get(11..13)?)?;
    let minute = num(rest.get(14..16)?)?;
    let second = num(rest.get(17..19)?)?;
    let mut millis = 0;
    if rb.len() > 19 {
        let frac = rest.get(20..)?;
        if rb[19] != b'.' || frac.is_empty() || frac.len() > 9 {
            return None;
        }
        let digits = num(frac)?;
        millis = digits * 1000 / 10_i64.pow(frac.len() as u32);
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((((days * 24 + hour) * 60 + minute) * 60 + second) * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a time in milliseconds.
pub(crate) fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The UTC hour a time falls in, `YYYY-MM-DDTHH:00Z`.
pub(crate) fn hour_of(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:00Z",
        secs.rem_euclid(86_400) / 3600
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let ms = parse_time("2026-11-30T17:50:18.123Z").unwrap();
        assert_eq!(format_time(ms), "2026-11-30T17:50:18Z");
        assert_eq!(ms % 1000, 123);
        assert_eq!(hour_of(ms), "2026-11-30T17:00Z");
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_time("2024-02-29T00:00:01+00:00"),
            Some(1_709_164_801_000)
        );
        assert_eq!(parse_time("2023-02-29T00:00:00Z"), None);
        assert_eq!(parse_time("2026-11-30 17:50:18Z"), None);
        assert_eq!(parse_time("2026-11-30T17:50:18"), None);
        assert_eq!(parse_time("2026-11-30T17:50:18.Z"), None);
    }

    #[test]
    fn foreign_lines_are_counted_and_records_strict() {
        let text = b"-\n\nhello\n{\"eventTime\":\"2026-11-30T17:50:18.123Z\",\"decision\":\"allow\",\"reason\":\"allowed\",\"mode\":\"enforce\"}\n";
        let log = parse("a.log", text).unwrap();
        assert_eq!(log.records.len(), 1);
        assert_eq!(log.skipped, 3);
        assert_eq!(log.first_foreign, Some(3));
        let err = parse("a.log", b"-\n{\"eventTime\":1}\n").unwrap_err();
        assert!(
            err.message.starts_with("a.log:2: eventTime"),
            "{}",
            err.message
        );
        let err = parse("a.log", b"{\"a\":1,\"a\":2}\n").unwrap_err();
        assert!(err.message.starts_with("a.log:1: "), "{}", err.message);
    }
}
