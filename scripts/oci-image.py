#!/usr/bin/env python3
"""Build a reproducible OCI image of the module and render the manifests that pin it.

    scripts/oci-image.py --wasm dist/bedrock_guard.wasm --out dist/oci \
        --repo registry.example.com/security/bedrock-guard --tag 0.1.0

writes, from nothing but the module (no network, no container engine):

  OUT/layout/                    an OCI image layout (oci-layout, index.json, blobs/sha256/...)
                                 whose index names the image by the tag (org.opencontainers.image.ref.name)
  OUT/wasmplugin.yaml            envoy/istio/wasmplugin.yaml with url oci://REPO:TAG and sha256
  OUT/envoyextensionpolicy.yaml  envoy/envoy-gateway/envoyextensionpolicy.yaml with url REPO:TAG
                                 and sha256
  OUT/digest                     sha256:<hex> of the image manifest

Format: the *compat* variant of the Wasm image specification (solo-io/wasm spec/spec-compat.md):
one layer of media type application/vnd.oci.image.layer.v1.tar+gzip holding `plugin.wasm` at its
root, the standard OCI config media type, and the manifest annotation
module.wasm.image/variant=compat. Istio and Envoy Gateway both accept it, and both accept the
*oci* artifact variant as well (application/vnd.module.wasm.content.layer.v1+wasm), but the
compat variant is plain OCI: any registry stores it and skopeo/umoci/crane read it. Sources:
  istio/istio pkg/wasm/imagefetcher.go, ImageFetcher.PrepareFetch: "We try to parse it as the
    "compat" variant image with a single "application/vnd.oci.image.layer.v1.tar+gzip" layer"
    (extractOCIStandardImage, which takes the last layer) and extractWasmPluginBinary (const
    wasmPluginFileName = "plugin.wasm", matched on filepath.Base of each tar entry); the artifact
    variant (extractOCIArtifactImage) insists on exactly two layers.
  envoyproxy/gateway internal/wasm/imagefetcher.go: the same three readers (extractDockerImage,
    extractOCIStandardImage, extractOCIArtifactImage) in the same order.

The `sha256` both manifests carry is the digest of the image MANIFEST, not of the module:
  istio/istio pkg/wasm/cache.go, getOrFetch, case "oci": `binaryFetcher, dChecksum, err =
    fetcher.PrepareFetch(...)` where PrepareFetch returns `actualDigest = d.Hex` of img.Digest(),
    then `dChecksum != key.checksum` -> "module downloaded from ... has checksum ..., which does
    not match" (key.checksum is WasmPlugin.spec.sha256). For http(s) URLs it is the module's.
  Envoy Gateway CRD, EnvoyExtensionPolicy spec.wasm[].code.image.sha256: "SHA256 checksum that
    will be used to verify the OCI image. It must match the digest of the OCI image."

Reproducible: the tar entry has mtime 0 (or SOURCE_DATE_EPOCH), uid/gid 0, no user/group names,
mode 0644, USTAR format; gzip has mtime 0, no file name and a fixed level; JSON is written with
sorted keys and no whitespace; the config carries `created` only when SOURCE_DATE_EPOCH is set.
The same module bytes therefore give the same manifest digest on every run and machine (given the
same zlib: the layer's compressed bytes are zlib's).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tarfile
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ISTIO_MANIFEST = REPO_ROOT / "envoy" / "istio" / "wasmplugin.yaml"
EEP_MANIFEST = REPO_ROOT / "envoy" / "envoy-gateway" / "envoyextensionpolicy.yaml"

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
MODULE_NAME = "plugin.wasm"
GZIP_LEVEL = 9


def canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def layer_tar(module: bytes, mtime: int) -> bytes:
    """A USTAR archive with one regular file, plugin.wasm, and fixed metadata."""
    info = tarfile.TarInfo(MODULE_NAME)
    info.size = len(module)
    info.mtime = mtime
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(module))
    return out.getvalue()


def build_layout(module: bytes, layout: Path, tag: str, epoch: int | None) -> str:
    """Write the OCI image layout for `module` under `layout` (replaced); return the manifest
    digest (sha256:<hex>)."""
    if module[:4] != b"\0asm":
        raise SystemExit("oci-image: the module does not start with the wasm magic number \\0asm")
    tar = layer_tar(module, epoch or 0)
    # mtime=0 and no file name in the gzip header; filename="" keeps the name out.
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=buf,
                       mtime=0) as gz:
        gz.write(tar)
    layer = buf.getvalue()

    config_doc = {
        # GOOS=wasip1 GOARCH=wasm, as Go and the OCI wasm conventions name the target.
        "architecture": "wasm",
        "os": "wasip1",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha256_hex(tar)]},
    }
    if epoch is not None:
        config_doc["created"] = datetime.fromtimestamp(epoch, timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
    config = canonical_json(config_doc)

    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": "sha256:" + sha256_hex(config),
                   "size": len(config)},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": "sha256:" + sha256_hex(layer),
                    "size": len(layer)}],
        "annotations": {"module.wasm.image/variant": "compat"},
    })
    digest = "sha256:" + sha256_hex(manifest)

    index = canonical_json({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": MANIFEST_MEDIA_TYPE, "digest": digest, "size": len(manifest),
                       "annotations": {"org.opencontainers.image.ref.name": tag}}],
    })

    if layout.exists():
        shutil.rmtree(layout)
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for blob in (layer, config, manifest):
        (blobs / sha256_hex(blob)).write_bytes(blob)
    (layout / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    (layout / "index.json").write_bytes(index)
    return digest


def _replace_line(text: str, pattern: str, replacement: str, source: Path) -> str:
    """Replace the one line matching `pattern` (a regex for the whole line) by `replacement`
    lines; the manifest's layout is checked rather than assumed."""
    lines = text.split("\n")
    hits = [i for i, line in enumerate(lines) if re.fullmatch(pattern, line)]
    if len(hits) != 1:
        raise SystemExit(f"oci-image: {source}: expected one line matching {pattern!r}, "
                         f"found {len(hits)}")
    (i,) = hits
    return "\n".join(lines[:i] + replacement.split("\n") + lines[i + 1:])


