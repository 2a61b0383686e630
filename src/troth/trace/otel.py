"""OpenTelemetry both ways (needs `troth[otel]`: opentelemetry-sdk; docs/traces.md, "The pieces").

Out: `record_spans` turns records into SDK spans (`ReadableSpan`) named and attributed per the
GenAI semantic conventions (`execute_tool {tool}`, `invoke_agent {agent}`; gen_ai.agent.id,
gen_ai.tool.name, gen_ai.tool.call.id, gen_ai.conversation.id) plus troth.* attributes (record
hash, index, signer, key, chain digest, decision, policies, the span ids the record claims:
the export's span ids are its own, review 53r, otel 2), for any `SpanExporter`: the OTLP
one (`otlp_exporter(endpoint)`, needs opentelemetry-exporter-otlp-proto-http) or the SDK's
in-memory one.

In: `SigningSpanProcessor(recorder)` added to a `TracerProvider` turns every GenAI span an
agent framework already emits (`execute_tool`, `invoke_agent`) into a signed record when the
span ends, so an instrumented agent gets signed traces by adding one processor, under
`SigningSampler` (`troth.trace.otel_sampler`): a span the sampler drops never ends at a
processor (review 57h, otel 1); several agents in one process share one processor, the host
naming the agent acting (`acting(recorder)`; `troth.trace.otel_processor`, review 70h, otel 1).

The gen_ai.* names are troth's own constants (`troth.trace.otel_names`):
opentelemetry-semantic-conventions 0.66b2 marks its GenAI constants deprecated (moved to another
package) while the names stay the same.
"""

from __future__ import annotations

import hashlib
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import AttributeValue

from troth import limits
from troth.errors import ConfigError, DecodeError, NotFound, TraceError, Unreachable
from troth.identity import Identifier
from troth.trace.export import hashed_checkpoint
from troth.trace.log import TraceLog
from troth.trace.log_reader import locate
from troth.trace.otel_content import span_content
from troth.trace.otel_ids import EmittedIds, SpanIds, TakenIds
from troth.trace.otel_names import (
    EXECUTE_TOOL,
    GEN_AI_AGENT_ID,
    GEN_AI_CONVERSATION_ID,
    GEN_AI_OPERATION_NAME,
    GEN_AI_TOOL_CALL_ID,
    GEN_AI_TOOL_NAME,
    INVOKE_AGENT,
    TROTH_BUNDLE_REVISION,
    TROTH_CHAIN_DIGEST,
    TROTH_CLAIMED_PARENT_SPAN_ID,
    TROTH_CLAIMED_SPAN_ID,
    TROTH_DECISION,
    TROTH_ESCALATION_TO,
    TROTH_POLICY_IDS,
    TROTH_RECORD_HASH,
    TROTH_RECORD_ID,
    TROTH_RECORD_INDEX,
    TROTH_RECORD_KIND,
    TROTH_SIGNER,
    TROTH_SIGNER_KEY,
    TROTH_SPAN_RENAMED,
    TROTH_TOOL_SERVER,
)
from troth.trace.otel_processor import SigningSpanProcessor, acting
from troth.trace.otel_sampler import SigningSampler
from troth.trace.record import (
    Kind,
    TraceRecord,
)
from troth.trace.record_decode import Holders, Holding, parent_record
from troth.trace.signing import open_envelope
from troth.trace.verify import LogVerifier, log_material

__all__ = [
    "GEN_AI_AGENT_ID",
    "GEN_AI_CONVERSATION_ID",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_TOOL_CALL_ID",
    "GEN_AI_TOOL_NAME",
    "SigningSampler",
    "SigningSpanProcessor",
    "acting",
    "export_otel",
    "otlp_exporter",
    "record_span",
    "record_spans",
    "span_content",
]

Claims = Callable[[Identifier, str], str | None]
"""`record_span`'s `claims`: the OTel span id record (agent, id) claims (`links.span`)."""
_HEX16: Final = re.compile(r"[0-9a-f]{16}")
_HEX32: Final = re.compile(r"[0-9a-f]{32}")
_RESOURCE: Final = Resource.create({"service.name": "troth"})


