"""Decoding a trace record's payload (docs/formats.md, "Trace records"): canonical JSON of
exactly the record's schema, checked member by member (`decode_payload`), the record a
parent link names in a log or export (`parent_record`: by version), and the rule a
resolution record keeps with the escalation it answers (`check_resolution`). The record, its
parts and its encoding are in `troth.trace.record`.
"""

from __future__ import annotations

import functools
import heapq
import json
from collections.abc import Callable, Iterable
from typing import Any, Final, NamedTuple

from troth import limits
from troth.errors import DecodeError, DecodeProblem, TraceError, TraceFailure
from troth.identity import Identifier
from troth.trace.record import (
    _KINDS,
    _MAX_INT,
    RECORD_TYPE,
    REDACTABLE,
    VERSIONS,
    Authority,
    Decision,
    Kind,
    Links,
    SpanTimes,
    ToolCall,
    TraceRecord,
)
from troth.trace.record_text import _HEX32, _HEX64, _hex

__all__ = [
    "Escalation",
    "Holders",
    "Holding",
    "check_resolution",
    "decode_payload",
    "id_holders",
    "parent_record",
]

_REQUIRED: Final = frozenset({"type", "version", "id", "agent", "key", "seq", "prev", "time"})
_MEMBERS: Final = _REQUIRED | {
    "kind",
    "tool",
    "digests",
    "decision",
    "authority",
    "links",
    "escalation",
    "span",
}


def _string(value: Any, what: str) -> str:
    if type(value) is not str:
        raise DecodeError(f"{what}: not a string")
    return value


