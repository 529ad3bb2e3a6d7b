//! `alerts`: the deny-event sink (cluster, path, batching and queue bounds).

use crate::bundle::schema::Alerts;
use crate::bundle::validate::Errors;

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
    let ranges: [(&str, u64, u64, u64); 3] = [
        ("alerts.batch_size", a.batch_size, 1, 500),
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
            errs.push(path, format!("{value} is out of range ({lo} to {hi})"));
        }
    }
}
