"""Review 47b, limits end to end: what one side may send, the other side must accept
(src/troth/limits/).

1. The trace service's `prove` of a record at the submission limit. A submission is at most
   MAX_SERVICE_MESSAGE (1 MiB) and a record's disclosed values may fill it (each value within
   MAX_TRACE_DISCLOSURE_BYTES); the record's proof bundle carries those values again, and
   beside them its envelope, the record read out of it, the signer's and the log's histories
   and attestations in base64, the chain it names in base64, the inclusion proof and the
   checkpoint: an answer larger than MAX_SERVICE_MESSAGE. The node appended the record and
   answered each `prove` of it "the answer is over the service limit": a record it accepted
   could never be proved. Now a record's disclosed values together are at most
   MAX_TRACE_RECORD_DISCLOSURE_BYTES (MAX_SERVICE_MESSAGE less MAX_TRACE_PROOF_OVERHEAD, what
   a bundle carries beside them at every other limit): its signer refuses more
   (`sign_record`), so does the collector (`verify_envelope`), and a bundle carries each value
   as the exact canonical JSON committed to (`bundle_text`).

   With it: a bundle carried every attestation the log ever kept for its own identity (one
   per renewal of its signing key, about monthly, without bound); it carries the one whose
   key signed the bundle's checkpoint. A made-up tool name is kept in clear up to
   MAX_TRACE_DENIED_DISCLOSURE_BYTES (a gate's, a span's record), so what discloses whatever it
   is given stays within the bound.
"""

from __future__ import annotations

import asyncio
import types
from pathlib import Path
from typing import Any

import pytest

from tests.support.gates import T
from tests.support.parties import make_party, signer_as
from tests.test_review27t_collect import NOW, _always, _collector
from tests.test_review46a_traces import _service
from troth import limits
from troth.channel.packets import PACKET_LIMIT
from troth.clock import FixedClock
from troth.crypto import KeyType
from troth.encoding import cbor
from troth.errors import TraceError, TraceFailure
from troth.identity import Identifier, Signer, new_identity, rotate_identity
from troth.integrations.mcp.frames import McpFrame
from troth.node.access import Decision, LocalCaller
from troth.node.services.base import RequestContext
from troth.node.services.protocol import MAX_REQUEST_ID, encode_request
from troth.routing.address import KINDS, Address
from troth.routing.message import RoutedMessage
from troth.secrets.endpoint import BrokerCaller, BrokerEndpoint
from troth.secrets.lease import EndReason, Lease, LeaseHandle, LeaseState
from troth.secrets.wire import decode_leases
from troth.trace.batcher import SUBMIT_ROOM, TraceBatcher
from troth.trace.export import bundle_text, prove, verify_bundle
from troth.trace.log import TraceLog
from troth.trace.record import REDACTABLE, Kind, ToolCall, disclosed
from troth.trace.recorder import TraceRecorder
from troth.trace.signing import RecordContent, open_envelope
from troth.vault import SoftwareVault


def _largest_signer() -> Signer:
    """A signer whose history has MAX_IDENTITY_CHANGES changes of P-256 keys."""
    vault = SoftwareVault()
    start = T - 1000
    valid_for = 10 * 365 * 86_400
    held = new_identity(vault, KeyType.P256, now=start, valid_for=valid_for)
    for n in range(limits.MAX_IDENTITY_CHANGES - 1):
        held = rotate_identity(
            vault,
            held.identity,
            held.primary,
            held.next_key,
            now=start + n + 1,
            valid_for=valid_for,
        )
    assert len(held.identity.changes) == limits.MAX_IDENTITY_CHANGES
    return signer_as(vault, held.primary, held.identity, now=T, key_type=KeyType.P256)


def _content(each: int) -> RecordContent:
    return RecordContent(
        Kind.TOOL_INVOCATION,
        tool=ToolCall("t" * limits.MAX_TRACE_TEXT, "c" * limits.MAX_TRACE_TEXT),
        values=dict.fromkeys(REDACTABLE, "v" * (each - 2)),  # each value `each` bytes
    )


