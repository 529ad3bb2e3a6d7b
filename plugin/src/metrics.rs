//! Envoy stats defined by the plugin (per VM; Envoy sums same-named stats across workers and
//! shows them under `wasmcustom.bedrock_guard.*`).
//!
//! Every metric id is defined once and cached, keyed by plain values (a stat enum, or small
//! label indices), so a request costs a few hash lookups and no string formatting.
//!
//! **Labelled families.** A family's stat name is `bedrock_guard.<family>` followed by
//! `.<label>.<value>` pairs in a fixed order, and no value contains a `.`:
//! `bedrock_guard.requests.operation.Converse.model.other.decision.deny.reason.model_denied.rule.no-opus.group.none`.
//! Envoy's `stats_config.stats_tags` (one regex per label, `envoy/observability/stats_tags.yaml`,
//! in every shipped config) turn these into `bedrock_guard_requests{operation,model,decision,
//! reason,rule,group}` in `/stats/prometheus` (the unit tests below list the families and labels
//! those regexes are written from, and keep the file equal to them).
//!
//! **Bounded labels.** Every label value comes from a fixed set or from the bundle: operations
//! and reasons are enums; a model is named only when the bundle names it literally (every other
//! model is `other`, no model `none`); a rule by its id (`none` when no rule decided); a caller's
//! group only when a rule's `principals.groups` names it literally (the caller's first such
//! group, in token order; `other` for a verified caller with none of them, `none` without a
//! verified caller).

use std::collections::HashMap;

use policies::identity::Principal;
use policies::signing::PublicKey;
use policies::{CompiledPolicy, Decision, Mode, Operation, Reason};
use proxy_wasm::types::MetricType;

use crate::host::Host;

pub const PREFIX: &str = "bedrock_guard";

/// Fixed stats (no labels). All are defined when a bundle is configured, so each exists (at 0)
/// before its first event and a Prometheus `increase()` sees that first event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stat {
    RequestsTotal,
    DryRunDenials,
    UpstreamNotPrivatelink,
    DestinationQuarantined,
    StreamMalformedFrames,
    AlertsSent,
    AlertsFailed,
    AlertsDropped,
    AlertsRetried,
    AlertsFailedEntries,
    LatencyMs,
    BundleRevision,
    BundleSigned,
    BundleAnchored,
    BundleRejected,
    JwksAgeSeconds,
    WasmMemoryBytes,
}

impl Stat {
    const ALL: [Stat; 17] = [
        Stat::RequestsTotal,
        Stat::DryRunDenials,
        Stat::UpstreamNotPrivatelink,
        Stat::DestinationQuarantined,
        Stat::StreamMalformedFrames,
        Stat::AlertsSent,
        Stat::AlertsFailed,
        Stat::AlertsDropped,
        Stat::AlertsRetried,
        Stat::AlertsFailedEntries,
        Stat::LatencyMs,
        Stat::BundleRevision,
        Stat::BundleSigned,
        Stat::BundleAnchored,
        Stat::BundleRejected,
        Stat::JwksAgeSeconds,
        Stat::WasmMemoryBytes,
    ];

