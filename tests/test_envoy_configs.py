"""Every Envoy configuration shipped in `envoy/` validates with the real Envoy (which also runs
the plugin's on_configure, so a broken embedded bundle fails) and keeps the properties the
security design depends on, asserted from the parsed YAML.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.harness import topology as topo
from tests.harness.envoy import REPO_ROOT, WASM_FILTER_TYPE, _walk, envoy_binary

CONFIGS = sorted((REPO_ROOT / "envoy").glob("*.yaml"))
# The cross-region shape is a client-signed sidecar whose endpoint is in another region.
SIDECARS = [p for p in CONFIGS if p.name.startswith("sidecar-") or p.name == "cross-region.yaml"]
HCM_TYPE = ("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
            "HttpConnectionManager")
TLS_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
AUDIT_FORMAT = "%FILTER_STATE(wasm.bedrock_guard_audit:PLAIN)%"
ORIGINAL_DST_FILTER = "envoy.filters.listener.original_dst"
IDENTITY_INJECTED = "sidecar-identity-injected.yaml"
INJECTOR = "envoy.filters.http.credential_injector"
INJECTOR_TYPE = ("type.googleapis.com/envoy.extensions.filters.http.credential_injector.v3."
                 "CredentialInjector")
GENERIC_CREDENTIAL_TYPE = ("type.googleapis.com/envoy.extensions.http.injected_credentials."
                           "generic.v3.Generic")


def ids(paths):
    return [p.name for p in paths]


def ecds_resource(tmp: Path) -> dict:
    """The filter configuration `bedrock-guard ecds` writes for the demo bundle (what a
    hot-reload config receives through extension config discovery)."""
    cli = REPO_ROOT / "target" / "debug" / "bedrock-guard"
    cmd = [str(cli)] if cli.is_file() else ["cargo", "run", "-q", "-p", "bedrock-guard-cli", "--"]
    subprocess.run(cmd + ["ecds", "policies/examples/demo.json", "--out-dir", str(tmp)],
                   cwd=REPO_ROOT, check=True, capture_output=True, timeout=300)
    response = json.loads((tmp / "bedrock_guard.json").read_text())
    (resource,) = response["resources"]
    return resource


def load(path: Path) -> dict:
    """The parsed config; an HTTP filter delivered by extension config discovery is replaced
    by the resource `bedrock-guard ecds` produces for it, so the same checks apply."""
    cfg = yaml.safe_load(path.read_text())
    for node in list(_walk(cfg)):
        for f in node.get("http_filters", []) if isinstance(node, dict) else []:
            discovery = f.get("config_discovery")
            if discovery is None:
                continue
            assert discovery["type_urls"] == [WASM_FILTER_TYPE], discovery
            import tempfile
            with tempfile.TemporaryDirectory() as tmp:
                resource = ecds_resource(Path(tmp))
            assert resource["name"] == f["name"]
            f["typed_config"] = resource["typed_config"]
    return cfg


def hcms(cfg: dict) -> list[dict]:
    return [n for n in _walk(cfg) if n.get("@type") == HCM_TYPE]


def route_clusters(cfg: dict) -> set[str]:
    return {n["cluster"] for n in _walk(cfg["static_resources"]["listeners"])
            if isinstance(n.get("cluster"), str)}


def test_there_are_configs_to_check():
    assert {p.name for p in CONFIGS} >= {"demo.yaml", "sidecar-client-signed.yaml",
                                         "sidecar-proxy-signed.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=ids(CONFIGS))
def test_config_validates_with_envoy(path):
    binary = envoy_binary()
    if binary is None:
        pytest.fail("no Envoy binary (run `make setup` or set ENVOY)", pytrace=False)
    if not (REPO_ROOT / "dist" / "bedrock_guard.wasm").is_file():
        pytest.fail("dist/bedrock_guard.wasm is missing (run `make build`)", pytrace=False)
    proc = subprocess.run([str(binary), "--mode", "validate", "-c", str(path),
                           "--log-level", "error"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "OK" in proc.stdout


@pytest.mark.parametrize("path", CONFIGS, ids=ids(CONFIGS))
def test_guard_filter_is_fail_closed_in_its_own_vm(path):
    cfg = load(path)
    guards = topo.guard_configs(cfg)
    assert guards, "no bedrock-guard wasm filter"
    assert "fail_open" not in json.dumps(cfg), "fail_open must not appear anywhere"
    vm_ids = [g["vm_config"]["vm_id"] for g in guards]
    for g in guards:
        # Closed on failure, and back by itself after a bounded back-off.
        assert g["failure_policy"] == "FAIL_RELOAD"
        assert g["reload_config"]["backoff"]["base_interval"] == "1s"
        assert g["allow_on_headers_stop_iteration"] is True
        assert g["root_id"] == "bedrock_guard"
        assert g["vm_config"]["vm_id"].startswith("bedrock_guard")
        assert g["vm_config"]["runtime"] == "envoy.wasm.runtime.v8"
    # Every guard has a VM of its own: no other plugin shares it (every wasm filter in the file
    # is a guard), and no two guard configurations do either.
    assert len(set(vm_ids)) == len(vm_ids), vm_ids


@pytest.mark.parametrize("path", CONFIGS, ids=ids(CONFIGS))
def test_connection_manager_options(path):
    cfg = load(path)
    found = hcms(cfg)
    assert len(found) == len(cfg["static_resources"]["listeners"])
    text = json.dumps(cfg)
    assert "upgrade_configs" not in text
    assert "allow_connect" not in text
    for hcm in found:
        assert hcm["common_http_protocol_options"]["headers_with_underscores_action"] == \
            "REJECT_REQUEST"
        assert hcm["path_with_escaped_slashes_action"] == "KEEP_UNCHANGED"
        assert hcm["normalize_path"] is False
        assert hcm["merge_slashes"] is False
        assert not hcm.get("http_protocol_options", {}).get("allow_chunked_length")
        logs = hcm.get("access_log") or []
        assert any(AUDIT_FORMAT in json.dumps(log) for log in logs), logs


@pytest.mark.parametrize("path", CONFIGS, ids=ids(CONFIGS))
def test_filter_order_guard_first_then_signing_then_router(path):
    for hcm in hcms(load(path)):
        names = [f["name"] for f in hcm["http_filters"]]
        types = [f.get("typed_config", {}).get("@type", "") for f in hcm["http_filters"]]
        if path.name == IDENTITY_INJECTED:
            # Only the identity injector may run before the guard: it sets the header the
            # guard verifies (test_identity_injected_sidecar checks it).
            assert names[0] == INJECTOR and types[0] == INJECTOR_TYPE, names
            names, types = names[1:], types[1:]
        assert INJECTOR not in names, names
        assert types[0] == WASM_FILTER_TYPE and names[0] == "bedrock_guard", names
        assert names[-1] == "envoy.filters.http.router", names
        if "envoy.filters.http.aws_request_signing" in names:
            assert names.index("envoy.filters.http.aws_request_signing") == len(names) - 2, names


@pytest.mark.parametrize("path", CONFIGS, ids=ids(CONFIGS))
def test_no_dynamic_or_original_destination_upstreams(path):
    cfg = load(path)
    text = json.dumps(cfg)
    assert "dynamic_forward_proxy" not in text
    for cluster in cfg["static_resources"]["clusters"]:
        assert cluster.get("type", "STATIC") in ("STATIC", "STRICT_DNS"), cluster["name"]
        assert "ORIGINAL_DST" not in json.dumps(cluster), cluster["name"]
        ctype = cluster.get("cluster_type")
        if ctype:
            assert ctype["name"] == "envoy.cluster.dns", cluster["name"]
            assert not ctype["typed_config"].get("all_addresses_in_single_endpoint")


@pytest.mark.parametrize("path", CONFIGS, ids=ids(CONFIGS))
def test_every_upstream_cluster_originates_verified_tls_1_2_or_higher(path):
    cfg = load(path)
    by_name = {c["name"]: c for c in cfg["static_resources"]["clusters"]}
    for name in route_clusters(cfg):
        tls = by_name[name]["transport_socket"]["typed_config"]
        assert tls["@type"] == TLS_TYPE, name
        params = tls["common_tls_context"]["tls_params"]
        assert params["tls_minimum_protocol_version"] in ("TLSv1_2", "TLSv1_3"), name
        validation = tls["common_tls_context"]["validation_context"]
        assert validation["trusted_ca"]["filename"], name
        sans = validation["match_typed_subject_alt_names"]
        assert sans and all(s["san_type"] == "DNS" and s["matcher"].get("exact") for s in sans)
        assert tls.get("sni") or tls.get("auto_sni"), name


@pytest.mark.parametrize("path", SIDECARS, ids=ids(SIDECARS))
def test_sidecar_bundle_endpoints_match_routes_and_clusters(path):
    """Each bundle endpoint has a virtual host of its own, routed to a cluster whose SNI and
    certificate name are that host; each Bedrock cluster is some endpoint's; every endpoint
    lists cidrs (the transparent listener and the response check need them)."""
    cfg = load(path)
    by_name = {c["name"]: c for c in cfg["static_resources"]["clusters"]}
    bundles = [topo.plugin_configuration(g)[0] for g in topo.guard_configs(cfg)]
    assert all(b == bundles[0] for b in bundles), "listeners embed different bundles"
    endpoints = bundles[0]["endpoints"]
    for hcm in hcms(cfg):
        vhosts = hcm["route_config"]["virtual_hosts"]
        assert hcm["route_config"].get("ignore_port_in_host_matching") is True
        served = set()
        for ep in endpoints:
            assert ep["cidrs"], ep["host"]
            (vhost,) = [v for v in vhosts if ep["host"] in v["domains"]]
            (cluster_name,) = {r["route"]["cluster"] for r in vhost["routes"]}
            tls = by_name[cluster_name]["transport_socket"]["typed_config"]
            assert tls["sni"] == ep["host"]
            sans = tls["common_tls_context"]["validation_context"][
                "match_typed_subject_alt_names"]
            assert [s["matcher"]["exact"] for s in sans] == [ep["host"]]
            served.add(cluster_name)
        assert served == route_clusters(cfg) & {c for c in by_name}
        # Whatever no endpoint names goes nowhere upstream.
        (fallback,) = [v for v in vhosts if v["domains"] == ["*"]]
        assert all("direct_response" in r for r in fallback["routes"])
    for cluster in by_name.values():
        # Bedrock clusters are pinned to the endpoint-specific VPC endpoint name.
        if cluster["name"] in route_clusters(cfg):
            for n in _walk(cluster["load_assignment"]):
                if "socket_address" in n:
                    addr = n["socket_address"]["address"]
                    assert addr.endswith(".vpce.amazonaws.com") or addr[0].isdigit(), addr
                    assert n["socket_address"]["port_value"] == 443


@pytest.mark.parametrize("path", SIDECARS, ids=ids(SIDECARS))
def test_sidecar_transparent_listener_checks_the_original_destination(path):
    cfg = load(path)
    kinds = {}
    for lst in cfg["static_resources"]["listeners"]:
        transparent = any(f["name"] == ORIGINAL_DST_FILTER for f in lst.get("listener_filters", []))
        assert lst.get("use_original_dst", False) is transparent, lst["name"]
        hcm = topo.hcm_of(lst)
        (guard,) = [f["typed_config"]["config"] for f in hcm["http_filters"]
                    if f["name"] == "bedrock_guard"]
        _, original = topo.plugin_configuration(guard)
        # Only where Envoy's destination.address is the application's: never on the explicit
        # proxy, whose own address is not where the application meant to go.
        assert original is transparent, lst["name"]
        allow_abs = hcm["http_protocol_options"]["allow_absolute_url"]
        assert allow_abs is (not transparent), lst["name"]
        kinds[lst["name"]] = transparent
    assert sorted(kinds.values()) == [False, True], kinds


@pytest.mark.parametrize("name", ["sidecar-proxy-signed.yaml", IDENTITY_INJECTED])
def test_proxy_signed_signing_filter_and_identity(name):
    cfg = load(REPO_ROOT / "envoy" / name)
    bundle = topo.plugin_configuration(topo.guard_configs(cfg)[0])[0]
    regions = {ep["region"] for ep in bundle["endpoints"]}
    signers = [n for n in _walk(cfg["static_resources"]["listeners"])
               if n.get("@type") == topo.SIGNING_FILTER_TYPE]
    assert len(signers) == len(hcms(cfg))
    for s in signers:
        assert s["service_name"] == "bedrock"
        assert {s["region"]} == regions
        assert s["use_unsigned_payload"] is False
        assert not s.get("host_rewrite"), "the signed host must be the one the filter checked"
    # The proxy signs with its own role: callers must prove who they are.
    assert bundle["identity"]["providers"], "proxy-signed needs identity providers"
    for p in bundle["identity"]["providers"]:
        if "remote_jwks" in p:
            assert p["remote_jwks"]["cluster"] in {
                c["name"] for c in cfg["static_resources"]["clusters"]}


UPSTREAM_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def test_proxy_signed_alerts_go_to_eventbridge_signed_by_the_alerts_cluster():
    """Deny alerts leave as PutEvents calls through a cluster whose upstream HTTP filters sign
    them (service `events`) before the upstream codec; the cluster is pinned to an events VPC
    endpoint with verified TLS for the host the calls are addressed to."""
    cfg = load(REPO_ROOT / "envoy" / "sidecar-proxy-signed.yaml")
    by_name = {c["name"]: c for c in cfg["static_resources"]["clusters"]}
    bundles = [topo.plugin_configuration(g)[0] for g in topo.guard_configs(cfg)]
    alerts = bundles[0]["alerts"]
    assert all(b["alerts"] == alerts for b in bundles)
    assert alerts["format"] == "eventbridge"
    assert alerts["batch_size"] <= 10
    cluster = by_name[alerts["cluster"]]
    filters = cluster["typed_extension_protocol_options"][UPSTREAM_OPTIONS]["http_filters"]
    assert [f["name"] for f in filters] == ["envoy.filters.http.aws_request_signing",
                                            "envoy.filters.http.upstream_codec"]
    signer = filters[0]["typed_config"]
    assert signer["service_name"] == "events"
    region = {ep["region"] for ep in bundles[0]["endpoints"]}
    assert {signer["region"]} == region
    assert signer["use_unsigned_payload"] is False
    assert not signer.get("host_rewrite"), "the signed host is the bundle's alerts.endpoint"
    tls = cluster["transport_socket"]["typed_config"]
    assert tls["sni"] == alerts["endpoint"]
    sans = tls["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"]
    assert [s["matcher"]["exact"] for s in sans] == [alerts["endpoint"]]
    for n in _walk(cluster["load_assignment"]):
        if "socket_address" in n:
            assert n["socket_address"]["address"].endswith(".events.us-east-1.vpce.amazonaws.com")
            assert n["socket_address"]["port_value"] == 443


def test_identity_injected_sidecar():
    """The injector puts the pod's token in the bundle's identity header, replacing the
    application's, on every listener (all on loopback: it vouches for whoever connects), and
    reads it through SDS from a file that exists (validation needs it)."""
    cfg = load(REPO_ROOT / "envoy" / IDENTITY_INJECTED)
    assert cfg["node"]["id"] and cfg["node"]["cluster"], "SDS needs a node id and cluster"
    bundle = topo.plugin_configuration(topo.guard_configs(cfg)[0])[0]
    header = bundle["identity"]["header"]
    for lst in cfg["static_resources"]["listeners"]:
        assert lst["address"]["socket_address"]["address"] == "127.0.0.1", lst["name"]
        (injector,) = [f["typed_config"] for f in topo.hcm_of(lst)["http_filters"]
                       if f["name"] == INJECTOR]
        assert injector["overwrite"] is True
        assert injector["allow_request_without_credential"] is False
        generic = injector["credential"]["typed_config"]
        assert generic["@type"] == GENERIC_CREDENTIAL_TYPE
        assert generic["header"] == header
        # A bare JWT, except in `authorization`, where the filter wants `Bearer <jwt>`.
        assert generic.get("header_value_prefix", "") == (
            "Bearer " if header.lower() == "authorization" else "")
        source = generic["credential"]["sds_config"]["path_config_source"]
        sds = yaml.safe_load((REPO_ROOT / source["path"]).read_text())
        (secret,) = sds["resources"]
        assert secret["name"] == generic["credential"]["name"]
        assert secret["generic_secret"]["secret"]["filename"].startswith("/var/run/secrets/")
        assert (REPO_ROOT / source["watched_directory"]["path"]).is_dir()


def test_client_signed_has_no_signing_filter():
    cfg = load(REPO_ROOT / "envoy" / "sidecar-client-signed.yaml")
    assert not [n for n in _walk(cfg) if n.get("@type") == topo.SIGNING_FILTER_TYPE]


# -- Kubernetes manifests (Istio, Envoy Gateway), checked offline against their CRD schemas ------

CRD_DIR = REPO_ROOT.parent / "shared" / "data" / "crds"
MANIFESTS = [
    ("istio/wasmplugin.yaml", "istio-wasmplugins.extensions.istio.io.yaml"),
    ("istio/serviceentry.yaml", "istio-serviceentries.networking.istio.io.yaml"),
    ("envoy-gateway/envoyextensionpolicy.yaml",
     "gateway.envoyproxy.io_envoyextensionpolicies.yaml"),
    ("envoy-gateway/envoyproxy-stats.yaml", "gateway.envoyproxy.io_envoyproxies.yaml"),
    ("istio/envoyfilter-buffer.yaml", "istio-envoyfilters.networking.istio.io.yaml"),
    ("istio/envoyfilter-ecds.yaml", "istio-envoyfilters.networking.istio.io.yaml"),
    ("istio/destinationrule.yaml", "istio-destinationrules.networking.istio.io.yaml"),
    ("envoy-gateway/backendtrafficpolicy-buffer.yaml",
     "gateway.envoyproxy.io_backendtrafficpolicies.yaml"),
    ("envoy-gateway/envoyproxy-filter-order.yaml", "gateway.envoyproxy.io_envoyproxies.yaml"),
]
needs_crds = pytest.mark.skipif(
    not CRD_DIR.is_dir(),
    reason=f"the reference CRD schemas ({CRD_DIR}) are not present in this checkout; the "
           "manifests are only checked where ../shared/data/crds exists")


@needs_crds
@pytest.mark.parametrize("manifest,crd", MANIFESTS, ids=[m for m, _ in MANIFESTS])
def test_manifest_conforms_to_its_crd_schema(manifest, crd):
    from tests.harness import crdschema
    doc = load(REPO_ROOT / "envoy" / manifest)
    errors = crdschema.validate_manifest(doc, crdschema.load_crd(CRD_DIR / crd))
    assert errors == []


@needs_crds
def test_crd_checker_rejects_what_the_schemas_forbid():
    """The checker is not vacuous: Istio spells it FAIL_CLOSE, and WasmPlugin has no field for
    allow_on_headers_stop_iteration or vm_id (so neither can be set there)."""
    from tests.harness import crdschema
    crd = crdschema.load_crd(CRD_DIR / "istio-wasmplugins.extensions.istio.io.yaml")
    doc = load(REPO_ROOT / "envoy" / "istio" / "wasmplugin.yaml")
    doc["spec"]["failStrategy"] = "FAIL_CLOSED"
    doc["spec"]["allowOnHeadersStopIteration"] = True
    doc["spec"]["vmConfig"] = {"vmId": "bedrock_guard"}
    del doc["spec"]["url"]
    errors = crdschema.validate_manifest(doc, crd)
    assert any(e.startswith("spec.failStrategy:") for e in errors), errors
    assert "spec.allowOnHeadersStopIteration: unknown field" in errors
    assert "spec.vmConfig.vmId: unknown field" in errors
    assert "spec.url: required" in errors


def test_manifests_fail_closed_and_carry_the_sidecar_bundle():
    client = load(REPO_ROOT / "envoy" / "sidecar-client-signed.yaml")
    bundle = topo.plugin_configuration(topo.guard_configs(client)[0])[0]
    istio = load(REPO_ROOT / "envoy" / "istio" / "wasmplugin.yaml")["spec"]
    assert istio["failStrategy"] == "FAIL_RELOAD"
    assert istio["pluginName"] == "bedrock_guard"
    assert [m["mode"] for m in istio["match"]] == ["CLIENT"]
    assert istio["pluginConfig"] == bundle
    (eg,) = load(REPO_ROOT / "envoy" / "envoy-gateway" / "envoyextensionpolicy.yaml")["spec"][
        "wasm"]
    assert eg["failOpen"] is False and eg["rootID"] == "bedrock_guard"
    assert eg["config"] == bundle
    se = load(REPO_ROOT / "envoy" / "istio" / "serviceentry.yaml")["spec"]
    assert se["hosts"] == [ep["host"] for ep in bundle["endpoints"] if ep.get("private_dns")]
    assert [e["address"] for e in se["endpoints"]] == [
        ep["host"] for ep in bundle["endpoints"] if ep["host"].endswith(".vpce.amazonaws.com")]


def test_manifests_hold_body_carried_requests():
    """Istio and Envoy Gateway hold body-carried requests with BEDROCK_GUARD_HOLD_BODY and a
    buffer filter after the guard whose limit is above the bundle's, or (Istio's EnvoyFilter-only
    form) with the flag; every form fails closed and carries the sidecar bundle."""
    client = load(REPO_ROOT / "envoy" / "sidecar-client-signed.yaml")
    bundle = topo.plugin_configuration(topo.guard_configs(client)[0])[0]
    limit = bundle["limits"]["max_body_bytes"]
    istio = load(REPO_ROOT / "envoy" / "istio" / "wasmplugin.yaml")["spec"]
    assert istio["vmConfig"]["env"] == [{"name": "BEDROCK_GUARD_HOLD_BODY",
                                         "value": "buffer_filter"}]
    (patch,) = load(REPO_ROOT / "envoy" / "istio" / "envoyfilter-buffer.yaml")["spec"][
        "configPatches"]
    assert patch["applyTo"] == "HTTP_FILTER" and patch["patch"]["operation"] == "INSERT_BEFORE"
    assert patch["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"] == \
        "envoy.filters.http.router"
    assert patch["match"]["listener"]["portNumber"] == istio["match"][0]["ports"][0]["number"]
    assert patch["patch"]["value"]["typed_config"]["max_request_bytes"] > limit
    ext, http = load(REPO_ROOT / "envoy" / "istio" / "envoyfilter-ecds.yaml")["spec"][
        "configPatches"]
    assert ext["applyTo"] == "EXTENSION_CONFIG" and ext["patch"]["operation"] == "ADD"
    cfg = ext["patch"]["value"]["typed_config"]["config"]
    assert cfg["allow_on_headers_stop_iteration"] is True
    assert cfg["failure_policy"] == "FAIL_RELOAD"
    assert json.loads(cfg["configuration"]["value"]) == bundle
    assert http["patch"]["value"]["name"] == ext["patch"]["value"]["name"]
    assert "config_discovery" in http["patch"]["value"]
    (eg,) = load(REPO_ROOT / "envoy" / "envoy-gateway" / "envoyextensionpolicy.yaml")["spec"][
        "wasm"]
    assert eg["env"]["hostKeys"] == ["BEDROCK_GUARD_HOLD_BODY"]
    proxy = load(REPO_ROOT / "envoy" / "envoy-gateway" / "envoyproxy-filter-order.yaml")["spec"]
    assert proxy["filterOrder"] == [{"name": "envoy.filters.http.buffer",
                                     "after": "envoy.filters.http.wasm"}]
    env = proxy["provider"]["kubernetes"]["envoyDeployment"]["container"]["env"]
    assert {"name": "BEDROCK_GUARD_HOLD_BODY", "value": "buffer_filter"} in env
    btp = load(REPO_ROOT / "envoy" / "envoy-gateway" / "backendtrafficpolicy-buffer.yaml")["spec"]
    assert btp["targetRefs"] == load(
        REPO_ROOT / "envoy" / "envoy-gateway" / "envoyextensionpolicy.yaml")["spec"]["targetRefs"]
    assert btp["requestBuffer"]["limit"] == "2Mi" and 2 * 1024 * 1024 > limit


# -- FIPS endpoints (envoy/fips.md) ---------------------------------------------------------------

def _validate(path: Path) -> subprocess.CompletedProcess:
    binary = envoy_binary()
    if binary is None:
        pytest.fail("no Envoy binary (run `make setup` or set ENVOY)", pytrace=False)
    return subprocess.run([str(binary), "--mode", "validate", "-c", str(path), "--log-level",
                           "error"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)


def test_fips_variant_of_the_sidecar_validates(tmp_path):
    proc = _validate(topo.fips_variant(topo.CLIENT_SIGNED, tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_fips_required_with_a_non_fips_endpoint_fails_configuration(tmp_path, cli):
    """network.fips_required is enforced when the plugin configures. With nothing in force yet
    the filter accepts the configuration holding no policy (every request refused
    `policy_unavailable`, tests/test_e2e_fail_closed.py), so `envoy --mode validate` exits 0
    but logs the refusal, which `make validate` fails on; `bedrock-guard check-envoy` refuses
    the file (`bundle-invalid`, exit 1)."""
    cfg = load(topo.CLIENT_SIGNED)
    for plugin in topo.guard_configs(cfg):
        bundle, original = topo.plugin_configuration(plugin)
        bundle["network"] = {"fips_required": True}
        topo._set_plugin_configuration(plugin, bundle, original)
    path = tmp_path / "not-fips.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = _validate(path)
    log = proc.stderr + proc.stdout
    assert "bedrock-guard: bundle refused" in log and "not a FIPS endpoint" in log, log[-3000:]
    assert "every request is refused (policy_unavailable)" in log, log[-3000:]
    checked = subprocess.run([str(cli), "check-envoy", str(path)], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "bundle-invalid" in checked.stdout and "not a FIPS endpoint" in checked.stdout


def test_make_validate_fails_on_a_bundle_the_guard_refuses(tmp_path):
    """`make validate`'s loop, run on a copy of envoy/ whose demo bundle the module refuses."""
    work = tmp_path / "tree"
    (work / "envoy").mkdir(parents=True)
    cfg = yaml.safe_load((REPO_ROOT / "envoy" / "demo.yaml").read_text())
    [plugin] = topo.guard_configs(cfg)
    bundle, original = topo.plugin_configuration(plugin)
    bundle["mode"] = "permissive"
    topo._set_plugin_configuration(plugin, bundle, original)
    (work / "envoy" / "demo.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    for name in (".venv", "dist", "policies", "envoy/observability", "envoy/overload"):
        src = REPO_ROOT / name
        if src.exists():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).symlink_to(src, target_is_directory=True)
    loop = subprocess.run(["make", "-n", "-o", "setup", "-o", "build", "validate"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60, check=True).stdout
    script = loop[loop.index("for f in envoy/*.yaml"):]
    done = subprocess.run(["bash", "-c", script], cwd=work, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0, done.stdout[-2000:]
    assert "envoy/demo.yaml: Envoy or the guard refused it" in done.stdout, done.stdout[-2000:]


# -- labelled stats: one list of stats_tags, in every shipped config ------------------------------

STATS_TAGS = yaml.safe_load((REPO_ROOT / "envoy" / "observability" / "stats_tags.yaml").read_text())


def test_stats_tags_source_is_one_tag_per_label():
    names = [t["tag_name"] for t in STATS_TAGS]
    assert names == ["operation", "model", "decision", "reason", "rule", "group", "direction",
                     "class"]
    assert all(set(t) == {"tag_name", "regex"} for t in STATS_TAGS)


@pytest.mark.parametrize("path", CONFIGS, ids=ids(CONFIGS))
def test_config_carries_the_stats_tags(path):
    cfg = yaml.safe_load(path.read_text())
    assert cfg["stats_config"]["stats_tags"] == STATS_TAGS
    # Envoy's default tags stay on (they tag Envoy's own stats); none of ours shadows one.
    assert cfg["stats_config"].get("use_all_default_tags", True) is True


def test_istio_bootstrap_override_carries_the_stats_tags_and_the_allocator_block():
    doc = yaml.safe_load((REPO_ROOT / "envoy" / "istio" / "stats-bootstrap.yaml").read_text())
    assert doc["kind"] == "ConfigMap"
    override = json.loads(doc["data"]["custom_bootstrap.json"])
    assert override == {"stats_config": {"stats_tags": STATS_TAGS},
                        "memory_allocator_manager": MEMORY_ALLOCATOR_MANAGER}
    text = (REPO_ROOT / "envoy" / "istio" / "stats-bootstrap.yaml").read_text()
    assert f"sidecar.istio.io/bootstrapOverride: {doc['metadata']['name']}" in text
    assert "inclusionPrefixes:\n#           - wasmcustom.bedrock_guard." in text


def test_envoy_gateway_bootstrap_merge_carries_the_stats_tags_and_the_allocator_block():
    doc = yaml.safe_load((REPO_ROOT / "envoy" / "envoy-gateway" / "envoyproxy-stats.yaml")
                         .read_text())
    assert doc["kind"] == "EnvoyProxy"
    assert doc["spec"]["bootstrap"]["type"] == "Merge"
    assert yaml.safe_load(doc["spec"]["bootstrap"]["value"]) == {
        "stats_config": {"stats_tags": STATS_TAGS},
        "memory_allocator_manager": MEMORY_ALLOCATOR_MANAGER}


def test_stats_tags_turn_family_names_into_labels():
    """The tag regexes, applied the way Envoy applies them (each to the stat name, its first
    group removed, its second the value), turn every family's name into its labels; a value
    equal to a label name is never taken for one."""
    import re
    name = ("wasmcustom.bedrock_guard.requests.operation.Converse.model.reason.decision.deny"
            ".reason.model_denied.rule.model.group.rule")
    removed = []
    tags = {}
    for t in STATS_TAGS:
        m = re.search(t["regex"], name)
        if m:
            tags[t["tag_name"]] = m.group(2)
            removed.append(m.span(1))
    rest = "".join(c for i, c in enumerate(name) if not any(a <= i < b for a, b in removed))
    assert rest == "wasmcustom.bedrock_guard.requests"
    assert tags == {"operation": "Converse", "model": "reason", "decision": "deny",
                    "reason": "model_denied", "rule": "model", "group": "rule"}
    for other in ("wasmcustom.bedrock_guard.requests_total", "wasmcustom.bedrock_guard.bundle_key.x",
                  "cluster.bedrock_guard.requests.operation.x"):
        assert not any(re.search(t["regex"], other) for t in STATS_TAGS), other


# -- overload manager: one block, in every shipped config ----------------------------------------

OVERLOAD = REPO_ROOT / "envoy" / "overload" / "overload_manager.yaml"
OVERLOAD_MANAGER = yaml.safe_load(OVERLOAD.read_text())
FIXED_HEAP = "envoy.resource_monitors.fixed_heap"
GLOBAL_CX = "envoy.resource_monitors.global_downstream_max_connections"


def overload_numbers(om: dict) -> dict:
    """The numbers docs/operations.md ("Bounds") states, read from an overload_manager block."""
    monitors = {m["name"]: m["typed_config"] for m in om["resource_monitors"]}
    actions = {a["name"]: {t["name"]: t["threshold"]["value"] for t in a["triggers"]}
               for a in om["actions"]}
    return {
        "max_heap_size_bytes": int(monitors[FIXED_HEAP]["max_heap_size_bytes"]),
        "max_active_downstream_connections":
            int(monitors[GLOBAL_CX]["max_active_downstream_connections"]),
        "shrink_heap": actions["envoy.overload_actions.shrink_heap"][FIXED_HEAP],
        "stop_accepting_requests": actions["envoy.overload_actions.stop_accepting_requests"][FIXED_HEAP],
    }


def test_overload_manager_source_has_the_documented_numbers():
    assert overload_numbers(OVERLOAD_MANAGER) == {
        "max_heap_size_bytes": 1 << 30, "max_active_downstream_connections": 1024,
        "shrink_heap": 0.90, "stop_accepting_requests": 0.95}
    # Only the two fixed-heap actions and the two monitors: nothing that drops or resets
    # streams the guard has decided (no reset_high_memory_stream), no load-shed point.
    assert [m["name"] for m in OVERLOAD_MANAGER["resource_monitors"]] == [FIXED_HEAP, GLOBAL_CX]
    assert set(OVERLOAD_MANAGER) == {"refresh_interval", "resource_monitors", "actions"}
    doc = (REPO_ROOT / "docs" / "operations.md").read_text()
    for number in ("1 073 741 824", "1024", "90 %", "95 %"):
        assert number in doc, number


@pytest.mark.parametrize("path", CONFIGS, ids=ids(CONFIGS))
def test_config_carries_the_overload_manager(path):
    cfg = yaml.safe_load(path.read_text())
    assert cfg.get("overload_manager") == OVERLOAD_MANAGER, (
        f"{path.name}: overload_manager must be envoy/overload/overload_manager.yaml verbatim")


# -- the allocator's background release: one block, in every shipped config ----------------------

ALLOCATOR = REPO_ROOT / "envoy" / "overload" / "memory_allocator_manager.yaml"
MEMORY_ALLOCATOR_MANAGER = yaml.safe_load(ALLOCATOR.read_text())


def test_memory_allocator_manager_source_releases_in_the_background():
    # bytes_to_release 0 (Envoy's default) would turn the release off.
    assert MEMORY_ALLOCATOR_MANAGER == {"bytes_to_release": 16 << 20,
                                        "memory_release_interval": "1s"}
    assert "memory_allocator_manager.yaml" in (REPO_ROOT / "docs" / "operations.md").read_text()


@pytest.mark.parametrize("path", CONFIGS, ids=ids(CONFIGS))
def test_config_carries_the_memory_allocator_manager(path):
    cfg = yaml.safe_load(path.read_text())
    assert cfg.get("memory_allocator_manager") == MEMORY_ALLOCATOR_MANAGER, (
        f"{path.name}: memory_allocator_manager must be "
        f"envoy/overload/memory_allocator_manager.yaml verbatim")
