"""Review 62a (the trace log core): attacks tried that the defences held against. Each test
is a real attempt and fails if its defence breaks."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.traces import (
    NOW,
    Held,
    db,
    one_record_then_rotated,
    open_log,
    recorder,
    tool_call,
)
from troth.clock import FixedClock
from troth.errors import DecodeError, TraceError, TraceFailure
from troth.trace import Kind, ToolCall, TraceLog
from troth.trace.checkpoint import AnchorStatus, CheckpointAnchor, sign_checkpoint
from troth.trace.disclosure import Disclosure
from troth.trace.dsse import encode_envelope, pae
from troth.trace.export import export_jsonl, verify_bundle
from troth.trace.merkle import (
    MemoryTree,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from troth.trace.record import PAYLOAD_TYPE, TraceRecord
from troth.trace.record_decode import decode_payload
from troth.trace.signing import resolve_key, sign_record, verify_envelope
from troth.trace.verify import verify_log

_F = TraceFailure


def _tree(size: int, tag: bytes = b"") -> MemoryTree:
    return MemoryTree([leaf_hash(tag + bytes([n])) for n in range(size)])


def test_merkle_an_interior_node_is_no_leaf_of_a_smaller_proof() -> None:
    """Second preimage: node(leaf0, leaf1) presented as the leaf hash at index 0 of the
    checkpoint's size with the proof of the level above (the path length is fixed by index
    and the signed size), or its preimage as leaf data (0x00/0x01 domains): refused."""
    tree = _tree(4)
    root = tree.root()
    inner = node_hash(tree.perfect(0, 0), tree.perfect(0, 1))
    above = tree.inclusion_proof(0)[1:]  # [node(leaf2, leaf3)]
    with pytest.raises(TraceError, match="too short"):
        verify_inclusion(0, 4, inner, above, root)
    data = tree.perfect(0, 0) + tree.perfect(0, 1)
    with pytest.raises(TraceError, match="root mismatch"):
        verify_inclusion(0, 2, leaf_hash(data), above, root)


@pytest.mark.parametrize("size", [3, 5, 6, 7, 11])
def test_merkle_odd_trees_each_proof_only_at_its_own_index(size: int) -> None:
    """Odd-sized trees: each leaf's proof verifies at its index only; index beyond the
    size, and a proof one element short or long, are refused."""
    tree = _tree(size)
    root = tree.root()
    for index in range(size):
        leaf, proof = tree.perfect(0, index), tree.inclusion_proof(index)
        verify_inclusion(index, size, leaf, proof, root)
        for other in {index ^ 1, size - 1 - index, index + size} - {index}:
            with pytest.raises(TraceError):
                verify_inclusion(other, size, leaf, proof, root)
        with pytest.raises(TraceError):
            verify_inclusion(index, size, leaf, [*proof, root], root)
        if proof:
            with pytest.raises(TraceError):
                verify_inclusion(index, size, leaf, proof[:-1], root)


def test_merkle_consistency_between_two_logs_and_back_in_size() -> None:
    """A consistency proof between trees of different logs, or from a larger to a smaller
    size, is refused."""
    ours, theirs = _tree(7), _tree(7, b"x")
    proof = ours.consistency_proof(3)
    verify_consistency(3, 7, ours.root(3), ours.root(), proof)
    with pytest.raises(TraceError, match="root mismatch"):
        verify_consistency(3, 7, theirs.root(3), ours.root(), proof)
    with pytest.raises(TraceError, match="root mismatch"):
        verify_consistency(3, 7, ours.root(3), theirs.root(), proof)
    with pytest.raises(TraceError, match="smaller"):
        verify_consistency(7, 3, ours.root(), ours.root(3), proof)


def _log(tmp_path: Path, records: int, name: str = "a") -> tuple[TraceLog, Held]:
    clock = FixedClock(NOW)
    owner = Held()
    log = open_log(tmp_path / f"{name}.db", clock, owner)
    agent = recorder(log, Held(), clock)
    for _ in range(records):
        agent.record(tool_call())
    return log, owner


def test_anchors_of_another_log_a_fork_or_a_smaller_newer_checkpoint(tmp_path: Path) -> None:
    """Anchors: another log's checkpoint, one in the log's origin signed by another key, a
    fork of the kept size signed by the log's own key, and a newer checkpoint smaller than
    the kept one are each refused."""
    log, owner = _log(tmp_path, 3)
    kept = log.checkpoint()
    assert verify_log(log, anchor=kept.note).status is AnchorStatus.VALID
    other, _ = _log(tmp_path, 3, "b")
    with pytest.raises(TraceError, match="kept checkpoint: origin"):
        verify_log(log, anchor=other.checkpoint().note)
    thief = Held()  # signs a note naming our log's origin
    signer = thief.signer(NOW)
    forged = sign_checkpoint(
        signer, resolve_key(signer.identity, signer.attestation), 3, kept.root, NOW
    )
    forged_note = forged.note.replace(
        str(thief.identifier).encode(), str(log.log_identity).encode()
    )
    with pytest.raises(TraceError) as refused:
        verify_log(log, anchor=forged_note)
    assert refused.value.reason is _F.CHECKPOINT_INVALID
    own = owner.signer(NOW)
    fork = sign_checkpoint(own, resolve_key(own.identity, own.attestation), 3, bytes(32), NOW)
    with pytest.raises(TraceError) as forked:
        verify_log(log, anchor=fork.note)
    assert forked.value.reason in (_F.FORKED, _F.INCONSISTENT)
    smaller = sign_checkpoint(own, resolve_key(own.identity, own.attestation), 2, kept.root, NOW)
    with pytest.raises(TraceError) as back:
        CheckpointAnchor(kept).accept(smaller)
    assert back.value.reason is _F.TRUNCATED


def test_an_empty_log_is_unanchored_and_one_emptied_is_truncated(tmp_path: Path) -> None:
    """An empty log is `unanchored`, not valid; a log emptied (its records, tree, heads and
    checkpoints deleted) against the note a verifier kept is TRUNCATED, not `verified`."""
    empty, _ = _log(tmp_path, 0, "empty")
    report = verify_log(empty)
    assert (report.status, report.to_json()["valid"]) == (AnchorStatus.UNANCHORED, False)
    log, _ = _log(tmp_path, 3)
    kept = log.checkpoint()
    raw = db(log)
    for sql in ("leaves", "nodes", "checkpoints", "agents"):
        raw.execute("DELETE FROM " + sql)  # noqa: S608 (fixed names)
    raw.close()
    with pytest.raises(TraceError) as refused:
        verify_log(log, anchor=kept.note)
    assert refused.value.reason is _F.TRUNCATED


def _bundles(tmp_path: Path) -> tuple[list[dict[str, Any]], bytes]:
    log, _ = _log(tmp_path, 5)
    kept = log.checkpoint()
    out = io.StringIO()
    export_jsonl(log, out)
    return [json.loads(line) for line in out.getvalue().splitlines()], kept.note


@pytest.mark.parametrize("edit", ["index", "index beyond", "negative", "envelope", "proof"])
def test_a_bundle_for_another_index_or_record_is_refused(tmp_path: Path, edit: str) -> None:
    """A proof bundle made to claim another index (in the tree, past its size, negative),
    another record of the log with this record's proof, or a proof one hash short: refused."""
    bundles, kept = _bundles(tmp_path)
    bundle = dict(bundles[4])
    assert verify_bundle(json.dumps(bundle).encode(), anchor=kept).index == 4
    if edit == "index":
        bundle["index"] = 0
    elif edit == "index beyond":
        bundle["index"] = 5
    elif edit == "negative":
        bundle["index"] = -1
    elif edit == "envelope":
        for name in ("envelope", "record", "disclosures", "signer"):
            bundle[name] = bundles[3][name]
    else:
        bundle["proof"] = bundle["proof"][1:]
    with pytest.raises(TraceError) as refused:
        verify_bundle(json.dumps(bundle).encode(), anchor=kept)
    assert refused.value.reason is _F.PROOF_INVALID


