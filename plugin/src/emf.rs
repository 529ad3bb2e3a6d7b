//! CloudWatch Embedded Metric Format: one JSON line per request with AWS/Bedrock's metric
//! names, for the CloudWatch agent or Fluent Bit to turn into metrics (opt-in: the VM
//! environment's `BEDROCK_GUARD_EMF_NAMESPACE`, see `config::emf_namespace`).
//!
//! The line follows the EMF specification
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>):
//! a root object with `_aws.Timestamp` (ms since the epoch) and `_aws.CloudWatchMetrics`, a
//! list of directives (`Namespace`, `Dimensions`: lists of dimension names, `Metrics`: names
//! and units); every dimension named is a string member of the root and every metric a number
//! member. Two directives: AWS/Bedrock's names by `ModelId`, and the guard's own refusals by
//! `ModelId` and `Reason`. Only the figures a request has are written.

use serde_json::{json, Map, Value};

/// What one request contributes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures<'a> {
    /// The `ModelId` dimension: the model as the bundle names it, `other` or `none`.
    pub model_id: &'a str,
    /// The upstream's status and whether it was a throttle, when the upstream answered.
    pub upstream: Option<(u16, bool)>,
    /// Ms from the request's headers to the end of the answer.
    pub latency_ms: u64,
    /// `(input, output)` tokens, when the answer reported them.
    pub tokens: Option<(u64, u64)>,
    /// Prompt-cache tokens `(read, written)`.
    pub cache: (Option<u64>, Option<u64>),
    /// A stream's time to its first event frame.
    pub first_token_ms: Option<u64>,
    /// The reason of the guard's own (enforced) refusal.
    pub refused: Option<&'a str>,
}

/// The EMF line of one request (no trailing newline).
pub fn line(namespace: &str, timestamp_ms: u64, f: &Figures<'_>) -> String {
    let mut root = Map::new();
    let mut metrics: Vec<Value> = Vec::new();
    let mut put = |root: &mut Map<String, Value>, name: &str, unit: &str, value: u64| {
        root.insert(name.to_string(), json!(value));
        metrics.push(json!({"Name": name, "Unit": unit}));
    };
    if let Some((status, throttled)) = f.upstream {
        if throttled {
            put(&mut root, "InvocationThrottles", "Count", 1);
        } else {
            put(&mut root, "Invocations", "Count", 1);
            put(&mut root, "InvocationLatency", "Milliseconds", f.latency_ms);
            let client = u64::from((400..500).contains(&status));
            let server = u64::from(status >= 500);
            put(&mut root, "InvocationClientErrors", "Count", client);
            put(&mut root, "InvocationServerErrors", "Count", server);
        }
    }
    if let Some((input, output)) = f.tokens {
        put(&mut root, "InputTokenCount", "Count", input);
        put(&mut root, "OutputTokenCount", "Count", output);
    }
    if let Some(n) = f.cache.0 {
        put(&mut root, "CacheReadInputTokenCount", "Count", n);
    }
    if let Some(n) = f.cache.1 {
        put(&mut root, "CacheWriteInputTokenCount", "Count", n);
    }
    if let Some(ms) = f.first_token_ms {
        put(&mut root, "TimeToFirstToken", "Milliseconds", ms);
    }
    let mut directives = Vec::new();
    if !metrics.is_empty() {
        directives.push(json!({
            "Namespace": namespace,
            "Dimensions": [["ModelId"]],
            "Metrics": metrics,
        }));
    }
    if let Some(reason) = f.refused {
        root.insert("GuardRefusals".into(), json!(1));
        root.insert("Reason".into(), json!(reason));
        directives.push(json!({
            "Namespace": namespace,
            "Dimensions": [["ModelId", "Reason"]],
            "Metrics": [{"Name": "GuardRefusals", "Unit": "Count"}],
        }));
    }
    root.insert("ModelId".into(), json!(f.model_id));
    root.insert(
        "_aws".into(),
        json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}),
    );
    Value::Object(root).to_string()
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
pub mod tests {
    use super::*;

    const UNITS: &[&str] = &[
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];

