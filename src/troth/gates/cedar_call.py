"""One Cedar authorization call on pre-parsed handles, its answer read once (docs/policy.md,
"Decisions").

cedarpy's public `is_authorized` calls one native function, `_internal.is_authorized_batch`
(a JSON answer per request), then parses that JSON into an `AuthzResult`, a `Diagnostics` and
a `Decision` enum, which the engine read back field by field: for one request on pre-parsed
handles that wrapper cost about a quarter of the native call, as much as all of troth's own
checks (`troth bench --only gates.decide`). `authorize` calls the same native function and
reads its JSON once (orjson: a third of the standard parser's time on this answer, whose
metrics make it ~400 bytes) into a `CedarAnswer`. Where the installed cedarpy has no such function,
the public wrapper answers instead (`DIRECT` says which); tests hold both ways to the same
answers. An answer of another shape — its diagnostics without their `errors` list included
(review 34f, gates 2) — reads as `NoDecision` with an error (`UNREADABLE`): a request is
allowed only on Allow with zero errors, so it is denied.

`partial_shows` does the same for a preview's partial evaluation (review 55n, preview 2): the
wrapper parsed every answer whole (with the standard parser) into objects, residuals included,
of which a preview reads the decision and whether there are errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import cedarpy
import orjson

__all__ = [
    "DIRECT",
    "EVALUATION_ERROR",
    "UNREADABLE",
    "CedarAnswer",
    "Fields",
    "answer_fields",
    "authorize",
    "partial_shows",
]

_native: Callable[..., list[str]] | None = getattr(
    getattr(cedarpy, "_internal", None), "is_authorized_batch", None
)
_native_partial: Callable[..., str] | None = getattr(
    getattr(cedarpy, "_internal", None), "is_authorized_partial", None
)
DIRECT: Final = callable(_native)
"""Whether `authorize` calls cedarpy's native function itself (else the public wrapper)."""
_DECISIONS: Final = frozenset({"Allow", "Deny", "NoDecision"})
EVALUATION_ERROR: Final = re.compile(r"error while evaluating policy `([^`]*)`")
"""An answer's error text for one policy that could not be evaluated (group 1: its Cedar id);
any other error is the request's (it could not be built: no policy was evaluated)."""


@dataclass(frozen=True, slots=True)
class CedarAnswer:
    """Cedar's answer to one request: its decision (`Allow`, `Deny` or `NoDecision`), the
    ids of the policies that decided it (`reasons`), the evaluation errors' texts, and the
    `@id` annotations of the deciding policies by id."""

    decision: str
    reasons: tuple[str, ...]
    errors: tuple[str, ...]
    annotations: Mapping[str, str]

    @property
    def allowed(self) -> bool:
        """Allow with zero errors: the only answer that allows (research §1.6)."""
        return self.decision == "Allow" and not self.errors


Fields = tuple[str, tuple[str, ...], tuple[str, ...], Mapping[str, str]]
"""A `CedarAnswer`'s fields in its order, as `answer_fields` hands them: a tuple is made in
one step, where the answer's frozen slots took five calls, a tenth of a decision's own work
(review 64g)."""


def authorize(
    request: dict[str, Any],
    policies: cedarpy.PolicySet,
    entities: cedarpy.Entities,
    schema: cedarpy.Schema | None,
) -> CedarAnswer:
    """Cedar's answer to `request` (principal, action, resource as Cedar text or as
    `{"type", "id"}` objects, which cedarpy takes without parsing text: review 61o; context as
    a JSON object's text) on the pre-parsed `policies`, `entities` and `schema` (None: none, the
    context and entities then taken as they are)."""
    return _answer(answer_fields(request, policies, entities, schema))


def answer_fields(
    request: dict[str, Any],
    policies: cedarpy.PolicySet,
    entities: cedarpy.Entities,
    schema: cedarpy.Schema | None,
) -> Fields:
    """`authorize`'s answer as its `Fields` (what a decision reads, at every call)."""
    if _native is not None:
        return _text_fields(_native([request], policies, entities._inner, schema, False)[0])
    result = cedarpy.is_authorized(request, policies, entities, schema)
    diagnostics = result.diagnostics
    return _fields(
        {
            "decision": result.decision.value,
            "diagnostics": {
                "reason": diagnostics.reasons,
                "errors": diagnostics.errors,
                "id_annotations_by_reason": diagnostics.id_annotations_by_reason,
            },
        }
    )


_METRICS: Final = ',"metrics":{'
_KNOWN: dict[str, Fields] = {}
"""The fields of error-free answers read before, by their text up to their `metrics`."""
_KNOWN_KEPT: Final = 64
_KNOWN_TEXT: Final = 1024  # an answer's text before its metrics, at most, to be kept


