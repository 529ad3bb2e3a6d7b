//! Reading what `check-envoy` is given into one shape: the listeners, clusters, route
//! configurations, ECDS filter configurations and endpoints of each Envoy in the input.
//!
//! Accepted inputs:
//! * an Envoy bootstrap, YAML or JSON (`static_resources`);
//! * an admin `/config_dump` (`{"configs": [...]}`), which is also what
//!   `istioctl proxy-config all -o json` prints;
//! * `egctl config envoy-proxy all` (JSON or YAML): config dumps keyed by namespace, then pod,
//!   `{"<namespace>": {"<pod>": {"configs": [...]}}}`, written with protojson's lowerCamelCase
//!   field names. (Shape read from Envoy Gateway's `internal/cmd/egctl/config.go`,
//!   `marshalEnvoyProxyConfig`, and its test data `internal/cmd/egctl/testdata/config/out/`.)
//!
//! Field names are brought to Envoy's proto (snake_case) names first, so the checks see one
//! spelling whichever tool wrote the file.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

use super::super::source::{self, Format};

/// One Envoy's configuration, gathered from a bootstrap or a config dump.
#[derive(Debug, Default)]
pub(crate) struct Instance {
    /// Prepended to every finding's path: `pod[NAMESPACE/NAME]/` for egctl input, else empty.
    pub(crate) prefix: String,
    /// Listeners in input order: (name, listener).
    pub(crate) listeners: Vec<(String, Value)>,
    pub(crate) clusters: BTreeMap<String, Value>,
    /// Route configurations by name (RDS, from a config dump).
    pub(crate) routes: BTreeMap<String, Value>,
    /// ECDS filter configurations by resource name: the `typed_config` of each
    /// `TypedExtensionConfig`.
    pub(crate) ecds: BTreeMap<String, Value>,
    /// Cluster load assignments by cluster (or EDS service) name.
    pub(crate) endpoints: BTreeMap<String, Value>,
    /// A bootstrap (file-based ECDS sources are read from disk), not a dump.
    pub(crate) is_bootstrap: bool,
    /// A bootstrap's `overload_manager`, when it has one.
    pub(crate) overload_manager: Option<Value>,
}

/// Parse `text` (named `name`, for the format) into the Envoys it describes.
pub(crate) fn read(name: &str, text: &[u8]) -> Result<Vec<Instance>, String> {
    let value = match source::detect_format(name, text) {
        Format::Json => serde_json::from_slice::<Value>(text)
            .map_err(|e| format!("{name}: not valid JSON: {e}"))?,
        Format::Yaml => {
            let text =
                std::str::from_utf8(text).map_err(|e| format!("{name}: not UTF-8 text: {e}"))?;
            yaml_value(text).map_err(|e| format!("{name}: {e}"))?
        }
    };
    let value = snake_keys(value);
    let Value::Object(top) = &value else {
        return Err(format!(
            "{name}: expected an object (an Envoy bootstrap, a /config_dump, or egctl output)"
        ));
    };
    if top.get("configs").is_some_and(Value::is_array) {
        return Ok(vec![from_dump(&value, String::new())]);
    }
    const BOOTSTRAP: &[&str] = &[
        "static_resources",
        "dynamic_resources",
        "admin",
        "node",
        "layered_runtime",
        "overload_manager",
    ];
    if BOOTSTRAP.iter().any(|k| top.contains_key(*k)) {
        return Ok(vec![from_bootstrap(&value)]);
    }
    // egctl: {namespace: {pod: config_dump}}.
    let mut out = Vec::new();
    for (namespace, pods) in top {
        let Value::Object(pods) = pods else {
            return Err(unrecognised(name));
        };
        for (pod, dump) in pods {
            if !dump.get("configs").is_some_and(Value::is_array) {
                return Err(unrecognised(name));
            }
            out.push(from_dump(dump, format!("pod[{namespace}/{pod}]/")));
        }
    }
    if out.is_empty() {
        return Err(unrecognised(name));
    }
    Ok(out)
}

fn unrecognised(name: &str) -> String {
    format!(
        "{name}: not an Envoy bootstrap (no static_resources), a /config_dump (no \"configs\" \
         list) or `egctl config envoy-proxy all` output ({{namespace: {{pod: config dump}}}})"
    )
}

