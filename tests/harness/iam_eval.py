"""A small IAM policy evaluator for the subset `bedrock-guard iam` writes (docs/iam.md).

It covers: `Effect` Allow/Deny (an explicit Deny wins, nothing matching is an implicit deny),
`Action` with `*`/`?` wildcards (case-insensitive), `Resource` ARN patterns, `Principal: "*"`,
and the condition operators `StringEquals`, `StringNotEquals`, `ArnLike` and `Null` (keys are
case-insensitive, values case-sensitive; operators in a block, and keys under an operator, are
ANDed; the values of one key are ORed). Anything else is refused with `Unsupported`, so a
generator change that needs more cannot be evaluated silently wrong.

Wildcard rules implemented (IAM User Guide, "IAM JSON policy elements: Resource" and
"Condition operators", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html):

* an ARN is split at its first five colons into six segments (partition, service, region,
  account, and the resource, which keeps its own colons: `foundation-model/x-v1:0`);
* in `Resource`, `*` matches any run of characters and `?` one character within a segment; a `*`
  that ends a segment may expand across the colon boundary; in the resource segment `*` and `?`
  also match `/` and `:`. No wildcard in the service segment (refused);
* `ArnLike` checks each of the six segments separately (no expansion across colons);
* matching of resources and ARN conditions is case-sensitive; of actions, not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class Unsupported(ValueError):
    """The policy uses something this evaluator does not implement."""


def _segments(arn: str) -> list[str] | None:
    parts = arn.split(":", 5)
    return parts if len(parts) == 6 and parts[0] == "arn" else None


def _wild(pattern: str, any_char: str, expand_last: bool) -> str:
    out = []
    for i, c in enumerate(pattern):
        if c == "*":
            out.append(".*" if expand_last and i == len(pattern) - 1 else f"{any_char}*")
        elif c == "?":
            out.append(any_char)
        else:
            out.append(re.escape(c))
    return "".join(out)


def _arn_regex(pattern: str, expand: bool) -> re.Pattern:
    segs = _segments(pattern)
    if segs is None:
        raise Unsupported(f"not an ARN pattern: {pattern!r}")
    if "*" in segs[2] or "?" in segs[2]:
        raise Unsupported(f"wildcard in the service segment of {pattern!r} (IAM refuses it)")
    parts = [_wild(s, "[^:]", expand) for s in segs[:5]]
    parts.append(_wild(segs[5], ".", False))
    return re.compile(":".join(parts), re.DOTALL)


def resource_matches(pattern: str, arn: str) -> bool:
    """Does `Resource` pattern `pattern` match `arn`?"""
    if pattern == "*":
        return True
    if _segments(arn) is None:
        return False
    return _arn_regex(pattern, expand=True).fullmatch(arn) is not None


def arn_like(pattern: str, arn: str) -> bool:
    """`ArnLike`: each of the six segments checked separately."""
    if _segments(arn) is None:
        return False
    return _arn_regex(pattern, expand=False).fullmatch(arn) is not None


def action_matches(pattern: str, action: str) -> bool:
    regex = _wild(pattern, ".", False)
    return re.fullmatch(regex, action, re.IGNORECASE | re.DOTALL) is not None


def _as_list(v) -> list:
    return v if isinstance(v, list) else [v]


def _lookup(context: dict, key: str):
    for k, v in context.items():
        if k.lower() == key.lower():
            return v
    return None


def condition_holds(condition: dict, context: dict) -> bool:
    for operator, keys in condition.items():
        for key, values in keys.items():
            value = _lookup(context, key)
            wanted = [str(v) for v in _as_list(values)]
            if operator == "StringEquals":
                ok = value is not None and value in wanted
            elif operator == "StringNotEquals":
                ok = value is None or value not in wanted
            elif operator == "ArnLike":
                ok = value is not None and any(arn_like(p, value) for p in wanted)
            elif operator == "Null":
                if wanted not in (["true"], ["false"]):
                    raise Unsupported(f"Null takes true or false, not {values!r}")
                ok = (value is None) == (wanted == ["true"])
            else:
                raise Unsupported(f"condition operator {operator}")
            if not ok:
                return False
    return True


@dataclass
class Request:
    action: str
    resource: str
    context: dict = field(default_factory=dict)


def _statement_applies(stmt: dict, req: Request) -> bool:
    for element in ("NotAction", "NotResource", "NotPrincipal"):
        if element in stmt:
            raise Unsupported(element)
    principal = stmt.get("Principal", "*")
    if principal != "*":
        raise Unsupported(f"Principal {principal!r}")
    if not any(action_matches(a, req.action) for a in _as_list(stmt["Action"])):
        return False
    if not any(resource_matches(r, req.resource) for r in _as_list(stmt["Resource"])):
        return False
    return condition_holds(stmt.get("Condition", {}), req.context)


def evaluate(policy: dict, req: Request) -> str:
    """`Deny` (an explicit deny applies), `Allow`, or `ImplicitDeny`."""
    allowed = False
    for stmt in _as_list(policy["Statement"]):
        if stmt["Effect"] not in ("Allow", "Deny"):
            raise Unsupported(f"Effect {stmt['Effect']!r}")
        if _statement_applies(stmt, req):
            if stmt["Effect"] == "Deny":
                return "Deny"
            allowed = True
    return "Allow" if allowed else "ImplicitDeny"


def authorized(policies: dict, requests: list[Request]) -> bool:
    """Every authorisation of a call passes: the identity policy and the VPC endpoint policy
    allow it, and the service control policy (when given; Deny statements only, beside AWS's
    FullAWSAccess) does not deny it."""
    for req in requests:
        if evaluate(policies["identity_policy"], req) != "Allow":
            return False
        if evaluate(policies["vpc_endpoint_policy"], req) != "Allow":
            return False
        scp = policies.get("service_control_policy")
        if scp is not None and evaluate(scp, req) == "Deny":
            return False
    return True
