//! Envoy stats defined by the plugin (per VM; Envoy sums same-named stats across workers and
//! shows them under `wasmcustom.bedrock_guard.*`).
//!
//! Every metric id is defined once and cached, keyed by plain values (a stat enum, or the
//! decision's operation, model label and reason), so a request costs a few hash lookups and
//! no string formatting. Model labels are bounded: a model is named in a stat only when the
//! bundle names it literally; every other model is counted as `other`.

use std::collections::HashMap;

use policies::signing::PublicKey;
use policies::{Decision, Mode, Operation, Reason};
use proxy_wasm::types::MetricType;

use crate::host::Host;

pub const PREFIX: &str = "bedrock_guard";

/// Fixed stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stat {
    RequestsTotal,
    DryRunDenials,
    Upstream2xx,
    Upstream4xx,
    Upstream5xx,
    UpstreamThrottled,
    UpstreamNotPrivatelink,
    DestinationQuarantined,
    TokensInput,
    TokensOutput,
    StreamMalformedFrames,
    AlertsSent,
    AlertsFailed,
    AlertsDropped,
    LatencyMs,
    BundleRevision,
    BundleSigned,
    BundleAnchored,
    JwksAgeSeconds,
}

impl Stat {
    fn name(self) -> &'static str {
        match self {
            Stat::RequestsTotal => "requests_total",
            Stat::DryRunDenials => "dry_run_denials",
            Stat::Upstream2xx => "upstream_rq_2xx",
            Stat::Upstream4xx => "upstream_rq_4xx",
            Stat::Upstream5xx => "upstream_rq_5xx",
            Stat::UpstreamThrottled => "upstream_throttled",
            Stat::UpstreamNotPrivatelink => "upstream_not_privatelink",
            Stat::DestinationQuarantined => "destination_quarantined",
            Stat::TokensInput => "tokens.input",
            Stat::TokensOutput => "tokens.output",
            Stat::StreamMalformedFrames => "stream_malformed_frames",
            Stat::AlertsSent => "alerts_sent",
            Stat::AlertsFailed => "alerts_failed",
            Stat::AlertsDropped => "alerts_dropped",
            Stat::LatencyMs => "latency_ms",
            Stat::BundleRevision => "bundle_revision",
            Stat::BundleSigned => "bundle_signed",
            Stat::BundleAnchored => "bundle_anchored",
            Stat::JwksAgeSeconds => "jwks_age_seconds",
        }
    }

    fn kind(self) -> MetricType {
        match self {
            Stat::LatencyMs => MetricType::Histogram,
            Stat::BundleRevision
            | Stat::BundleSigned
            | Stat::BundleAnchored
            | Stat::JwksAgeSeconds => MetricType::Gauge,
            _ => MetricType::Counter,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Allow,
    Deny,
    DryRunDeny,
}

impl Verdict {
    fn of(d: &Decision) -> Verdict {
        match (d.is_allow(), d.mode) {
            (true, _) => Verdict::Allow,
            (false, Mode::DryRun) => Verdict::DryRunDeny,
            (false, Mode::Enforce) => Verdict::Deny,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::DryRunDeny => "dry_run_deny",
        }
    }
}

/// The model label index: `0` = no model, `1` = other, `2..` = models the bundle names.
type ModelLabel = usize;

/// What the decision stats count of one request's final decision: plain values, so a request
/// keeps it without allocating and it is counted once, when the request ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    verdict: Verdict,
    reason: Reason,
    operation: Option<Operation>,
    model: ModelLabel,
}

