"""The trace service's checks (attacks first): a record signed by another identity, a member
submitting another's records, a chain that does not verify or is not the agent's, a replay;
and the client's batching: exactly once, in order, one request per batch, through lost
answers and refusals."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.gates import GatesWorld, T, make_world
from tests.support.parties import Party, make_party
from troth.channel.verification import remember_nothing
from troth.clock import FixedClock
from troth.credentials import CredentialChain, RevocationKind
from troth.encoding import cbor
from troth.errors import DecodeError, TraceError, TraceFailure, Unreachable
from troth.identity import Identifier
from troth.node.services.trace import TraceClient
from troth.trace import Authority, Kind, RecordContent, ToolCall, TraceLog, verify_log
from troth.trace.batcher import TraceBatcher
from troth.trace.collect import TraceCollector
from troth.trace.dsse import encode_envelope, pae
from troth.trace.record import PAYLOAD_TYPE
from troth.trace.signing import open_envelope, sign_record
from troth.trace.submit import Receipts, Status, Submission, SubmittedRecord

F = TraceFailure
NOW = T + 10


@dataclasses.dataclass
class Service:
    """A collector over a log, as a node's trace service runs it (in memory, no channel)."""

    world: GatesWorld
    log: TraceLog
    collector: TraceCollector
    clock: FixedClock
    observed: list[Identifier]

    def submit(self, submission: Submission, submitter: Party | None) -> Receipts:
        wire = cbor.decode(cbor.encode(submission.to_cbor()))  # what travels
        who = None if submitter is None else submitter.identifier
        return self.collector.submit(Submission.from_cbor(wire), submitter=who, now=NOW)

    def head_of(self, party: Party) -> Receipts:
        return self.collector.head(party.identifier)


@pytest.fixture
def service(tmp_path: Path) -> Service:
    world = make_world()
    owner = make_party(world.vault, now=T)
    clock = FixedClock(NOW)
    log = TraceLog.open(tmp_path / "trace.db", clock=clock, signer=lambda now: owner.signer)
    observed: list[Identifier] = []
    collector = TraceCollector(
        log,
        verifier=lambda: world.verifier,
        feeds=world.feeds,
        observe=lambda identity: observed.append(identity.identifier),
        vouched=remember_nothing,
    )
    return Service(world, log, collector, clock, observed)


def tool(name: str, chain: bytes | None = None, n: int = 0) -> RecordContent:
    return RecordContent(
        Kind.TOOL_INVOCATION,
        tool=ToolCall(name),
        values={"args": {"n": n}},
        authority=None if chain is None else Authority.from_chain(chain),
    )


def batch_of(
    service: Service, party: Party, *contents: tuple[RecordContent, bytes | None]
) -> tuple[TraceBatcher, Submission]:
    batcher = TraceBatcher(lambda now: party.signer)
    batcher.set_head(service.head_of(party).head)
    for content, chain in contents:
        batcher.add(content, chain=chain, now=NOW)
    batch = batcher.next_batch(NOW)
    assert batch is not None
    return batcher, batch.submission


def reasons(receipts: Receipts) -> list[TraceFailure | None]:
    return [r.reason for r in receipts.results]


# -- what the service refuses ----------------------------------------------------------------


def test_a_member_submits_its_own_records(service: Service) -> None:
    support = service.world.support
    chain = service.world.support_chain
    batcher, submission = batch_of(service, support, (tool("refund", chain), chain))
    receipts = service.submit(submission, support)
    assert [(r.status, r.index) for r in receipts.results] == [(Status.APPENDED, 0)]
    assert receipts.head is not None
    assert receipts.head.seq == 0
    # store-or-extend saw the signer's history, then (the record appended) its chain's issuer
    assert service.observed == [support.identifier, service.world.authority.identifier]
    batcher.answered(receipts)
    assert service.log.chain(Authority.from_chain(chain).chain) == chain  # kept for verifiers
    assert verify_log(service.log).size == 1


