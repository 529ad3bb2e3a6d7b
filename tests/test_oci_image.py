"""`make oci`: the module as a reproducible OCI image, and the manifests pinned to its digest.

scripts/oci-image.py is run here on the module `make build` wrote (dist/bedrock_guard.wasm), twice
into separate directories: the two layouts must be byte for byte the same (same manifest digest),
skopeo (Debian's, installed by `make e2e` / `make oci`) must read the layout and find that digest,
`skopeo copy` (what a push does) must keep it, the single layer must be the Wasm image spec's
compat variant holding exactly the module as plugin.wasm, and the WasmPlugin and
EnvoyExtensionPolicy rendered beside it must carry that digest as their sha256 and otherwise be
the shipped manifests (checked against their CRD schemas where ../shared/data/crds exists).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.harness.envoy import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "oci-image.py"
WASM = REPO_ROOT / "dist" / "bedrock_guard.wasm"
CRD_DIR = REPO_ROOT.parent / "shared" / "data" / "crds"
REPO = "registry.example.com/security/bedrock-guard"
TAG = "0.1.0"


def module_bytes() -> bytes:
    if not WASM.is_file():
        pytest.fail(f"{WASM} is missing: run `make build` (make e2e does)", pytrace=False)
    return WASM.read_bytes()


def skopeo() -> str:
    path = shutil.which("skopeo")
    if path is None:
        pytest.fail("skopeo is not installed: `make e2e` (or `make skopeo`) installs the Debian "
                    "package", pytrace=False)
    return path


def build(out: Path, wasm: Path = WASM, env: dict | None = None) -> str:
    env = {k: v for k, v in (env or os.environ).items()}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--wasm", str(wasm), "--out", str(out),
                           "--repo", REPO, "--tag", TAG], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return (out / "digest").read_text().strip()


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def blob(layout: Path, digest: str) -> bytes:
    algo, hex_digest = digest.split(":")
    data = (layout / "blobs" / algo / hex_digest).read_bytes()
    assert hashlib.sha256(data).hexdigest() == hex_digest
    return data


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> tuple[Path, str]:
    module_bytes()
    out = tmp_path_factory.mktemp("oci")
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    return out, build(out, env=env)


def test_two_clean_builds_give_the_same_digest_and_bytes(image, tmp_path):
    out, digest = image
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    again = build(tmp_path / "again", env=env)
    assert again == digest and digest.startswith("sha256:") and len(digest) == 71
    assert tree(tmp_path / "again") == tree(out)


def test_the_digest_follows_the_module_and_source_date_epoch(image, tmp_path):
    """Not a constant: one byte more in the module, or a SOURCE_DATE_EPOCH (which sets the tar
    mtime and the config's `created`), gives another digest, itself reproducible."""
    _, digest = image
    other = tmp_path / "other.wasm"
    other.write_bytes(module_bytes() + b"\0")
    assert build(tmp_path / "other", wasm=other) != digest
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    dated = build(tmp_path / "dated1", env=env)
    assert dated != digest and build(tmp_path / "dated2", env=env) == dated
    layout = tmp_path / "dated1" / "layout"
    manifest = json.loads(blob(layout, dated))
    assert json.loads(blob(layout, manifest["config"]["digest"]))["created"] == \
        "2023-11-14T22:13:20Z"


def test_layout_is_the_compat_variant_holding_exactly_the_module(image):
    """What Istio's and Envoy Gateway's image fetchers (pkg/wasm/imagefetcher.go,
    internal/wasm/imagefetcher.go) read: an OCI manifest (not Docker's media type), whose last
    layer is application/vnd.oci.image.layer.v1.tar+gzip with plugin.wasm in it."""
    out, digest = image
    layout = out / "layout"
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    [entry] = index["manifests"]
    assert entry["digest"] == digest
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == TAG
    manifest = json.loads(blob(layout, digest))
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["annotations"] == {"module.wasm.image/variant": "compat"}
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    compressed = blob(layout, layer["digest"])
    assert layer["size"] == len(compressed)
    assert compressed[4:8] == b"\0\0\0\0"  # gzip MTIME 0
    tar_bytes = gzip.decompress(compressed)
    config = json.loads(blob(layout, manifest["config"]["digest"]))
    assert config["rootfs"] == {"type": "layers",
                                "diff_ids": ["sha256:" + hashlib.sha256(tar_bytes).hexdigest()]}
    assert "created" not in config
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        [member] = tar.getmembers()
        assert (member.name, member.isreg(), member.mtime, member.uid, member.gid, member.mode) == \
            ("plugin.wasm", True, 0, 0, 0, 0o644)
        extracted = tar.extractfile(member).read()
    assert hashlib.sha256(extracted).hexdigest() == hashlib.sha256(module_bytes()).hexdigest()


def test_skopeo_reads_the_layout_and_a_copy_keeps_the_digest(image, tmp_path):
    """skopeo reads the tagged image from the layout (raw manifest = the blob the digest names),
    and `skopeo copy` to another layout, what a push to a registry does, verifies the blobs and
    keeps the digest the manifests pin."""
    out, digest = image
    ref = f"oci:{out / 'layout'}:{TAG}"
    raw = subprocess.run([skopeo(), "inspect", "--raw", ref], capture_output=True, timeout=60,
                         check=True).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    info = json.loads(subprocess.run([skopeo(), "inspect", ref], capture_output=True, text=True,
                                     timeout=60, check=True).stdout)
    assert info["Digest"] == digest
    assert (info["Architecture"], info["Os"]) == ("wasm", "wasip1")
    subprocess.run([skopeo(), "copy", "--quiet", ref, f"oci:{tmp_path / 'pushed'}:{TAG}"],
                   capture_output=True, timeout=60, check=True)
    pushed = json.loads((tmp_path / "pushed" / "index.json").read_text())
    assert [m["digest"] for m in pushed["manifests"]] == [digest]


def test_skopeo_refuses_a_layout_whose_layer_was_altered(image, tmp_path):
    """The check above is not vacuous: a layer blob that no longer matches its digest fails."""
    out, digest = image
    broken = tmp_path / "broken"
    shutil.copytree(out / "layout", broken)
    layer = json.loads(blob(broken, digest))["layers"][0]["digest"].split(":")[1]
    path = broken / "blobs" / "sha256" / layer
    path.write_bytes(path.read_bytes()[:-1] + b"\1")
    proc = subprocess.run([skopeo(), "copy", "--quiet", f"oci:{broken}:{TAG}",
                           f"oci:{tmp_path / 'dst'}:{TAG}"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0 and "digest" in proc.stderr.lower(), proc.stderr


def rendered(out: Path) -> tuple[dict, dict]:
    return (yaml.safe_load((out / "wasmplugin.yaml").read_text()),
            yaml.safe_load((out / "envoyextensionpolicy.yaml").read_text()))


def test_rendered_manifests_pin_the_image_digest(image):
    """sha256 is the image manifest's digest (what Istio compares for oci:// URLs and what the
    EnvoyExtensionPolicy CRD asks for), the URL names the tag, the rest is the shipped manifest."""
    out, digest = image
    istio, eg = rendered(out)
    hex_digest = digest.removeprefix("sha256:")
    assert istio["spec"].pop("sha256") == hex_digest
    assert istio["spec"]["url"] == f"oci://{REPO}:{TAG}"
    assert istio == yaml.safe_load((REPO_ROOT / "envoy" / "istio" / "wasmplugin.yaml").read_text())
    image_spec = eg["spec"]["wasm"][0]["code"]["image"]
    assert image_spec.pop("sha256") == hex_digest
    assert image_spec["url"] == f"{REPO}:{TAG}"
    shipped = (REPO_ROOT / "envoy" / "envoy-gateway" / "envoyextensionpolicy.yaml").read_text()
    assert eg == yaml.safe_load(shipped)
    assert hex_digest != hashlib.sha256(module_bytes()).hexdigest()


@pytest.mark.skipif(
    not CRD_DIR.is_dir(),
    reason=f"the reference CRD schemas ({CRD_DIR}) are not present in this checkout; the "
           "manifests are only checked where ../shared/data/crds exists")
def test_rendered_manifests_conform_to_their_crd_schemas(image):
    from tests.harness import crdschema
    out, _ = image
    istio, eg = rendered(out)
    assert crdschema.validate_manifest(istio, crdschema.load_crd(
        CRD_DIR / "istio-wasmplugins.extensions.istio.io.yaml")) == []
    eep_crd = crdschema.load_crd(CRD_DIR / "gateway.envoyproxy.io_envoyextensionpolicies.yaml")
    assert crdschema.validate_manifest(eg, eep_crd) == []
    istio["spec"]["sha256"] = "sha256:" + istio["spec"]["sha256"]
    errors = crdschema.validate_manifest(istio, crdschema.load_crd(
        CRD_DIR / "istio-wasmplugins.extensions.istio.io.yaml"))
    assert any(e.startswith("spec.sha256:") for e in errors), errors


def test_the_script_refuses_what_is_not_a_module(tmp_path):
    bogus = tmp_path / "bogus.wasm"
    bogus.write_bytes(b"#!/bin/sh\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--wasm", str(bogus), "--out",
                           str(tmp_path / "out"), "--repo", REPO, "--tag", TAG],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "wasm magic number" in proc.stderr
    assert not (tmp_path / "out" / "layout").exists()
