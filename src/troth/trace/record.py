"""Trace records: the signed payload (docs/formats.md, "Trace records").

The payload is RFC 8785 canonical JSON (an object; every member below, optional ones omitted
when absent):

    type "troth.trace.record", version 2 (3: a resolution naming its escalation's hash, a
    tool record naming its server; 1: read, never written), id (32 hex: 128 bits,
    unique per agent), agent ("T" + 64 hex), key (64 hex: SHA-256 of the signing key's
    attestation = the DSSE keyid), seq (the agent's record number, from 0), prev (64 hex: the
    hash of the agent's previous record, null for seq 0), time (Unix seconds), kind,
    tool {name, call?, server?}, digests {args?, result?, inputs?, reasoning?} (salted, 64 hex),
    decision {outcome, bundle?, policies?}, authority {chain, credentials [{id, hash}], at},
    links {parent?, parent_agent?, parent_hash?, trace?, span?, parent_span?, conversation?}
    (a parent is the record `parent` of agent `parent_agent`, or of the record's own agent
    when that is absent: ids are unique per agent; version 1 has no `parent_agent` and its
    parent is found by id: `TraceRecord.parent_by_id`; `parent_hash`, version 3 only: the
    record hash of a resolution's escalation), escalation {to},
    span {start_us, end_us, status?}

A record's hash is SHA-256 of its payload bytes. Redactable values (tool arguments and result,
the inputs the agent received, the reasoning it stated) are never in the payload: it holds a
salted commitment, and the value travels beside the record as a disclosure that can be deleted
without touching the signed bytes or the log (`commitment`).

The payload is RFC 8785 for this schema's values (ASCII member names, integers below 2^53, no
floats): members sorted, no whitespace, UTF-8, strings escaped by the standard library's JSON
string encoder (RFC 8785 §3.2.2.2 escapes exactly what it escapes). `TraceRecord.encode` writes
it member by member in that order, and a decoded payload must be its record's `encode`, byte
for byte (`troth.trace.record_decode`; review 62a, trace 1: the parsed object's re-encoding
took an optional member given as null); `canonical_json` is the standard encoder configured
so; the tests check both against the `rfc8785` library. Disclosed values, which may hold
anything, go through `rfc8785` itself (strings through the same string encoder).
"""

from __future__ import annotations

import enum
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from troth import limits
from troth.credentials.format import CredentialBody, CredentialChain
from troth.crypto import sha256
from troth.identity import Identifier
from troth.trace.disclosure import (
    REDACTABLE,
    Disclosure,
    commitment,
    disclosed,
    disclosure_value,
    encode_disclosures,
    exported_value,
    is_canonical_value,
)
from troth.trace.record_text import _HEX32, _HEX64, _text

__all__ = [
    "HASHED_VERSION",
    "PAYLOAD_TYPE",
    "PROCESS_RECORD_IDS",
    "RECORD_TYPE",
    "REDACTABLE",
    "VERSION",
    "VERSIONS",
    "Authority",
    "Decision",
    "Disclosure",
    "Kind",
    "Links",
    "RecordIds",
    "SpanTimes",
    "ToolCall",
    "TraceRecord",
    "canonical_json",
    "commitment",
    "disclosed",
    "disclosure_value",
    "encode_disclosures",
    "exported_value",
    "is_canonical_value",
    "new_record_id",
    "resolution_id",
    "version_of",
]

PAYLOAD_TYPE: Final = "application/vnd.troth.trace.v1+json"
RECORD_TYPE: Final = "troth.trace.record"
VERSION: Final = 2
"""The record version written (docs/formats.md, "Trace records": the version rule)."""
HASHED_VERSION: Final = 3
"""The version of a resolution that names its escalation's record hash (`links.parent_hash`,
review 53i, resolutions 1) and of a record naming its tool's server (`tool.server`, review
53l, tools 1), and of no other record: version 2 and those members."""


def version_of(tool: ToolCall | None, links: Links) -> int:
    """The version a record with `tool` and `links` is written as (docs/formats.md, "Trace
    records": the version rule): 3 when it names its parent's hash (a resolution) or its
    tool's server, 2 otherwise."""
    if links.parent_hash is None and (tool is None or tool.server is None):
        return VERSION
    return HASHED_VERSION