def test_a_member_cannot_submit_records_another_identity_signed(service: Service) -> None:
    world = service.world
    _batcher, submission = batch_of(service, world.sub, (tool("lookup_order"), None))
    receipts = service.submit(submission, world.support)  # support relays sub's records
    assert reasons(receipts) == [F.SIGNER_INVALID]
    assert "submits only the records it signs" in receipts.results[0].detail
    assert service.log.size() == 0


def test_a_record_signed_with_another_identitys_key_is_refused(service: Service) -> None:
    world = service.world
    _batcher, honest = batch_of(service, world.support, (tool("refund"), None))
    _record, payload, _sig, keyid = open_envelope(honest.records[0].envelope)
    forged = encode_envelope(
        PAYLOAD_TYPE, payload, keyid, world.sub.signer.sign(pae(PAYLOAD_TYPE, payload))
    )
    receipts = service.submit(
        dataclasses.replace(
            honest, records=(SubmittedRecord(forged, honest.records[0].disclosures),)
        ),
        world.support,
    )
    assert reasons(receipts) == [F.BAD_SIGNATURE]
    # the forger names its own key instead: an attestation for another identity
    signer = dataclasses.replace(world.sub.signer, identity=world.support.identity)
    with pytest.raises(TraceError) as refused:
        sign_record(signer, tool("refund"), seq=0, prev=None, time=NOW)
    assert refused.value.reason is F.ATTESTATION_INVALID
    stolen = dataclasses.replace(honest, attestations=(world.sub.signer.attestation,))
    assert reasons(service.submit(stolen, world.support)) == [F.UNKNOWN_KEY]
    assert service.log.size() == 0


def revoke_subs_chain(world: GatesWorld) -> bytes:
    """The support agent revokes its delegation to the sub-agent; the chain."""
    chain = world.sub_chain
    link = CredentialChain.decode(chain).credentials[-1].hash
    world.revoke(RevocationKind.CREDENTIAL, link, now=T + 5)
    return chain


def test_a_revoked_chain_is_refused(service: Service) -> None:
    world = service.world
    chain = revoke_subs_chain(world)
    _batcher, submission = batch_of(service, world.sub, (tool("lookup_order", chain), chain))
    receipts = service.submit(submission, world.sub)
    assert reasons(receipts) == [F.CREDENTIAL_INVALID]
    assert "revoked" in receipts.results[0].detail
    assert service.log.size() == 0


def test_a_chain_that_is_not_the_agents_or_not_sent_is_refused(service: Service) -> None:
    world = service.world
    theirs = world.support_chain  # support's chain, named by sub's record
    _batcher, submission = batch_of(service, world.sub, (tool("lookup_order", theirs), theirs))
    assert reasons(service.submit(submission, world.sub)) == [F.CHAIN_MISMATCH]
    mine = world.sub_chain
    _batcher, unsent = batch_of(service, world.sub, (tool("lookup_order", mine), None))
    assert reasons(service.submit(unsent, world.sub)) == [F.CHAIN_MISMATCH]
    assert service.log.size() == 0


def test_a_chain_from_an_authority_the_node_does_not_trust_is_refused(
    service: Service, tmp_path: Path
) -> None:
    elsewhere = make_world()  # another authority's member
    _, submission = batch_of(
        service,
        elsewhere.support,
        (tool("refund", elsewhere.support_chain), elsewhere.support_chain),
    )
    receipts = service.submit(submission, elsewhere.support)
    assert reasons(receipts) == [F.CREDENTIAL_INVALID]


def test_a_revoked_signer_is_refused_whole(service: Service) -> None:
    world = service.world
    world.revoke(RevocationKind.IDENTITY, world.sub.identifier.digest, now=T + 5)
    _batcher, submission = batch_of(service, world.sub, (tool("a"), None), (tool("b"), None))
    receipts = service.submit(submission, world.sub)
    assert reasons(receipts) == [F.SIGNER_INVALID, F.SIGNER_INVALID]
    assert "revoked" in receipts.results[0].detail