    fn name(self) -> &'static str {
        match self {
            Stat::RequestsTotal => "requests_total",
            Stat::DryRunDenials => "dry_run_denials",
            Stat::UpstreamNotPrivatelink => "upstream_not_privatelink",
            Stat::DestinationQuarantined => "destination_quarantined",
            Stat::StreamMalformedFrames => "stream_malformed_frames",
            Stat::AlertsSent => "alerts_sent",
            Stat::AlertsFailed => "alerts_failed",
            Stat::AlertsDropped => "alerts_dropped",
            Stat::AlertsRetried => "alerts_retried",
            Stat::AlertsFailedEntries => "alerts_failed_entries",
            Stat::LatencyMs => "latency_ms",
            Stat::BundleRevision => "bundle_revision",
            Stat::BundleSigned => "bundle_signed",
            Stat::BundleAnchored => "bundle_anchored",
            Stat::BundleRejected => "bundle_rejected",
            Stat::JwksAgeSeconds => "jwks_age_seconds",
            Stat::WasmMemoryBytes => "wasm_memory_bytes",
        }
    }

    fn kind(self) -> MetricType {
        match self {
            Stat::LatencyMs => MetricType::Histogram,
            Stat::BundleRevision
            | Stat::BundleSigned
            | Stat::BundleAnchored
            | Stat::JwksAgeSeconds
            | Stat::WasmMemoryBytes => MetricType::Gauge,
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

/// A label value as an index into a [`Labels`] table: `0` = none, `1` = other, `2..` = the
/// values the bundle names.
pub type Label = usize;

const NONE: Label = 0;
const OTHER: Label = 1;

/// A bounded label: `none`, `other`, and the values the bundle names, each with its stat-name
/// form (sanitised once, when the bundle is configured).
#[derive(Default)]
struct Labels {
    index: HashMap<String, Label>,
    names: Vec<String>,
    /// The values as the bundle spells them (`none`, `other`, then the values).
    raw: Vec<String>,
}

impl Labels {
    fn new<'v>(values: impl IntoIterator<Item = &'v str>) -> Labels {
        let mut labels = Labels {
            index: HashMap::new(),
            names: vec!["none".to_string(), "other".to_string()],
            raw: vec!["none".to_string(), "other".to_string()],
        };
        for value in values {
            if !labels.index.contains_key(value) {
                labels.index.insert(value.to_string(), labels.names.len());
                labels.names.push(sanitise(value));
                labels.raw.push(value.to_string());
            }
        }
        labels
    }

    /// `none` for no value, `other` for a value the bundle does not name.
    fn of(&self, value: Option<&str>) -> Label {
        value.map_or(NONE, |v| self.index.get(v).copied().unwrap_or(OTHER))
    }

    fn name(&self, label: Label) -> &str {
        self.names.get(label).map_or("other", String::as_str)
    }
}

/// What the decision stats count of one request's final decision: plain values, so a request
/// keeps it without allocating and it is counted once, when the request ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    verdict: Verdict,
    reason: Reason,
    operation: Option<Operation>,
    model: Label,
    rule: Label,
    group: Label,
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

    /// The same request, refused (enforced) for `reason` after all, by no rule: operation,
    /// model and group stay.
    pub fn refused(self, reason: Reason) -> Tally {
        Tally {
            verdict: Verdict::Deny,
            reason,
            rule: NONE,
            ..self
        }
    }
}

/// An upstream status class, as the `class` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum StatusClass {
    Ok,
    ClientError,
    ServerError,
}

impl StatusClass {
    fn as_str(self) -> &'static str {
        match self {
            StatusClass::Ok => "2xx",
            StatusClass::ClientError => "4xx",
            StatusClass::ServerError => "5xx",
        }
    }
}

type RequestKey = (Option<Operation>, Label, Verdict, Reason, Label, Label);

#[derive(Default)]
pub struct Metrics {
    fixed: HashMap<Stat, u32>,
    requests: HashMap<RequestKey, u32>,
    /// `(output?, model, group)`.
    tokens: HashMap<(bool, Label, Label), u32>,
    upstream: HashMap<(StatusClass, Label), u32>,
    throttled: HashMap<Label, u32>,
    /// `(write?, model)`.
    cache_tokens: HashMap<(bool, Label), u32>,
    invocation_latency: HashMap<Label, u32>,
    first_token: HashMap<Label, u32>,
    models: Labels,
    rules: Labels,
    groups: Labels,
    /// The `wasm_memory_bytes` last recorded.
    wasm_memory: u64,
}

/// Bytes of this VM's linear memory (`memory.size` × 64 KiB); 0 off wasm32 (unit tests).
pub fn linear_memory_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        u64::try_from(core::arch::wasm32::memory_size::<0>())
            .map_or(u64::MAX, |pages| pages.saturating_mul(65_536))
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