def _derived(label: bytes, text: str, size: int) -> int:
    value = int.from_bytes(hashlib.sha256(label + text.encode()).digest()[:size])
    return value or 1  # OTel reserves the all-zero id


def _trace_id(record: TraceRecord) -> int:
    trace = record.links.trace
    if trace is not None and _HEX32.fullmatch(trace) and int(trace, 16):
        return int(trace, 16)
    own = f"{record.agent}/{record.id}"  # ids are unique per agent (docs/formats.md)
    return _derived(b"troth.trace/otel-trace\x00", record.links.conversation or own, 16)


def _claimed(span: str | None) -> str | None:
    """A claimed OTel span id (16 hex, not all zero), else None."""
    return span if span is not None and _HEX16.fullmatch(span) and int(span, 16) else None


def _span_id(named: tuple[Identifier, str] | None, span: str | None) -> int:
    """A span's id in the export, the export's own (review 53r, otel 2): derived from the
    signer of the record `named` (agent, id) and the OTel span id `span` it claims (a claim:
    another agent claiming the id derives another span, so no record can hide another
    signer's span behind its id), else from the record (ids are unique per agent only:
    another agent's record under the id derives another span)."""
    claimed = _claimed(span)
    if claimed is not None and named is not None:
        return _derived(b"troth.trace/otel-claimed-span\x00", f"{named[0]}/{claimed}", 8)
    text = "" if named is None else f"{named[0]}/{named[1]}"
    return _derived(b"troth.trace/otel-span\x00", text, 8)


def _name_and_operation(record: TraceRecord) -> tuple[str, str | None]:
    if record.tool is not None and record.kind in (Kind.TOOL_INVOCATION, Kind.DENIAL):
        return f"{EXECUTE_TOOL} {record.tool.name}", EXECUTE_TOOL
    if record.kind is Kind.MESSAGE:
        return f"{INVOKE_AGENT} {record.agent}", INVOKE_AGENT
    return f"troth {record.kind.value}", None


