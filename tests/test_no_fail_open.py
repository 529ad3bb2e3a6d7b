"""No shipped config or manifest lets a request through when the filter cannot decide.

Scanned: every YAML/JSON file under envoy/ (Envoy bootstraps, Istio and Envoy Gateway
manifests, SDS resources), the ECDS resource `bedrock-guard ecds` writes, and the YAML/JSON
code blocks of the user docs (README.md, envoy/README.md, docs/*.md), which users copy.

A fail-open setting is any of (wherever it appears in a document):

* Envoy's wasm filter: `fail_open: true` (legacy) or `failure_policy: FAIL_OPEN` (also Higress's
  `FAIL_IGNORE`);
* Istio `WasmPlugin`: `failStrategy: FAIL_OPEN`;
* Envoy Gateway: `failOpen: true` (Wasm extension, ext_auth);
* Envoy `ext_authz` / `ext_proc` / rate limit: `failure_mode_allow: true`;
* an HTTP filter that may be skipped: `is_optional: true` or `disabled: true` on an entry of
  `http_filters`.

Structured documents are walked after parsing; every file (and doc code block) is also scanned
line by line, so a setting in a block that does not parse (a doc snippet with `...`) is still
caught. The negative tests feed each setting, in a small synthetic snippet, to the same scanner.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.harness.envoy import REPO_ROOT

CONFIG_DIRS = ("envoy",)
DOC_FILES = ("README.md", "envoy/README.md", "docs/*.md")

# (key, predicate on the value, what it means)
_OPEN_VALUES = {
    "fail_open": lambda v: v is True or str(v).lower() == "true",
    "failure_policy": lambda v: str(v).upper() in ("FAIL_OPEN", "FAIL_IGNORE"),
    "failStrategy": lambda v: str(v).upper() == "FAIL_OPEN",
    "failOpen": lambda v: v is True or str(v).lower() == "true",
    "failure_mode_allow": lambda v: v is True or str(v).lower() == "true",
}
_SKIPPABLE_FILTER = ("is_optional", "disabled")

_LINE = re.compile(
    r"""["']?(?P<key>fail_open|failOpen|failure_mode_allow)["']?\s*[:=]\s*["']?true\b"""
    r"""|["']?(?P<key2>failure_policy|failStrategy)["']?\s*[:=]\s*["']?(?:FAIL_OPEN|FAIL_IGNORE)\b""",
    re.IGNORECASE)


def _walk(node, path="$"):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def scan_document(doc) -> list[str]:
    """Fail-open settings in one parsed document, as `path: key=value`."""
    found = []
    for path, node in _walk(doc):
        for key, is_open in _OPEN_VALUES.items():
            if key in node and is_open(node[key]):
                found.append(f"{path}: {key}={node[key]!r}")
        for f in node.get("http_filters", []) or []:
            if isinstance(f, dict):
                for key in _SKIPPABLE_FILTER:
                    if f.get(key) is True:
                        found.append(f"{path}.http_filters[{f.get('name')}]: {key}=True")
    return found


def scan_text(text: str) -> list[str]:
    """Fail-open settings found line by line (for text that may not parse)."""
    return [f"line {n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1)
            if _LINE.search(line)]


def scan_config(text: str, suffix: str) -> list[str]:
    """Both scans of a config file's text (`.yaml`/`.yml`, several documents; or `.json`)."""
    docs = [json.loads(text)] if suffix == ".json" else list(yaml.safe_load_all(text))
    found = [hit for doc in docs for hit in scan_document(doc)]
    return found + scan_text(text)


