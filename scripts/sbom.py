#!/usr/bin/env python3
"""CycloneDX 1.5 SBOM (JSON) of the wasm module: the crates bedrock-guard-plugin depends on for
wasm32-wasip1, normal dependencies only (no dev or build dependencies, nothing of the CLI).

    scripts/sbom.py --module dist/bedrock_guard.wasm --out dist/bedrock_guard.cdx.json

The graph is the plugin's own: `cargo tree -e normal --target wasm32-wasip1 -p
bedrock-guard-plugin`, resolved with the plugin's features (the engine without its `signing`
feature), not the whole workspace's as `cargo metadata` resolves them (that graph also holds the
CLI's signing crates, which the module does not link). Each crate's description, licence and
source come from `cargo metadata`; its sha256 is its `checksum` in Cargo.lock (absent for the
workspace's own path crates). The module itself is the metadata component, with the sha256
of the file given. Procedural macros and the crates only they reach run at build time and are
not linked into the module: they are listed with `scope: excluded`. The standard library
(built from the toolchain's rust-src) is not a cargo dependency and is not listed.

Standard library only; deterministic output (components sorted, no serial number or timestamp
unless SOURCE_DATE_EPOCH is set), so the same tree gives the same bytes.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = "bedrock-guard-plugin"
TARGET = "wasm32-wasip1"


def cargo_metadata() -> dict:
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked",
         "--filter-platform", TARGET],
        cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def lock_checksums() -> dict[tuple[str, str], str]:
    lock = tomllib.loads((ROOT / "Cargo.lock").read_text())
    return {(p["name"], p["version"]): p["checksum"]
            for p in lock.get("package", []) if "checksum" in p}


def plugin_tree() -> dict[tuple[str, str], set[tuple[str, str]]]:
    """The plugin's normal-dependency graph for the target, as cargo resolves it for the plugin
    alone: {(name, version): {(name, version) of its dependencies}}, the plugin first."""
    out = subprocess.run(
        ["cargo", "tree", "-e", "normal", "--target", TARGET, "-p", PLUGIN, "--prefix", "depth",
         "--locked", "--format", "{p}"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    edges: dict[tuple[str, str], set[tuple[str, str]]] = {}
    path: list[tuple[str, str]] = []
    for line in out.splitlines():
        m = re.match(r"^(\d+)(\S+) v(\S+)", line)
        if not m:
            raise SystemExit(f"sbom: unexpected `cargo tree` line: {line!r}")
        depth, key = int(m.group(1)), (m.group(2), m.group(3))
        del path[depth:]
        edges.setdefault(key, set())
        if path:
            edges[path[-1]].add(key)
        path.append(key)
    return edges


def plugin_graph(meta: dict) -> tuple[dict[str, dict], dict[str, list[str]], set[str]]:
    """(packages by id, normal-dependency edges, ids linked into the module) of the plugin's own
    graph (`plugin_tree`). Linked: reachable without passing through a proc-macro crate."""
    packages = {p["id"]: p for p in meta["packages"]}
    by_key = {(p["name"], p["version"]): p["id"] for p in meta["packages"]}
    tree = plugin_tree()
    [root] = [by_key[k] for k in tree if k[0] == PLUGIN]

    def is_proc_macro(pid: str) -> bool:
        return any("proc-macro" in t["kind"] for t in packages[pid]["targets"])

    edges = {by_key[k]: sorted(by_key[d] for d in deps) for k, deps in tree.items()}
    linked: set[str] = set()
    stack = [root]
    while stack:
        pid = stack.pop()
        if pid in linked or is_proc_macro(pid):
            continue
        linked.add(pid)
        stack.extend(edges[pid])
    return packages, edges, linked


def purl(pkg: dict) -> str:
    return f"pkg:cargo/{pkg['name']}@{pkg['version']}"


def component(pkg: dict, checksums: dict, linked: bool) -> dict:
    c: dict = {
        "type": "library",
        "bom-ref": purl(pkg),
        "name": pkg["name"],
        "version": pkg["version"],
        "purl": purl(pkg),
    }
    if pkg.get("description"):
        c["description"] = " ".join(pkg["description"].split())
    if not linked:
        c["scope"] = "excluded"
    if pkg.get("license"):
        c["licenses"] = [{"expression": pkg["license"]}]
    checksum = checksums.get((pkg["name"], pkg["version"]))
    if checksum:
        c["hashes"] = [{"alg": "SHA-256", "content": checksum}]
    refs = []
    if pkg.get("repository"):
        refs.append({"type": "vcs", "url": pkg["repository"]})
    if pkg["source"] and pkg["source"].startswith("registry+"):
        refs.append({"type": "distribution",
                     "url": f"https://crates.io/crates/{pkg['name']}/{pkg['version']}"})
    if refs:
        c["externalReferences"] = refs
    return c


def sbom(module: Path) -> dict:
    meta = cargo_metadata()
    packages, edges, linked = plugin_graph(meta)
    checksums = lock_checksums()
    [root] = [pid for pid in edges if packages[pid]["name"] == PLUGIN]
    module_bytes = module.read_bytes()
    root_pkg = packages[root]
    module_ref = module.name
    metadata: dict = {
        "tools": {"components": [{"type": "application", "name": "scripts/sbom.py",
                                  "description": "bedrock-guard's SBOM writer "
                                                 "(cargo tree + cargo metadata + Cargo.lock)"}]},
        "component": {
            "type": "application",
            "bom-ref": module_ref,
            "name": module.name,
            "version": root_pkg["version"],
            "description": f"proxy-wasm module built from {PLUGIN} for {TARGET}",
            "licenses": [{"expression": root_pkg["license"]}],
            "hashes": [{"alg": "SHA-256", "content": hashlib.sha256(module_bytes).hexdigest()}],
            "properties": [{"name": "bedrock-guard:target", "value": TARGET},
                           {"name": "bedrock-guard:size_bytes", "value": str(len(module_bytes))}],
        },
    }
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        metadata["timestamp"] = datetime.datetime.fromtimestamp(
            int(epoch), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    ids = sorted(edges, key=lambda pid: (packages[pid]["name"], packages[pid]["version"]))
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": metadata,
        "components": [component(packages[pid], checksums, pid in linked) for pid in ids],
        "dependencies": [{"ref": module_ref, "dependsOn": [purl(root_pkg)]}] + [
            {"ref": purl(packages[pid]),
             "dependsOn": sorted({purl(packages[d]) for d in edges[pid]})}
            for pid in ids],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--module", type=Path, default=ROOT / "dist" / "bedrock_guard.wasm")
    ap.add_argument("--out", type=Path, default=ROOT / "dist" / "bedrock_guard.cdx.json")
    args = ap.parse_args()
    if not args.module.is_file():
        print(f"sbom: {args.module} not found (run `make build`)", file=sys.stderr)
        return 1
    doc = sbom(args.module)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"sbom: {args.out} ({len(doc['components'])} crates, module sha256 "
          f"{doc['metadata']['component']['hashes'][0]['content']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