def _text_fields(text: str) -> Fields:
    """`_fields` of the answer `text`, read once per answer: an answer is its decision and
    diagnostics, then its `metrics` (durations in microseconds, different at nearly every
    call), an object of numbers only. With the metrics so, the fields are those of the text
    before them, so an error-free answer's are kept by that text (review 69g, perf 1: reading
    the same ~400 bytes again, orjson and the shape's checks, was ~5 % of a decision's
    instructions, `gates.decide.1`). The text kept is the whole answer up to its metrics: a
    decision, a reason, an annotation or an error that differs is another key."""
    cut = text.rfind(_METRICS)
    key = text[:cut] if 0 < cut <= _KNOWN_TEXT and _flat_tail(text, cut) else None
    if key is not None:
        found = _KNOWN.get(key)
        if found is not None:
            return found
    fields = _fields(orjson.loads(text))
    if key is not None and fields is not _UNREADABLE and not fields[2]:
        if len(_KNOWN) >= _KNOWN_KEPT:
            _KNOWN.clear()
        _KNOWN[key] = fields
    return fields


def _flat_tail(text: str, cut: int) -> bool:
    """Whether `text` after `cut` is `,"metrics":{` .. `}}` with no object, array or escape
    inside: one flat member of the answer's top level, its last, which no field is read from."""
    body = text[cut + len(_METRICS) : -2]
    return (
        text.endswith("}}")
        and "{" not in body
        and "}" not in body
        and "[" not in body
        and "\\" not in body
    )


def _read(answer: Any) -> CedarAnswer:
    """The answer's fields, checked for their shape (another shape: `UNREADABLE`)."""
    return _answer(_fields(answer))


def _answer(fields: Fields) -> CedarAnswer:
    return UNREADABLE if fields is _UNREADABLE else CedarAnswer(*fields)


def _fields(answer: Any) -> Fields:
    """The answer's fields, checked for their shape (another shape: `UNREADABLE`'s)."""
    if type(answer) is not dict:
        return _UNREADABLE
    decision, diagnostics = answer.get("decision"), answer.get("diagnostics")
    # text first: a list or an object cannot be looked up in _DECISIONS (review 60l, gates 1)
    if type(decision) is not str or decision not in _DECISIONS or type(diagnostics) is not dict:
        return _UNREADABLE
    # the errors are required: an Allow beside an erring forbid or caveat differs from a clean
    # one only by them (review 34f, gates 2: a missing field read as none allowed it)
    reasons, errors = diagnostics.get("reason", _NONE), diagnostics.get("errors")
    annotations = diagnostics.get("id_annotations_by_reason")
    if annotations is None:
        annotations = {}
    if type(reasons) is not list or type(errors) is not list or type(annotations) is not dict:
        return _UNREADABLE
    for text in reasons:  # each list in turn: no tuple of them all is built (review 64g)
        if type(text) is not str:
            return _UNREADABLE
    for text in errors:
        if type(text) is not str:
            return _UNREADABLE
    for text, name in annotations.items():
        if type(text) is not str or type(name) is not str:
            return _UNREADABLE
    return decision, tuple(reasons), tuple(errors), annotations


_NONE: Final[list[str]] = []  # no reasons: only read (its items copied to a tuple)
UNREADABLE: Final = CedarAnswer("NoDecision", (), ("Cedar answered in an unknown shape",), {})
"""What an answer of another shape reads as: no decision, one error (a denial)."""
_UNREADABLE: Final[Fields] = (
    UNREADABLE.decision,
    UNREADABLE.reasons,
    UNREADABLE.errors,
    UNREADABLE.annotations,
)


def partial_shows(
    request: dict[str, str],
    policies: cedarpy.PolicySet,
    entities: cedarpy.Entities,
    schema: cedarpy.Schema,
    context: str | None = None,
) -> bool:
    """Whether Cedar's partial evaluation of `request` (principal, action, resource as Cedar
    text) answers neither Deny nor any error: what shows a tool in a preview. The context is
    unknown, or `context` (JSON text holding unknowns: `preview_sets.preview_context`), which
    is evaluated without the schema: Cedar's request validation refuses an unknown for a typed
    value, and it has nothing else to check (the principal, action and resource are the
    engine's own; the entities were parsed with the schema). An answer of another shape hides
    it (deny when in doubt)."""
    checked: cedarpy.Schema | None = schema
    if context is not None:
        request, checked = {**request, "context": context}, None
    if _native_partial is None:
        partial = cedarpy.is_authorized_partial(request, policies, entities, checked)
        return partial.decision is not cedarpy.Decision.Deny and not partial.diagnostics.errors
    answer = orjson.loads(_native_partial(request, policies, entities._inner, checked, False))
    if type(answer) is not dict:
        return False
    diagnostics = answer.get("diagnostics")
    if answer.get("decision") not in _PARTIAL or type(diagnostics) is not dict:
        return False
    errors = diagnostics.get("errors")
    return type(errors) is list and not errors and answer.get("decision") != "Deny"


_PARTIAL: Final = frozenset({"Allow", "Deny", "NoDecision", None})
"""The decisions a partial evaluation answers (None: none, residuals left)."""
