//! The checks of `check-envoy`, on one Envoy's configuration ([`Instance`]). Every finding has a
//! stable code; docs/cli.md ("check-envoy") lists them with how to fix each.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::Value;

use super::input::{self, type_name, Instance};
use super::{Finding, Severity};
use policies::bundle::{Cidr, CompiledPolicy};
use policies::signing;

const HCM: &str =
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const WASM: &str = "envoy.extensions.filters.http.wasm.v3.Wasm";
const BUFFER_FILTER: &str = "envoy.filters.http.buffer";
const BUFFER: &str = "envoy.extensions.filters.http.buffer.v3.Buffer";
/// The guard's VM environment variable that chooses how bodies are held (plugin/src/config.rs).
const HOLD_BODY_ENV: &str = "BEDROCK_GUARD_HOLD_BODY";
const UPSTREAM_TLS: &str = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
const HTTP_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
/// The filter-state key the guard writes its audit record to.
const AUDIT_KEY: &str = "wasm.bedrock_guard_audit";
/// Envoy's resource monitor that caps downstream connections across all listeners.
const GLOBAL_CX_MONITOR: &str = "envoy.resource_monitors.global_downstream_max_connections";
/// Envoy's resource monitor of its own heap.
const HEAP_MONITOR: &str = "envoy.resource_monitors.fixed_heap";
/// The overload action that has Envoy answer new requests 503 itself.
const STOP_REQUESTS: &str = "envoy.overload_actions.stop_accepting_requests";

/// HTTP filters that may run before the guard: they neither forward anything nor change what
/// the guard decides on beyond what the operator configured (metadata exchange, stats, ALPN
/// selection, a locally answered CORS preflight, fault injection's local aborts and delays, and
/// the credential injector that puts the operator's workload token in the identity header for
/// the guard to verify, as envoy/sidecar-identity-injected.yaml does).
pub(crate) const MAY_PRECEDE_GUARD: &[&str] = &[
    "envoy.filters.http.credential_injector",
    "istio.metadata_exchange",
    "istio.alpn",
    "istio.stats",
    "envoy.filters.http.grpc_stats",
    "envoy.filters.http.cors",
    "envoy.filters.http.fault",
];

/// What a guard's plugin configuration says, once the engine has read it.
struct BundleInfo {
    name: String,
    digest: String,
    hosts: Vec<String>,
    cidrs: Vec<Cidr>,
}

/// The guard found in one HTTP filter chain.
struct Guard {
    index: usize,
    path: String,
    /// The Wasm `config` (PluginConfig), when the input holds it.
    config: Option<Value>,
}

struct Checker<'a> {
    instance: &'a Instance,
    findings: Vec<Finding>,
    seen: BTreeSet<(String, &'static str)>,
    /// Bundles by name: (digest, where first seen).
    bundles: BTreeMap<String, (String, String)>,
}

pub(crate) fn check(instance: &Instance) -> Vec<Finding> {
    let mut c = Checker {
        instance,
        findings: Vec::new(),
        seen: BTreeSet::new(),
        bundles: BTreeMap::new(),
    };
    c.run();
    c.findings
}

/// `@type`'s message and its fields, looking through `TypedStruct` wrappers (Istio).
fn typed(v: &Value) -> (&str, &Value) {
    let t = type_name(v);
    if t == "udpa.type.v1.TypedStruct" || t == "xds.type.v3.TypedStruct" {
        let url = v
            .get("type_url")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let inner = v.get("value").unwrap_or(&Value::Null);
        return (url.rsplit('/').next().unwrap_or(url), inner);
    }
    (t, v)
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    at(v, path).and_then(Value::as_str)
}

fn at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

fn is_true(v: &Value, path: &[&str]) -> bool {
    at(v, path).and_then(Value::as_bool) == Some(true)
}

fn list<'v>(v: &'v Value, key: &str) -> &'v [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn name_of(v: &Value) -> &str {
    v.get("name").and_then(Value::as_str).unwrap_or("")
}

fn mentions_guard(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("bedrock_guard") || t.contains("bedrock-guard")
}