def resolution_id(escalation_hash: bytes) -> str:
    """The id of a version 3 resolution of the escalation whose record hash is
    `escalation_hash`: 32 hex digits of SHA-256("troth.trace.resolution-id/1" 0x00 || hash),
    so a resolver's second answer to one escalation is refused as a record already in the log
    (ids are unique per agent; docs/formats.md, "Trace records": "Decision traces"; review
    53l, resolutions 1)."""
    return sha256(_RESOLUTION_ID_DOMAIN + escalation_hash)[:16].hex()


_RESOLUTION_ID_DOMAIN: Final = b"troth.trace.resolution-id/1\x00"
VERSIONS: Final = (1, 2, 3)
"""The record versions read: 1 (written before ids were per agent: a parent named by its id
alone, resolved by `troth.trace.record_decode.parent_record`), 2 and 3."""
_MAX_INT: Final = 2**53 - 1
_FORBIDDEN: Final = re.compile("[\x00-\x1f\x7f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")


class Kind(enum.StrEnum):
    """What a record reports."""

    TOOL_INVOCATION = "tool_invocation"
    DECISION = "decision"
    DENIAL = "denial"
    DELEGATION = "delegation"
    REVOCATION = "revocation"
    LEASE = "lease"
    MESSAGE = "message"
    ESCALATION = "escalation"
    RESOLUTION = "resolution"


_KINDS: Final = {kind.value: kind for kind in Kind}
_KIND_TEXT: Final = {kind: kind.value for kind in Kind}  # (an enum's .value is a slow lookup)


_MS: Final = (1 << 48) - 1


def new_record_id(time: int, random16: bytes) -> str:
    """A record id laid out as an RFC 9562 UUIDv7 (32 hex digits, no dashes): 48 bits of Unix
    milliseconds (here the record's second), version 7, variant 10, and 74 random bits. Ids
    grow with time, so the log's id index takes them at its right edge."""
    value = (time * 1000 & _MS) << 80 | int.from_bytes(random16) & ((1 << 80) - 1)
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7 (RFC 9562 §5.7)
    value = value & ~(0x3 << 62) | 0x2 << 62  # variant 10 (RFC 9562 §4.1)
    return f"{value:032x}"


_RAND_B: Final = (1 << 62) - 1
_STEP: Final = (1 << 48) - 1


class RecordIds:
    """Record ids that grow within a second too: RFC 9562 §6.2 Method 2 ("monotonic random").
    The first id of a second is `new_record_id`; each later one in the same second adds 1 plus
    48 random bits to the previous one's 74 random bits (a fresh id if they would overflow).
    One instance per process (`PROCESS_RECORD_IDS`) makes every id its recorders sign in a
    second land at the right edge of the log's id index, not at a random place in it (128
    random places per commit cost several times the SQL work of one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = (-1, 0)  # (the Unix ms field, the 74 random bits) of the latest id

    def next(self, time: int, random16: bytes) -> str:
        """The id of a record at `time` (Unix seconds), from 16 random bytes."""
        ms = time * 1000 & _MS
        with self._lock:
            last_ms, last_bits = self._last
            if last_ms != ms or (last_bits + 1 + _STEP) >> 74:
                fresh = new_record_id(time, random16)
                value = int(fresh, 16)
                self._last = (ms, (value >> 64 & 0xFFF) << 62 | value & _RAND_B)
                return fresh
            bits = last_bits + 1 + (int.from_bytes(random16[:6]) & _STEP)  # bytes the id's
            self._last = (ms, bits)  # own random bits (the last 10) do not use
        value = ms << 80 | 0x7 << 76 | (bits >> 62) << 64 | 0x2 << 62 | bits & _RAND_B
        return f"{value:032x}"


PROCESS_RECORD_IDS: Final = RecordIds()
"""The record ids of this process's recorders (`TraceRecorder`)."""


_ENCODER: Final = json.JSONEncoder(  # no cycle check: payloads are trees built here
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False
)


def canonical_json(value: Any) -> bytes:
    """RFC 8785 for the payload's domain (see the module docstring)."""
    return _ENCODER.encode(value).encode("utf-8")


def _member(name: str, text: str | None) -> str:
    """`,"name":text` for a present optional string member, else nothing."""
    return "" if text is None else f',"{name}":{_text(text)}'


# -- the parts of a record --------------------------------------------------------------------


