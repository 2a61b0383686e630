"""Caveats: the Cedar conditions delegation links carry (docs/policy.md, "Caveats").

A caveat is the condition of `forbid(principal, action, resource) unless { <caveat> };`: a
request passes only where every caveat of the presented chain holds, so a caveat can only take
authority away. The wrapped text must parse to exactly one static `forbid` with exactly one
`unless` condition, an unconstrained scope and no annotations; anything else is refused (the
naive wrap lets `true }; permit(principal, action, resource); forbid(...) unless { true`
inject a permit). Caveats are not validated against a schema: a caveat naming an argument the
tool lacks errors at evaluation, and a decision with an error is a denial.
"""

from __future__ import annotations

import json
from typing import Any, Final

import cedarpy

from troth import limits
from troth.errors import PolicyError, PolicyFailure
from troth.gates.nesting import cedar_refusal

__all__ = ["CAVEAT_ID_PREFIX", "caveat_fragment", "check_caveat"]

CAVEAT_ID_PREFIX: Final = "caveat:"
"""The `@id` of caveat `n` of link `i` is `caveat:<i>:<n>`; bundle policies may not use it."""
_ALL: Final = {"op": "All"}


def _refuse(detail: str) -> PolicyError:
    return PolicyError(PolicyFailure.CAVEAT_INVALID, detail)


def _wrap(condition: str) -> str:
    # newlines around the condition: a trailing `// comment` in it cannot swallow the `};`
    return f"forbid(principal, action, resource) unless {{\n{condition}\n}};"


def check_caveat(condition: str) -> str:
    """The forbid policy enforcing `condition`, or PolicyError(CAVEAT_INVALID) saying why."""
    if not condition.strip() or len(condition) > limits.MAX_CAVEAT_TEXT:
        raise _refuse(f"a caveat is 1-{limits.MAX_CAVEAT_TEXT} characters")
    refusal = cedar_refusal(condition)
    if refusal is not None:  # what would kill the process in cedarpy's parser
        raise _refuse(f"a caveat {refusal}")
    policy = _wrap(condition)
    try:
        est: Any = json.loads(cedarpy.policies_to_json_str(policy))
    except ValueError as exc:
        raise _refuse(f"does not parse: {exc}") from None
    except RecursionError:  # its parsed form is deeper than Python reads
        raise _refuse("a caveat nests too deep") from None
    statics = list(est.get("staticPolicies", {}).values())
    if est.get("templates") or len(statics) != 1:
        raise _refuse("a caveat must be a single condition")
    (only,) = statics
    conditions = only.get("conditions", [])
    if (
        only.get("effect") != "forbid"
        or len(conditions) != 1
        or conditions[0].get("kind") != "unless"
        or only.get("annotations")
        or any(only.get(part) != _ALL for part in ("principal", "action", "resource"))
    ):
        raise _refuse("a caveat must be a single condition")
    return policy


def caveat_fragment(links: list[tuple[int, tuple[str, ...]]]) -> tuple[str, tuple[str, ...]]:
    """The forbid policies for the caveats of each (link index, caveats), as one Cedar text,
    and their ids in order (`caveat:<link>:<n>`). Raises PolicyError for a caveat that is not
    a single condition."""
    texts: list[str] = []
    ids: list[str] = []
    for index, caveats in links:
        for n, condition in enumerate(caveats):
            ids.append(f"{CAVEAT_ID_PREFIX}{index}:{n}")
            texts.append(f'@id("{ids[-1]}")\n{check_caveat(condition)}')
    return "\n".join(texts), tuple(ids)