def render_istio(reference: str, hex_digest: str, source: Path = ISTIO_MANIFEST) -> str:
    """The shipped WasmPlugin with url oci://REFERENCE and sha256 (the manifest digest)."""
    return _replace_line(source.read_text(), r"  url: oci://\S+",
                         f"  url: oci://{reference}\n  sha256: {hex_digest}", source)


def render_envoy_gateway(reference: str, hex_digest: str, source: Path = EEP_MANIFEST) -> str:
    """The shipped EnvoyExtensionPolicy with code.image url REFERENCE and sha256."""
    return _replace_line(source.read_text(), r"        url: \S+",
                         f"        url: {reference}\n        sha256: {hex_digest}", source)


def source_date_epoch() -> int | None:
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    if value == "":
        return None
    if not value.isdigit():
        raise SystemExit(f"oci-image: SOURCE_DATE_EPOCH must be a number of seconds, got {value!r}")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wasm", type=Path, required=True, help="the module (dist/bedrock_guard.wasm)")
    parser.add_argument("--out", type=Path, required=True, help="output directory (dist/oci)")
    parser.add_argument("--repo", required=True,
                        help="registry/repository the image is pushed to, for the manifests")
    parser.add_argument("--tag", required=True, help="the image tag")
    args = parser.parse_args(argv)

    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", args.tag):
        raise SystemExit(f"oci-image: --tag {args.tag!r} is not a valid OCI tag")
    if not re.fullmatch(r"[a-z0-9.:-]+(/[a-z0-9._-]+)+", args.repo):
        raise SystemExit(f"oci-image: --repo {args.repo!r} is not registry/repository "
                         "(lower case, no tag)")
    try:
        module = args.wasm.read_bytes()
    except OSError as err:
        raise SystemExit(f"oci-image: cannot read the module {args.wasm}: {err.strerror} "
                         "(run `make build`)") from None

    args.out.mkdir(parents=True, exist_ok=True)
    digest = build_layout(module, args.out / "layout", args.tag, source_date_epoch())
    hex_digest = digest.removeprefix("sha256:")
    reference = f"{args.repo}:{args.tag}"
    (args.out / "wasmplugin.yaml").write_text(render_istio(reference, hex_digest))
    (args.out / "envoyextensionpolicy.yaml").write_text(render_envoy_gateway(reference, hex_digest))
    (args.out / "digest").write_text(digest + "\n")
    print(f"{args.out / 'layout'}:{args.tag} {digest} (module sha256:{sha256_hex(module)}, "
          f"{len(module)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