def record_span(
    record: TraceRecord,
    *,
    index: int,
    record_hash: bytes,
    holders: Holders | None = None,
    taken: TakenIds | None = None,
    claims: Claims | None = None,
) -> ReadableSpan:
    """One record as an OTel span (GenAI conventions plus troth.* attributes). `holders`:
    where the records under an id are in the log (`TraceLog.holding`), for a version 1
    record's parent link, named by id alone (`parent_record` with the record's `index`: the
    signer's own record, else the one record under it before it, else the one after it; an
    ambiguous link gives no parent span); None: read as the signer's own.

    Span ids are the export's own (`_span_id`), the ids the record claims carried as
    `troth.claimed.span_id` / `troth.claimed.parent_span_id`: a span under a claimed parent is
    under its own signer's span of that id. `taken`: the span ids the export already emitted
    (updated): a span id its signer claimed again is renamed, derived from the record, and
    marked `troth.span.renamed` (review 53r, otel 2: a backend merges or drops one of two spans
    of one id). `claims`: the span a record its parent link names claims, for that record's
    span (review 62b, traces 3: derived from the record alone, the parent of a record under a
    span's record was a span no record has); None: none claims one."""
    name, operation = _name_and_operation(record)
    attributes: dict[str, AttributeValue] = {
        GEN_AI_AGENT_ID: str(record.agent),
        TROTH_RECORD_ID: record.id,
        TROTH_RECORD_HASH: record_hash.hex(),
        TROTH_RECORD_INDEX: index,
        TROTH_RECORD_KIND: record.kind.value,
        TROTH_SIGNER: str(record.agent),
        TROTH_SIGNER_KEY: record.key,
    }
    if operation is not None:
        attributes[GEN_AI_OPERATION_NAME] = operation
    if record.tool is not None:
        attributes[GEN_AI_TOOL_NAME] = record.tool.name
        if record.tool.call is not None:
            attributes[GEN_AI_TOOL_CALL_ID] = record.tool.call
        if record.tool.server is not None:
            attributes[TROTH_TOOL_SERVER] = record.tool.server
    if record.links.conversation is not None:
        attributes[GEN_AI_CONVERSATION_ID] = record.links.conversation
    if record.authority is not None:
        attributes[TROTH_CHAIN_DIGEST] = record.authority.chain.hex()
    if record.decision is not None:
        attributes[TROTH_DECISION] = record.decision.outcome
        if record.decision.policies:
            attributes[TROTH_POLICY_IDS] = record.decision.policies
        if record.decision.bundle is not None:
            attributes[TROTH_BUNDLE_REVISION] = record.decision.bundle
    if record.escalation_to is not None:
        attributes[TROTH_ESCALATION_TO] = str(record.escalation_to)
    if record.links.span is not None:
        attributes[TROTH_CLAIMED_SPAN_ID] = record.links.span
    if record.links.parent_span is not None:
        attributes[TROTH_CLAIMED_PARENT_SPAN_ID] = record.links.parent_span
    trace_id = _trace_id(record)
    span_id = _span_id((record.agent, record.id), record.links.span)
    if taken is not None:
        if span_id in taken:
            span_id = _span_id((record.agent, record.id), None)
            attributes[TROTH_SPAN_RENAMED] = True
        taken.add(span_id)  # (its parent once known, below)
    context = SpanContext(trace_id, span_id, False, TraceFlags(TraceFlags.SAMPLED))
    parent = None
    named = record.links.parent_of(record.agent)
    if holders is not None and record.parent_by_id:
        try:
            named = parent_record(record, holders, index=index)
        except TraceError:  # ambiguous: no record's span is its parent
            named = None
    if record.links.parent_span is not None or named is not None:
        # a claimed parent span is its signer's: the named record's, else the record's own
        owner = (record.agent, record.id) if named is None else named
        parent_id = _span_id(named, _parent_claim(named, claims, taken))
        if _claimed(record.links.parent_span) is not None:
            parent_id = _span_id(owner, record.links.parent_span)
        if not _closes_cycle(taken, span_id, parent_id):  # a record naming itself is a root,
            # as `trace show` draws it: a span its own parent never reaches one (review 62k,
            # traces 3), nor one its parent's parents reach (review 64i, otel 4)
            parent = SpanContext(trace_id, parent_id, True, TraceFlags(TraceFlags.SAMPLED))
    if taken is not None and parent is not None:
        taken.add(span_id, parent_id)
    start = record.time * 1_000_000_000 if record.span is None else record.span.start_us * 1000
    end = start if record.span is None else record.span.end_us * 1000
    failed = record.kind is Kind.DENIAL or (
        record.span is not None and record.span.status == "error"
    )
    return ReadableSpan(
        name=name,
        context=context,
        parent=parent,
        resource=_RESOURCE,
        attributes=attributes,
        kind=SpanKind.INTERNAL,
        status=Status(StatusCode.ERROR) if failed else Status(StatusCode.UNSET),
        start_time=start,
        end_time=end,
    )


def _closes_cycle(taken: TakenIds | None, span_id: int, parent_id: int) -> bool:
    """Whether `span_id` under `parent_id` would close a cycle: the parent is the span, or its
    parents as emitted (`taken`) reach it, followed to their top at any depth (review 64q,
    otel 1: followed 64 levels at most, every 65th span of a chain was cut from its parent). A
    parent not emitted yet closes none now: the cycle's last span emitted is the one made a
    root."""
    return parent_id == span_id or (taken is not None and taken.reaches(parent_id, span_id))


def _parent_claim(
    named: tuple[Identifier, str] | None, claims: Claims | None, taken: TakenIds | None
) -> str | None:
    """The span id the named parent record's span was emitted under claims: the one it claims
    (`claims`), None when its span was renamed, derived from the record (its id in `taken`:
    review 62k, traces 1, a record under a renamed span was put under the first claimant's)."""
    if named is None or claims is None:
        return None
    claimed = claims(*named)
    if claimed is not None and taken is not None and _span_id(named, None) in taken:
        return None
    return claimed