def _check_text(text: str, what: str) -> str:
    if not text or len(text) > limits.MAX_TRACE_TEXT:
        raise ValueError(f"{what}: 1-{limits.MAX_TRACE_TEXT} characters")
    if not text.isprintable() if text.isascii() else _FORBIDDEN.search(text):
        raise ValueError(f"{what}: control, surrogate or noncharacter code point")
    return text


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The tool a record is about: its name, the caller's call id and the MCP server whose
    tool it is (the gate's `server`, review 53l, tools 1: a record of version 3; None: a
    tool of no server)."""

    name: str
    call: str | None = None
    server: str | None = None

    def __post_init__(self) -> None:
        _check_text(self.name, "tool name")
        if self.call is not None:
            _check_text(self.call, "tool call id")
        if self.server is not None:
            _check_text(self.server, "tool server")

    def to_json(self) -> dict[str, Any]:
        value = {"name": self.name}
        if self.call is not None:
            value["call"] = self.call
        if self.server is not None:
            value["server"] = self.server
        return value

    def canonical(self) -> str:
        """`canonical_json(self.to_json())` as text, members in RFC 8785 order."""
        server = "" if self.server is None else ',"server":' + _text(self.server)
        if self.call is None:
            return '{"name":' + _text(self.name) + server + "}"
        return '{"call":' + _text(self.call) + ',"name":' + _text(self.name) + server + "}"


@dataclass(frozen=True, slots=True)
class Decision:
    """What was decided, under which policy bundle revision, by which policies."""

    outcome: str
    bundle: str | None = None
    policies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_text(self.outcome, "decision outcome")
        if self.bundle is not None:
            _check_text(self.bundle, "policy bundle revision")
        if len(self.policies) > limits.MAX_TRACE_POLICY_IDS:
            raise ValueError(f"more than {limits.MAX_TRACE_POLICY_IDS} policy ids")
        for policy in self.policies:
            _check_text(policy, "policy id")

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {"outcome": self.outcome}
        if self.bundle is not None:
            value["bundle"] = self.bundle
        if self.policies:
            value["policies"] = list(self.policies)
        return value

    def canonical(self) -> str:
        """`canonical_json(self.to_json())` as text, members in RFC 8785 order."""
        bundle = "" if self.bundle is None else '"bundle":' + _text(self.bundle) + ","
        policies = ""
        if self.policies:
            policies = ',"policies":[' + ",".join(map(_text, self.policies)) + "]"
        return "{" + bundle + '"outcome":' + _text(self.outcome) + policies + "}"


def held_policies(ids: Iterable[str]) -> tuple[str, ...]:
    """The deciding policy ids a recorder keeps in a record's `decision` (a gate's, the span
    processor's): of the ids that are record texts, in their order, the first ones within
    MAX_TRACE_POLICY_IDS and MAX_TRACE_POLICY_BYTES (a bundle's 64 `@id`s all; review 75n,
    payload 1: 64 ids of 256 characters made the record refuse the decision). The recorder
    discloses every id beside it (docs/formats.md, Trace records: `decision`)."""
    held: list[str] = []
    room = limits.MAX_TRACE_POLICY_BYTES
    for policy in ids:
        try:
            _check_text(policy, "policy id")
        except ValueError:
            continue
        room -= len(_text(policy).encode()) + 1  # `"id",` in the canonical JSON
        if room < 0 or len(held) == limits.MAX_TRACE_POLICY_IDS:
            break
        held.append(policy)
    return tuple(held)


@dataclass(frozen=True, slots=True)
class Authority:
    """The delegation chain the agent acted under: its digest, the (serial, hash) of each
    credential root first, and where the chain can be fetched ("log": the log keeps it)."""

    chain: bytes
    credentials: tuple[tuple[bytes, bytes], ...]
    at: str = "log"

    def __post_init__(self) -> None:
        if len(self.chain) != 32:
            raise ValueError("a chain digest is 32 bytes")
        if not 1 <= len(self.credentials) <= limits.MAX_DELEGATION_LINKS + 1:
            raise ValueError(f"1-{limits.MAX_DELEGATION_LINKS + 1} credentials")
        for serial, digest in self.credentials:
            if len(serial) != 16 or len(digest) != 32:
                raise ValueError("a credential is named by a 16-byte id and a 32-byte hash")
        _check_text(self.at, "chain location")

    @classmethod
    def from_chain(cls, chain: bytes, *, at: str = "log") -> Authority:
        """The reference to delegation chain `chain` (its bytes as carried): its digest and
        each credential's (id, hash), root first. Raises DecodeError for bytes that are not a
        chain."""
        decoded = CredentialChain.decode(chain)
        named = tuple((CredentialBody.decode(c.body).id, c.hash) for c in decoded.credentials)
        return cls(sha256(chain), named, at)

    def to_json(self) -> dict[str, Any]:
        return {
            "chain": self.chain.hex(),
            "credentials": [{"id": s.hex(), "hash": h.hex()} for s, h in self.credentials],
            "at": self.at,
        }

    def canonical(self) -> str:
        """`canonical_json(self.to_json())` as text, members in RFC 8785 order."""
        named = ",".join([f'{{"hash":"{h.hex()}","id":"{s.hex()}"}}' for s, h in self.credentials])
        return f'{{"at":{_text(self.at)},"chain":"{self.chain.hex()}","credentials":[{named}]}}'


@dataclass(frozen=True, slots=True)
class Links:
    """What a record belongs to: the parent record, the trace, span and conversation.

    A record id is unique per agent only (docs/formats.md, "Trace records": the id namespace),
    so the parent record is (`parent_agent`, `parent`): `parent_agent` names the agent whose
    record `parent` is when that is another agent than the record's own (a resolution's
    escalation, another agent's step in a multi-agent flow); None means the record's own
    agent. A record naming its own agent as `parent_agent` is refused (one encoding).
    `parent_hash`: the parent record's hash (SHA-256 of its payload), which a resolution
    names (version 3) so that it answers that escalation's bytes, not whichever record is
    under its id in another log (review 53i, resolutions 1)."""

    parent: str | None = None
    trace: str | None = None
    span: str | None = None
    parent_span: str | None = None
    conversation: str | None = None
    parent_agent: Identifier | None = None
    parent_hash: bytes | None = None

    def __post_init__(self) -> None:
        if self.parent is not None and not _HEX32.fullmatch(self.parent):
            raise ValueError("a parent record id is 32 lowercase hex digits")
        if self.parent_agent is not None and self.parent is None:
            raise ValueError("a parent agent names whose parent record: only with a parent")
        if self.parent_hash is not None and (self.parent is None or len(self.parent_hash) != 32):
            raise ValueError("a parent hash is 32 bytes, and only with a parent")
        for name in ("trace", "span", "parent_span", "conversation"):
            text = getattr(self, name)
            if text is not None:
                _check_text(text, f"link {name}")

    def parent_of(self, agent: Identifier) -> tuple[Identifier, str] | None:
        """The parent record's (agent, id) for a record signed by `agent`; None: no parent."""
        if self.parent is None:
            return None
        return (agent if self.parent_agent is None else self.parent_agent, self.parent)

    def signed_by(self, agent: Identifier) -> Links:
        """These links as a record of `agent` carries them: without a `parent_agent` that is
        `agent` itself (the one encoding of a parent of its own)."""
        if self.parent_agent is None or self.parent_agent != agent:
            return self
        return Links(
            self.parent,
            self.trace,
            self.span,
            self.parent_span,
            self.conversation,
            parent_hash=self.parent_hash,
        )

    def to_json(self) -> dict[str, Any]:
        names = ("parent", "trace", "span", "parent_span", "conversation")
        value = {n: getattr(self, n) for n in names if getattr(self, n) is not None}
        if self.parent_agent is not None:
            value["parent_agent"] = str(self.parent_agent)
        if self.parent_hash is not None:
            value["parent_hash"] = self.parent_hash.hex()
        return value

    def canonical(self) -> str | None:
        """`canonical_json(self.to_json())` as text, members in RFC 8785 order; None when no
        link is set (the record then omits the member)."""
        parent_agent = "" if self.parent_agent is None else f',"parent_agent":"{self.parent_agent}"'
        if self.parent_hash is not None:
            parent_agent += f',"parent_hash":"{self.parent_hash.hex()}"'
        members = (
            _member("conversation", self.conversation)
            + _member("parent", self.parent)
            + parent_agent
            + _member("parent_span", self.parent_span)
            + _member("span", self.span)
            + _member("trace", self.trace)
        )
        return "{" + members[1:] + "}" if members else None


