"""What a GenAI span says, as the content of a record (`span_content`), for
`SigningSpanProcessor` (`troth.trace.otel_processor`; docs/traces.md, "The pieces"): a span's
attribute values are a model's output, so every span can be recorded whatever they hold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from troth import limits
from troth.gates.toolschema import NAME
from troth.trace.otel_names import (
    EXECUTE_TOOL,
    GEN_AI_CONVERSATION_ID,
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_OUTPUT_MESSAGES,
    GEN_AI_TOOL_CALL_ARGUMENTS,
    GEN_AI_TOOL_CALL_ID,
    GEN_AI_TOOL_CALL_RESULT,
    GEN_AI_TOOL_NAME,
    TROTH_BUNDLE_REVISION,
    TROTH_DECISION,
    TROTH_POLICY_IDS,
    TROTH_TOOL_SERVER,
)
from troth.trace.record import (
    Decision,
    Kind,
    Links,
    SpanTimes,
    ToolCall,
    disclosed,
    disclosure_value,
    held_policies,
)
from troth.trace.signing import RecordContent

__all__ = ["NOT_A_SERVER_NAME", "NOT_A_TOOL_NAME", "span_content"]


def _text(value: Any) -> str | None:
    """An attribute value as text; an integer past Python's int-to-text limit (4300 digits) as
    its hexadecimal, alone or in a sequence (review 69q, otel 1: `str` raised ValueError and
    the span was refused; a decimal text of such an integer takes quadratic time)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except ValueError:
        if isinstance(value, int):
            return hex(value)
        return str(tuple(_long(item) for item in value))


def _long(item: Any) -> Any:
    """A sequence's item as `_text` shows it: an integer past the limit as its hexadecimal."""
    if isinstance(item, int) and not isinstance(item, bool):
        try:
            str(item)
        except ValueError:
            return hex(item)
    return item


NOT_A_TOOL_NAME: Final = "(not a tool name)"
"""The tool a record names for a span whose tool name is no record text (as a gate's recorder
names a call of a made-up name); the name itself is in the record's `inputs`."""


def _carried(text: str | None) -> str | None:
    """An id of a span (call, conversation) as a record carries it: itself when it is a record
    text (1-MAX_TRACE_TEXT printable characters), else `sha256:` and the hex digest of its
    UTF-8 (surrogates passed through), so the spans of one conversation still share it."""
    if not text:
        return None
    try:
        Links(conversation=text)
    except ValueError:
        return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return text


NOT_A_SERVER_NAME: Final = "(not a server name)"
"""The server a record names for a span whose `troth.tool.server` is no name the gates take
(toolschema.NAME, as `troth mcp gate --server` and `ToolGate(server=)` check it; the gate's
recorder's placeholder too): the text itself is in the record's `inputs`."""


def _tool_call(name: str, call: str | None, server: str | None) -> tuple[ToolCall, dict[str, str]]:
    """The tool a span is about, and what of it is no name (`tool`, `server`): for `inputs`."""
    made_up: dict[str, str] = {}
    if server is not None and not NAME.fullmatch(server):
        made_up["server"], server = server, NOT_A_SERVER_NAME
    try:
        return ToolCall(name, call, server), made_up
    except ValueError:
        made_up["tool"] = name
        return ToolCall(NOT_A_TOOL_NAME, call, server), made_up


def _policies(value: Any) -> tuple[str, ...]:
    """`troth.policy.ids`: a sequence of ids, or one id (a string is one id, not its
    characters)."""
    if value is None or value == ():
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        return (str(_text(value)),)
    return tuple(str(_text(p)) for p in value)


def _is_text(text: str) -> bool:
    """Whether `text` is a record text (1-MAX_TRACE_TEXT printable characters)."""
    try:
        Decision(text)
    except ValueError:
        return False
    return True


def _decision(outcome: str, attributes: Mapping[str, Any]) -> tuple[Decision, dict[str, Any]]:
    """The span's decision, and what of it the record keeps in `inputs` instead: the outcome
    is the instrumentation's own (one that is no record text refuses the span); of the policy
    ids, those a record holds (`held_policies`, as a gate's recorder keeps them: review 75n,
    payload 2), every id given in `inputs` when some are left out; a revision that is
    no record text in `inputs` alone (review 51g, otel 1: the span was refused)."""
    revision = _text(attributes.get(TROTH_BUNDLE_REVISION))
    policies = _policies(attributes.get(TROTH_POLICY_IDS))
    held = held_policies(policies)
    small = limits.MAX_TRACE_DENIED_DISCLOSURE_BYTES  # the record's values stay within
    # MAX_TRACE_RECORD_DISCLOSURE_BYTES (review 47b, limits 1)
    noted: dict[str, Any] = {}
    if revision is not None and not _is_text(revision):
        noted["bundle"], revision = disclosed(revision, small), None
    if held != policies:
        noted["policies"] = disclosed(list(policies), small)
    return Decision(outcome, revision, held), noted