def test_only_the_signers_own_authority_can_refuse_it(tmp_path: Path) -> None:
    """docs/formats.md, "Whose word counts on an identity": a co-trusted authority revoking
    another authority's member does not refuse that member's records; the member's own
    authority does. A submitter that shows no chain is judged by every held feed."""
    world, elsewhere = make_world(), make_world()
    elsewhere.revoke(RevocationKind.IDENTITY, world.support.identifier.digest, now=T + 5)
    owner = make_party(world.vault, now=T)
    log = TraceLog.open(tmp_path / "t.db", clock=FixedClock(NOW), signer=lambda now: owner.signer)
    collector = TraceCollector(
        log,
        verifier=lambda: world.verifier,
        feeds=lambda: {**world.feeds(), **elsewhere.feeds()},
        observe=lambda identity: None,
        vouched=remember_nothing,
    )
    support, chain = world.support, world.support_chain
    shown = world.verifier.verify(chain, presenter=support.identifier, feeds=world.feeds(), now=NOW)

    def submit(n: int, credentials: tuple[Any, ...]) -> list[TraceFailure | None]:
        batcher = TraceBatcher(lambda now: support.signer)
        head = collector.head(support.identifier).head
        batcher.set_head(head)
        batcher.add(tool("refund", chain, n), chain=chain, now=NOW)
        batch = batcher.next_batch(NOW)
        assert batch is not None
        receipts = collector.submit(
            batch.submission, submitter=support.identifier, now=NOW, credentials=credentials
        )
        return reasons(receipts)

    assert submit(0, (shown,)) == [None]  # elsewhere's word on acme's member: not counted
    assert submit(1, ()) == [F.SIGNER_INVALID]  # no chain shown: every held feed counts
    world.revoke(RevocationKind.IDENTITY, support.identifier.digest, now=T + 6)
    assert submit(1, (shown,)) == [F.SIGNER_INVALID]  # its own authority's word counts


def test_an_authority_that_vouched_for_the_signer_counts_when_its_chain_is_hidden(
    tmp_path: Path,
) -> None:
    """Review 20, finding 2, at the collector: the signer is a member of `world`'s authority
    and of `elsewhere`'s, and this node verified an `elsewhere` chain for it before (`vouched`).
    Elsewhere revokes it; its channel now shows the `world` chain only: elsewhere's word still
    counts. An authority that never vouched for it here is still not heard (finding 5)."""
    world, elsewhere = make_world(), make_world()
    elsewhere.revoke(RevocationKind.IDENTITY, world.support.identifier.digest, now=T + 5)
    owner = make_party(world.vault, now=T)
    log = TraceLog.open(tmp_path / "t.db", clock=FixedClock(NOW), signer=lambda now: owner.signer)
    support, chain = world.support, world.support_chain
    remembered: dict[Identifier, frozenset[Identifier]] = {}
    collector = TraceCollector(
        log,
        verifier=lambda: world.verifier,
        feeds=lambda: {**world.feeds(), **elsewhere.feeds()},
        observe=lambda identity: None,
        vouched=lambda identifier: remembered.get(identifier, frozenset()),
    )
    shown = world.verifier.verify(chain, presenter=support.identifier, feeds=world.feeds(), now=NOW)
    batcher = TraceBatcher(lambda now: support.signer)
    batcher.set_head(None)
    batcher.add(tool("refund", chain), chain=chain, now=NOW)
    batch = batcher.next_batch(NOW)
    assert batch is not None

    def submit() -> Receipts:
        return collector.submit(
            batch.submission, submitter=support.identifier, now=NOW, credentials=(shown,)
        )

    remembered[support.identifier] = frozenset({world.authority.identifier})
    assert reasons(submit()) == [None]  # only its shown root vouched: elsewhere is not heard
    remembered[support.identifier] = frozenset(
        {world.authority.identifier, elsewhere.authority.identifier}
    )
    refused = submit()
    assert reasons(refused) == [F.SIGNER_INVALID]
    assert f"revoked by {elsewhere.authority.identifier}" in refused.results[0].detail


