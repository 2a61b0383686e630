"""The log: durable appends with group commit, what it refuses at append time, checkpoints and
proofs, concurrent writers (threads and processes), redaction."""

from __future__ import annotations

import json
import multiprocessing
import threading
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.traces import DAY, NOW, Held, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.credentials.attributes import Attributes
from troth.credentials.format import CredentialChain
from troth.credentials.issue import delegate, issue_credential
from troth.errors import ConfigError, TraceError, TraceFailure
from troth.identity import rotate_identity
from troth.trace import Authority, Kind, RecordContent, TraceLog
from troth.trace.checkpoint import parse_checkpoint
from troth.trace.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from troth.trace.record import REDACTABLE, Disclosure, encode_disclosures
from troth.trace.signing import sign_record
from troth.trace.stored import decode_disclosures
from troth.trace.verify import verify_log


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def log(tmp_path: Path, clock: FixedClock) -> TraceLog:
    return open_log(tmp_path / "trace.db", clock)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(REDACTABLE),
        st.tuples(st.binary(min_size=16, max_size=16), st.text(max_size=30)),
    )
)
def test_stored_disclosures_are_plain_json(values: dict[str, tuple[bytes, str]]) -> None:
    """The log stores disclosures as json.dumps of {field: [salt hex, value text]} would (the
    encoder writes it directly), and reads them back."""
    disclosures = {
        name: Disclosure(salt, json.dumps(text, ensure_ascii=False).encode())
        for name, (salt, text) in values.items()
    }
    stored = encode_disclosures(disclosures)
    if not disclosures:
        assert stored is None
        return
    expected = {name: [d.salt.hex(), d.value.decode()] for name, d in disclosures.items()}
    assert stored == json.dumps(expected, separators=(",", ":")).encode()
    assert decode_disclosures(stored) == disclosures


def _reason(call: object) -> TraceFailure:
    with pytest.raises(TraceError) as caught:
        call()  # type: ignore[operator]
    return caught.value.reason


def test_appends_are_contiguous_and_chained(log: TraceLog, clock: FixedClock) -> None:
    agent = Held()
    rec = recorder(log, agent, clock)
    receipts = [rec.record(tool_call()) for _ in range(5)]
    assert [r.index for r in receipts] == list(range(5))
    assert log.size() == 5
    assert log.head(agent.identifier) == (4, receipts[-1].hash, NOW)
    for receipt in receipts:
        assert log.find(receipt.record).leaf == leaf_hash(log.find(receipt.record).envelope)


def test_replay_and_chain_refusals(log: TraceLog, clock: FixedClock) -> None:
    agent = Held()
    signer = agent.signer()
    first = sign_record(signer, tool_call(), seq=0, prev=None, time=NOW)
    log.append(first)
    assert _reason(lambda: log.append(first)) is TraceFailure.REPLAYED
    gap = sign_record(signer, tool_call(), seq=2, prev=first.hash, time=NOW)
    assert _reason(lambda: log.append(gap)) is TraceFailure.CHAIN_BROKEN
    wrong_prev = sign_record(signer, tool_call(), seq=1, prev=bytes(32), time=NOW)
    assert _reason(lambda: log.append(wrong_prev)) is TraceFailure.CHAIN_BROKEN
    second_first = sign_record(signer, tool_call(), seq=0, prev=None, time=NOW)
    assert _reason(lambda: log.append(second_first)) is TraceFailure.CHAIN_BROKEN
    earlier = sign_record(signer, tool_call(), seq=1, prev=first.hash, time=NOW - 1)
    assert _reason(lambda: log.append(earlier)) is TraceFailure.TIME_REVERSED
    assert log.size() == 1


@pytest.mark.parametrize("position", [0, 499, 500, 700])
def test_replay_found_in_any_chunk_of_a_batch(
    log: TraceLog, clock: FixedClock, position: int
) -> None:
    """A batch looks up its record ids in chunks of 500: a stored record replayed at any
    position of a large batch is refused, the others are kept."""
    replayer, other = Held(), Held()
    stored = sign_record(replayer.signer(), tool_call(), seq=0, prev=None, time=NOW)
    log.append(stored)
    fresh, prev = [], None
    for seq in range(800):
        fresh.append(sign_record(other.signer(), tool_call(), seq=seq, prev=prev, time=NOW))
        prev = fresh[-1].hash
    batch = [*fresh[:position], stored, *fresh[position:]]
    results = log.append_many(batch)
    refused = [n for n, r in enumerate(results) if isinstance(r, TraceError)]
    assert refused == [position]
    replayed = results[position]
    assert isinstance(replayed, TraceError)
    assert replayed.reason is TraceFailure.REPLAYED
    assert log.size() == 801
    assert verify_log(log).size == 801