impl Metrics {
    /// The stats of `policy`: its literal models, rule ids and literal groups are the label
    /// values (see the module documentation).
    pub fn new(policy: &CompiledPolicy) -> Metrics {
        Metrics {
            models: Labels::new(policy.literal_models().iter().map(String::as_str)),
            rules: Labels::new(policy.rule_ids()),
            groups: Labels::new(policy.literal_groups().iter().map(String::as_str)),
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

    /// A configuration (a bundle push) refused in `on_configure`: counted in the VM's
    /// `bundle_rejected`, which outlives the refused configuration (the previous one stays in
    /// force). Defines the stat by name, so it needs no `Metrics` of a bundle in force.
    pub fn bundle_rejected(host: &impl Host) {
        let name = format!("{PREFIX}.{}", Stat::BundleRejected.name());
        if let Some(id) = Metrics::define(host, MetricType::Counter, &name) {
            let _ = host.increment_metric(id, 1);
        }
    }

    /// Count a request refused `policy_unavailable` because no bundle is in force (so no
    /// `Metrics` exists): `requests_total` and the `requests` family, with the labels a refusal
    /// before any parsing has (operation `unknown`, model, rule and group `none`). Rare by
    /// construction, so it defines its stats on each call rather than caching their ids.
    pub fn unconfigured_refusal(host: &impl Host) {
        let family = format!(
            "{PREFIX}.requests.operation.unknown.model.none.decision.{}.reason.{}.rule.none.group.none",
            Verdict::Deny.as_str(),
            Reason::PolicyUnavailable.as_str()
        );
        for name in [format!("{PREFIX}.{}", Stat::RequestsTotal.name()), family] {
            if let Some(id) = Metrics::define(host, MetricType::Counter, &name) {
                let _ = host.increment_metric(id, 1);
            }
        }
    }

    /// The bundle in force, as gauges with fixed names (a bundle's digest never becomes part
    /// of a stat name): `bundle_revision`, `bundle_signed` and `bundle_anchored` (0 or 1), and
    /// `bundle_key.<key id>` for each trusted key (1 for the key that verified the bundle in
    /// force, 0 for the others). The key ids come from the anchor or the VM configuration,
    /// so the set of names is fixed for the VM's life. Every fixed stat is defined here.
    pub fn bundle_in_force(
        &mut self,
        host: &impl Host,
        revision: Option<u64>,
        anchored: bool,
        trusted: &[PublicKey],
        signed_by: Option<&str>,
    ) {
        for stat in Stat::ALL {
            let _ = self.fixed_id(host, stat);
        }
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

    /// `wasm_memory_bytes`: the VM's linear memory (see [`linear_memory_bytes`]), set from the
    /// root context's tick when it changed since the last one (no host call otherwise). A
    /// VM's linear memory never shrinks, so this is its high-water mark. Every VM (one per
    /// worker, and the main thread's) writes the same gauge: it shows the last VM whose memory
    /// grew, the busiest in practice.
    pub fn wasm_memory(&mut self, host: &impl Host, bytes: u64) {
        if bytes != self.wasm_memory {
            self.wasm_memory = bytes;
            self.record(host, Stat::WasmMemoryBytes, bytes);
        }
    }

    /// The `group` label of a request's caller (one hash lookup per group the caller has,
    /// until one is named): see the module documentation.
    pub fn group(&self, principal: Option<&Principal>) -> Label {
        let Some(principal) = principal else {
            return NONE;
        };
        principal
            .groups
            .iter()
            .find_map(|g| self.groups.index.get(g.as_str()).copied())
            .unwrap_or(OTHER)
    }

    /// What the decision stats will count of `d`, for a caller in `group` (one hash lookup
    /// each for the model and the rule).
    pub fn tally(&self, d: &Decision, group: Label) -> Tally {
        Tally {
            verdict: Verdict::of(d),
            reason: d.reason,
            operation: d.operation,
            model: self.models.of(d.models.first().map(String::as_str)),
            rule: self.rules.of(d.rule_id.as_deref()),
            group,
        }
    }

    fn family_id<K: Copy + Eq + std::hash::Hash>(
        host: &impl Host,
        cache: &mut HashMap<K, u32>,
        key: K,
        name: impl FnOnce() -> String,
    ) -> Option<u32> {
        Metrics::family_id_of(host, MetricType::Counter, cache, key, name)
    }

    fn family_id_of<K: Copy + Eq + std::hash::Hash>(
        host: &impl Host,
        kind: MetricType,
        cache: &mut HashMap<K, u32>,
        key: K,
        name: impl FnOnce() -> String,
    ) -> Option<u32> {
        if let Some(id) = cache.get(&key) {
            return Some(*id);
        }
        let id = Metrics::define(host, kind, &name())?;
        cache.insert(key, id);
        Some(id)
    }

    /// Count one request's final decision: in `requests_total`, `dry_run_denials`, and the
    /// `requests` family.
    pub fn decision(&mut self, host: &impl Host, t: Tally) {
        self.record(host, Stat::RequestsTotal, 1);
        if t.verdict == Verdict::DryRunDeny {
            self.record(host, Stat::DryRunDenials, 1);
        }
        let key = (t.operation, t.model, t.verdict, t.reason, t.rule, t.group);
        let (models, rules, groups) = (&self.models, &self.rules, &self.groups);
        let id = Metrics::family_id(host, &mut self.requests, key, || {
            format!(
                "{PREFIX}.requests.operation.{}.model.{}.decision.{}.reason.{}.rule.{}.group.{}",
                t.operation.map_or("unknown", |op| op.as_str()),
                models.name(t.model),
                t.verdict.as_str(),
                t.reason.as_str(),
                rules.name(t.rule),
                groups.name(t.group),
            )
        });
        if let Some(id) = id {
            let _ = host.increment_metric(id, 1);
        }
    }

    /// A request's model as the bundle spells it (`other`, `none`): EMF's `ModelId`.
    pub fn model_id(&self, t: Option<Tally>) -> &str {
        let model = t.map_or(NONE, |t| t.model);
        self.models.raw.get(model).map_or("other", String::as_str)
    }

    /// Count a request's input and output tokens, by model and group.
    pub fn tokens(&mut self, host: &impl Host, t: Option<Tally>, input: u64, output: u64) {
        let (model, group) = t.map_or((NONE, NONE), |t| (t.model, t.group));
        for (out, n) in [(false, input), (true, output)] {
            let (models, groups) = (&self.models, &self.groups);
            let id = Metrics::family_id(host, &mut self.tokens, (out, model, group), || {
                format!(
                    "{PREFIX}.tokens.direction.{}.model.{}.group.{}",
                    if out { "output" } else { "input" },
                    models.name(model),
                    groups.name(group),
                )
            });
            if let Some(id) = id {
                let _ = host.increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }

    /// Count a request's prompt-cache tokens (read from and written to the cache), by model:
    /// AWS/Bedrock's `CacheReadInputTokenCount` and `CacheWriteInputTokenCount`. Only the
    /// counts the answer reported (a `None` is no host call).
    pub fn cache_tokens(
        &mut self,
        host: &impl Host,
        t: Option<Tally>,
        read: Option<u64>,
        write: Option<u64>,
    ) {
        let model = t.map_or(NONE, |t| t.model);
        for (write, n) in [(false, read), (true, write)] {
            let Some(n) = n else { continue };
            let models = &self.models;
            let id = Metrics::family_id(host, &mut self.cache_tokens, (write, model), || {
                format!(
                    "{PREFIX}.cache_tokens.direction.{}.model.{}",
                    if write { "write" } else { "read" },
                    models.name(model),
                )
            });
            if let Some(id) = id {
                let _ = host.increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }

    /// Record an invocation's latency (ms from the request's headers to the end of the
    /// answer), by model: AWS/Bedrock's `InvocationLatency`, as a histogram.
    pub fn invocation_latency(&mut self, host: &impl Host, t: Option<Tally>, ms: u64) {
        let model = t.map_or(NONE, |t| t.model);
        let models = &self.models;
        let id = Metrics::family_id_of(
            host,
            MetricType::Histogram,
            &mut self.invocation_latency,
            model,
            || {
                format!(
                    "{PREFIX}.invocation_latency_ms.model.{}",
                    models.name(model)
                )
            },
        );
        if let Some(id) = id {
            let _ = host.record_metric(id, ms);
        }
    }

    /// Record a stream's time to its first event (ms from the request's headers to the first
    /// complete event-stream frame), by model: AWS/Bedrock's `TimeToFirstToken`.
    pub fn time_to_first_token(&mut self, host: &impl Host, t: Option<Tally>, ms: u64) {
        let model = t.map_or(NONE, |t| t.model);
        let models = &self.models;
        let id = Metrics::family_id_of(
            host,
            MetricType::Histogram,
            &mut self.first_token,
            model,
            || {
                format!(
                    "{PREFIX}.time_to_first_token_ms.model.{}",
                    models.name(model)
                )
            },
        );
        if let Some(id) = id {
            let _ = host.record_metric(id, ms);
        }
    }

    /// Count an upstream answer with `status` (1xx and 3xx count as `2xx`, as Envoy's
    /// response-code classes would not: the upstream answered), and a throttle, by model.
    pub fn upstream(&mut self, host: &impl Host, t: Option<Tally>, status: u16, throttled: bool) {
        let model = t.map_or(NONE, |t| t.model);
        let class = match status {
            400..=499 => StatusClass::ClientError,
            500.. => StatusClass::ServerError,
            _ => StatusClass::Ok,
        };
        let models = &self.models;
        let id = Metrics::family_id(host, &mut self.upstream, (class, model), || {
            format!(
                "{PREFIX}.upstream_responses.class.{}.model.{}",
                class.as_str(),
                models.name(model)
            )
        });
        if let Some(id) = id {
            let _ = host.increment_metric(id, 1);
        }
        if throttled {
            let id = Metrics::family_id(host, &mut self.throttled, model, || {
                format!("{PREFIX}.upstream_throttled.model.{}", models.name(model))
            });
            if let Some(id) = id {
                let _ = host.increment_metric(id, 1);
            }
        }
    }
}

/// Stat-name-safe text: `[A-Za-z0-9-]`, everything else `_` (never a `.`, which separates
/// labels).
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// The labelled families, and their labels in the order the stat names carry them.
    const FAMILIES: &[(&str, &[&str])] = &[
        (
            "requests",
            &["operation", "model", "decision", "reason", "rule", "group"],
        ),
        ("tokens", &["direction", "model", "group"]),
        ("upstream_responses", &["class", "model"]),
        ("upstream_throttled", &["model"]),
        ("cache_tokens", &["direction", "model"]),
        ("invocation_latency_ms", &["model"]),
        ("time_to_first_token_ms", &["model"]),
    ];

    /// Every label name of [`FAMILIES`], each once (one tag regex each).
    const LABELS: &[&str] = &[
        "operation",
        "model",
        "decision",
        "reason",
        "rule",
        "group",
        "direction",
        "class",
    ];

    /// `envoy/observability/stats_tags.yaml`, the tag regexes every shipped config carries, is
    /// written from FAMILIES and LABELS: one regex per label, matching the families' names.
    #[test]
    fn the_shipped_stats_tags_are_one_regex_per_label_over_the_families() {
        let yaml = include_str!("../../envoy/observability/stats_tags.yaml");
        let families: Vec<&str> = FAMILIES.iter().map(|(f, _)| *f).collect();
        let mut labels: Vec<&str> = FAMILIES
            .iter()
            .flat_map(|(_, l)| l.iter().copied())
            .collect();
        labels.sort_unstable();
        labels.dedup();
        let mut listed = LABELS.to_vec();
        listed.sort_unstable();
        assert_eq!(labels, listed);
        for label in LABELS {
            let regex = format!(
                "^wasmcustom\\\\.bedrock_guard\\\\.(?:{})(?:\\\\.[^.]+\\\\.[^.]+)*?(\\\\.{label}\\\\.([^.]+))",
                families.join("|")
            );
            let line = format!("- tag_name: {label}\n  regex: \"{regex}\"");
            assert!(yaml.contains(&line), "missing in stats_tags.yaml:\n{line}");
        }
        assert_eq!(yaml.matches("tag_name:").count(), LABELS.len());
    }

    #[test]
    fn label_values_never_carry_a_dot() {
        let labels = Labels::new(["anthropic.claude-3:0", "rule.with.dots", "a/b c"]);
        for i in 0..labels.names.len() {
            assert!(!labels.name(i).contains('.'), "{}", labels.name(i));
        }
        assert_eq!(labels.of(None), NONE);
        assert_eq!(labels.of(Some("unnamed")), OTHER);
        assert_eq!(
            labels.name(labels.of(Some("rule.with.dots"))),
            "rule_with_dots"
        );
    }

    fn policy() -> CompiledPolicy {
        let bundle = serde_json::json!({
            "apiVersion": "bedrock-guard/v1", "kind": "PolicyBundle",
            "metadata": {"name": "labels", "revision": "1"},
            "identity": {"providers": [{"name": "idp", "issuer": "https://idp.example",
                "audiences": ["bedrock"], "algorithms": ["RS256"],
                "remote_jwks": {"cluster": "jwks", "path": "/keys"}}]},
            "endpoints": [{"host": "bedrock-runtime.us-east-1.amazonaws.com",
                           "region": "us-east-1", "private_dns": true, "cidrs": ["10.0.0.0/8"]}],
            "rules": [
                {"id": "team.a", "effect": "allow", "models": ["amazon.titan-text-express-v1"],
                 "principals": {"groups": ["team-a", "ml-*"]}},
                {"id": "contractors", "effect": "deny", "models": ["*"],
                 "principals": {"groups": ["contractors"]}}
            ]
        });
        CompiledPolicy::from_json(bundle.to_string().as_bytes()).unwrap()
    }

    fn caller(groups: &[&str]) -> Principal {
        Principal {
            issuer: "https://idp.example".into(),
            subject: "svc".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            claims: serde_json::Map::new(),
        }
    }

    /// A caller's group label is its first group a rule names literally; `other` for a caller
    /// whose groups the bundle does not name (patterns do not count: `ml-*` is not a label);
    /// `none` without a verified caller. Never a group the bundle does not name.
    #[test]
    fn the_group_label_is_bounded_by_the_bundle() {
        let m = Metrics::new(&policy());
        let name = |p: Option<&Principal>| m.groups.name(m.group(p)).to_string();
        assert_eq!(name(None), "none");
        assert_eq!(name(Some(&caller(&[]))), "other");
        assert_eq!(name(Some(&caller(&["ml-research", "x"]))), "other");
        assert_eq!(
            name(Some(&caller(&["x", "contractors", "team-a"]))),
            "contractors"
        );
        assert_eq!(name(Some(&caller(&["team-a"]))), "team-a");
    }

    /// The rule label is the deciding rule's id (dots made `_`), `none` when no rule decided.
    #[test]
    fn the_rule_label_is_the_deciding_rule() {
        let m = Metrics::new(&policy());
        let allow = Decision::allow(
            Some("team.a".into()),
            Operation::Converse,
            vec!["amazon.titan-text-express-v1".into()],
        );
        let t = m.tally(&allow, OTHER);
        assert_eq!(m.rules.name(t.rule), "team_a");
        assert_eq!(m.models.name(t.model), "amazon_titan-text-express-v1");
        let refused = t.refused(Reason::DestinationNotPrivatelink);
        assert_eq!(m.rules.name(refused.rule), "none");
        assert_eq!(refused.group, OTHER);
        let unknown = Decision::deny(Reason::OperationUnknown, "");
        assert_eq!(m.rules.name(m.tally(&unknown, NONE).rule), "none");
    }

    #[test]
    fn wasm_memory_is_recorded_only_when_it_changed() {
        let host = crate::fake_host::FakeHost::new();
        let mut m = Metrics::default();
        let name = format!("{PREFIX}.wasm_memory_bytes");
        m.wasm_memory(&host, 17 * 65_536);
        assert_eq!(host.stat(&name), 17 * 65_536);
        // Unchanged: no host call (the fake's value, overwritten here, stays).
        host.stats.borrow_mut().iter_mut().for_each(|s| s.2 = -1);
        m.wasm_memory(&host, 17 * 65_536);
        assert_eq!(host.stat(&name), -1);
        m.wasm_memory(&host, 18 * 65_536);
        assert_eq!(host.stat(&name), 18 * 65_536);
        // Off wasm32 (here) there is no linear memory to read.
        assert_eq!(linear_memory_bytes(), 0);
    }
}