def record_spans(
    records: Iterable[tuple[int, bytes]],
    *,
    holders: Holders | None = None,
    taken: TakenIds | None = None,
    claims: Claims | None = None,
) -> list[ReadableSpan]:
    """Spans of (log index, envelope) pairs (decoded, not verified: verify the log first);
    `holders`, `taken` and `claims` as for `record_span` (None: of these spans alone)."""
    opened = [(index, open_envelope(envelope)) for index, envelope in records]
    if claims is None:
        claims = _claims_of(record for _, (record, *_rest) in opened)
    spans = []
    emitted: TakenIds = EmittedIds() if taken is None else taken
    for index, (record, payload, _signature, _keyid) in opened:
        digest = hashlib.sha256(payload).digest()
        spans.append(
            record_span(
                record,
                index=index,
                record_hash=digest,
                holders=holders,
                taken=emitted,
                claims=claims,
            )
        )
    return spans


def _claims_of(records: Iterable[TraceRecord]) -> Claims:
    """`record_span`'s `claims` over `records` alone, in order: a span id its agent claimed
    before is none (the later record's span is renamed: review 62k, traces 1)."""
    claimed: dict[tuple[Identifier, str], str | None] = {}
    first: set[tuple[Identifier, str]] = set()
    for record in records:
        span = _claimed(record.links.span)
        if span is not None and (record.agent, span) in first:
            span = None
        elif span is not None:
            first.add((record.agent, span))
        claimed[(record.agent, record.id)] = span

    def claims(agent: Identifier, record_id: str) -> str | None:
        return claimed.get((agent, record_id))

    return claims


def _log_claims(log: TraceLog) -> Claims:
    """`record_span`'s `claims` over a log: the span its record (agent, id) claims, None when
    it claims none or the log holds no such record (or one that does not decode: the export
    names it where it is)."""

    def claims(agent: Identifier, record_id: str) -> str | None:
        try:
            return open_envelope(log.find(record_id, agent).envelope)[0].links.span
        except (NotFound, DecodeError, TraceError):
            return None

    return claims


class _LogHolders:
    """`parent_record`'s `holders` over a log (`TraceLog.holding`), the earliest records
    under an id read once per id: however many version 1 links name an id, and however many
    agents hold it, the export reads each id's records once (then one look-up per link), of at
    most MAX_TRACE_OTEL_HELD_IDS ids, the oldest dropped (review 57h, otel 4: every id was
    kept, ~200 bytes a version 1 record linking another)."""

    def __init__(self, log: TraceLog) -> None:
        self._log = log
        self._placed: dict[str, Holding] = {}

    def __call__(self, signer: Identifier, record_id: str) -> Holding:
        placed = self._placed.get(record_id)
        if placed is None:
            if len(self._placed) >= limits.MAX_TRACE_OTEL_HELD_IDS:
                del self._placed[next(iter(self._placed))]
            placed = self._placed[record_id] = self._log.holding(signer, record_id)
            return placed
        return placed._replace(own=locate(self._log.store.connection(), record_id, signer))


