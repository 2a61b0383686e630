"""Caveats: the Cedar conditions delegation links carry (docs/policy.md, "Caveats").

A caveat is the condition of `forbid(principal, action, resource) unless { <caveat> };`: a
request passes only where every caveat of the presented chain holds, so a caveat can only take
authority away. The wrapped text must parse to exactly one static `forbid` with exactly one
`unless` condition, an unconstrained scope and no annotations; anything else is refused (the
naive wrap lets `true }; permit(principal, action, resource); forbid(...) unless { true`
inject a permit). Caveats are not validated against a schema: a caveat naming an argument the
tool lacks errors at evaluation, and a decision with an error is a denial.

Outside a policy bundle (`troth.Verifier.verify` with a context: docs/policy.md, "Caveats
outside a bundle") a chain's caveats are evaluated alone: the same forbids beside one
`permit(principal, action, resource)`, on the chain's entities, with no schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

import cedarpy

from troth import limits
from troth.credentials import VerifiedCredential
from troth.errors import PolicyError, PolicyFailure
from troth.gates.cedar_call import EVALUATION_ERROR, authorize
from troth.gates.entities import agent_uid, credential_entities
from troth.gates.nesting import cedar_refusal, json_objects
from troth.kinds import check_kind

__all__ = [
    "CAVEAT_ID_PREFIX",
    "VERIFY_ACTION",
    "CaveatFailure",
    "caveat_fragment",
    "check_caveat",
    "evaluate_caveats",
]

CAVEAT_ID_PREFIX: Final = "caveat:"
"""The `@id` of caveat `n` of link `i` is `caveat:<i>:<n>`; bundle policies may not use it."""
_ALL: Final = {"op": "All"}


def _refuse(detail: str) -> PolicyError:
    return PolicyError(PolicyFailure.CAVEAT_INVALID, detail)


def _wrap(condition: str) -> str:
    # newlines around the condition: a trailing `// comment` in it cannot swallow the `};`
    return f"forbid(principal, action, resource) unless {{\n{condition}\n}};"


def check_caveat(condition: str) -> str:
    """The forbid policy enforcing `condition`, or PolicyError(CAVEAT_INVALID) saying why (an
    ArgumentError for anything but text: review 54n, api 13; an isinstance test only, for a
    chain's caveats are checked here at every evaluation)."""
    return _checked(condition)[0]


def _checked(condition: str) -> tuple[str, int]:
    """`check_caveat`'s policy and the `like` work of the condition (`_like_weight`), which
    alone may not be over MAX_CAVEAT_LIKE_WEIGHT."""
    check_kind("check_caveat", "condition", condition, str, "a Cedar condition (a str)")
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
    weight = _like_weight(conditions)
    if weight > limits.MAX_CAVEAT_LIKE_WEIGHT:
        raise _refuse(_LIKE_REFUSAL.format(what="a caveat's", weight=weight))
    return policy, weight


_LIKE_REFUSAL: Final = (
    "{what} `like` patterns are too costly to match ({weight} > MAX_CAVEAT_LIKE_WEIGHT, "
    f"{limits.MAX_CAVEAT_LIKE_WEIGHT}: each pattern counts one and each character after its "
    "first `*` one; Cedar tries that text again at every character of the string)"
)


def _like_weight(conditions: Any) -> int:
    """The `like` work of a policy's conditions (their JSON form): each pattern counts one and
    each literal character after its first wildcard one. Cedar tries the text after a `*` at
    every position of the string matched, so a pattern costs about the string's length times
    this (review 55f, caveats 1: `"*" + 1,000 characters` against a 1 MiB argument took
    seconds; text before the first `*` is matched once)."""
    weight = 0
    for node in json_objects(conditions):
        like = node.get("like")
        if isinstance(like, dict) and isinstance(like.get("pattern"), list):
            starred = False
            weight += 1
            for element in like["pattern"]:
                if element == "Wildcard":
                    starred = True
                elif starred and isinstance(element, dict):
                    literal = element.get("Literal")
                    weight += len(literal) if isinstance(literal, str) else 0
    return weight


def caveat_fragment(links: list[tuple[int, tuple[str, ...]]]) -> tuple[str, tuple[str, ...]]:
    """The forbid policies for the caveats of each (link index, caveats), as one Cedar text,
    and their ids in order (`caveat:<link>:<n>`). Raises PolicyError for a caveat that is not
    a single condition, or caveats whose `like` patterns together are over
    MAX_CAVEAT_LIKE_WEIGHT (review 55f, caveats 1) or whose text is over
    MAX_CHAIN_CAVEAT_TEXT (caveats 2)."""
    texts: list[str] = []
    ids: list[str] = []
    weight = 0
    for index, caveats in links:
        for n, condition in enumerate(caveats):
            ids.append(f"{CAVEAT_ID_PREFIX}{index}:{n}")
            policy, more = _checked(condition)
            texts.append(f'@id("{ids[-1]}")\n{policy}')
            weight += more
    if weight > limits.MAX_CAVEAT_LIKE_WEIGHT:
        raise _refuse(_LIKE_REFUSAL.format(what="the chain's caveats'", weight=weight))
    text = sum(len(condition) for _, caveats in links for condition in caveats)
    if text > limits.MAX_CHAIN_CAVEAT_TEXT:  # evaluated at every call (review 55f, caveats 2)
        raise _refuse(
            f"the chain's caveats hold {text} characters, more than MAX_CHAIN_CAVEAT_TEXT "
            f"({limits.MAX_CHAIN_CAVEAT_TEXT}): each is evaluated at every request"
        )
    return "\n".join(texts), tuple(ids)


VERIFY_ACTION: Final = 'Action::"verify"'
"""The action of the request a chain's caveats are evaluated for outside a bundle."""
_PERMIT: Final = '@id("verify")\npermit(principal, action, resource);\n'


@dataclass(frozen=True, slots=True)
class CaveatFailure:
    """Why a chain's caveats did not all hold: `ids` (`caveat:<link>:<n>`, in chain order) are
    false (`evaluated` True) or could not be evaluated (`evaluated` False); `detail` says why
    in a fixed text (never the context's values)."""

    ids: tuple[str, ...]
    evaluated: bool
    detail: str

    @property
    def link(self) -> int:
        """The link of the first caveat named."""
        return int(self.ids[0].split(":")[1])


def _order(ids: set[str], every: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(i for i in every if i in ids)


def evaluate_caveats(credential: VerifiedCredential, context: str) -> CaveatFailure | None:
    """None when every caveat of the verified `credential` holds for the request: principal
    its actor, action `VERIFY_ACTION`, resource `Credential::"<last link's hash, hex>"`,
    context `context` (a JSON object's text); else which do not and why. The same forbids
    (`caveat_fragment`) and entities (`credential_entities`) a bundle's decisions use, beside
    one permit; Cedar's answer is read as the engine reads it: anything but Allow with zero
    errors is a refusal (research §1.6)."""
    links = [(link.index, link.caveats) for link in credential.links]
    for index, caveats in links:  # name the caveat that is no condition (caveat_fragment: none)
        for n, condition in enumerate(caveats):
            try:
                check_caveat(condition)
            except PolicyError as exc:
                ids = (f"{CAVEAT_ID_PREFIX}{index}:{n}",)
                return CaveatFailure(ids, False, f"not a Cedar condition: {exc.detail}")
    try:
        fragment, every = caveat_fragment(links)
    except PolicyError as exc:  # together too costly to evaluate (review 55f, caveats 1-2)
        named = tuple(
            f"{CAVEAT_ID_PREFIX}{i}:{n}" for i, caveats in links for n in range(len(caveats))
        )
        return CaveatFailure(named, False, exc.detail)
    if not every:
        return None
    try:
        policies = cedarpy.PolicySet.from_str(_PERMIT + fragment)
        entities = cedarpy.Entities.from_json_str(credential_entities(credential), None)
    except ValueError:  # each caveat parsed alone; troth builds the entities: not expected
        return CaveatFailure(every, False, "Cedar could not read the chain's caveats")
    request = {
        "principal": agent_uid(credential.actor),
        "action": VERIFY_ACTION,
        "resource": f'Credential::"{credential.links[-1].hash.hex()}"',
        "context": context,
    }
    answer = authorize(request, policies, entities, None)
    names = {f"policy{k + 1}": caveat for k, caveat in enumerate(every)}  # policy0: the permit
    false = {names[p] for p in answer.reasons if p in names}
    if answer.decision == "Deny" and false:
        return CaveatFailure(_order(false, every), True, "false for this context")
    failing: set[str] = set()
    for text in answer.errors:
        match = EVALUATION_ERROR.match(text)
        if match is None:  # the request could not be built: Cedar takes no such context
            return CaveatFailure(every, False, "the context is not a Cedar record")
        failing.add(names.get(match[1], every[0]))
    if failing:
        return CaveatFailure(_order(failing, every), False, "an error for this context")
    if not answer.allowed:  # no forbid, no error, no Allow: not expected
        return CaveatFailure(every, False, "Cedar did not decide")
    return None
