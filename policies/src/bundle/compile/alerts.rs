//! `alerts`: the deny-event sink (cluster, format, path or EventBridge target, batching, retry
//! and queue bounds).

use crate::bundle::schema::Alerts;
use crate::bundle::validate::Errors;

#[inline(never)] // config-time: kept out of `compile` (see compile/mod.rs)
pub(super) fn compile_alerts(a: &Alerts, errs: &mut Errors) {
    match a.cluster.as_deref() {
        None | Some("") => errs.push(
            "alerts.cluster",
            "required: the Envoy cluster that receives deny events",
        ),
        Some(c)
            if !c
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) =>
        {
            errs.push(
                "alerts.cluster",
                format!("{c:?} is not a cluster name (letters, digits, '_', '.', '-')"),
            )
        }
        Some(_) => {}
    }
    let eventbridge = match a.format.as_deref() {
        None | Some("json") => false,
        Some("eventbridge") => true,
        Some(other) => {
            errs.push(
                "alerts.format",
                format!("{other:?} is not a format (\"json\" or \"eventbridge\")"),
            );
            false
        }
    };
    if eventbridge {
        compile_eventbridge(a, errs);
    } else {
        compile_json(a, errs);
    }
    if let Some(source) = &a.source {
        if source.is_empty() || source.len() > 256 || !printable(source) {
            errs.push(
                "alerts.source",
                "must be 1 to 256 printable ASCII characters",
            );
        } else if source.starts_with("aws.") {
            errs.push(
                "alerts.source",
                format!("{source:?}: sources starting with \"aws.\" are reserved for AWS services"),
            );
        }
    }
    if let Some(dt) = &a.detail_type {
        if dt.is_empty() || dt.len() > 128 || !printable(dt) {
            errs.push(
                "alerts.detail_type",
                "must be 1 to 128 printable ASCII characters",
            );
        }
    }
    let max_batch = if eventbridge { 10 } else { 500 };
    let ranges: [(&str, u64, u64, u64); 3] = [
        ("alerts.batch_size", a.batch_size(), 1, max_batch),
        (
            "alerts.flush_interval_seconds",
            a.flush_interval_seconds,
            1,
            60,
        ),
        ("alerts.queue_capacity", a.queue_capacity, 1, 100_000),
    ];
    for (path, value, lo, hi) in ranges {
        if !(lo..=hi).contains(&value) {
            let why = if path == "alerts.batch_size" && eventbridge && value > hi {
                " for format \"eventbridge\": PutEvents takes at most 10 entries"
            } else {
                ""
            };
            errs.push(path, format!("{value} is out of range ({lo} to {hi}){why}"));
        }
    }
}

fn printable(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

#[inline(never)] // config-time: kept out of `compile` (see compile/mod.rs)
fn compile_json(a: &Alerts, errs: &mut Errors) {
    match a.path.as_deref() {
        None => errs.push("alerts.path", "required (e.g. \"/events\")"),
        Some(p)
            if !p.starts_with('/')
                || !p.bytes().all(|b| b.is_ascii_graphic())
                || p.contains(['?', '#']) =>
        {
            errs.push(
                "alerts.path",
                "must start with '/' and contain no spaces, query or fragment",
            )
        }
        Some(_) => {}
    }
    let only_eventbridge = [
        ("alerts.event_bus", a.event_bus.is_some()),
        ("alerts.endpoint", a.endpoint.is_some()),
        ("alerts.max_attempts", a.max_attempts.is_some()),
    ];
    for (path, set) in only_eventbridge {
        if set {
            errs.push(path, "only with \"format\": \"eventbridge\"");
        }
    }
}

#[inline(never)] // config-time: kept out of `compile` (see compile/mod.rs)
fn compile_eventbridge(a: &Alerts, errs: &mut Errors) {
    if let Some(p) = a.path.as_deref() {
        if p != "/" {
            errs.push(
                "alerts.path",
                format!("{p:?}: PutEvents calls go to \"/\" (leave path out)"),
            );
        }
    }
    match a.event_bus.as_deref() {
        None | Some("") => errs.push(
            "alerts.event_bus",
            "required with \"format\": \"eventbridge\" (a bus name or its ARN)",
        ),
        Some(bus) if !event_bus_ok(bus) => errs.push(
            "alerts.event_bus",
            format!(
                "{bus:?} is not an event bus name ([A-Za-z0-9._/-], up to 256) or ARN \
                 (arn:<partition>:events:<region>:<account>:event-bus/<name>)"
            ),
        ),
        Some(_) => {}
    }
    match a.endpoint.as_deref() {
        None | Some("") => errs.push(
            "alerts.endpoint",
            "required with \"format\": \"eventbridge\" (the events endpoint host, e.g. \
             \"events.us-east-1.amazonaws.com\" or the events VPC endpoint's DNS name)",
        ),
        Some(host) if !host_ok(host) => errs.push(
            "alerts.endpoint",
            format!("{host:?} is not a host name (lowercase DNS labels, no port or scheme)"),
        ),
        Some(_) => {}
    }
    if let Some(n) = a.max_attempts {
        if !(1..=10).contains(&n) {
            errs.push(
                "alerts.max_attempts",
                format!("{n} is out of range (1 to 10)"),
            );
        }
    }
}

fn bus_name_ok(name: &str) -> bool {
    (1..=256).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b))
}

/// A bus name, or `arn:<partition>:events:<region>:<12 digits>:event-bus/<name>`.
fn event_bus_ok(bus: &str) -> bool {
    let Some(rest) = bus.strip_prefix("arn:") else {
        return bus_name_ok(bus);
    };
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    let [partition, service, region, account, resource] = parts.as_slice() else {
        return false;
    };
    partition.starts_with("aws")
        && *service == "events"
        && !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && resource.strip_prefix("event-bus/").is_some_and(bus_name_ok)
}

fn host_ok(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}