def export_otel(
    log: TraceLog,
    exporter: SpanExporter,
    *,
    agent: str | None = None,
    batch: int = 512,
    verifier: LogVerifier | None = None,
) -> int:
    """Export every record of `log` (of `agent`, an identifier text, or all) as spans through
    `exporter`; return how many. Raises Unreachable when the exporter fails; TraceError, before any
    span is sent, for a log whose stored records do not hash to a fresh checkpoint of it
    (`hashed_checkpoint`, as `export_jsonl` refuses it: review 62b, traces 4), and at the first
    record that does not verify (`LogVerifier`: signature, key, chain; review 62k, traces 4;
    `verifier`: a fresh one, default over the log's own material as `verify_log` without a node's
    stored histories), before its span is sent; the records that checkpoint covers are sent, not
    those appended since. No two spans of the export share an id (review 53r, otel 2: the ids
    emitted are kept for the export and a repeat renamed: `record_span`'s `taken`), kept on disk
    (`SpanIds`; review 55e, otel 1: a set in memory grew by ~120 bytes a span)."""
    count = 0
    pending: list[ReadableSpan] = []
    # an edited log's records were sent as signed (review 62b, traces 4); those appended
    # since the check are left to the next export, as export_jsonl leaves them
    size = hashed_checkpoint(log).size
    holders, claims = _LogHolders(log), _log_claims(log)
    # each record verified as sent: an envelope edited with its stored leaf hash hashes to
    # the fresh checkpoint, and was sent as signed (review 62k, traces 4)
    verifier = verifier or LogVerifier(log_material(log))
    with SpanIds() as taken:
        for entry in log.stored():
            if entry.index >= size:
                break
            verifier.add(entry.index, entry.envelope)  # (no disclosure is sent)
            span = record_spans(
                [(entry.index, entry.envelope)], holders=holders, taken=taken, claims=claims
            )[0]
            if agent is not None and (span.attributes or {}).get(GEN_AI_AGENT_ID) != agent:
                continue
            pending.append(span)
            if len(pending) >= batch:
                count += _export(exporter, pending)
                pending = []
    if pending:
        count += _export(exporter, pending)
    exporter.force_flush()
    return count


def _export(exporter: SpanExporter, spans: Sequence[ReadableSpan]) -> int:
    """Send `spans` through `exporter` from a daemon thread, waiting at most
    OTEL_EXPORT_BATCH_SECONDS (review 64i, otel 1: a collector answering a byte at a time held
    the export, whose timeout bounds each read only); the thread left reading holds no exit."""
    outcome: list[SpanExportResult | BaseException] = []
    sent = threading.Event()

    def send() -> None:
        try:
            outcome.append(exporter.export(spans))
        except BaseException as exc:  # raised in the export's own thread, below
            outcome.append(exc)
        finally:
            sent.set()

    threading.Thread(target=send, name="troth-otel-export", daemon=True).start()
    seconds = limits.OTEL_EXPORT_BATCH_SECONDS
    if not sent.wait(seconds):
        raise Unreachable(f"the OTLP endpoint did not answer a batch of spans within {seconds} s")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    if outcome[0] is not SpanExportResult.SUCCESS:
        # an I/O failure (exit 4), not the configuration's (review 63e, cli 3)
        raise Unreachable("the span exporter failed (is the OTLP endpoint reachable?)")
    return len(spans)


def otlp_exporter(endpoint: str) -> SpanExporter:
    """An OTLP/HTTP span exporter to `endpoint` (e.g. http://localhost:4318/v1/traces).
    ConfigError for an endpoint that is no http(s) URL with a host and a port (`localhost:4318`,
    a mistyped scheme, a port past 65535): the exporter failed on each batch, saying why only
    in its log, and its failure read as an endpoint that did not answer (Unreachable: retry
    later; review 63q, cli 3)."""
    _check_endpoint(endpoint)
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise ConfigError(
            "OTLP export needs opentelemetry-exporter-otlp-proto-http (pip install troth[otel])"
        ) from None
    exporter: SpanExporter = OTLPSpanExporter(endpoint=endpoint)
    return exporter


def _check_endpoint(endpoint: str) -> None:
    """ConfigError unless `endpoint` is an http:// or https:// URL naming a host (its query and
    user information, perhaps a collector's key, are never said)."""
    try:
        parts = urllib.parse.urlsplit(endpoint)
        parts.port  # noqa: B018 (ValueError: not a number, or past 65535)
    except ValueError as exc:  # the parser's messages quote the netloc (user information and
        # all) or the port (review 64q, otel 2: a collector's key said on stderr)
        said = str(exc)
        if "netloc" in said:
            said = "its host has characters that normalize to / ? # @ or :"
        elif said.startswith("Port"):
            said = "its port is no number from 0 to 65535"
        raise ConfigError(f"the OTLP endpoint is no URL: {said}") from None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise ConfigError(
            "the OTLP endpoint is no http:// or https:// URL with a host "
            "(e.g. http://localhost:4318/v1/traces)"
        )