/// Is this Wasm `config` the guard's: its root id, its plugin name, or its module's name.
fn is_guard_config(config: &Value) -> bool {
    str_at(config, &["root_id"]) == Some("bedrock_guard")
        || str_at(config, &["name"]).is_some_and(mentions_guard)
        || str_at(config, &["vm_config", "code", "local", "filename"]).is_some_and(mentions_guard)
        || str_at(config, &["vm_config", "code", "remote", "http_uri", "uri"])
            .is_some_and(mentions_guard)
}

/// The plugin configuration bytes of a Wasm `config`: a `StringValue`'s text, or the JSON of
/// a `Struct`.
fn plugin_configuration(config: &Value) -> Option<Vec<u8>> {
    let c = config.get("configuration")?;
    match c.get("value") {
        Some(Value::String(s)) => Some(s.as_bytes().to_vec()),
        Some(other) => serde_json::to_vec(other).ok(),
        None => None,
    }
}

fn bundle_info(config: &Value) -> Result<BundleInfo, String> {
    let raw = plugin_configuration(config).ok_or("the filter has no plugin configuration")?;
    let opened = signing::parse_plugin_config(&raw).map_err(|e| e.to_string())?;
    let policy = CompiledPolicy::from_json(&opened.canonical).map_err(|e| e.to_string())?;
    let endpoints = policy.endpoints();
    Ok(BundleInfo {
        name: policy.name().to_string(),
        digest: opened.digest,
        hosts: endpoints.iter().map(|e| e.host.clone()).collect(),
        cidrs: endpoints.iter().flat_map(|e| e.cidrs.clone()).collect(),
    })
}

