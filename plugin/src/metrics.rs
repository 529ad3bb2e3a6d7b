//! Envoy stats defined by the plugin (per VM; Envoy aggregates them across workers).
//!
//! Names are built once per distinct label combination and cached with their metric id, so
//! the per-request cost is a hash lookup. Model labels are bounded: a model is named in a stat
//! only when the bundle names it literally; every other model is counted as `other`.

use std::collections::{HashMap, HashSet};

use policies::{Decision, Mode};
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

pub const PREFIX: &str = "bedrock_guard";

#[derive(Default)]
pub struct Metrics {
    ids: HashMap<String, u32>,
    named_models: HashSet<String>,
}

impl Metrics {
    pub fn new(named_models: impl IntoIterator<Item = String>) -> Metrics {
        Metrics {
            ids: HashMap::new(),
            named_models: named_models.into_iter().collect(),
        }
    }

    fn id(&mut self, kind: MetricType, name: &str) -> Option<u32> {
        if let Some(id) = self.ids.get(name) {
            return Some(*id);
        }
        match hostcalls::define_metric(kind, name) {
            Ok(id) => {
                self.ids.insert(name.to_string(), id);
                Some(id)
            }
            Err(status) => {
                log::warn!("bedrock-guard: cannot define stat {name}: {status:?}");
                None
            }
        }
    }

    pub fn add(&mut self, name: &str, delta: u64) {
        let delta = i64::try_from(delta).unwrap_or(i64::MAX);
        if let Some(id) = self.id(MetricType::Counter, name) {
            let _ = hostcalls::increment_metric(id, delta);
        }
    }

    pub fn set(&mut self, name: &str, value: u64) {
        if let Some(id) = self.id(MetricType::Gauge, name) {
            let _ = hostcalls::record_metric(id, value);
        }
    }

    pub fn observe(&mut self, name: &str, value: u64) {
        if let Some(id) = self.id(MetricType::Histogram, name) {
            let _ = hostcalls::record_metric(id, value);
        }
    }

    /// The bounded label for a canonical model id.
    fn model_label(&self, model: Option<&str>) -> String {
        match model {
            None => "none".to_string(),
            Some(m) if self.named_models.contains(m) => sanitise(m),
            Some(_) => "other".to_string(),
        }
    }

    /// Count one decision: by decision and reason, and by operation, model and decision.
    pub fn decision(&mut self, d: &Decision) {
        let verdict = match (d.is_allow(), d.mode) {
            (true, _) => "allow",
            (false, Mode::DryRun) => "dry_run_deny",
            (false, Mode::Enforce) => "deny",
        };
        self.add(&format!("{PREFIX}.requests_total"), 1);
        self.add(
            &format!("{PREFIX}.decision.{verdict}.{}", d.reason.as_str()),
            1,
        );
        if verdict == "dry_run_deny" {
            self.add(&format!("{PREFIX}.dry_run_denials"), 1);
        }
        let op = d.operation.map_or("unknown", |op| op.as_str());
        let model = self.model_label(d.models.first().map(String::as_str));
        self.add(
            &format!("{PREFIX}.operation.{op}.model.{model}.{verdict}"),
            1,
        );
    }
}

/// Stat-name-safe text: `[A-Za-z0-9_-]`, everything else `_`.
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