/// The members that hold free-form maps (names chosen by users) or opaque plugin data: their
/// keys are left as written.
const OPAQUE: &[&str] = &[
    "configuration",
    "metadata",
    "filter_metadata",
    "typed_filter_metadata",
    "typed_per_filter_config",
    "typed_extension_protocol_options",
    // A Wasm VM's environment variables (`vm_config.environment_variables.key_values`).
    "key_values",
];

/// Rename lowerCamelCase members (protojson) to the proto's snake_case names. The values of
/// [`OPAQUE`] members keep their own keys (the map keys of `typed_extension_protocol_options`
/// are extension names; the values below them are renamed).
fn snake_keys(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(snake_keys).collect()),
        Value::Object(members) => {
            let mut out = Map::new();
            for (key, v) in members {
                let key = snake(&key);
                let v = match key.as_str() {
                    "typed_extension_protocol_options" | "typed_per_filter_config" => match v {
                        Value::Object(m) => {
                            Value::Object(m.into_iter().map(|(k, v)| (k, snake_keys(v))).collect())
                        }
                        other => other,
                    },
                    k if OPAQUE.contains(&k) => v,
                    _ => snake_keys(v),
                };
                out.insert(key, v);
            }
            Value::Object(out)
        }
        other => other,
    }
}

fn snake(key: &str) -> String {
    if key.starts_with('@') || !key.bytes().any(|b| b.is_ascii_uppercase()) {
        return key.to_string();
    }
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// One YAML document as a JSON value: aliases expanded, `<<` merge keys applied, floats kept.
fn yaml_value(text: &str) -> Result<Value, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    let mut docs = docs.into_iter();
    let doc = docs.next().ok_or("the YAML document is empty")?;
    if docs.next().is_some() {
        return Err("more than one YAML document; give one Envoy configuration".into());
    }
    yaml_to_json(doc, 0)
}

fn yaml_to_json(y: Yaml, depth: usize) -> Result<Value, String> {
    if depth > 256 {
        return Err("the YAML document is nested too deeply".into());
    }
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Integer(i) => Value::from(i),
        Yaml::Real(text) => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::String(text)),
        Yaml::String(s) => Value::String(s),
        Yaml::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| yaml_to_json(i, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Hash(hash) => {
            let mut out = Map::new();
            let mut merged = Vec::new();
            for (k, v) in hash {
                let key = match k {
                    Yaml::String(s) => s,
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    Yaml::Real(r) => r,
                    other => return Err(format!("unsupported mapping key {other:?}")),
                };
                let v = yaml_to_json(v, depth + 1)?;
                if key == "<<" {
                    merged.push(v);
                } else {
                    out.insert(key, v);
                }
            }
            // Merge keys: members written here win over merged ones, earlier merges over later.
            for m in merged {
                let maps = match m {
                    Value::Object(map) => vec![map],
                    Value::Array(items) => items
                        .into_iter()
                        .filter_map(|i| match i {
                            Value::Object(map) => Some(map),
                            _ => None,
                        })
                        .collect(),
                    _ => return Err("a `<<` merge key must name a mapping".into()),
                };
                for map in maps {
                    for (k, v) in map {
                        out.entry(k).or_insert(v);
                    }
                }
            }
            Value::Object(out)
        }
        Yaml::Alias(_) | Yaml::BadValue => return Err("unresolvable YAML value".into()),
    })
}

fn items<'v>(v: &'v Value, key: &str) -> impl Iterator<Item = &'v Value> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter())
        .into_iter()
        .flatten()
}