impl Checker<'_> {
    fn push(&mut self, severity: Severity, path: String, code: &'static str, message: String) {
        let path = format!("{}{path}", self.instance.prefix);
        if self.seen.insert((path.clone(), code)) {
            self.findings.push(Finding {
                severity,
                path,
                code,
                message,
            });
        }
    }

    fn error(&mut self, path: String, code: &'static str, message: String) {
        self.push(Severity::Error, path, code, message);
    }

    fn warning(&mut self, path: String, code: &'static str, message: String) {
        self.push(Severity::Warning, path, code, message);
    }

    /// Every HTTP connection manager: (path, its config).
    fn connection_managers(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for (name, listener) in &self.instance.listeners {
            let mut chains: Vec<(String, &Value)> = list(listener, "filter_chains")
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("listener[{name}]/filter_chain[{i}]"), c))
                .collect();
            if let Some(d) = listener.get("default_filter_chain") {
                chains.push((format!("listener[{name}]/default_filter_chain"), d));
            }
            for (chain_path, chain) in chains {
                let hcms: Vec<&Value> = list(chain, "filters")
                    .iter()
                    .filter_map(|f| f.get("typed_config"))
                    .filter(|tc| typed(tc).0 == HCM)
                    .collect();
                for (i, tc) in hcms.iter().enumerate() {
                    let suffix = if hcms.len() > 1 {
                        format!("hcm[{i}]")
                    } else {
                        "hcm".to_string()
                    };
                    out.push((format!("{chain_path}/{suffix}"), typed(tc).1.clone()));
                }
            }
        }
        out
    }

    /// The Wasm config of an HTTP filter: inline, or through ECDS (the dump's EcdsConfigDump,
    /// or a bootstrap's file-based source). `Ok(None)`: not a Wasm filter.
    fn wasm_config(&self, filter: &Value) -> Result<Option<Value>, String> {
        if let Some(tc) = filter.get("typed_config") {
            let (t, body) = typed(tc);
            return Ok((t == WASM).then(|| body.get("config").cloned().unwrap_or(Value::Null)));
        }
        let Some(discovery) = filter.get("config_discovery") else {
            return Ok(None);
        };
        let wasm_typed = list(discovery, "type_urls")
            .iter()
            .any(|u| u.as_str().is_some_and(|u| u.ends_with(WASM)));
        let name = name_of(filter);
        if let Some(tc) = self.instance.ecds.get(name) {
            let (t, body) = typed(tc);
            return Ok((t == WASM).then(|| body.get("config").cloned().unwrap_or(Value::Null)));
        }
        if !wasm_typed {
            return Ok(None);
        }
        if self.instance.is_bootstrap {
            let source = discovery.get("config_source").unwrap_or(&Value::Null);
            let path = str_at(source, &["path_config_source", "path"])
                .or_else(|| str_at(source, &["path"]));
            if let Some(path) = path {
                let tc = input::ecds_file(path, name)?;
                let (t, body) = typed(&tc);
                return Ok((t == WASM).then(|| body.get("config").cloned().unwrap_or(Value::Null)));
            }
        }
        Err(format!(
            "its configuration comes through ECDS and the input does not hold resource {name:?}"
        ))
    }

    /// The guard in a filter chain, if any; `unseen` records ECDS filters whose configuration
    /// the input lacks and that look like the guard.
    fn find_guard(&mut self, hcm_path: &str, filters: &[Value]) -> Option<Guard> {
        for (i, f) in filters.iter().enumerate() {
            let path = format!("{hcm_path}/http_filters[{i}:{}]", name_of(f));
            match self.wasm_config(f) {
                Ok(Some(config)) if is_guard_config(&config) => {
                    return Some(Guard {
                        index: i,
                        path,
                        config: Some(config),
                    })
                }
                Ok(_) => {}
                Err(why) if mentions_guard(name_of(f)) => {
                    self.warning(
                        path.clone(),
                        "guard-config-unseen",
                        format!("the guard's configuration cannot be checked: {why}"),
                    );
                    return Some(Guard {
                        index: i,
                        path,
                        config: None,
                    });
                }
                Err(_) => {}
            }
        }
        None
    }

    fn run(&mut self) {
        let hcms = self.connection_managers();
        // First pass: every guard's bundle, to know which clusters are Bedrock's.
        let mut guarded = Vec::new();
        let mut all_hosts = BTreeSet::new();
        for (path, hcm) in &hcms {
            let filters = list(hcm, "http_filters").to_vec();
            let guard = self.find_guard(path, &filters);
            let bundle = match guard
                .as_ref()
                .and_then(|g| g.config.as_ref().map(|c| (g, c)))
            {
                Some((g, config)) => match bundle_info(config) {
                    Ok(b) => {
                        all_hosts.extend(b.hosts.iter().cloned());
                        Some(b)
                    }
                    Err(e) => {
                        self.error(
                            g.path.clone(),
                            "bundle-invalid",
                            format!("the guard's plugin configuration is refused: {e}"),
                        );
                        None
                    }
                },
                None => None,
            };
            guarded.push((path.clone(), hcm.clone(), filters, guard, bundle));
        }
        let any_guard = guarded.iter().any(|g| g.3.is_some());
        if !any_guard {
            self.error(
                "listeners".into(),
                "guard-missing",
                "no HTTP filter chain runs the bedrock-guard filter (a Wasm filter with root_id \
                 bedrock_guard)"
                    .into(),
            );
        }
        for (path, hcm, filters, guard, bundle) in guarded {
            match guard {
                Some(g) => self.check_guarded(&path, &hcm, &filters, &g, bundle.as_ref()),
                None => self.check_unguarded(&path, &hcm, &all_hosts),
            }
        }
        if self.instance.is_bootstrap {
            self.check_overload();
        }
    }

    /// A bootstrap bounds its connections and its heap (docs/operations.md, "Bounds"). Only
    /// bootstrap files: a control plane's dump carries its own bootstrap.
    fn check_overload(&mut self) {
        let om = self.instance.overload_manager.as_ref();
        let monitors: Vec<&str> = om
            .map(|om| list(om, "resource_monitors").iter().map(name_of).collect())
            .unwrap_or_default();
        let stops_on_heap = om.is_some_and(|om| {
            list(om, "actions").iter().any(|a| {
                name_of(a) == STOP_REQUESTS
                    && list(a, "triggers")
                        .iter()
                        .any(|t| name_of(t) == HEAP_MONITOR)
            })
        });
        let mut missing = Vec::new();
        if !monitors.contains(&GLOBAL_CX_MONITOR) {
            missing.push(format!("no connection limit ({GLOBAL_CX_MONITOR})"));
        }
        if !(monitors.contains(&HEAP_MONITOR) && stops_on_heap) {
            missing.push(format!(
                "no heap bound ({HEAP_MONITOR} triggering {STOP_REQUESTS})"
            ));
        }
        if !missing.is_empty() {
            self.warning(
                "overload_manager".into(),
                "overload-unbounded",
                format!(
                    "{}: under load Envoy takes connections and memory until the process is \
                     killed (add envoy/overload/overload_manager.yaml)",
                    missing.join(", ")
                ),
            );
        }
    }

    /// A chain without the guard must not reach a Bedrock endpoint.
    fn check_unguarded(&mut self, path: &str, hcm: &Value, hosts: &BTreeSet<String>) {
        if hosts.is_empty() {
            return;
        }
        for (route_path, cluster) in self.routed_clusters(path, hcm, false) {
            let Some(cluster) = cluster else { continue };
            let reaches = self.instance.clusters.get(&cluster).is_some_and(|c| {
                mentions_host(&cluster, hosts)
                    || self
                        .cluster_addresses(c)
                        .iter()
                        .any(|a| hosts.contains(&a.trim_end_matches('.').to_ascii_lowercase()))
            });
            if reaches {
                self.error(
                    route_path,
                    "guard-missing",
                    format!(
                        "routes to cluster {cluster}, which reaches a bundle endpoint, without \
                         the bedrock-guard filter in this HTTP filter chain"
                    ),
                );
            }
        }
    }

    /// How the guard holds body-carried requests: `BEDROCK_GUARD_HOLD_BODY` in the VM's
    /// environment (`stop_iteration`, the default, needs the flag; `buffer_filter` needs a buffer
    /// filter after the guard). A value taken from the host's environment is not visible here:
    /// either way of holding is then accepted.
    fn check_body_held(&mut self, guard: &Guard, config: &Value, flag: bool, buffer_after: bool) {
        let env = config
            .get("vm_config")
            .and_then(|vm| vm.get("environment_variables"));
        let inline = env
            .and_then(|e| e.get("key_values"))
            .and_then(|kv| kv.get(HOLD_BODY_ENV))
            .and_then(Value::as_str);
        let from_host = env
            .and_then(|e| e.get("host_env_keys"))
            .and_then(Value::as_array)
            .is_some_and(|keys| keys.iter().any(|k| k.as_str() == Some(HOLD_BODY_ENV)));
        let env_path = format!(
            "{}/vm_config/environment_variables/key_values/{HOLD_BODY_ENV}",
            guard.path
        );
        match (inline, from_host) {
            (Some("buffer_filter"), _) if !buffer_after => self.error(
                env_path,
                "body-headers-leave",
                format!(
                    "{HOLD_BODY_ENV}=buffer_filter but no envoy.filters.http.buffer filter after \
                     the guard: the headers of a request that carries the model in the body \
                     reach the upstream before the guard decides"
                ),
            ),
            (Some("buffer_filter"), _) => {}
            (Some("stop_iteration"), _) | (None, false) if !flag => {
                let hint = if buffer_after {
                    format!(
                        " (the buffer filter after the guard holds them only with \
                         {HOLD_BODY_ENV}=buffer_filter in the VM's environment)"
                    )
                } else {
                    String::new()
                };
                self.warning(
                    guard.path.clone(),
                    "body-not-held",
                    format!(
                        "allow_on_headers_stop_iteration is not true and {HOLD_BODY_ENV} is not \
                         buffer_filter: requests that carry the model in the body are never \
                         decided (held until the client times out){hint}"
                    ),
                );
            }
            (Some("stop_iteration"), _) | (None, false) => {}
            (Some(other), _) => self.error(
                env_path,
                "hold-body-invalid",
                format!(
                    "{HOLD_BODY_ENV}={other:?}: the guard refuses to start (expected \
                     \"stop_iteration\" or \"buffer_filter\")"
                ),
            ),
            (None, true) if !flag && !buffer_after => self.warning(
                guard.path.clone(),
                "body-not-held",
                format!(
                    "{HOLD_BODY_ENV} comes from the host's environment, and neither \
                     allow_on_headers_stop_iteration: true nor an envoy.filters.http.buffer \
                     filter after the guard holds bodies: requests that carry the model in the \
                     body are never decided, or their headers leave before the decision"
                ),
            ),
            (None, true) => {}
        }
    }

    fn check_guarded(
        &mut self,
        path: &str,
        hcm: &Value,
        filters: &[Value],
        guard: &Guard,
        bundle: Option<&BundleInfo>,
    ) {
        let before: Vec<&str> = filters[..guard.index]
            .iter()
            .map(name_of)
            .filter(|n| !MAY_PRECEDE_GUARD.contains(n))
            .collect();
        if !before.is_empty() {
            self.error(
                guard.path.clone(),
                "guard-not-first",
                format!(
                    "the guard must be the first HTTP filter; before it: {}",
                    before.join(", ")
                ),
            );
        }
        if let Some(config) = &guard.config {
            let policy = str_at(config, &["failure_policy"]).unwrap_or("UNSPECIFIED");
            let effective = match policy {
                "UNSPECIFIED" | "FAIL_POLICY_UNSPECIFIED" if is_true(config, &["fail_open"]) => {
                    "FAIL_OPEN (fail_open: true)"
                }
                "UNSPECIFIED" | "FAIL_POLICY_UNSPECIFIED" => "FAIL_CLOSED",
                other => other,
            };
            // Both closed policies refuse the request a failed VM was handling; FAIL_RELOAD
            // then brings a new VM up for the next ones.
            if !matches!(effective, "FAIL_CLOSED" | "FAIL_RELOAD") {
                self.error(
                    format!("{}/failure_policy", guard.path),
                    "guard-fail-open",
                    format!(
                        "failure policy {effective}: a failed VM must refuse requests \
                         (failure_policy: FAIL_RELOAD, or FAIL_CLOSED)"
                    ),
                );
            }
            let flag = is_true(config, &["allow_on_headers_stop_iteration"]);
            let buffer_after = filters[guard.index + 1..].iter().any(|f| {
                name_of(f) == BUFFER_FILTER
                    || f.get("typed_config")
                        .is_some_and(|tc| typed(tc).0 == BUFFER)
            });
            self.check_body_held(guard, config, flag, buffer_after);
        }
        if let Some(b) = bundle {
            match self.bundles.get(&b.name) {
                Some((digest, first)) if digest != &b.digest => {
                    let message = format!(
                        "bundle {:?} is {} here but {} at {first}: two copies of one bundle differ",
                        b.name, b.digest, digest
                    );
                    self.error(guard.path.clone(), "bundle-copies-differ", message);
                }
                Some(_) => {}
                None => {
                    let first = format!("{}{}", self.instance.prefix, guard.path);
                    self.bundles
                        .insert(b.name.clone(), (b.digest.clone(), first));
                }
            }
        }
        self.check_hcm_settings(path, hcm);
        let mut clusters = BTreeSet::new();
        for (route_path, cluster) in self.routed_clusters(path, hcm, true) {
            if let Some(name) = cluster {
                if let Some(b) = bundle {
                    self.check_pinned(&route_path, &name, b);
                }
                clusters.insert(name);
            }
        }
        for name in clusters {
            if let Some(c) = self.instance.clusters.get(&name) {
                self.check_tls(&name, c);
            }
        }
    }

    fn check_hcm_settings(&mut self, path: &str, hcm: &Value) {
        if is_true(hcm, &["normalize_path"]) {
            self.error(
                format!("{path}/normalize_path"),
                "normalize-path",
                "path normalisation rewrites the path the client signed (set normalize_path: false)"
                    .into(),
            );
        }
        if is_true(hcm, &["merge_slashes"]) {
            self.error(
                format!("{path}/merge_slashes"),
                "merge-slashes",
                "slash merging rewrites the path the client signed (set merge_slashes: false)"
                    .into(),
            );
        }
        match str_at(hcm, &["path_with_escaped_slashes_action"]) {
            Some("KEEP_UNCHANGED") => {}
            None | Some("IMPLEMENTATION_SPECIFIC_DEFAULT") => self.warning(
                format!("{path}/path_with_escaped_slashes_action"),
                "escaped-slashes-unset",
                "escaped slashes (ARNs carry %2F) are left to Envoy's runtime default; set \
                 path_with_escaped_slashes_action: KEEP_UNCHANGED"
                    .into(),
            ),
            Some(other) => self.error(
                format!("{path}/path_with_escaped_slashes_action"),
                "escaped-slashes",
                format!(
                    "{other} changes or refuses paths with %2F (ARNs); set \
                     path_with_escaped_slashes_action: KEEP_UNCHANGED"
                ),
            ),
        }
        if !list(hcm, "upgrade_configs").is_empty() {
            let kinds: Vec<&str> = list(hcm, "upgrade_configs")
                .iter()
                .filter_map(|u| str_at(u, &["upgrade_type"]))
                .collect();
            self.error(
                format!("{path}/upgrade_configs"),
                "upgrade-configs",
                format!(
                    "upgrade_configs ({}) tunnels CONNECT/WebSocket traffic the guard cannot \
                     inspect; remove them",
                    kinds.join(", ")
                ),
            );
        }
        let logs = serde_json::to_string(&Value::Array(list(hcm, "access_log").to_vec()))
            .unwrap_or_default();
        if !logs.contains(AUDIT_KEY) {
            self.error(
                format!("{path}/access_log"),
                "audit-log-missing",
                format!(
                    "no access log writes the audit record: add one whose format has \
                     %FILTER_STATE({AUDIT_KEY}:PLAIN)%"
                ),
            );
        }
    }

    /// The route configuration of a connection manager: inline or RDS.
    fn route_config(&mut self, path: &str, hcm: &Value, report: bool) -> Option<(String, Value)> {
        if let Some(rc) = hcm.get("route_config") {
            return Some((format!("{path}/route_config[{}]", name_of(rc)), rc.clone()));
        }
        let name = str_at(hcm, &["rds", "route_config_name"])?;
        match self.instance.routes.get(name) {
            Some(rc) => Some((format!("{path}/rds[{name}]"), rc.clone())),
            None => {
                if report {
                    self.warning(
                        format!("{path}/rds[{name}]"),
                        "routes-unseen",
                        format!(
                            "route configuration {name:?} (RDS) is not in the input: where it \
                             routes cannot be checked (give a full /config_dump)"
                        ),
                    );
                }
                None
            }
        }
    }

    /// Every (route path, cluster) the connection manager forwards to; `None` for a cluster
    /// chosen at request time (reported here when `report`).
    fn routed_clusters(
        &mut self,
        path: &str,
        hcm: &Value,
        report: bool,
    ) -> Vec<(String, Option<String>)> {
        let Some((rc_path, rc)) = self.route_config(path, hcm, report) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for vh in list(&rc, "virtual_hosts") {
            for (i, r) in list(vh, "routes").iter().enumerate() {
                let Some(action) = r.get("route") else {
                    continue;
                };
                let route_path = format!("{rc_path}/virtual_host[{}]/route[{i}]", name_of(vh));
                if report && !list(action, "upgrade_configs").is_empty() {
                    self.error(
                        format!("{route_path}/upgrade_configs"),
                        "upgrade-configs",
                        "the route's upgrade_configs tunnel CONNECT/WebSocket traffic the guard \
                         cannot inspect; remove them"
                            .into(),
                    );
                }
                if let Some(c) = str_at(action, &["cluster"]) {
                    out.push((route_path.clone(), Some(c.to_string())));
                }
                for w in list(
                    action.get("weighted_clusters").unwrap_or(&Value::Null),
                    "clusters",
                ) {
                    out.push((route_path.clone(), Some(name_of(w).to_string())));
                }
                for dynamic in [
                    "cluster_header",
                    "cluster_specifier_plugin",
                    "inline_cluster_specifier_plugin",
                ] {
                    if action.get(dynamic).is_some() {
                        if report {
                            self.error(
                                route_path.clone(),
                                "cluster-not-pinned",
                                format!(
                                    "the upstream cluster is chosen per request ({dynamic}), not \
                                     pinned to the bundle's endpoints"
                                ),
                            );
                        }
                        out.push((route_path.clone(), None));
                    }
                }
            }
        }
        out
    }

    /// The endpoint addresses (host names or IPs) of a cluster: its load assignment, or its
    /// EDS endpoints when the input has them. `None`-like empty when unknown.
    fn cluster_addresses(&self, cluster: &Value) -> Vec<String> {
        let assignment = cluster.get("load_assignment").or_else(|| {
            let service = str_at(cluster, &["eds_cluster_config", "service_name"])
                .unwrap_or_else(|| name_of(cluster));
            self.instance.endpoints.get(service)
        });
        let mut out = Vec::new();
        if let Some(a) = assignment {
            for locality in list(a, "endpoints") {
                for lb in list(locality, "lb_endpoints") {
                    if let Some(addr) =
                        str_at(lb, &["endpoint", "address", "socket_address", "address"])
                    {
                        out.push(addr.to_string());
                    }
                }
            }
        }
        out
    }

    fn check_pinned(&mut self, route_path: &str, name: &str, bundle: &BundleInfo) {
        let path = format!("{route_path}/cluster[{name}]");
        let Some(cluster) = self.instance.clusters.get(name).cloned() else {
            return; // Envoy answers 503 for an unknown cluster: nothing leaves.
        };
        let kind = cluster_kind(&cluster);
        if kind.contains("dynamic_forward_proxy") {
            self.error(
                path,
                "cluster-not-pinned",
                "a dynamic forward proxy cluster goes wherever the request's Host says".into(),
            );
            return;
        }
        if kind == "ORIGINAL_DST" || kind.contains("original_dst") {
            self.error(
                path,
                "cluster-not-pinned",
                "an ORIGINAL_DST cluster goes to whatever address the client dialled".into(),
            );
            return;
        }
        if kind.contains("aggregate") {
            let members: Vec<String> = at(&cluster, &["cluster_type", "typed_config"])
                .map(|tc| {
                    list(typed(tc).1, "clusters")
                        .iter()
                        .filter_map(|c| c.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            for m in members {
                if m != name {
                    self.check_pinned(&path, &m, bundle);
                }
            }
            return;
        }
        let addresses = self.cluster_addresses(&cluster);
        if addresses.is_empty() && kind == "EDS" {
            self.warning(
                path,
                "cluster-endpoints-unseen",
                "an EDS cluster whose endpoints are not in the input (fetch /config_dump?include_eds)"
                    .into(),
            );
            return;
        }
        for addr in addresses {
            let pinned = match addr.parse::<IpAddr>() {
                Ok(ip) => bundle.cidrs.iter().any(|c| c.contains(ip)),
                Err(_) => bundle
                    .hosts
                    .contains(&addr.trim_end_matches('.').to_ascii_lowercase()),
            };
            if !pinned {
                let why = if addr.parse::<IpAddr>().is_ok() {
                    "inside none of the bundle endpoints' cidrs"
                } else {
                    "not one of the bundle's endpoint hosts"
                };
                self.error(
                    path.clone(),
                    "cluster-not-pinned",
                    format!("{kind} cluster endpoint {addr} is {why}"),
                );
            }
        }
    }

    fn check_tls(&mut self, name: &str, cluster: &Value) {
        let path = format!("cluster[{name}]");
        let kind = cluster_kind(cluster);
        if kind.contains("aggregate") {
            return; // its members are checked where routes reach them.
        }
        let mut sockets: Vec<(String, &Value)> = Vec::new();
        if let Some(ts) = cluster.get("transport_socket") {
            sockets.push((format!("{path}/transport_socket"), ts));
        }
        for (i, m) in list(cluster, "transport_socket_matches").iter().enumerate() {
            if let Some(ts) = m.get("transport_socket") {
                sockets.push((
                    format!("{path}/transport_socket_matches[{i}:{}]", name_of(m)),
                    ts,
                ));
            }
        }
        if sockets.is_empty() {
            self.error(
                path.clone(),
                "upstream-tls-missing",
                "plain text to the upstream: no TLS transport socket".into(),
            );
        }
        for (ts_path, ts) in sockets {
            let Some(tls) = upstream_tls(ts) else {
                self.error(
                    ts_path,
                    "upstream-tls-missing",
                    format!(
                        "transport socket {:?} is not TLS (UpstreamTlsContext)",
                        name_of(ts)
                    ),
                );
                continue;
            };
            let ctc = tls.get("common_tls_context").unwrap_or(&Value::Null);
            for bound in [
                "tls_minimum_protocol_version",
                "tls_maximum_protocol_version",
            ] {
                if let Some(v @ ("TLSv1_0" | "TLSv1_1")) = str_at(ctc, &["tls_params", bound]) {
                    self.error(
                        format!("{ts_path}/common_tls_context/tls_params/{bound}"),
                        "upstream-tls-version",
                        format!("{bound} {v}: TLS below 1.2 is allowed upstream (use TLSv1_2)"),
                    );
                }
            }
            let combined = ctc.get("combined_validation_context");
            let vc = ctc
                .get("validation_context")
                .or_else(|| combined.and_then(|c| c.get("default_validation_context")));
            let sds = ctc.get("validation_context_sds_secret_config").is_some()
                || combined
                    .is_some_and(|c| c.get("validation_context_sds_secret_config").is_some());
            let ca = vc.is_some_and(|v| {
                v.get("trusted_ca").is_some() || v.get("ca_certificate_provider_instance").is_some()
            }) || sds;
            let untrusted = vc.and_then(|v| str_at(v, &["trust_chain_verification"]))
                == Some("ACCEPT_UNTRUSTED");
            if !ca || untrusted {
                self.error(
                    format!("{ts_path}/common_tls_context"),
                    "upstream-cert-unverified",
                    "the upstream certificate is not verified against a CA (no trusted_ca or \
                     validation context secret, or ACCEPT_UNTRUSTED)"
                        .into(),
                );
            }
            let sans = vc.is_some_and(|v| {
                !list(v, "match_typed_subject_alt_names").is_empty()
                    || !list(v, "match_subject_alt_names").is_empty()
            });
            if !sans {
                self.error(
                    format!("{ts_path}/common_tls_context"),
                    "upstream-san-unchecked",
                    "the upstream certificate's name is not checked (no \
                     match_typed_subject_alt_names): any certificate from the CA is accepted"
                        .into(),
                );
            }
        }
        let options = cluster
            .get("typed_extension_protocol_options")
            .and_then(|m| m.as_object())
            .into_iter()
            .flat_map(|m| m.values())
            .filter(|o| typed(o).0 == HTTP_OPTIONS)
            .filter_map(|o| typed(o).1.get("upstream_http_protocol_options"))
            .chain(cluster.get("upstream_http_protocol_options"));
        let from_request: Vec<&str> = options
            .flat_map(|o| {
                ["auto_sni", "auto_san_validation"]
                    .into_iter()
                    .filter(|k| is_true(o, &[k]))
            })
            .collect();
        if !from_request.is_empty() {
            self.warning(
                path,
                "upstream-sni-from-request",
                format!(
                    "{} set: SNI / the certificate name follow the request's Host; use a fixed \
                     sni per cluster",
                    from_request.join(" and ")
                ),
            );
        }
    }
}

/// `cluster_type.name` (an extension) or `type` (default STATIC; `EDS`, `STRICT_DNS`, ...).
fn cluster_kind(cluster: &Value) -> String {
    if let Some(n) = str_at(cluster, &["cluster_type", "name"]) {
        return n.to_string();
    }
    str_at(cluster, &["type"]).unwrap_or("STATIC").to_string()
}

fn mentions_host(cluster_name: &str, hosts: &BTreeSet<String>) -> bool {
    let lower = cluster_name.to_ascii_lowercase();
    hosts.iter().any(|h| lower.contains(h.as_str()))
}

/// The `UpstreamTlsContext` of a transport socket, looking through wrappers that carry an
/// inner `transport_socket` (tcp_stats, proxy protocol, ...).
fn upstream_tls(ts: &Value) -> Option<&Value> {
    let mut ts = ts;
    for _ in 0..8 {
        let tc = ts.get("typed_config")?;
        let (t, body) = typed(tc);
        if t == UPSTREAM_TLS {
            return Some(body);
        }
        ts = body.get("transport_socket")?;
    }
    None
}