_FENCE = re.compile(r"^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)


def scan_markdown(text: str) -> list[str]:
    """Fail-open settings in a Markdown file's code blocks (parsed where they parse)."""
    found = []
    for block in _FENCE.finditer(text):
        body, lang = block.group("body"), block.group("lang")
        found += scan_text(body)
        if lang in ("yaml", "yml", "json"):
            try:
                docs = [json.loads(body)] if lang == "json" else list(yaml.safe_load_all(body))
            except (ValueError, yaml.YAMLError):
                continue  # a partial snippet: the line scan above covers it
            found += [hit for doc in docs for hit in scan_document(doc)]
    return found


def shipped_configs() -> list[Path]:
    return sorted(p for d in CONFIG_DIRS for p in (REPO_ROOT / d).rglob("*")
                  if p.suffix in (".yaml", ".yml", ".json") and p.is_file())


def doc_files() -> list[Path]:
    return sorted({p for pattern in DOC_FILES for p in REPO_ROOT.glob(pattern)})


# -- the shipped files -----------------------------------------------------------------------

def test_the_scan_covers_every_config_kind():
    names = {p.relative_to(REPO_ROOT).as_posix() for p in shipped_configs()}
    # Control: the Envoy bootstraps and both mesh manifests are among the scanned files.
    assert {"envoy/demo.yaml", "envoy/istio/wasmplugin.yaml",
            "envoy/envoy-gateway/envoyextensionpolicy.yaml"} <= names, names
    assert len(doc_files()) >= 4


@pytest.mark.parametrize("path", shipped_configs(),
                         ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_no_shipped_config_fails_open(path):
    assert scan_config(path.read_text(), path.suffix) == []


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_no_documented_snippet_fails_open(path):
    assert scan_markdown(path.read_text()) == []


def test_the_generated_ecds_resource_does_not_fail_open(tmp_path):
    cli = REPO_ROOT / "target" / "debug" / "bedrock-guard"
    cmd = [str(cli)] if cli.is_file() else ["cargo", "run", "-q", "-p", "bedrock-guard-cli", "--"]
    subprocess.run(cmd + ["ecds", "policies/examples/demo.json", "--out-dir", str(tmp_path)],
                   cwd=REPO_ROOT, check=True, capture_output=True, timeout=300)
    out = tmp_path / "bedrock_guard.json"
    text = out.read_text()
    assert '"failure_policy": "FAIL_RELOAD"' in text, "control: the resource names its policy"
    assert scan_config(text, ".json") == []


def test_every_wasm_filter_names_a_closed_policy():
    """Positive side: each Envoy wasm filter config names a closed policy, FAIL_RELOAD (not merely
    "not open")."""
    seen = 0
    for path in shipped_configs():
        for doc in yaml.safe_load_all(path.read_text()):
            for _, node in _walk(doc):
                if node.get("@type", "").endswith("filters.http.wasm.v3.Wasm") and "config" in node:
                    seen += 1
                    assert node["config"].get("failure_policy") == "FAIL_RELOAD", path
    assert seen >= 5


# -- the scanner catches each setting ----------------------------------------------------------

SYNTHETIC = {
    "envoy wasm fail_open": """
http_filters:
- name: bedrock_guard
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
    config: {root_id: bedrock_guard, fail_open: true}
""",
    "envoy wasm FAIL_OPEN": """
config:
  name: bedrock_guard
  failure_policy: FAIL_OPEN
""",
    "higress FAIL_IGNORE": "config: {failure_policy: FAIL_IGNORE}\n",
    "istio failStrategy": """
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
spec:
  failStrategy: FAIL_OPEN
""",
    "envoy gateway failOpen": """
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyExtensionPolicy
spec:
  wasm:
  - name: bedrock-guard
    failOpen: true
""",
    "ext_authz failure_mode_allow": """
http_filters:
- name: envoy.filters.http.ext_authz
  typed_config: {failure_mode_allow: true}
""",
    "optional filter": "http_filters:\n- {name: bedrock_guard, is_optional: true}\n",
    "disabled filter": "http_filters:\n- {name: bedrock_guard, disabled: true}\n",
}


@pytest.mark.parametrize("name", SYNTHETIC)
def test_the_scanner_catches(name):
    snippet = SYNTHETIC[name]
    assert scan_config(snippet, ".yaml"), f"{name}: not caught in YAML"
    as_json = json.dumps(yaml.safe_load(snippet))
    assert scan_config(as_json, ".json"), f"{name}: not caught in JSON"
    assert scan_markdown(f"Example:\n\n```yaml\n{snippet.lstrip()}```\n"), f"{name}: not in docs"


def test_the_line_scan_catches_a_snippet_that_does_not_parse():
    text = "```yaml\nconfig:\n  fail_open: true\n  ...: [\n```\n"
    assert scan_markdown(text) == ["line 2: fail_open: true"]


@pytest.mark.parametrize("closed", [
    "config: {failure_policy: FAIL_CLOSED}\n",
    "config: {failure_policy: FAIL_RELOAD}\n",
    "spec: {failStrategy: FAIL_CLOSE}\n",
    "spec: {failOpen: false}\n",
    "typed_config: {failure_mode_allow: false}\n",
    "http_filters:\n- {name: bedrock_guard, is_optional: false}\n",
])
def test_closed_settings_pass(closed):
    assert scan_config(closed, ".yaml") == []