@dataclass(frozen=True, slots=True)
class SpanTimes:
    """When the traced operation ran (Unix microseconds) and how it ended."""

    start_us: int
    end_us: int
    status: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.start_us <= self.end_us <= _MAX_INT:
            raise ValueError("span times: 0 <= start <= end < 2^53 microseconds")
        if self.status is not None and self.status not in ("ok", "error"):
            raise ValueError("span status: ok or error")

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {"start_us": self.start_us, "end_us": self.end_us}
        if self.status is not None:
            value["status"] = self.status
        return value

    def canonical(self) -> str:
        """`canonical_json(self.to_json())` as text, members in RFC 8785 order."""
        status = _member("status", self.status)
        return f'{{"end_us":{self.end_us},"start_us":{self.start_us}{status}}}'


# -- the record -------------------------------------------------------------------------------

_TAIL: Final = f',"type":"{RECORD_TYPE}","version":{VERSION}}}'
_TAILS: Final = {v: f',"type":"{RECORD_TYPE}","version":{v}}}' for v in VERSIONS}
_NO_DIGESTS: Final[Mapping[str, bytes]] = MappingProxyType({})
_NO_LINKS: Final = Links()


@dataclass(frozen=True, slots=True, init=False)
class TraceRecord:
    """A record's payload fields (decoded, or about to be signed). Not verified. `version` is
    the payload's: `VERSION` for every record signed now, 1 for one decoded from before
    (its parent link, by id alone, means what `parent_by_id` says)."""

    id: str
    agent: Identifier
    key: str
    seq: int
    prev: bytes | None
    time: int
    kind: Kind
    tool: ToolCall | None
    digests: Mapping[str, bytes]
    decision: Decision | None
    authority: Authority | None
    links: Links
    escalation_to: Identifier | None
    span: SpanTimes | None
    version: int

    def __init__(
        self,
        id: str,
        agent: Identifier,
        key: str,
        seq: int,
        prev: bytes | None,
        time: int,
        kind: Kind,
        tool: ToolCall | None = None,
        digests: Mapping[str, bytes] = _NO_DIGESTS,
        decision: Decision | None = None,
        authority: Authority | None = None,
        links: Links = _NO_LINKS,
        escalation_to: Identifier | None = None,
        span: SpanTimes | None = None,
        version: int = VERSION,
    ) -> None:
        if version not in VERSIONS:
            raise ValueError(f"record version {version}: not one of {VERSIONS}")
        if version == 1 and links.parent_agent is not None:  # one encoding per version
            raise ValueError("a version 1 record names no parent agent (its parent is by id)")
        hashed = links.parent_hash is not None or (tool is not None and tool.server is not None)
        if (version == HASHED_VERSION) != hashed or (  # `version_of`, inline (per record)
            links.parent_hash is not None and kind is not Kind.RESOLUTION
        ):  # one encoding per version (review 53i, resolutions 1; review 53l, tools 1)
            raise ValueError(
                f"a parent hash is a resolution's, in version {HASHED_VERSION}, as is a tool's "
                f"server, and a version {HASHED_VERSION} record has one of them"
            )
        if not _HEX32.fullmatch(id):
            raise ValueError("a record id is 32 lowercase hex digits")
        if links.parent_hash is not None and id != resolution_id(links.parent_hash):
            raise ValueError("a resolution's id is its escalation's (review 53l, resolutions 1)")
        if not _HEX64.fullmatch(key):
            raise ValueError("a record key is 64 lowercase hex digits")
        if not 0 <= seq <= _MAX_INT or not 0 <= time <= _MAX_INT:
            raise ValueError("seq and time are integers in [0, 2^53)")
        if (prev is None) != (seq == 0) or (prev is not None and len(prev) != 32):
            raise ValueError("prev is a 32-byte hash, absent exactly for seq 0")
        for name, digest in digests.items():
            if name not in REDACTABLE or len(digest) != 32:
                raise ValueError(f"digest {name!r}: one of {REDACTABLE}, 32 bytes")
        if (escalation_to is not None) and kind is not Kind.ESCALATION:
            raise ValueError("only an escalation names whom it escalates to")
        if links.parent_agent is not None and links.parent_agent == agent:
            raise ValueError("a parent of the record's own agent names no parent agent")
        # frozen: through the slots (a dataclass's object.__setattr__ per field is ~6x slower)
        _set_record_id(self, id)
        _set_agent(self, agent)
        _set_key(self, key)
        _set_seq(self, seq)
        _set_prev(self, prev)
        _set_time(self, time)
        _set_kind(self, kind)
        _set_tool(self, tool)
        _set_digests(self, digests)
        _set_decision(self, decision)
        _set_authority(self, authority)
        _set_links(self, links)
        _set_escalation_to(self, escalation_to)
        _set_span(self, span)
        _set_version(self, version)

    @property
    def parent_by_id(self) -> bool:
        """Whether the parent link names a record id alone, of whichever agent holds it: a
        version 1 record's link (docs/formats.md, "Trace records": the version rule; resolved
        against a log or export by `troth.trace.record_decode.parent_record`). A version 2
        link is (`parent_agent` or the record's own agent, `parent`): `Links.parent_of`."""
        return self.version == 1 and self.links.parent is not None

    def to_json(self) -> dict[str, Any]:
        """The payload object (written with `canonical_json`)."""
        value: dict[str, Any] = {
            "type": RECORD_TYPE,
            "version": self.version,
            "id": self.id,
            "agent": str(self.agent),
            "key": self.key,
            "seq": self.seq,
            "prev": None if self.prev is None else self.prev.hex(),
            "time": self.time,
            "kind": _KIND_TEXT[self.kind],
        }
        if self.tool is not None:
            value["tool"] = self.tool.to_json()
        if self.digests:
            value["digests"] = {name: digest.hex() for name, digest in self.digests.items()}
        if self.decision is not None:
            value["decision"] = self.decision.to_json()
        if self.authority is not None:
            value["authority"] = self.authority.to_json()
        links = self.links.to_json()
        if links:
            value["links"] = links
        if self.escalation_to is not None:
            value["escalation"] = {"to": str(self.escalation_to)}
        if self.span is not None:
            value["span"] = self.span.to_json()
        return value

    def encode(self) -> bytes:
        """The payload: `canonical_json(self.to_json())`, written member by member in RFC 8785
        order (names sorted) without building the object first. Ids, keys and hashes are
        checked hex and kinds fixed ASCII, so only the free texts go through `_text`."""
        authority = "" if self.authority is None else ',"authority":' + self.authority.canonical()
        decision = "" if self.decision is None else ',"decision":' + self.decision.canonical()
        digests = ""
        if self.digests:
            named = [f'"{name}":"{self.digests[name].hex()}"' for name in sorted(self.digests)]
            digests = ',"digests":{' + ",".join(named) + "}"
        escalation = ""
        if self.escalation_to is not None:
            escalation = f',"escalation":{{"to":"{self.escalation_to}"}}'
        links = self.links.canonical()
        links = "" if links is None else ',"links":' + links
        prev = "null" if self.prev is None else f'"{self.prev.hex()}"'
        span = "" if self.span is None else ',"span":' + self.span.canonical()
        tool = "" if self.tool is None else ',"tool":' + self.tool.canonical()
        tail = _TAIL if self.version == VERSION else _TAILS[self.version]
        return (
            f'{{"agent":"{self.agent}"{authority}{decision}{digests}{escalation},"id":"{self.id}"'
            f',"key":"{self.key}","kind":"{_KIND_TEXT[self.kind]}"{links},"prev":{prev}'
            f',"seq":{self.seq}{span},"time":{self.time}{tool}{tail}'
        ).encode()


_slots: Final = vars(TraceRecord)  # the slot descriptors
_set_record_id = _slots["id"].__set__
_set_agent = _slots["agent"].__set__
_set_key = _slots["key"].__set__
_set_seq = _slots["seq"].__set__
_set_prev = _slots["prev"].__set__
_set_time = _slots["time"].__set__
_set_kind = _slots["kind"].__set__
_set_tool = _slots["tool"].__set__
_set_digests = _slots["digests"].__set__
_set_decision = _slots["decision"].__set__
_set_authority = _slots["authority"].__set__
_set_links = _slots["links"].__set__
_set_escalation_to = _slots["escalation_to"].__set__
_set_span = _slots["span"].__set__
_set_version = _slots["version"].__set__