def _int(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value <= _MAX_INT:
        raise DecodeError(f"{what}: not an integer in [0, 2^53)")
    return value


def _object(value: Any, what: str, allowed: frozenset[str] | set[str]) -> dict[str, Any]:
    if type(value) is not dict:
        raise DecodeError(f"{what}: not an object")
    extra = set(value) - allowed
    if extra:
        raise DecodeError(f"{what}: unknown member {sorted(extra)[0]!r}")
    return value


def _opt_text(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if type(value) is not str:
        raise DecodeError(f"{what}: not a string")
    return value


def _parts(value: dict[str, Any]) -> dict[str, Any]:
    """The optional members of a payload, decoded (ValueError from the part constructors)."""
    parts: dict[str, Any] = {}
    if "tool" in value:
        tool = _object(value["tool"], "tool", {"name", "call", "server"})
        parts["tool"] = ToolCall(
            _opt_text(tool.get("name"), "tool name") or "",
            _opt_text(tool.get("call"), "call"),
            _opt_text(tool.get("server"), "tool server"),  # version 3 (review 53l, tools 1)
        )
    if "digests" in value:
        digests = _object(value["digests"], "digests", set(REDACTABLE))
        if not digests:
            raise DecodeError("digests: empty")
        parts["digests"] = {k: _hex(v, f"digest {k}", _HEX64) for k, v in digests.items()}
    if "decision" in value:
        decision = _object(value["decision"], "decision", {"outcome", "bundle", "policies"})
        policies = decision.get("policies", [])
        if type(policies) is not list or ("policies" in decision and not policies):
            raise DecodeError("decision policies: not a non-empty list")
        parts["decision"] = Decision(
            _opt_text(decision.get("outcome"), "outcome") or "",
            _opt_text(decision.get("bundle"), "bundle"),
            tuple(_opt_text(p, "policy id") or "" for p in policies),
        )
    if "authority" in value:
        authority = _object(value["authority"], "authority", {"chain", "credentials", "at"})
        credentials = authority.get("credentials")
        if type(credentials) is not list:
            raise DecodeError("authority credentials: not a list")
        named = []
        for entry in credentials:
            entry = _object(entry, "credential", {"id", "hash"})
            named.append(
                (
                    _hex(entry.get("id"), "credential id", _HEX32),
                    _hex(entry.get("hash"), "credential hash", _HEX64),
                )
            )
        parts["authority"] = Authority(
            _hex(authority.get("chain"), "chain digest", _HEX64),
            tuple(named),
            _opt_text(authority.get("at"), "chain location") or "",
        )
    if "links" in value:
        links = _object(
            value["links"],
            "links",
            {
                "parent",
                "parent_agent",
                "parent_hash",
                "trace",
                "span",
                "parent_span",
                "conversation",
            },
        )
        if not links:
            raise DecodeError("links: empty")
        texts = {
            k: _opt_text(v, f"link {k}")
            for k, v in links.items()
            if k not in ("parent_agent", "parent_hash")
        }
        parts["links"] = Links(
            texts.get("parent"),
            texts.get("trace"),
            texts.get("span"),
            texts.get("parent_span"),
            texts.get("conversation"),
            None
            if "parent_agent" not in links
            else _identifier(links["parent_agent"], "link parent_agent"),
            None  # version 3: a resolution's (review 53i, resolutions 1)
            if "parent_hash" not in links
            else _hex(links["parent_hash"], "link parent_hash", _HEX64),
        )
    if "escalation" in value:
        escalation = _object(value["escalation"], "escalation", {"to"})
        parts["escalation_to"] = _identifier(escalation.get("to"), "escalation to")
    if "span" in value:
        span = _object(value["span"], "span", {"start_us", "end_us", "status"})
        parts["span"] = SpanTimes(
            _int(span.get("start_us"), "span start"),
            _int(span.get("end_us"), "span end"),
            _opt_text(span.get("status"), "span status"),
        )
    return parts


def _identifier(value: Any, what: str) -> Identifier:
    if type(value) is str and value.startswith("T"):  # the text form only: one spelling
        try:
            return _parse_identifier(value)
        except ValueError:
            pass
    raise DecodeError(f"{what}: not an identifier (T + 64 hex)")


@functools.lru_cache(maxsize=4096)  # a log's records name few agents, again and again
def _parse_identifier(text: str) -> Identifier:
    return Identifier.parse(text)


def decode_payload(payload: bytes) -> TraceRecord:
    """Decode and check a record payload: canonical JSON of exactly this schema. Raises only
    DecodeError (problem UNKNOWN_TYPE / UNKNOWN_VERSION / NON_CANONICAL / OVER_LIMIT / ...)."""
    if len(payload) > limits.MAX_TRACE_PAYLOAD_BYTES:
        raise DecodeError(f"record: {len(payload)} bytes", DecodeProblem.OVER_LIMIT)
    try:
        value = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise DecodeError("record: not UTF-8 JSON") from None
    if type(value) is not dict:
        raise DecodeError("record: not an object")
    if value.get("type") != RECORD_TYPE:
        raise DecodeError(f"record: type {value.get('type')!r}", DecodeProblem.UNKNOWN_TYPE)
    version = value.get("version")
    if type(version) is not int or version not in VERSIONS:
        raise DecodeError(
            f"record: version {value.get('version')!r}", DecodeProblem.UNKNOWN_VERSION
        )
    missing = _REQUIRED - set(value)
    if missing or "kind" not in value:
        raise DecodeError(f"record: missing {sorted(missing | ({'kind'} - set(value)))[0]!r}")
    _object(value, "record", _MEMBERS)
    kind = _KINDS.get(value["kind"]) if type(value["kind"]) is str else None
    if kind is None:
        raise DecodeError(f"record: unknown kind {value['kind']!r}")
    prev = value["prev"]
    try:
        record = TraceRecord(
            id=_string(value["id"], "id"),  # the constructor checks ids and keys are hex
            agent=_identifier(value["agent"], "agent"),
            key=_string(value["key"], "key"),
            seq=_int(value["seq"], "seq"),
            prev=None if prev is None else _hex(prev, "prev", _HEX64),
            time=_int(value["time"], "time"),
            kind=kind,
            **_parts(value),
            version=version,  # a version 1 record naming a parent agent is refused
        )
    except ValueError as exc:
        raise DecodeError(f"record: {exc}") from None
    try:
        canonical = record.encode()
    except (UnicodeEncodeError, ValueError):
        raise DecodeError("record: a string is not valid Unicode") from None
    # the record's own encoding, not the parsed object's: an optional member given as null
    # decoded to the record without it, a second payload and leaf for one record (review 62a,
    # trace 1); also refuses duplicate members, which json.loads merges
    if canonical != payload:
        raise DecodeError("record: not in canonical form", DecodeProblem.NON_CANONICAL)
    return record


Escalation = tuple[TraceRecord, bytes]
"""An escalation record and its record hash (SHA-256 of its payload)."""


def check_resolution(resolution: TraceRecord, escalation: Escalation | None) -> None:
    """Raise TraceError(LINK_INVALID) unless `resolution` resolves `escalation` (its parent
    record and that record's hash, None when it is not in the log): an escalation, signed by
    another identity than the agent that escalated (a decision it asked for is not its own:
    docs/formats.md, "Decision traces"), and, when that escalation named whom it asked, by
    that identity; a resolution naming its escalation's hash (version 3), of that record's
    bytes (review 53i, resolutions 1: one signed under the id in another log, with another
    question, took the answer)."""
    if resolution.links.parent is None:
        raise TraceError(
            TraceFailure.LINK_INVALID, "a resolution names its escalation", record=resolution.id
        )
    if escalation is None or escalation[0].kind is not Kind.ESCALATION:
        raise TraceError(
            TraceFailure.LINK_INVALID,
            f"parent {resolution.links.parent} is not an escalation in the log",
            record=resolution.id,
        )
    asked, asked_hash = escalation
    named = resolution.links.parent_hash
    if named is not None and named != asked_hash:
        raise TraceError(
            TraceFailure.LINK_INVALID,
            f"parent {resolution.links.parent} is another record than the escalation resolved "
            f"(its hash is not {named.hex()})",
            record=resolution.id,
        )
    if resolution.agent == asked.agent:  # review 49j, resolutions 1: not a human's
        raise TraceError(
            TraceFailure.LINK_INVALID,
            f"{resolution.agent} resolved its own escalation",
            record=resolution.id,
        )
    if asked.escalation_to is not None and asked.escalation_to != resolution.agent:
        raise TraceError(
            TraceFailure.LINK_INVALID,
            f"escalated to {asked.escalation_to}, resolved by {resolution.agent}",
            record=resolution.id,
        )


class Holding(NamedTuple):
    """The records under one id in a log or export, as a version 1 link by one signer sees
    them (`parent_record`'s `holders`)."""

    own: int | None
    """The index of the signer's record under the id (ids are per agent: at most one); None:
    the signer has none."""
    first: tuple[int, Identifier] | None
    """(index, agent) of the earliest record under the id; None: no record has it."""
    second: tuple[int, Identifier] | None
    """(index, agent) of the earliest record under it of an agent other than `first`'s."""


Holders = Callable[[Identifier, str], Holding]
"""`parent_record`'s `holders`: (signer, record id) to the `Holding` of the id."""


def parent_record(
    record: TraceRecord, holders: Holders, *, index: int
) -> tuple[Identifier, str] | None:
    """The record (agent, id) that `record`'s parent link names in a log or export, where
    `record` is at log index `index`; None: it has no parent link. `holders(agent, id)`:
    where the records under the id are there (`Holding`).

    Version 2: `Links.parent_of` (`parent_agent`, else the record's own agent; `holders` is
    not asked). Version 1 (docs/formats.md, "Trace records": the version rule): the link
    names an id alone, so the record is among those before `index` (logs of version 1 held
    an id once: a record under it signed later, now that ids are per agent, cannot change
    which one the link meant, the signer's own no more than another agent's; review 36g,
    trace 1; review 37b, trace 1): the signer's own under it when there is one; else the one
    agent's record under it. When none is before it (a link may point forward): the
    signer's own after it, else the one agent's record under it after. When several agents'
    records are the candidates the link is ambiguous: TraceError LINK_INVALID naming
    `record`, never one of them picked. When no agent has one, (the signer, id): a record
    the log or export does not hold, as a version 2 link to a record outside it. O(1) given
    the `Holding`."""
    parent = record.links.parent_of(record.agent)
    if parent is None or not record.parent_by_id:
        return parent
    held = holders(record.agent, parent[1])
    if held.first is None:  # no record under the id: one outside the log or export
        return parent
    if held.own is not None and (held.own < index or held.first[0] >= index):
        return parent  # the signer's own before it; or, none before it, the signer's after
    (at, agent), second = held.first, held.second
    if second is not None and second[0] < index:  # two agents' records before it
        where = "before it"
    elif at < index or second is None:  # the one before it, else the one in all
        return (agent, parent[1])
    else:  # none before it, several after
        where = "after it, none before"
    raise TraceError(
        TraceFailure.LINK_INVALID,
        f"version 1 link to {parent[1]} is ambiguous: several agents have a record under "
        f"that id {where}",
        record=record.id,
    )


def _at(held: tuple[int, Identifier]) -> int:
    return held[0]


def id_holders(
    named: Iterable[tuple[Identifier, str, int]], linking: Iterable[TraceRecord]
) -> Holders:
    """`parent_record`'s `holders` over the (agent, record id, index) triples `named` (a
    log's or an export's records), for the version 1 links of `linking`: `named` is read
    once, and only when one of them has such a link. O(len(named)) in all."""
    wanted = {record.links.parent for record in linking if record.parent_by_id}
    held: dict[str, dict[Identifier, int]] = {}
    if wanted:
        for agent, record_id, index in named:
            if record_id in wanted:
                agents = held.setdefault(record_id, {})
                if index < agents.get(agent, index + 1):  # its first (ids are per agent)
                    agents[agent] = index
    earliest = {
        record_id: heapq.nsmallest(2, ((at, agent) for agent, at in agents.items()), key=_at)
        for record_id, agents in held.items()
    }

    def holding(signer: Identifier, record_id: str) -> Holding:
        first = earliest.get(record_id, [])
        return Holding(
            held.get(record_id, {}).get(signer),
            first[0] if first else None,
            first[1] if len(first) > 1 else None,
        )

    return holding
