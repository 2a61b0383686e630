"""The trace wired into the rest of troth (docs/traces.md, "Wiring"): a gate's decision
recorder, the secrets broker's audit sink, and the records of delegations and revocations. Each
builds a `RecordContent` and hands it to a `RecordSink`: a `TraceRecorder` (the node's own log,
durable when `record` returns) or a `TraceClient` (a node's trace service, queued).

What each records (kind, tool, decision, values, authority) is tabled in docs/traces.md,
"Wiring"; the values are redactable (the record holds their salted hashes):

- a gate decision: `tool_invocation` (allowed) or `denial`, the tool, the outcome with the
  bundle revision and deciding policy ids, the arguments, the reason; the caller's chain as
  the authority when the caller is the recording agent (else the caller in `inputs`);
- a broker audit event: `lease` (`denial` for a refusal), `secret:NAME`, the event;
- a delegation: `delegation` signed by the delegator under its own chain, `delegate` with the
  new link's id (what `troth revoke link` takes), to whom, what, how long, why;
- a revocation: `revocation` signed by the revoker, `revoke link|credential|identity` with
  the target, the authority, the reason and the feed entry.

Fail closed: a sink that raises makes the recorder raise, and the gate, the broker or the
delegation then fails (the decision point and the broker treat a failing recorder so), but for
the revocations the broker makes, which its fallback records (`troth.secrets.book.LeaseBook`).
"""

from __future__ import annotations

import contextvars
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from troth import limits
from troth.credentials.format import CredentialBody, CredentialChain
from troth.crypto import sha256
from troth.gates.engine import LeaseRequest, ServiceCall, ToolCall
from troth.gates.point import DecisionRecord
from troth.gates.toolschema import NotJson
from troth.identity import Identifier
from troth.secrets.audit import UNCREDENTIALED, AuditEvent, AuditKind
from troth.trace.record import (
    Authority,
    Decision,
    Kind,
    Links,
    disclosed,
    held_policies,
)
from troth.trace.record import ToolCall as TracedTool
from troth.trace.signing import RecordContent

__all__ = [
    "UNCREDENTIALED",
    "LinksSource",
    "RecordSink",
    "Recorded",
    "TraceAuditSink",
    "TraceDecisionRecorder",
    "audit_content",
    "decision_content",
    "delegation_content",
    "revocation_content",
    "revocation_record_id",
]

LinksSource = Callable[[], Links]
"""What the next record belongs to (its parent record, conversation, trace)."""


class Recorded(Protocol):
    """What a sink answers for a record: its id (a `Receipt`, a `Queued`)."""

    @property
    def record(self) -> str:
        """The record's id."""
        ...


class RecordSink(Protocol):
    """Signs records as one identity and delivers them (TraceRecorder, TraceClient)."""

    @property
    def agent(self) -> Identifier:
        """The identity that signs the records."""
        ...

    def record(
        self,
        content: RecordContent,
        *,
        chain: bytes | None = None,
        source: Identifier | None = None,
    ) -> Recorded:
        """Sign and deliver `content`, made on behalf of member `source` if any: what a sink
        holds waiting for delivery it bounds per member too (TRACE_OUTBOX_SOURCE_PERCENT).
        Raises when it cannot: the caller fails closed."""
        ...


def _tool(name: str, server: str | None = None) -> TracedTool:
    """The record's tool: `name` (or a placeholder for a name a caller made up) of MCP
    server `server` (the gate's, review 53l, tools 1; a placeholder for one that is no record
    text: a request made by hand, which the engine denies, is still recorded)."""
    if server is not None:
        try:
            TracedTool("-", None, server)
        except ValueError:
            server = "(not a server name)"
    try:
        return TracedTool(name, None, server)
    except ValueError:  # a name a caller made up: not a tool's
        return TracedTool("(not a tool name)", None, server)


