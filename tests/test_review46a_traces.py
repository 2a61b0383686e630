"""Review 46a, trace collection under hostile input (the `trace` service, the collector, the
client's batcher and outbox, the span processor, the CLI reading files handed over).

1. The service's `prove` answered the bundle as `json.dumps(bundle, sort_keys=True)`: ASCII
   escapes, so each non-ASCII character of a disclosed value became `\\uXXXX` (6 bytes for a
   2- or 3-byte character, 12 for a 4-byte one). A member's own record, submitted and
   appended within the submission's 1 MiB (two disclosed values of 65,000 emoji: 520 KB),
   made a 1.5 MB answer, over MAX_SERVICE_MESSAGE: the node answered "the answer is over the
   service limit" (and logged an error) each time, so the member could never get the proof
   of a record the node holds. docs/protocols.md says the answer is the bundle "as `troth
   trace prove`" writes it: `bundle_text` (UTF-8, compact values), which is 523 KB here.
"""

from __future__ import annotations

import asyncio
import json
import types
from pathlib import Path
from typing import Any

from tests.test_review27t_collect import NOW, _always, _batch, _collector
from troth import limits
from troth.channel.verification import VerifiedPeer
from troth.encoding import cbor
from troth.errors import RemoteError
from troth.node.access import Decision, LocalCaller, PeerCaller
from troth.node.services.base import RequestContext
from troth.node.services.trace import TraceService
from troth.trace.batcher import TraceBatcher
from troth.trace.collect import TraceCollector
from troth.trace.export import bundle_text, prove, verify_bundle
from troth.trace.record import Kind, ToolCall
from troth.trace.signing import RecordContent, open_envelope
from troth.trace.submit import Receipts


def _service(collector: TraceCollector) -> TraceService:
    """A trace service over `collector`, its storage work run inline."""

    async def run(function: Any) -> Any:
        return function()

    trust: Any = types.SimpleNamespace(anchors=())
    worker: Any = types.SimpleNamespace(run=run)
    service = TraceService(types.SimpleNamespace(), trust, worker)  # type: ignore[arg-type]
    service._collector = collector
    return service


def test_a_members_record_with_non_ascii_values_is_proved_within_the_answer_limit(
    tmp_path: Path,
) -> None:
    """Trace 1: a record whose disclosed values are non-ASCII text (4-byte characters), within
    the submission limit, is proved through the service in an answer within
    MAX_SERVICE_MESSAGE: the bundle as `troth trace prove` writes it, which verifies. Was a
    strict xfail until `TraceService.prove` answered `bundle_text` (not `json.dumps`)."""
    world, log, collector = _collector(tmp_path)
    member = world.support
    text = "\U0001f600" * 65_000  # 260,000 bytes of UTF-8: within MAX_TRACE_DISCLOSURE_BYTES
    content = RecordContent(
        Kind.TOOL_INVOCATION, tool=ToolCall("read"), values={"args": text, "result": text}
    )
    submission = _batch(collector, member.signer, content)
    assert len(cbor.encode(submission.to_cbor())) < limits.MAX_SERVICE_MESSAGE
    (result,) = collector.submit(submission, submitter=None, now=log.clock.now()).results
    assert result.delivered, result.detail
    record = open_envelope(submission.records[0].envelope)[0].id
    context = RequestContext(LocalCaller(), (), Decision(True), log.clock.now())
    answer = asyncio.run(_service(collector).prove([record], context))
    assert len(cbor.encode(answer)) < limits.MAX_SERVICE_MESSAGE - 64  # the response's frame
    assert answer == bundle_text(prove(log, record), lines=True)
    report = verify_bundle(answer.encode())
    assert report.record.id == record
    assert json.loads(answer)["disclosures"]["args"]["value"] == text


def _member_context(world: Any, now: int) -> RequestContext:
    """A request of member `support` over a secure channel, its chain verified."""
    credential = world.credential(world.support_chain, world.support)
    peer = VerifiedPeer(world.support.identity, (credential,))
    return RequestContext(PeerCaller(peer, "channel-1"), (), Decision(True), now)


def test_tiny_submissions_are_charged_at_least_a_submissions_cost(tmp_path: Path) -> None:
    """Trace 2: a member sends one-record submissions (about 1.3 KB each, its own records,
    valid) as fast as it can. Each costs the node a durable commit of its log on the storage
    thread (about 3 ms here, whatever its size), and the byte budget
    (TRACE_SUBMIT_BURST_BYTES, then TRACE_SUBMIT_BYTES_PER_SECOND) let through about 12,900
    of them at once and then 800 a second: the storage thread busy for 40 s, then 2.4 s of
    work per second, every other member's submission (and all the node's storage work)
    waiting behind. Each submission now costs at least TRACE_SUBMIT_CHARGE of the budget: at
    most the burst's share of them at once, past it `busy`. Was a strict xfail until
    `TraceService.submit` charged each submission at least TRACE_SUBMIT_CHARGE."""
    world, log, collector = _collector(tmp_path)
    service = _service(collector)
    context = _member_context(world, log.clock.now())
    batcher = TraceBatcher(_always(world.support.signer))
    batcher.set_head(collector.head(world.support.identifier).head)
    most = limits.TRACE_SUBMIT_BURST_BYTES // limits.TRACE_SUBMIT_CHARGE
    served, refusal = 0, ""
    for _ in range(most + 8):
        batcher.add(RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("x")), now=NOW)
        batch = batcher.next_batch(NOW)
        assert batch is not None
        assert batch.submission.size() < 2048
        try:
            answer = asyncio.run(service.submit(batch.submission.to_cbor(), context))
        except RemoteError as exc:
            refusal = str(exc)
            break
        receipts = Receipts.from_cbor(answer, expected=1)
        assert receipts.results[0].delivered, receipts.results[0].detail
        batcher.answered(receipts)
        served += 1
    assert served == most
    assert "busy" in refusal


def test_undecodable_submissions_are_charged_too(tmp_path: Path) -> None:
    """Trace 2's rule for what does not decode (left by 46a, closed by the lead): the byte
    budget's docstring says every submission counts, valid or not, but one that was not a
    submission was refused before any charge, so a member could send them without end. Each
    now costs TRACE_SUBMIT_CHARGE: at most the burst's share at once, past it `busy`."""
    world, log, collector = _collector(tmp_path)
    service = _service(collector)
    context = _member_context(world, log.clock.now())
    most = limits.TRACE_SUBMIT_BURST_BYTES // limits.TRACE_SUBMIT_CHARGE
    refusals = []
    for _ in range(most + 1):
        try:
            asyncio.run(service.submit(["not", "a", "submission"], context))
        except RemoteError as exc:
            refusals.append(str(exc))
    assert all("not a submission" in refusal for refusal in refusals[:most])
    assert "busy" in refusals[most]
