"""Check a Kubernetes manifest against a CustomResourceDefinition's OpenAPI v3 schema, offline.

A structural subset of what the API server checks (written here because `jsonschema` is not a
project dependency): `type`, `properties` (unknown fields are errors unless the schema says
`x-kubernetes-preserve-unknown-fields` or gives `additionalProperties`), `required`, `enum`,
`pattern`, `minLength`/`maxLength`, `minimum`/`maximum`, `items`, `minItems`/`maxItems`,
`maxProperties`, `allOf`, `nullable`. CEL rules (`x-kubernetes-validations`) are not evaluated;
tests check the few that matter for our manifests by hand.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

_TYPES = {
    "object": dict, "array": list, "string": str, "boolean": bool,
    "integer": int, "number": (int, float),
}


def load_crd(path: Path) -> dict:
    docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    (crd,) = [d for d in docs if d.get("kind") == "CustomResourceDefinition"]
    return crd


def schema_for(crd: dict, api_version: str, kind: str) -> dict:
    group, _, version = api_version.partition("/")
    spec = crd["spec"]
    if spec["group"] != group or spec["names"]["kind"] != kind:
        raise ValueError(f"CRD is for {spec['group']}/{spec['names']['kind']}, not "
                         f"{group}/{kind}")
    for v in spec["versions"]:
        if v["name"] == version:
            if not v.get("served"):
                raise ValueError(f"{api_version} is not served")
            return v["schema"]["openAPIV3Schema"]
    raise ValueError(f"{api_version} is not a version of this CRD")


def validate(value: Any, schema: dict, path: str = "") -> list[str]:
    """Errors (with field paths) of `value` against `schema`; empty when it conforms."""
    errs: list[str] = []
    at = path or "<root>"
    if value is None:
        if not schema.get("nullable"):
            errs.append(f"{at}: null is not allowed")
        return errs
    for sub in schema.get("allOf", []):
        errs += validate(value, sub, path)
    kind = schema.get("type")
    if kind:
        expected = _TYPES[kind]
        ok = isinstance(value, expected) and not (kind in ("integer", "number")
                                                  and isinstance(value, bool))
        if not ok:
            return errs + [f"{at}: expected {kind}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{at}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errs.append(f"{at}: {value!r} does not match {schema['pattern']!r}")
        if len(value) < schema.get("minLength", 0):
            errs.append(f"{at}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errs.append(f"{at}: longer than {schema['maxLength']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errs.append(f"{at}: below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errs.append(f"{at}: above {schema['maximum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errs.append(f"{at}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errs.append(f"{at}: more than {schema['maxItems']} items")
        for i, item in enumerate(value):
            errs += validate(item, schema.get("items", {}), f"{path}[{i}]")
    if isinstance(value, dict):
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            errs.append(f"{at}: more than {schema['maxProperties']} properties")
        for name in schema.get("required", []):
            if name not in value:
                errs.append(f"{path}.{name}: required" if path else f"{name}: required")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
        for name, item in value.items():
            sub = f"{path}.{name}" if path else name
            if name in props:
                errs += validate(item, props[name], sub)
            elif isinstance(extra, dict):
                errs += validate(item, extra, sub)
            elif not preserve and extra is not True and (props or kind == "object"):
                errs.append(f"{sub}: unknown field")
    return errs


def validate_manifest(manifest: dict, crd: dict) -> list[str]:
    schema = schema_for(crd, manifest["apiVersion"], manifest["kind"])
    body = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind", "metadata")}
    # apiVersion/kind/metadata are checked by the API server itself, not by the CRD schema.
    schema = dict(schema, properties={k: v for k, v in schema.get("properties", {}).items()
                                      if k not in ("apiVersion", "kind", "metadata")})
    errs = validate(body, schema)
    meta = manifest.get("metadata") or {}
    if not meta.get("name"):
        errs.append("metadata.name: required")
    if crd["spec"].get("scope") == "Namespaced" and not meta.get("namespace"):
        errs.append("metadata.namespace: set it explicitly for a namespaced resource")
    return errs
