"""EventBridge event-pattern matching, for the subset the shipped rule uses
(`envoy/observability/eventbridge-rule.json`), written from the EventBridge User Guide
("Creating event patterns", "Content filtering in event patterns"):

- every field the pattern names must be present in the event, and each must match;
- a nested object in the pattern matches the event's object at that key, recursively;
- a leaf is an array of alternatives; the event's value matches when it equals one of them
  (exact, case-sensitive) or matches one of the filter objects; when the event's value is an
  array, it matches when any of its elements does;
- `{"prefix": "..."}` matches strings that start with the given text.

Any other filter (`anything-but`, `numeric`, `exists`, `suffix`, ...) raises: the subset here is
what the shipped rule is checked with, not a general implementation."""

from __future__ import annotations

import json
from pathlib import Path

RULE = Path(__file__).resolve().parents[2] / "envoy" / "observability" / "eventbridge-rule.json"


def load_rule(path: Path = RULE) -> dict:
    return json.loads(path.read_text())


def envelope(entry: dict, *, account: str = "123456789012", region: str = "us-east-1") -> dict:
    """The event EventBridge routes for one PutEvents entry (Detail parsed into `detail`)."""
    return {"version": "0", "id": "00000000-0000-0000-0000-000000000000",
            "detail-type": entry["DetailType"], "source": entry["Source"], "account": account,
            "time": "2026-01-01T00:00:00Z", "region": region, "resources": [],
            "detail": json.loads(entry["Detail"])}


def _leaf(alternatives: list, value) -> bool:
    values = value if isinstance(value, list) else [value]
    for alt in alternatives:
        if isinstance(alt, dict):
            (kind, arg), = alt.items()
            if kind != "prefix":
                raise NotImplementedError(f"filter {kind!r} is outside the subset checked here")
            if any(isinstance(v, str) and v.startswith(arg) for v in values):
                return True
        elif any(v == alt and type(v) is type(alt) for v in values):
            return True
    return False


def matches(pattern: dict, event: dict) -> bool:
    for key, sub in pattern.items():
        if key not in event:
            return False
        if isinstance(sub, dict):
            if not isinstance(event[key], dict) or not matches(sub, event[key]):
                return False
        elif isinstance(sub, list):
            if not _leaf(sub, event[key]):
                return False
        else:
            raise ValueError(f"pattern value at {key!r} must be an object or an array")
    return True