def test_time_window(log: TraceLog, clock: FixedClock) -> None:
    agent = Held(now=NOW - DAY)
    signer = agent.signer(NOW - DAY)
    old = sign_record(signer, tool_call(), seq=0, prev=None, time=NOW - 301)
    assert _reason(lambda: log.append(old)) is TraceFailure.TIME_OUT_OF_RANGE
    future = sign_record(signer, tool_call(), seq=0, prev=None, time=NOW + 301)
    assert _reason(lambda: log.append(future)) is TraceFailure.TIME_OUT_OF_RANGE
    log.append(sign_record(signer, tool_call(), seq=0, prev=None, time=NOW + 300))


def test_stale_key_refused_after_the_log_learns_a_rotation(
    log: TraceLog, clock: FixedClock
) -> None:
    """The collector refuses keys of an older change than the newest history it holds; the
    recorder of the rotated agent retries with its new key."""
    agent = Held()
    old = agent.signer()
    first = sign_record(old, tool_call(), seq=0, prev=None, time=NOW)
    log.append(first)
    clock.advance(DAY)
    agent.rotate(NOW + DAY)
    second = sign_record(
        agent.signer(NOW + DAY), tool_call(), seq=1, prev=first.hash, time=NOW + DAY
    )
    log.append(second)
    thief = sign_record(old, tool_call(), seq=2, prev=second.hash, time=NOW + DAY)
    assert _reason(lambda: log.append(thief)) is TraceFailure.ATTESTATION_STALE
    report = verify_log(log)
    assert report.size == 2


def test_a_forked_history_is_refused(log: TraceLog, clock: FixedClock) -> None:
    """Two rotations of the same state (a thief with a full backup): the log keeps the first
    history it saw; a record under the other branch is refused."""
    agent = Held()
    base = agent.held
    first = sign_record(agent.signer(), tool_call(), seq=0, prev=None, time=NOW)
    log.append(first)
    agent.rotate(NOW + 10)
    log.append(sign_record(agent.signer(), tool_call(), seq=1, prev=first.hash, time=NOW + 10))
    thief = Held.__new__(Held)
    thief.vault, thief._signer = agent.vault, None
    thief.held = rotate_identity(
        agent.vault, base.identity, base.primary, base.next_key, now=NOW + 20, valid_for=DAY
    )
    forged = sign_record(thief.signer(NOW + 20), tool_call(), seq=1, prev=first.hash, time=NOW + 20)
    assert forged.record.agent == agent.identifier
    assert _reason(lambda: log.append(forged)) is TraceFailure.CHAIN_BROKEN
    forged_next = sign_record(
        thief.signer(NOW + 20),
        tool_call(),
        seq=2,
        prev=_head(log, agent),
        time=NOW + 20,
    )
    assert _reason(lambda: log.append(forged_next)) is TraceFailure.SIGNER_INVALID


def _head(log: TraceLog, agent: Held) -> bytes:
    head = log.head(agent.identifier)
    assert head is not None
    return head[1]


def test_recorder_recovers_from_a_second_writer(tmp_path: Path, clock: FixedClock) -> None:
    owner = Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    agent = Held()
    one, two = recorder(log, agent, clock), recorder(log, agent, clock)
    one.record(tool_call())
    receipt = two.record(tool_call())  # its head was stale: refused, reloaded, signed again
    assert receipt.index == 1
    assert one.record(tool_call()).index == 2
    verify_log(log)


def test_a_second_handle_sees_what_the_other_appended(tmp_path: Path, clock: FixedClock) -> None:
    """Two handles on one log file (as two processes hold it): the chain heads and histories
    one handle keeps between commits give way to what the other committed."""
    path, owner = tmp_path / "trace.db", Held()
    one, other = open_log(path, clock, owner), open_log(path, clock, owner)
    agent = Held()
    old = agent.signer()
    first = sign_record(old, tool_call(), seq=0, prev=None, time=NOW)
    one.append(first)
    second = sign_record(old, tool_call(), seq=1, prev=first.hash, time=NOW)
    other.append(second)
    again = sign_record(old, tool_call(), seq=1, prev=first.hash, time=NOW)
    assert _reason(lambda: one.append(again)) is TraceFailure.CHAIN_BROKEN
    clock.advance(DAY)
    agent.rotate(NOW + DAY)
    rotated = sign_record(
        agent.signer(NOW + DAY), tool_call(), seq=2, prev=second.hash, time=NOW + DAY
    )
    other.append(rotated)
    thief = sign_record(old, tool_call(), seq=3, prev=rotated.hash, time=NOW + DAY)
    assert _reason(lambda: one.append(thief)) is TraceFailure.ATTESTATION_STALE
    assert verify_log(one).size == 3