fn named(v: &Value) -> String {
    v.get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn add_static(instance: &mut Instance, resources: &Value, listeners: bool, clusters: bool) {
    if listeners {
        for l in items(resources, "listeners") {
            instance.listeners.push((named(l), l.clone()));
        }
    }
    if clusters {
        for c in items(resources, "clusters") {
            instance.clusters.insert(named(c), c.clone());
        }
    }
}

fn from_bootstrap(bootstrap: &Value) -> Instance {
    let mut instance = Instance {
        is_bootstrap: true,
        overload_manager: bootstrap.get("overload_manager").cloned(),
        ..Instance::default()
    };
    if let Some(resources) = bootstrap.get("static_resources") {
        add_static(&mut instance, resources, true, true);
    }
    instance
}

/// The short type name of an `@type` URL (`envoy.admin.v3.ListenersConfigDump`).
pub(crate) fn type_name(v: &Value) -> &str {
    let url = v.get("@type").and_then(Value::as_str).unwrap_or_default();
    url.rsplit('/').next().unwrap_or(url)
}

fn from_dump(dump: &Value, prefix: String) -> Instance {
    let mut instance = Instance {
        prefix,
        ..Instance::default()
    };
    let mut bootstrap = None;
    let (mut have_listeners, mut have_clusters) = (false, false);
    for config in items(dump, "configs") {
        match type_name(config) {
            "envoy.admin.v3.BootstrapConfigDump" => bootstrap = config.get("bootstrap"),
            "envoy.admin.v3.ListenersConfigDump" => {
                have_listeners = true;
                for l in items(config, "static_listeners") {
                    if let Some(l) = l.get("listener") {
                        instance.listeners.push((named(l), l.clone()));
                    }
                }
                for l in items(config, "dynamic_listeners") {
                    let state = l.get("active_state").or_else(|| l.get("warming_state"));
                    if let Some(l) = state.and_then(|s| s.get("listener")) {
                        instance.listeners.push((named(l), l.clone()));
                    }
                }
            }
            "envoy.admin.v3.ClustersConfigDump" => {
                have_clusters = true;
                for key in [
                    "static_clusters",
                    "dynamic_active_clusters",
                    "dynamic_warming_clusters",
                ] {
                    for c in items(config, key) {
                        if let Some(c) = c.get("cluster") {
                            instance.clusters.entry(named(c)).or_insert(c.clone());
                        }
                    }
                }
            }
            "envoy.admin.v3.RoutesConfigDump" => {
                for key in ["static_route_configs", "dynamic_route_configs"] {
                    for r in items(config, key) {
                        if let Some(r) = r.get("route_config") {
                            instance.routes.insert(named(r), r.clone());
                        }
                    }
                }
            }
            "envoy.admin.v3.EcdsConfigDump" => {
                for f in items(config, "ecds_filters") {
                    if let Some(f) = f.get("ecds_filter") {
                        if let Some(tc) = f.get("typed_config") {
                            instance.ecds.insert(named(f), tc.clone());
                        }
                    }
                }
            }
            "envoy.admin.v3.EndpointsConfigDump" => {
                for key in ["static_endpoint_configs", "dynamic_endpoint_configs"] {
                    for e in items(config, key) {
                        if let Some(e) = e.get("endpoint_config") {
                            let name = e
                                .get("cluster_name")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string();
                            instance.endpoints.insert(name, e.clone());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(resources) = bootstrap.and_then(|b| b.get("static_resources")) {
        add_static(&mut instance, resources, !have_listeners, !have_clusters);
    }
    instance
}

/// The `typed_config` of resource `name` in a file-based ECDS source (a `DiscoveryResponse`,
/// JSON or YAML), as Envoy would read it: the path is relative to the working directory.
/// `Err` says why it could not be read.
pub(crate) fn ecds_file(path: &str, name: &str) -> Result<Value, String> {
    let text = std::fs::read(Path::new(path)).map_err(|e| format!("cannot read {path}: {e}"))?;
    let value = match source::detect_format(path, &text) {
        Format::Json => serde_json::from_slice::<Value>(&text)
            .map_err(|e| format!("{path}: not valid JSON: {e}"))?,
        Format::Yaml => {
            let text = std::str::from_utf8(&text).map_err(|e| format!("{path}: not UTF-8: {e}"))?;
            yaml_value(text).map_err(|e| format!("{path}: {e}"))?
        }
    };
    let value = snake_keys(value);
    let found = items(&value, "resources")
        .find(|r| r.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|r| r.get("typed_config"))
        .cloned();
    found.ok_or_else(|| format!("{path} has no resource named {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case_becomes_snake_case_except_in_opaque_members() {
        let v = snake_keys(serde_json::json!({
            "httpFilters": [{"typedConfig": {"@type": "x", "config": {"rootId": "a",
                "configuration": {"@type": "y", "value": {"apiVersion": "v"}}}}}],
            "metadata": {"someKey": 1}
        }));
        assert_eq!(
            v,
            serde_json::json!({
                "http_filters": [{"typed_config": {"@type": "x", "config": {"root_id": "a",
                    "configuration": {"@type": "y", "value": {"apiVersion": "v"}}}}}],
                "metadata": {"someKey": 1}
            })
        );
    }

    #[test]
    fn yaml_merge_keys_aliases_and_floats() {
        let v = yaml_value("a: &x {p: 1, q: 2}\nb:\n  <<: *x\n  q: 3\nc: 0.5\n").unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": {"p": 1, "q": 2}, "b": {"p": 1, "q": 3}, "c": 0.5})
        );
    }
}