impl Tally {
    /// The verdict counted.
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// The reason counted.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The same request, refused (enforced) for `reason` after all: operation and model stay.
    pub fn refused(self, reason: Reason) -> Tally {
        Tally {
            verdict: Verdict::Deny,
            reason,
            ..self
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    fixed: HashMap<Stat, u32>,
    by_reason: HashMap<(Verdict, Reason), u32>,
    by_operation: HashMap<(Option<Operation>, ModelLabel, Verdict), u32>,
    model_index: HashMap<String, ModelLabel>,
    labels: Vec<String>,
}

impl Metrics {
    pub fn new<'m>(named_models: impl IntoIterator<Item = &'m String>) -> Metrics {
        let mut labels = vec!["none".to_string(), "other".to_string()];
        let mut model_index = HashMap::new();
        for model in named_models {
            if !model_index.contains_key(model) {
                model_index.insert(model.clone(), labels.len());
                labels.push(sanitise(model));
            }
        }
        Metrics {
            model_index,
            labels,
            ..Metrics::default()
        }
    }

    fn define(host: &impl Host, kind: MetricType, name: &str) -> Option<u32> {
        match host.define_metric(kind, name) {
            Ok(id) => Some(id),
            Err(status) => {
                log::warn!("bedrock-guard: cannot define stat {name}: {status:?}");
                None
            }
        }
    }

    fn fixed_id(&mut self, host: &impl Host, stat: Stat) -> Option<u32> {
        if let Some(id) = self.fixed.get(&stat) {
            return Some(*id);
        }
        let id = Metrics::define(host, stat.kind(), &format!("{PREFIX}.{}", stat.name()))?;
        self.fixed.insert(stat, id);
        Some(id)
    }

    /// Add to a counter, record a histogram sample, or set a gauge, as the stat's kind says.
    pub fn record(&mut self, host: &impl Host, stat: Stat, value: u64) {
        let Some(id) = self.fixed_id(host, stat) else {
            return;
        };
        let _ = match stat.kind() {
            MetricType::Counter => {
                host.increment_metric(id, i64::try_from(value).unwrap_or(i64::MAX))
            }
            _ => host.record_metric(id, value),
        };
    }

    /// The bundle in force, as gauges with fixed names (a bundle's digest never becomes part
    /// of a stat name): `bundle_revision`, `bundle_signed` and `bundle_anchored` (0 or 1), and
    /// `bundle_key.<key id>` for each trusted key (1 for the key that verified the bundle in
    /// force, 0 for the others). The key ids come from the anchor or the VM configuration,
    /// so the set of names is fixed for the VM's life.
    pub fn bundle_in_force(
        &mut self,
        host: &impl Host,
        revision: Option<u64>,
        anchored: bool,
        trusted: &[PublicKey],
        signed_by: Option<&str>,
    ) {
        if let Some(revision) = revision {
            self.record(host, Stat::BundleRevision, revision);
        }
        self.record(host, Stat::BundleSigned, u64::from(signed_by.is_some()));
        self.record(host, Stat::BundleAnchored, u64::from(anchored));
        for key in trusted {
            let name = format!("{PREFIX}.bundle_key.{}", sanitise(key.kid()));
            if let Some(id) = Metrics::define(host, MetricType::Gauge, &name) {
                let _ = host.record_metric(id, u64::from(signed_by == Some(key.kid())));
            }
        }
    }

    /// What the decision stats will count of `d` (one hash lookup for the model label).
    pub fn tally(&self, d: &Decision) -> Tally {
        let model = match d.models.first() {
            None => 0,
            Some(m) => self.model_index.get(m.as_str()).copied().unwrap_or(1),
        };
        Tally {
            verdict: Verdict::of(d),
            reason: d.reason,
            operation: d.operation,
            model,
        }
    }

    /// Count one request's final decision: in total, by verdict and reason, and by operation,
    /// model and verdict.
    pub fn decision(&mut self, host: &impl Host, t: Tally) {
        self.record(host, Stat::RequestsTotal, 1);
        if t.verdict == Verdict::DryRunDeny {
            self.record(host, Stat::DryRunDenials, 1);
        }
        let reason_id = match self.by_reason.get(&(t.verdict, t.reason)) {
            Some(id) => Some(*id),
            None => {
                let name = format!(
                    "{PREFIX}.decision.{}.{}",
                    t.verdict.as_str(),
                    t.reason.as_str()
                );
                let id = Metrics::define(host, MetricType::Counter, &name);
                if let Some(id) = id {
                    self.by_reason.insert((t.verdict, t.reason), id);
                }
                id
            }
        };
        if let Some(id) = reason_id {
            let _ = host.increment_metric(id, 1);
        }
        let key = (t.operation, t.model, t.verdict);
        let op_id = match self.by_operation.get(&key) {
            Some(id) => Some(*id),
            None => {
                let op = t.operation.map_or("unknown", |op| op.as_str());
                let model = self.labels.get(t.model).map_or("other", String::as_str);
                let name = format!(
                    "{PREFIX}.operation.{op}.model.{model}.{}",
                    t.verdict.as_str()
                );
                let id = Metrics::define(host, MetricType::Counter, &name);
                if let Some(id) = id {
                    self.by_operation.insert(key, id);
                }
                id
            }
        };
        if let Some(id) = op_id {
            let _ = host.increment_metric(id, 1);
        }
    }
}

/// Stat-name-safe text: `[A-Za-z0-9-]`, everything else `_`.
pub fn sanitise(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