def test_log_identity_is_bound(tmp_path: Path, clock: FixedClock) -> None:
    path = tmp_path / "trace.db"
    open_log(path, clock).close()
    with pytest.raises(ConfigError, match="another log identity"):
        open_log(path, clock)


def test_checkpoints_and_proofs(log: TraceLog, clock: FixedClock) -> None:
    rec = recorder(log, Held(), clock)
    checkpoints = []
    for count in (1, 3, 8, 13, 32, 33):
        while log.size() < count:
            rec.record(tool_call())
        checkpoints.append(log.checkpoint())
    assert log.checkpoint() == parse_checkpoint(checkpoints[-1].note)[0]  # same size: reused
    leaves = [record.leaf for record in log.records()]
    tree = MemoryTree(leaves)
    for checkpoint in checkpoints:
        assert checkpoint.root == tree.root(checkpoint.size)
        for index in range(checkpoint.size):
            proof = log.inclusion_proof(index, checkpoint.size)
            assert proof == tree.inclusion_proof(index, checkpoint.size)
            verify_inclusion(index, checkpoint.size, leaves[index], proof, checkpoint.root)
    for old, new in pairwise(checkpoints):
        proof = log.consistency_proof(old.size, new.size)
        verify_consistency(old.size, new.size, old.root, new.root, proof)
    assert [parse_checkpoint(n)[0].size for n in log.checkpoints()] == [1, 3, 8, 13, 32, 33]


def _chain(authority: Held, human: Held, agent: Held) -> bytes:
    root = issue_credential(
        authority.signer(),
        subject=human.identifier,
        attributes=Attributes({"orders.role": "support"}),
        now=NOW,
        ttl=DAY,
        depth=2,
    )
    chain = CredentialChain((root,), (authority.identity.history,))
    return delegate(
        human.signer(),
        chain,
        subject=agent.identifier,
        attributes=Attributes({"orders.role": "support"}),
        now=NOW,
        ttl=DAY,
        purpose="refunds",
    ).encode()


def test_delegation_chain_kept_in_the_log(log: TraceLog, clock: FixedClock) -> None:
    authority, human, agent = Held(), Held(), Held()
    chain = _chain(authority, human, agent)
    named = Authority.from_chain(chain)
    assert len(named.credentials) == 2
    signer = agent.signer()
    content = RecordContent(Kind.DECISION, authority=named)
    first = sign_record(signer, content, seq=0, prev=None, time=NOW)
    assert _reason(lambda: log.append(first)) is TraceFailure.CHAIN_MISMATCH  # not held yet
    assert _reason(lambda: log.append(first, chain=b"another")) is TraceFailure.CHAIN_MISMATCH
    log.append(first, chain=chain)
    log.append(sign_record(signer, content, seq=1, prev=first.hash, time=NOW))  # held now
    assert log.chain(named.chain) == chain
    report = verify_log(log)
    assert (report.chains_checked, report.chains_elsewhere) == (2, 0)
    # a chain delegated to someone else, named by this agent's record: refused offline
    other = Held()
    foreign = _chain(authority, human, other)
    lying = sign_record(
        signer,
        RecordContent(Kind.DECISION, authority=Authority.from_chain(foreign)),
        seq=2,
        prev=_head(log, agent),
        time=NOW,
    )
    log.append(lying, chain=foreign)
    with pytest.raises(TraceError) as caught:
        verify_log(log)
    assert (caught.value.reason, caught.value.index) == (TraceFailure.CHAIN_MISMATCH, 2)


def test_chain_held_elsewhere(log: TraceLog, clock: FixedClock) -> None:
    signer = Held().signer()
    elsewhere = Authority(bytes(32), ((bytes(16), bytes(32)),), at="https://example.com/c")
    log.append(
        sign_record(
            signer, RecordContent(Kind.DECISION, authority=elsewhere), seq=0, prev=None, time=NOW
        )
    )
    assert verify_log(log).chains_elsewhere == 1