def test_a_replayed_record_is_not_appended_twice(service: Service) -> None:
    world = service.world
    batcher, submission = batch_of(service, world.support, (tool("a"), None), (tool("b"), None))
    first = service.submit(submission, world.support)
    assert [r.index for r in first.results] == [0, 1]
    for _ in range(3):  # a lost answer, sent again; or an attacker replaying it
        again = service.submit(submission, world.support)
        assert [(r.status, r.index) for r in again.results] == [
            (Status.ALREADY, 0),
            (Status.ALREADY, 1),
        ]
    assert service.log.size() == 2
    # the same record id with other bytes (signed again): refused
    record = open_envelope(submission.records[0].envelope)[0]
    resigned = sign_record(
        world.support.signer,
        dataclasses.replace(tool("a"), id=record.id),
        seq=2,
        prev=first.head.hash if first.head else None,
        time=NOW,
    )
    replay = dataclasses.replace(
        submission, records=(SubmittedRecord(resigned.envelope, resigned.disclosures),)
    )
    assert reasons(service.submit(replay, world.support)) == [F.REPLAYED]
    assert service.log.size() == 2
    batcher.answered(first)


def test_a_local_caller_may_submit_anyones_records(service: Service) -> None:
    world = service.world
    _batcher, submission = batch_of(service, world.sub, (tool("lookup_order"), None))
    receipts = service.submit(submission, None)
    assert [r.status for r in receipts.results] == [Status.APPENDED]


def test_a_forged_disclosure_is_refused(service: Service) -> None:
    world = service.world
    _batcher, submission = batch_of(service, world.support, (tool("refund", n=20), None))
    item = submission.records[0]
    other = dataclasses.replace(item.disclosures["args"], value=b'{"n":5000}')
    forged = dataclasses.replace(item, disclosures={"args": other})
    receipts = service.submit(dataclasses.replace(submission, records=(forged,)), world.support)
    assert reasons(receipts) == [F.DISCLOSURE_MISMATCH]


def test_a_submission_over_the_limits_does_not_decode(service: Service) -> None:
    world = service.world
    _batcher, submission = batch_of(service, world.support, (tool("a"), None))
    value = submission.to_cbor()
    value[5] = value[5] * 257
    with pytest.raises(DecodeError, match="records: 1 to 256"):
        Submission.from_cbor(value)
    value = submission.to_cbor()
    value[3] = [world.support.signer.attestation] * 5
    with pytest.raises(DecodeError, match="attestations: 1 to 4"):
        Submission.from_cbor(value)


# -- the client: batching, exactly once, in order --------------------------------------------


class FlakyService:
    """The collector behind an unreliable link: some requests are lost on the way, some
    answers on the way back (after the batch was appended)."""

    def __init__(self, service: Service, party: Party, seed: int = 0, loss: float = 0.2) -> None:
        self.service = service
        self.party = party
        self.loss = loss
        self.random = random.Random(seed)
        self.requests = 0
        self.lost = 0

    async def send(self, method: str, arguments: Any) -> Any:
        self.requests += 1
        await asyncio.sleep(0)
        fate = self.random.random()
        if fate < self.loss:
            self.lost += 1
            raise Unreachable("the request was lost")
        if method == "head":
            answer = self.service.collector.head(self.party.identifier)
        else:
            submission = Submission.from_cbor(cbor.decode(cbor.encode(arguments)))
            answer = self.service.collector.submit(
                submission, submitter=self.party.identifier, now=self.service.clock.now()
            )
        if fate < 2 * self.loss:
            self.lost += 1
            raise Unreachable("the answer was lost")
        return cbor.decode(cbor.encode(answer.to_cbor()))