def _signed() -> tuple[Any, Any]:
    signer = Held().signer(NOW)
    return signer, sign_record(signer, tool_call(), seq=0, prev=None, time=NOW)


def _envelope(signer: Any, keyid: str, payload: bytes, kind: str = PAYLOAD_TYPE) -> bytes:
    return encode_envelope(kind, payload, keyid, signer.sign(pae(kind, payload)))


def test_dsse_duplicate_members_and_payload_type_confusion() -> None:
    """Signed by the agent's own key: an envelope with a duplicate member (first or last), a
    payload of another type, a payload with a member repeated (json.loads keeps the last),
    and a payload nested past the parser's recursion: each refused, no crash."""
    signer, record = _signed()
    keyid, payload = record.epoch.keyid, record.record.encode()
    envelope = record.envelope
    other = base64.b64encode(b"{}")
    hostile = [
        envelope[:-1] + b',"payload":"' + other + b'"}',
        b'{"payload":"' + other + b'",' + envelope[1:],
        _envelope(signer, keyid, payload, "application/vnd.in-toto+json"),
        _envelope(signer, keyid, payload[:-1] + b',"seq":0}'),
        _envelope(signer, keyid, b"[" * 8000 + b"]" * 8000),
        _envelope(signer, keyid, b'{"a":' * 2500 + b"1" + b"}" * 2500),
    ]
    for data in hostile:
        with pytest.raises(TraceError):
            verify_envelope(data, signer=signer.identity, attestation=signer.attestation)
    with pytest.raises(DecodeError):
        decode_payload(payload.replace(b'"seq":0', b'"seq":0,"seq":0'))