def decision_content(
    record: DecisionRecord, agent: Identifier, links: Links | None = None
) -> tuple[RecordContent, bytes | None]:
    """A gate decision as a record signed by `agent` (who runs the gate), and the chain to keep
    with it: the caller's, named as the authority when the caller is `agent` itself."""
    request, decision = record.request, record.decision
    values: dict[str, Any] = {}
    if isinstance(request, ToolCall):
        tool = _tool(request.tool, request.server)
        kind = Kind.TOOL_INVOCATION if decision.allowed else Kind.DENIAL
        # what a denied caller sent is kept in clear only when small (its hash otherwise)
        limit = (
            limits.MAX_TRACE_DISCLOSURE_BYTES
            if decision.allowed
            else limits.MAX_TRACE_DENIED_DISCLOSURE_BYTES
        )
        # arguments as given: a denied caller's list of pairs is not an object (review 51f,
        # trace 1), and a string must not make the recorder raise
        given: Any = request.arguments
        if isinstance(given, NotJson):  # judged in place of arguments that are no JSON (74k)
            values["args"] = {"not_json": given.type}
        else:
            values["args"] = disclosed(dict(given) if isinstance(given, Mapping) else given, limit)
        if tool.name != request.tool:  # a made-up name: small in clear, so the record's values
            # stay within MAX_TRACE_RECORD_DISCLOSURE_BYTES (review 47b, limits 1)
            made_up = min(limit, limits.MAX_TRACE_DENIED_DISCLOSURE_BYTES)
            values["inputs"] = {"tool": disclosed(request.tool, made_up)}
    else:
        name = (
            f"service:{request.service}.{request.method}"
            if isinstance(request, ServiceCall)
            else f"lease:{request.secret}"
            if isinstance(request, LeaseRequest)
            else "(unknown request)"
        )
        tool = _tool(name)
        kind = Kind.DECISION if decision.allowed else Kind.DENIAL
    policies = held_policies(decision.policies)  # every id in the result, below
    # the reason may be a lease provider's text (a remote broker's refusal: review 26c, gate 3);
    # `bundle`: the deciding bundle's SHA-256, as two bundles of one revision may hold
    # different texts under the same policy ids (review 54h, bundles 5)
    values["result"] = disclosed(
        {
            "reason": decision.reason,
            "errors": list(decision.errors),
            "policies": list(decision.policies),
            "bundle": decision.digest,
        }
    )
    revision = None if decision.revision is None else str(decision.revision)
    authority: Authority | None = None
    chain: bytes | None = None
    credential = record.credential
    if credential is not None and credential.actor == agent:
        authority, chain = Authority.from_chain(credential.chain), credential.chain
    elif credential is not None:
        values.setdefault("inputs", {})["caller"] = {
            "actor": str(credential.actor),
            "authority": str(credential.authority),
            "chain": sha256(credential.chain).hex(),
        }
    elif record.presenter is not None:  # its credential refused: who it was (review 23c)
        values.setdefault("inputs", {})["caller"] = {"actor": str(record.presenter)}
    content = RecordContent(
        kind,
        tool=tool,
        values=values,
        decision=Decision(decision.outcome.value, revision, policies),
        authority=authority,
        links=links or Links(),
    )
    return content, chain


class TraceDecisionRecorder:
    """A gate's `DecisionRecorder`: every decision, allowed or denied, signed into the trace by
    the sink's identity (the agent running the gate). `links` says what the next record
    belongs to (a conversation, a parent record)."""

    def __init__(self, sink: RecordSink, *, links: LinksSource | None = None) -> None:
        self.sink = sink
        self.links = links
        self._last: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            "troth.trace.last_decision", default=None
        )
        self._recorded: dict[int, tuple[weakref.ref[DecisionRecord], str]] = {}

    def recorded(self, record: DecisionRecord) -> str | None:
        """The id of the trace record this recorder made of `record`, the very object the gate
        hands its lease provider (None: it made none): what a provider taking its lease where
        the deciding context does not reach (a pooled thread, which may hold a decision of an
        earlier call as its `last`) links to (review 74p, records2 1)."""
        entry = self._recorded.get(id(record))
        return entry[1] if entry is not None and entry[0]() is record else None

    def _remember(self, record: DecisionRecord, made: str) -> None:
        key, recorded = id(record), self._recorded

        def forget(ref: weakref.ref[DecisionRecord]) -> None:  # as `record` is freed
            if recorded.get(key, (None,))[0] is ref:
                del recorded[key]

        recorded[key] = (weakref.ref(record, forget), made)

    @property
    def last(self) -> str | None:
        """The id of the last decision recorded in the reading context (a lease taken for the
        call, in the thread that decided it or a context carried from it, as
        `asyncio.to_thread` carries it, links to it); None in a context that recorded none.
        Never another context's: read by a thread no context reached, with calls decided on
        several at once, another call's decision was linked (review 74k, records 5; review
        74p, records2 1). A lease taken elsewhere links with `recorded(record)`."""
        return self._last.get()

    def record(self, record: DecisionRecord) -> None:
        """Sign `record` into the trace (raises when it cannot: the gate fails closed)."""
        links = None if self.links is None else self.links()
        content, chain = decision_content(record, self.sink.agent, links)
        # counted for the member the authority credentialed (the chain's first subject), as a
        # lease is: a member's delegates are minted for free and would each bring a share
        credential = record.credential  # None: the caller's was refused; one share for them all
        caller = UNCREDENTIALED if credential is None else credential.links[0].subject
        made = self.sink.record(content, chain=chain, source=caller).record
        self._remember(record, made)
        self._last.set(made)