def test_resolution_must_resolve_an_escalation_to_its_signer(
    log: TraceLog, clock: FixedClock
) -> None:
    agent, human, stranger = Held(), Held(), Held()
    rec, person, other = (
        recorder(log, agent, clock),
        recorder(log, human, clock),
        recorder(log, stranger, clock),
    )
    step = rec.record(tool_call())
    assert _reason(
        lambda: person.resolve(
            step.record, of=agent.identifier, outcome="approved", considered="x", reasoning="y"
        )
    ) is (TraceFailure.LINK_INVALID)
    asked = rec.escalate(
        human.identifier, question="refund 5000?", reasoning="over the limit", parent=step.record
    )
    assert _reason(
        lambda: other.resolve(
            asked.record, of=agent.identifier, outcome="approved", considered="x", reasoning="y"
        )
    ) is (TraceFailure.LINK_INVALID)
    answer = person.resolve(
        asked.record,
        of=agent.identifier,
        outcome="approved",
        considered="history",
        reasoning="loyal",
    )
    report = verify_log(log)
    assert report.size == answer.index + 1
    assert report.agents == 2  # the refused records left no trace


def test_redaction_keeps_the_record_verifiable(log: TraceLog, clock: FixedClock) -> None:
    rec = recorder(log, Held(), clock)
    # a value no hex digest, id or base64 signature in the files can hold by chance (plain
    # "4111" turned up inside a record id's hex about once in 300 logs)
    card = "card 4111-1111-1111-1111"
    receipt = rec.record(tool_call(args={"card": card}, result="ok"))
    path = Path(log.store.path)
    stored = path.read_bytes() + path.with_name(path.name + "-wal").read_bytes()
    assert card.encode() in stored  # (the check below can fail)
    log.checkpoint()
    assert set(log.disclosures(receipt.record)) == {"args", "result"}
    assert log.redact(receipt.record, "args")
    assert not log.redact(receipt.record, "args")
    assert set(log.disclosures(receipt.record)) == {"result"}
    report = verify_log(log)
    assert report.disclosures == 1
    path = Path(log.store.path)
    files = [path, path.with_name(path.name + "-wal")]
    assert not any(card.encode() in f.read_bytes() for f in files if f.exists())


# -- concurrency ------------------------------------------------------------------------------


def test_concurrent_threads_share_commits(log: TraceLog, clock: FixedClock) -> None:
    agents = [Held() for _ in range(8)]
    recorders = [recorder(log, a, clock) for a in agents]
    indices: list[int] = []
    lock = threading.Lock()
    checkpoints = []

    def work(number: int) -> None:
        for step in range(40):
            receipt = recorders[number].record(tool_call())
            with lock:
                indices.append(receipt.index)
            if step % 10 == 0:
                checkpoint = log.checkpoint()
                with lock:
                    checkpoints.append(checkpoint)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(indices) == list(range(320))
    checkpoints.append(log.checkpoint())
    _all_consistent(log)
    report = verify_log(log)
    assert (report.size, report.agents) == (320, 8)


def _all_consistent(log: TraceLog) -> None:
    notes = [parse_checkpoint(n)[0] for n in log.checkpoints()]
    assert len({c.size for c in notes}) == len(notes)
    for old, new in pairwise(notes):
        if old.size == 0:  # the empty tree is a prefix of every tree (no proof exists)
            assert old.root == EMPTY_ROOT
            continue
        verify_consistency(
            old.size, new.size, old.root, new.root, log.consistency_proof(old.size, new.size)
        )


def _process_writer(path: str, count: int, queue: multiprocessing.Queue[list[int]]) -> None:
    clock = FixedClock(NOW)
    log = TraceLog.open(path, clock=clock)
    rec = recorder(log, Held(), clock)
    queue.put([rec.record(tool_call()).index for _ in range(count)])


def test_concurrent_processes(tmp_path: Path, clock: FixedClock) -> None:
    path = tmp_path / "trace.db"
    owner = Held()
    log = open_log(path, clock, owner)
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[list[int]] = context.Queue()
    workers = [
        context.Process(target=_process_writer, args=(str(path), 60, queue)) for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    for _ in range(5):
        log.checkpoint()
    results = [queue.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert sorted(i for r in results for i in r) == list(range(180))
    log.checkpoint()
    _all_consistent(log)
    assert verify_log(log).size == 180