def test_disclosures_with_a_wrong_salt_another_field_or_form_are_refused() -> None:
    """Selective disclosure: a value with another salt, values swapped between fields, a
    value disclosed under a field the record commits nothing to, and the committed value in
    a non-canonical spelling are refused."""
    signer, record = _signed()
    held = dict(record.disclosures)
    args, result = held["args"], held["result"]
    attempts = [
        {"args": Disclosure(bytes(16), args.value)},
        {"args": result, "result": args},
        {"inputs": args},
        {"args": Disclosure(args.salt, b'{"amount":20, "order":"o1"}')},
    ]
    for given in attempts:
        with pytest.raises(TraceError) as refused:
            verify_envelope(
                record.envelope,
                signer=signer.identity,
                attestation=signer.attestation,
                disclosures=given,
            )
        assert refused.value.reason in (_F.DISCLOSURE_MISMATCH, _F.MALFORMED)


def test_a_pre_rotation_key_after_the_log_saw_the_rotation(tmp_path: Path) -> None:
    """A thief of the agent's first key, once the log holds the rotation (the new key's
    record, at the rotation's second), signs the next record dated that same second (the
    rule takes it as made before the rotation): refused at append, not appended."""
    owner, agent = Held(), Held()
    log = open_log(tmp_path / "a.db", FixedClock(NOW), owner)
    old, _, _, _ = one_record_then_rotated(log, agent, FixedClock(NOW))
    clock = FixedClock(NOW + 100)
    log = TraceLog.open(tmp_path / "a.db", clock=clock, signer=lambda now: owner.signer(now))
    recorder(log, agent, clock).record(tool_call())
    head = log.head(agent.identifier)
    assert head is not None
    stolen = sign_record(old, tool_call(), seq=head[0] + 1, prev=head[1], time=NOW + 100)
    with pytest.raises(TraceError) as refused:
        log.append(stolen)
    assert refused.value.reason is _F.ATTESTATION_STALE
    assert log.size() == 2


def test_a_bundle_with_a_member_repeated_is_refused(tmp_path: Path) -> None:
    """A proof bundle naming its index twice (a JSON parser keeping the last would read
    another index than a reader keeping the first): refused as malformed."""
    bundles, kept = _bundles(tmp_path)
    line = json.dumps(bundles[2])
    with pytest.raises(TraceError, match="duplicate member") as refused:
        verify_bundle((line[:-1] + ', "index": 0}').encode(), anchor=kept)
    assert refused.value.reason is _F.MALFORMED


def test_a_record_of_an_agent_signed_by_another_key_inserted_in_the_file(
    tmp_path: Path,
) -> None:
    """Insertion: a record naming agent A, signed by another identity's key (its attestation
    put in the log's table, the keyid in the signed payload), written into the log's file
    after A's genuine record: `verify_log` names it (index 1), not `verified`."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "a.db", clock)
    agent, thief = Held(), Held()
    recorder(log, agent, clock).record(tool_call())
    head = log.head(agent.identifier)
    assert head is not None
    stolen = thief.signer(NOW)
    epoch = resolve_key(stolen.identity, stolen.attestation)
    forged = TraceRecord(
        "01a0c4506c0079229bba16f6fd874d6f",
        agent.identifier,
        epoch.keyid,
        1,
        head[1],
        NOW,
        Kind.TOOL_INVOCATION,
        ToolCall("refund"),
    )
    envelope = _envelope(stolen, epoch.keyid, forged.encode())
    raw = db(log)
    raw.execute(
        "INSERT INTO attestations VALUES (?, ?, ?)",
        (epoch.keyid, thief.identifier.digest, stolen.attestation),
    )
    raw.execute(
        "INSERT INTO leaves VALUES (1, ?, ?, ?, NULL, ?)",
        (forged.id, leaf_hash(envelope), envelope, agent.identifier.digest),
    )
    raw.close()
    with pytest.raises(TraceError) as refused:
        verify_log(log)
    assert (refused.value.index, refused.value.reason) == (1, _F.ATTESTATION_INVALID)