def client_for(flaky: FlakyService, **options: Any) -> TraceClient:
    batcher = TraceBatcher(lambda now: flaky.party.signer, **options)
    return TraceClient(
        flaky.send,
        batcher,
        clock=flaky.service.clock,
        flush_seconds=0.01,
        jitter=lambda: 0.0,
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batching_delivers_exactly_once_in_order(service: Service, seed: int) -> None:
    flaky = FlakyService(service, service.world.support, seed)

    async def main() -> list[Any]:
        client = client_for(flaky, batch_records=16)
        client.start()
        queued = []
        for n in range(200):
            queued.append(client.record(tool("refund", n=n)))
            if n % 37 == 0:
                await asyncio.sleep(0.005)
        await client.flush(30)
        await client.stop()
        return queued

    queued = asyncio.run(main())
    assert flaky.lost > 0  # the link did lose requests and answers
    indices = [q.result() for q in queued]
    assert indices == sorted(indices)
    assert len(set(indices)) == 200
    assert service.log.size() == 200  # nothing twice
    seen = [service.log.disclosures(q.record)["args"].value for q in queued]
    assert seen == [f'{{"n":{n}}}'.encode() for n in range(200)]
    report = verify_log(service.log)
    assert (report.size, report.agents) == (200, 1)


def test_a_busy_agent_sends_one_request_per_batch(service: Service) -> None:
    flaky = FlakyService(service, service.world.support, loss=0.0)

    async def main() -> TraceClient:
        client = client_for(flaky)
        for n in range(600):
            client.record(tool("refund", n=n))
        client.start()
        await client.flush(30)
        await client.stop()
        return client

    client = asyncio.run(main())
    assert client.batcher.batches == 3  # 256 + 256 + 88
    assert flaky.requests == 1 + 3  # the head, then one request per batch
    assert service.log.size() == 600


def test_a_refused_record_fails_alone_and_later_ones_are_signed_again(service: Service) -> None:
    world = service.world
    chain = revoke_subs_chain(world)
    flaky = FlakyService(service, world.sub, loss=0.0)

    async def main() -> list[Any]:
        client = client_for(flaky)
        queued = [
            client.record(tool("a")),
            client.record(tool("b", chain), chain=chain),  # its chain is revoked
            client.record(tool("c")),
            client.record(tool("d")),
        ]
        await client.flush(10)
        await client.stop()
        return queued

    queued = asyncio.run(main())
    with pytest.raises(TraceError) as refused:
        queued[1].result()
    assert refused.value.reason is F.CREDENTIAL_INVALID
    assert [q.result() for q in (queued[0], queued[2], queued[3])] == [0, 1, 2]
    assert verify_log(service.log).size == 3


def test_a_full_queue_refuses_the_next_record(service: Service) -> None:
    batcher = TraceBatcher(lambda now: service.world.support.signer, queue_size=3)
    for n in range(3):
        batcher.add(tool("a", n=n), now=NOW)
    with pytest.raises(TraceError) as full:
        batcher.add(tool("a"), now=NOW)
    assert full.value.reason is F.OVER_LIMIT


def test_a_batch_is_resent_byte_for_byte_until_answered(service: Service) -> None:
    world = service.world
    batcher = TraceBatcher(lambda now: world.support.signer)
    batcher.set_head(None)
    batcher.add(tool("a"), now=NOW)
    first = batcher.next_batch(NOW)
    batcher.add(tool("b"), now=NOW)
    again = batcher.next_batch(NOW + 60)
    assert first is again  # the unanswered batch, not a new one
    assert first is not None
    receipts = service.submit(first.submission, world.support)
    batcher.answered(receipts)
    second = batcher.next_batch(NOW)
    assert second is not None
    assert len(second.items) == 1


# -- the decoders: parse or raise DecodeError --------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63),
    st.text(max_size=8),
    st.binary(max_size=40),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(st.sampled_from(["args", "result", "x"]), children, max_size=3)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_a_submission_decodes_or_raises_decode_error(value: Any) -> None:
    for candidate in (
        value,
        ["troth.trace.submit", 1, *(value if isinstance(value, list) else [])],
    ):
        with contextlib.suppress(DecodeError):
            Submission.from_cbor(candidate)
        with contextlib.suppress(DecodeError):
            Receipts.from_cbor(["troth.trace.receipts", 1, candidate, candidate, None], expected=1)


def test_a_submission_round_trips(service: Service) -> None:
    world = service.world
    chain = world.support_chain
    _batcher, submission = batch_of(service, world.support, (tool("a", chain, n=1), chain))
    assert Submission.from_cbor(cbor.decode(cbor.encode(submission.to_cbor()))) == submission
    assert submission.size() >= len(cbor.encode(submission.to_cbor()))