def audit_content(event: AuditEvent, links: Links | None = None) -> RecordContent:
    """A broker audit event as a record: `lease` (`denial` for a refusal). The event names
    secrets by name and leases by handle; any secret value is in it only as an HMAC."""
    kind = Kind.DENIAL if event.kind is AuditKind.DENY else Kind.LEASE
    tool = None if event.secret is None else _tool(f"secret:{event.secret}")
    return RecordContent(
        kind,
        tool=tool,
        values={"args": event.to_json()},
        decision=Decision(event.kind.value),
        links=links or Links(),
    )


class TraceAuditSink:
    """The broker's `AuditSink` backed by the trace: every issue, renewal, revocation, denial,
    expiry and use a signed record of the sink's identity (the broker's node)."""

    def __init__(self, sink: RecordSink, *, links: LinksSource | None = None) -> None:
        self.sink = sink
        self.links = links

    def append(self, event: AuditEvent) -> None:
        """Sign `event` into the trace (raises when it cannot: the broker fails the operation)."""
        links = None if self.links is None else self.links()
        self.sink.record(audit_content(event, links), source=event.member)


def delegation_content(
    parent: bytes, chain: bytes, links: Links | None = None
) -> tuple[RecordContent, bytes]:
    """The record of a delegation by the holder of `parent` (its authority), which made
    `chain` (parent + the new link), and the chain to keep with it (the parent)."""
    link = CredentialChain.decode(chain).credentials[-1]
    body = CredentialBody.decode(link.body)
    delegation = body.delegation
    args: dict[str, Any] = {
        "to": str(body.subject),
        "attributes": body.attributes.to_json(),
        "not_before": body.not_before,
        "expires_at": body.expires_at,
        "depth": body.depth,
        "purpose": None if delegation is None else delegation.purpose,
        "caveats": [] if delegation is None else list(delegation.caveats),
    }
    content = RecordContent(
        Kind.DELEGATION,
        tool=TracedTool("delegate", link.hash.hex()),
        values={"args": args, "result": {"credential": body.id.hex(), "hash": link.hash.hex()}},
        authority=Authority.from_chain(parent),
        links=links or Links(),
    )
    return content, parent


def revocation_content(
    what: str,
    target: str,
    *,
    authority: Identifier,
    reason: str,
    seq: int | None,
    chain: bytes | None = None,
    links: Links | None = None,
) -> RecordContent:
    """The record of a revocation (`what`: link, credential or identity) of `target` (a link's
    id, or an identifier) with `authority`, feed entry `seq`. With a seq, its record id is
    `revocation_record_id`'s: a redo that answers the same feed entry signs the same id, which
    the log refuses (REPLAYED) for the agent that holds it already (review 46c)."""
    args: Mapping[str, Any] = {
        "authority": str(authority),
        "what": what,
        "target": target,
        "reason": reason,
        "chain": None if chain is None else sha256(chain).hex(),
    }
    return RecordContent(
        Kind.REVOCATION,
        tool=TracedTool(f"revoke {what}", target),
        values={"args": dict(args), "result": {"feed_entry": seq}},
        links=links or Links(),
        id=None if seq is None else revocation_record_id(authority, seq, what, target),
    )


def revocation_record_id(authority: Identifier, seq: int, what: str, target: str) -> str:
    """The record id of the revocation of `target` that `authority` took as feed entry `seq`:
    32 hex digits of SHA-256 over them (not time-ordered: revocations are rare). Ids are
    unique per agent, so only the revoker's own earlier record of that entry holds it."""
    digest = sha256(
        b"troth.trace.revocation-id/1\x00"
        + authority.digest
        + seq.to_bytes(8, "big")
        + what.encode()
        + b"\x00"
        + target.encode()
    )
    return digest[:16].hex()