    /// The EMF specification's rules for one line: one JSON object on one line; `_aws` with an
    /// integer `Timestamp` in ms (checked to be near `now_ms`, so not seconds) and a
    /// `CloudWatchMetrics` list of directives; each directive's `Namespace` 1-255 characters,
    /// `Dimensions` a list of dimension sets of at most 30 names, each a string member of the
    /// root; `Metrics` at most 100, each `Name` a number member of the root (or a list of at
    /// most 100 numbers), names unique, units from CloudWatch's list.
    pub fn assert_valid_emf(line: &str, now_ms: u64) -> Value {
        assert!(!line.contains('\n'), "{line}");
        let root: Value = serde_json::from_str(line).unwrap();
        let obj = root.as_object().expect("the root is an object");
        let aws = obj["_aws"].as_object().expect("_aws is an object");
        let ts = aws["Timestamp"].as_u64().expect("Timestamp is an integer");
        assert!(
            ts.abs_diff(now_ms) < 86_400_000,
            "Timestamp {ts} is not ms near {now_ms}"
        );
        let directives = aws["CloudWatchMetrics"]
            .as_array()
            .expect("CloudWatchMetrics list");
        assert!(!directives.is_empty(), "{line}");
        for d in directives {
            let ns = d["Namespace"].as_str().expect("Namespace string");
            assert!(
                (1..=255).contains(&ns.len()) && !ns.starts_with(':'),
                "{ns}"
            );
            for set in d["Dimensions"].as_array().expect("Dimensions list") {
                let set = set.as_array().expect("a dimension set is a list");
                assert!(set.len() <= 30, "{line}");
                for name in set {
                    let name = name.as_str().expect("a dimension name is a string");
                    assert!(
                        obj[name].is_string(),
                        "dimension {name} is not a string: {line}"
                    );
                }
            }
            let metrics = d["Metrics"].as_array().expect("Metrics list");
            assert!(metrics.len() <= 100, "{line}");
            let mut names: Vec<&str> = Vec::new();
            for m in metrics {
                let name = m["Name"].as_str().expect("Name string");
                assert!((1..=255).contains(&name.len()));
                assert!(!names.contains(&name), "metric {name} twice");
                names.push(name);
                match &obj[name] {
                    Value::Number(_) => {}
                    Value::Array(v) => {
                        assert!(v.len() <= 100 && v.iter().all(Value::is_number), "{line}")
                    }
                    other => panic!("metric {name} is {other}: {line}"),
                }
                if let Some(unit) = m.get("Unit") {
                    assert!(UNITS.contains(&unit.as_str().unwrap()), "{unit}");
                }
            }
        }
        root
    }

    const NOW: u64 = 1_764_500_000_000;

    #[test]
    fn an_answered_invocation_carries_awss_names_by_model() {
        let f = Figures {
            model_id: "anthropic.claude-3-5-sonnet-20240620-v1:0",
            upstream: Some((200, false)),
            latency_ms: 412,
            tokens: Some((25, 118)),
            cache: (Some(1024), None),
            first_token_ms: None,
            refused: None,
        };
        let v = assert_valid_emf(&line("BedrockGuard", NOW, &f), NOW);
        assert_eq!(v["ModelId"], "anthropic.claude-3-5-sonnet-20240620-v1:0");
        assert_eq!(v["_aws"]["Timestamp"], NOW);
        assert_eq!(v["Invocations"], 1);
        assert_eq!(v["InvocationLatency"], 412);
        assert_eq!(v["InvocationClientErrors"], 0);
        assert_eq!(v["InvocationServerErrors"], 0);
        assert_eq!(
            (v["InputTokenCount"].clone(), v["OutputTokenCount"].clone()),
            (json!(25), json!(118))
        );
        assert_eq!(v["CacheReadInputTokenCount"], 1024);
        assert!(v.get("CacheWriteInputTokenCount").is_none());
        assert!(v.get("InvocationThrottles").is_none() && v.get("GuardRefusals").is_none());
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "BedrockGuard"
        );
    }

    #[test]
    fn throttles_errors_streams_and_refusals() {
        let throttle = Figures {
            model_id: "other",
            upstream: Some((429, true)),
            ..Figures::default()
        };
        let v = assert_valid_emf(&line("ns", NOW, &throttle), NOW);
        assert_eq!(v["InvocationThrottles"], 1);
        assert!(v.get("Invocations").is_none());
        let error = Figures {
            model_id: "m",
            upstream: Some((503, false)),
            first_token_ms: Some(80),
            ..Figures::default()
        };
        let v = assert_valid_emf(&line("ns", NOW, &error), NOW);
        assert_eq!(
            (
                v["InvocationServerErrors"].clone(),
                v["TimeToFirstToken"].clone()
            ),
            (json!(1), json!(80))
        );
        let refused = Figures {
            model_id: "none",
            refused: Some("model_not_allowed"),
            ..Figures::default()
        };
        let v = assert_valid_emf(&line("ns", NOW, &refused), NOW);
        assert_eq!(v["GuardRefusals"], 1);
        assert_eq!(v["Reason"], "model_not_allowed");
        assert_eq!(v["_aws"]["CloudWatchMetrics"].as_array().unwrap().len(), 1);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["ModelId", "Reason"]])
        );
    }
}