def _largest(log_now: int, signer: Signer, each: int) -> tuple[TraceBatcher, Any]:
    batcher = TraceBatcher(_always(signer))
    batcher.set_head(None)
    queued = batcher.add(_content(each), now=log_now)
    return batcher, queued


def test_every_record_the_service_accepts_is_proved_within_the_answer_limit(
    tmp_path: Path,
) -> None:
    """Limits 1: the largest record a caller can submit (its disclosed values as large as one
    submission holds and the record bound allows, beside the largest history; a chain the
    record names, kept by the log from an earlier submission, would add up to MAX_CHAIN_BYTES
    more, which MAX_TRACE_PROOF_OVERHEAD counts), once appended, is proved through the service
    in an answer within MAX_SERVICE_MESSAGE, which verifies. Was a strict xfail (a 1,053,562
    byte answer) until records were bounded by MAX_TRACE_RECORD_DISCLOSURE_BYTES."""
    _world, _log, collector = _collector(tmp_path)
    signer = _largest_signer()
    room = limits.MAX_SERVICE_MESSAGE - SUBMIT_ROOM
    each = limits.MAX_TRACE_RECORD_DISCLOSURE_BYTES // len(REDACTABLE)
    batcher, queued = _largest(NOW, signer, each)
    batch = batcher.next_batch(NOW)
    assert batch is not None, queued.error  # the signer may send it
    assert len(cbor.encode(batch.submission.to_cbor())) <= room
    (result,) = collector.submit(batch.submission, submitter=None, now=NOW).results
    assert result.delivered, result.detail  # the node accepts it
    record = open_envelope(batch.submission.records[0].envelope)[0].id
    context = RequestContext(LocalCaller(), (), Decision(True), NOW)
    answer = asyncio.run(_service(collector).prove([record], context))
    frame = len(cbor.encode(["troth.service.response", 2, (1 << 64) - 1, True, answer]))
    assert frame <= limits.MAX_SERVICE_MESSAGE
    assert verify_bundle(answer.encode()).record.id == record
    # what the bundle holds beside the values is within the overhead counted for it
    values = sum(len(d.value) for d in batch.submission.records[0].disclosures.values())
    assert frame - values <= limits.MAX_TRACE_PROOF_OVERHEAD - 4 * -(-limits.MAX_CHAIN_BYTES // 3)


def test_a_record_over_the_bound_is_refused_by_its_signer_and_the_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Limits 1: one byte more is refused by the signer (TraceError OVER_LIMIT, never queued:
    refused by the batcher's `add`, review 74s, records3 2) and, made by a signer that does not
    check, by the collector (refused OVER_LIMIT, not appended)."""
    _world, log, collector = _collector(tmp_path)
    signer = make_party(SoftwareVault(), now=T).signer
    each = limits.MAX_TRACE_RECORD_DISCLOSURE_BYTES // len(REDACTABLE) + 1
    with pytest.raises(TraceError) as refused:
        _largest(NOW, signer, each)
    assert refused.value.reason is TraceFailure.OVER_LIMIT
    with monkeypatch.context() as patched:  # a signer that does not check
        patched.setattr(limits, "MAX_TRACE_RECORD_DISCLOSURE_BYTES", limits.MAX_SERVICE_MESSAGE)
        batcher, queued = _largest(NOW, signer, each)
        batch = batcher.next_batch(NOW)
    assert batch is not None, queued.error
    (result,) = collector.submit(batch.submission, submitter=None, now=NOW).results
    assert result.reason is TraceFailure.OVER_LIMIT, result.detail
    assert log.size() == 0


def test_a_bundle_carries_the_log_key_that_signed_its_checkpoint_only(tmp_path: Path) -> None:
    """Limits 1 (the overhead's bound): a log whose signing key was renewed before each of
    three checkpoints keeps three attestations; a bundle carried all of them (one per renewal,
    without bound), now the one whose key signed its checkpoint, and verifies."""
    vault = SoftwareVault()
    owner = make_party(vault, now=T)
    renewals = iter(range(3))

    def renewed(now: int) -> Signer:
        next(renewals, None)
        return signer_as(vault, owner.primary, owner.identity, now=T)

    clock = FixedClock(NOW)
    log = TraceLog.open(tmp_path / "trace.db", clock=clock, signer=renewed)
    agent = make_party(vault, now=T)
    sink = TraceRecorder(log, _always(agent.signer), clock=clock)
    for n in range(3):
        sink.record(RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall(f"t{n}")))
        checkpoint = log.checkpoint()
    assert len(log.attestations_of(owner.identifier)) >= 3
    record = open_envelope(next(iter(log.stored())).envelope)[0].id
    bundle = prove(log, record)
    assert len(bundle["log"]["attestations"]) == 1
    assert verify_bundle(bundle_text(bundle).encode()).checkpoint.size == checkpoint.size
    log.close()


def test_a_disclosed_value_takes_in_a_bundle_the_bytes_committed_to(tmp_path: Path) -> None:
    """Limits 1 (the overhead's premise): a value of numbers Python writes longer than RFC 8785
    (`1e-07` for `1e-7`: 6/5 of its size) is written in the bundle as committed to."""
    _world, log, collector = _collector(tmp_path)
    signer = make_party(SoftwareVault(), now=T).signer
    batcher = TraceBatcher(_always(signer))
    batcher.set_head(None)
    batcher.add(
        RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("t"), values={"args": [1e-7] * 1000}),
        now=NOW,
    )
    batch = batcher.next_batch(NOW)
    assert batch is not None
    (result,) = collector.submit(batch.submission, submitter=None, now=NOW).results
    assert result.delivered, result.detail
    (committed,) = batch.submission.records[0].disclosures.values()
    record = open_envelope(batch.submission.records[0].envelope)[0].id
    text = bundle_text(prove(log, record))
    assert committed.value.decode() in text
    assert "1e-07" not in text
    assert verify_bundle(text.encode()).disclosed == ("args",)


def test_what_discloses_whatever_it_is_given_stays_within_the_record_bound() -> None:
    """Limits 1: a gate's recorder and the span processor disclose at most two values of
    MAX_TRACE_DISCLOSURE_BYTES (args and result) and a made-up tool name of at most
    MAX_TRACE_DENIED_DISCLOSURE_BYTES (each in clear, or its hash and size), with room for
    their wrappers: within MAX_TRACE_RECORD_DISCLOSURE_BYTES."""
    most = 2 * limits.MAX_TRACE_DISCLOSURE_BYTES + limits.MAX_TRACE_DENIED_DISCLOSURE_BYTES
    assert most + 1024 <= limits.MAX_TRACE_RECORD_DISCLOSURE_BYTES
    name = "x" * (limits.MAX_TRACE_DENIED_DISCLOSURE_BYTES + 1)
    assert disclosed(name, limits.MAX_TRACE_DENIED_DISCLOSURE_BYTES) != name


# -- 2. an MCP frame inside its `send` request --------------------------------------------------


def test_an_mcp_frame_at_its_limit_fits_the_send_request_that_carries_it() -> None:
    """Limits 2: a client sends each MCP frame as a service request `send [frame, reply
    address]` (troth.integrations.mcp.channel). MAX_MCP_FRAME was MAX_SERVICE_MESSAGE itself,
    so a frame `frames_of` made at the limit (a tools/call of ~1 MiB of arguments) was over
    the request that carries it: `encode_request` refused it ("a request over the service
    limit") and the call failed, instead of the frame limit's own JSON-RPC error. Was a strict
    xfail until MAX_MCP_FRAME left room for the request around it."""
    session = bytes(16)
    size = limits.MAX_MCP_FRAME - 40
    frame = McpFrame(session, b"x" * size).encode()
    while len(frame) < limits.MAX_MCP_FRAME:  # exactly at the limit
        size += 1
        frame = McpFrame(session, b"x" * size).encode()
    reply = "\U0001f600" * limits.MAX_ADDRESS_TEXT  # the longest reply address
    request = encode_request(MAX_REQUEST_ID, "send", [frame, reply])
    assert len(request) <= limits.MAX_SERVICE_MESSAGE


# -- 3. a broker's `list` answer --------------------------------------------------------------


def _lease(n: int, scope_text: int) -> Lease:
    """An ended lease of a secret that offers MAX_LEASE_SCOPES scopes of `scope_text`
    characters (ASCII scope tokens)."""
    agent = Identifier(bytes(32))
    scopes = tuple(f"{i:02d}" + "x" * (scope_text - 2) for i in range(limits.MAX_LEASE_SCOPES))
    long = 1 << 40
    return Lease(
        LeaseHandle(n.to_bytes(16, "big")),
        agent,
        "s" * limits.MAX_SECRET_NAME,
        "http-inject",
        scopes,
        bytes(32),
        agent,
        long,
        long,
        3600,
        3600,
        long,
        LeaseState.REVOKED,
        long,
        EndReason.EXPIRED,
        None,
    )


def test_a_list_of_ended_leases_fits_the_service_answer() -> None:
    """Limits 3: `list` (ended leases too) answered up to MAX_LEASE_LIST leases, bounded by
    count only: a member whose secret offers 16 scopes of 48 characters and that took 1,000
    leases over time was answered 1.3 MB, over MAX_SERVICE_MESSAGE: the node answered "the
    answer is over the service limit" each time, and the member could never list its leases.
    The newest that fit are answered (a decoder still reads up to MAX_LEASE_LIST). Was a
    strict xfail until `BrokerEndpoint` bounded the answer by MAX_LEASE_LIST_BYTES too."""
    leases = [_lease(n, 48) for n in range(limits.MAX_LEASE_LIST)]
    broker: Any = types.SimpleNamespace(leases=lambda actor, include_ended: leases)
    caller = BrokerCaller(Identifier(bytes(32)))
    answer = BrokerEndpoint(broker).handle("list", {"ended": True}, caller, 1 << 40)
    frame = cbor.encode(["troth.service.response", 2, MAX_REQUEST_ID, True, answer])
    assert len(frame) <= limits.MAX_SERVICE_MESSAGE
    shown = decode_leases(answer)
    assert 0 < len(shown) < limits.MAX_LEASE_LIST
    assert shown == leases[: len(shown)]  # the newest first, as the broker gave them


# -- 4. a channel packet on the longest route (open: troth.channel.packets) ---------------------


def test_a_full_packet_on_the_longest_route_reaches_the_next_hop() -> None:
    """Limits 4: a channel fills a packet up to PACKET_LIMIT and routes it; a route of
    MAX_ROUTE_LENGTH hops of MAX_ADDRESS_TEXT characters (`parse_route` takes it) makes a route
    header of 4,293 bytes, and the router writes headers up to MAX_ROUTE_HEADER_BYTES. With
    PACKET_LIMIT = MAX_TRANSPORT_FRAME - 4096 the message was 131,269 bytes, over
    MAX_TRANSPORT_FRAME: the next hop's decoder refused it and the channel's full packets never
    arrived (a strict xfail until PACKET_LIMIT left room for the largest header and its
    length)."""
    assert PACKET_LIMIT + 2 + limits.MAX_ROUTE_HEADER_BYTES <= limits.MAX_TRANSPORT_FRAME
    kind = max(KINDS, key=len)
    onward = tuple(
        Address(kind, f"{n:02d}" + "a" * (limits.MAX_ADDRESS_TEXT - 2))
        for n in range(limits.MAX_ROUTE_LENGTH)
    )
    data = RoutedMessage(onward, (), b"x" * PACKET_LIMIT).encode()
    assert RoutedMessage.decode(data).onward == onward