def _beside(messages: str | None, noted: dict[str, Any]) -> dict[str, Any]:
    """An invoke_agent span's `inputs`: its input messages and what of its decision a record
    keeps in `inputs` (`_decision`), the messages disclosed within the room the rest leaves of
    MAX_TRACE_DISCLOSURE_BYTES (review 57h, otel 2: messages near it, beside the notes, made
    the record refuse the span). A canonical JSON object's bytes are its members' together."""
    rest = len(disclosure_value({"messages": None, **noted})) - len(b"null")
    return {"messages": disclosed(messages, limits.MAX_TRACE_DISCLOSURE_BYTES - rest), **noted}


def _times(span: ReadableSpan) -> SpanTimes | None:
    """The span's times in microseconds: an end before the start (the SDK reads the wall
    clock, which NTP may step back) is taken as the start; times a record cannot hold (before
    1970, past 2^53 microseconds) are left out."""
    if span.start_time is None or span.end_time is None:
        return None
    status = {StatusCode.OK: "ok", StatusCode.ERROR: "error"}.get(span.status.status_code)
    start = span.start_time // 1000
    try:
        return SpanTimes(start, max(start, span.end_time // 1000), status)
    except ValueError:
        return None


def span_content(
    span: ReadableSpan, attributes: Mapping[str, Any], operation: str
) -> RecordContent:
    """What a GenAI span says, as the content of a record. Attribute values are a model's
    output, so every span can be recorded (docs/traces.md): a value a record cannot disclose
    (over MAX_TRACE_DISCLOSURE_BYTES, not I-JSON) is disclosed by its hash and size
    (`disclosed`), a tool name that is no record text is recorded as "(not a tool name)" with
    the name in `inputs`, a server (`troth.tool.server`) that is no name the gates take as
    "(not a server name)" with the text in `inputs` (review 53r, otel 1), and an id that is
    none by its digest (review 30c)."""
    values: dict[str, Any] = {}
    decision_text = _text(attributes.get(TROTH_DECISION))
    if operation == EXECUTE_TOOL:
        name = (
            _text(attributes.get(GEN_AI_TOOL_NAME)) or span.name.removeprefix(EXECUTE_TOOL).strip()
        )
        call = _carried(_text(attributes.get(GEN_AI_TOOL_CALL_ID)))
        server = _text(attributes.get(TROTH_TOOL_SERVER))
        tool, made_up = _tool_call(name, call, server)
        if made_up:
            # small in clear: the record's values stay within
            # MAX_TRACE_RECORD_DISCLOSURE_BYTES (review 47b, limits 1)
            small = limits.MAX_TRACE_DENIED_DISCLOSURE_BYTES
            values["inputs"] = {key: disclosed(text, small) for key, text in made_up.items()}
        kind = Kind.DENIAL if decision_text == "deny" else Kind.TOOL_INVOCATION
        for key, field in (
            (GEN_AI_TOOL_CALL_ARGUMENTS, "args"),
            (GEN_AI_TOOL_CALL_RESULT, "result"),
        ):
            if key in attributes:
                values[field] = disclosed(_text(attributes[key]))
    else:
        tool, kind = None, Kind.MESSAGE
        for key, field in ((GEN_AI_INPUT_MESSAGES, "inputs"), (GEN_AI_OUTPUT_MESSAGES, "result")):
            if key in attributes:
                values[field] = disclosed(_text(attributes[key]))
    decision: Decision | None = None
    noted: dict[str, Any] = {}
    if decision_text is not None:
        decision, noted = _decision(decision_text, attributes)
    if span.dropped_attributes:  # read over what it started with: a value set later and
        # dropped reads as it started (review 57h, otel 3), so the record says how many
        noted["dropped_attributes"] = span.dropped_attributes
    if noted and operation == EXECUTE_TOOL:  # its `inputs` are this dict, if any
        values.setdefault("inputs", {}).update(noted)
    elif noted and GEN_AI_INPUT_MESSAGES in attributes:  # its `inputs` are its messages
        values["inputs"] = _beside(_text(attributes[GEN_AI_INPUT_MESSAGES]), noted)
    elif noted:
        values["inputs"] = noted
    context = span.context
    parent = span.parent
    links = Links(
        trace=None if context is None else f"{context.trace_id:032x}",
        span=None if context is None else f"{context.span_id:016x}",
        parent_span=None if parent is None else f"{parent.span_id:016x}",
        conversation=_carried(_text(attributes.get(GEN_AI_CONVERSATION_ID))),
    )
    return RecordContent(
        kind, tool=tool, values=values, decision=decision, links=links, span=_times(span)
    )
