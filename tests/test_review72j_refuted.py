"""Review 72j (area: rotated): attacks tried on review 72e's outbox fixes that did not work,
kept as passing tests: envelopes a rotation reads the keyid of without verifying them, the
`trace_outbox_rotated` count as a writer of node.db writes it, an older node.db, kills."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.killed import killed_after
from tests.support.traces import Held
from tests.test_review69a_outbox import _keys, _node_agent
from tests.test_review71g_outbox2 import Rotated
from tests.test_review71o_wave2e import planted
from tests.test_review72e_tickets import under_column
from tests.test_review72j_rotated import envelope_of
from tests.test_trace_service import NOW, F, tool
from troth.crypto import sha256
from troth.errors import TraceError
from troth.faults import CRASH_EXIT_CODE
from troth.node import open_node
from troth.storage import SqliteDatabase
from troth.trace.dsse import b64encode, decode_envelope, encode_envelope, pae
from troth.trace.outbox import TraceOutbox
from troth.trace.outbox_tickets import read_ticket
from troth.trace.record import PAYLOAD_TYPE
from troth.trace.signing import VerifiedRecord, sign_record

_ROTATED = "SELECT changes FROM trace_outbox_rotated WHERE agent = ?"


def of_key(rotated: Rotated, signer: Held | None = None) -> VerifiedRecord:
    """A record (`wire_transfer`, dated NOW - 45) signed by the agent's current key (K1), or
    by another identity's (`signer`)."""
    key = (signer or rotated.agent).signer(NOW - 50)
    return sign_record(key, tool("wire_transfer"), seq=0, prev=None, time=NOW - 45)


def with_envelope(rotated: Rotated, record: VerifiedRecord, envelope: bytes) -> None:
    """`record`'s row, planted, its envelope then replaced by `envelope` (a writer's SQL)."""
    planted(rotated, record)
    with rotated.db.transaction():
        rotated.db.execute(
            "UPDATE trace_outbox SET envelope = ? WHERE record = ?", (envelope, record.record.id)
        )


def refused_ids(rotated: Rotated) -> set[str]:
    return {record for record, _ in rotated.refused()}


@pytest.mark.parametrize("column", ["named", "thiefs"])
def test_an_envelope_naming_the_retired_key_signed_by_an_older_one_is_set_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, column: str
) -> None:
    """Tried (72e tickets 1, the keyid decoded, not verified): after the first rotation (K0 to
    K1), the thief holding K0 plants a payload naming K1 (its keyid) signed by K0, under K1's
    column, past the bound of the second rotation (K1 to K2): the rotation lists it (it names
    K1), but the outbox verifies a listed envelope under the key it names, whatever the column
    (K1's: the signature is not K1's; K0's, put after the rotation: the keyid is not K0's): set
    aside, the agent's rows go under K2."""
    rotated = Rotated(tmp_path, monkeypatch)
    try:
        named = of_key(rotated)  # its payload names K1 (no key needed to write one)
        decoded, keyid = decode_envelope(named.envelope)
        forged = rotated.stolen.sign(pae(PAYLOAD_TYPE, decoded.payload))
        with_envelope(rotated, named, encode_envelope(PAYLOAD_TYPE, decoded.payload, keyid, forged))
        rotated.rotate(NOW - 40)
        assert (
            sha256(envelope_of(rotated, named.record.id))
            in read_ticket(rotated.db, rotated.agent.identity).hashes
        )
        if column == "thiefs":
            under_column(rotated, named, rotated.stolen.attestation)
        sent = rotated.sent()
        assert (named.record.id, True) not in sent
        assert refused_ids(rotated) == {named.record.id}
        assert sent == [(i, True) for i in rotated.ids]
    finally:
        rotated.close()


def _two_signatures(envelope: bytes) -> bytes:
    value = json.loads(envelope)
    value["signatures"].append({"keyid": "0" * 64, "sig": b64encode(bytes(64))})
    return json.dumps(value, separators=(",", ":")).encode()


def _no_keyid(envelope: bytes) -> bytes:
    value = json.loads(envelope)
    del value["signatures"][0]["keyid"]
    return json.dumps(value, separators=(",", ":")).encode()


def test_envelopes_of_two_signatures_no_keyid_or_another_identitys_key_are_not_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried (72e tickets 1): rows under K1's column past the bound of a rotation retiring
    K1: an envelope of K1 with a second signature, one with its keyid taken out, one of
    another identity's key. None decodes as a trace envelope naming K1: none is listed, each
    is set aside when it comes up, the agent's rows go under K2."""
    rotated = Rotated(tmp_path, monkeypatch)
    try:
        other = of_key(rotated, Held(now=NOW - 1000))
        planted(rotated, other)
        under_column(rotated, other, rotated.agent.signer(NOW - 50).attestation)
        edited = []
        for edit in (_two_signatures, _no_keyid):
            record = of_key(rotated)
            with_envelope(rotated, record, edit(record.envelope))
            edited.append(record.record.id)
        rotated.rotate(NOW - 40)
        rows = [envelope_of(rotated, i) for i in [other.record.id, *edited]]
        listed = read_ticket(rotated.db, rotated.agent.identity).hashes
        assert not {sha256(envelope) for envelope in rows} & listed
        assert rotated.sent() == [(i, True) for i in rotated.ids]
        assert refused_ids(rotated) == {other.record.id, *edited}
    finally:
        rotated.close()


def test_a_rotation_count_of_another_agent_or_past_the_history_refuses_nothing_for_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried (72e tickets 2, the count as a writer of node.db writes it): another agent's row
    with a huge count leaves this agent's `add` as it was; this agent's set to a huge count
    refuses its `add` ATTESTATION_STALE, nothing recorded (a writer of node.db can refuse it
    as well by filling the outbox), until its next rotation writes the count again: then the
    records go under the new key."""
    rotated = Rotated(tmp_path, monkeypatch)
    agent = rotated.agent.identifier.digest
    try:
        with rotated.db.transaction():
            rotated.db.execute("INSERT INTO trace_outbox_rotated VALUES (?, ?)", (bytes(32), 2**62))
        first = rotated.outbox.add(tool("refund", n=7), now=NOW - 45).record
        with rotated.db.transaction():
            rotated.db.execute(
                "UPDATE trace_outbox_rotated SET changes = ? WHERE agent = ?", (2**62, agent)
            )
        with pytest.raises(TraceError) as refused:
            rotated.outbox.add(tool("refund", n=8), now=NOW - 44)
        assert refused.value.reason is F.ATTESTATION_STALE
        rotated.rotate(NOW - 40)
        assert rotated.db.fetch_one(_ROTATED, (agent,)) == (2,)
        late = rotated.outbox.add(tool("refund", n=9), now=NOW - 35).record
        assert rotated.sent() == [(i, True) for i in [*rotated.ids, first, late]]
        assert rotated.refused() == []
    finally:
        rotated.close()


def test_an_outbox_older_than_the_rotation_count_gets_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried (72e tickets 2 on an older node.db): the table dropped, as a node.db whose
    outbox an earlier version made: opening the outbox makes it; dropped again after that,
    the rotation makes it in its transaction, and a record added with the signer fetched
    before the rotation goes under the new key."""
    rotated = Rotated(tmp_path, monkeypatch)
    try:
        rotated.outbox.close()
        with rotated.db.transaction():
            rotated.db.execute("DROP TABLE trace_outbox_rotated")
        rotated.outbox = rotated.open(rotated.db)
        assert rotated.db.fetch_one(_ROTATED, (rotated.agent.identifier.digest,)) is None
        rotated.outbox.add(tool("refund", n=7), now=NOW - 45)  # its signer: K1, fetched now
        with rotated.db.transaction():
            rotated.db.execute("DROP TABLE trace_outbox_rotated")
        rotated.rotate(NOW - 40)
        assert rotated.db.fetch_one(_ROTATED, (rotated.agent.identifier.digest,)) == (2,)
        late = rotated.outbox.add(tool("refund", n=9), now=NOW - 35)
        assert rotated.sent()[-1] == (late.record, True)
        assert rotated.refused() == []
    finally:
        rotated.close()


def test_a_rotation_killed_after_its_commit_then_an_add_with_the_signer_before(
    tmp_path: Path,
) -> None:
    """Tried (72e tickets 2, a kill): a node's rotation killed just after its commit (in a
    forked child); this process's outbox, its signer fetched before, adds a record: the
    count committed with the rotation, so the signer is asked again and every row, the new
    one too, goes under the new key."""
    node, outbox = _node_agent(tmp_path)
    try:

        def rotate() -> None:
            open_node("n", home=tmp_path).identities.rotate("agent", now=NOW + 10)

        crashed = killed_after(0, rotate, crash_at="identity.rotate.after-commit")
        assert crashed == CRASH_EXIT_CODE
        outbox.add(tool("refund", n=3), now=NOW + 11)
        assert outbox.next_batch(NOW + 20) is not None
        assert _keys(outbox, node, NOW + 20) == [True, True, True]
    finally:
        outbox.close()
        node.close()


def test_an_add_killed_in_its_retry_records_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried (72e tickets 2, a kill in `_append`'s retry): a rotation (K1 to K2); in a forked
    child, an outbox whose signer was fetched before it (K1) adds a record, is told its signer
    predates a rotation, asks again, and is killed just after its row is written in the
    retry's transaction, before the commit: nothing recorded, and the next add goes under K2
    with the rows queued before."""
    rotated = Rotated(tmp_path, monkeypatch)
    try:
        before = rotated.agent.signer(NOW - 50)  # K1
        rotated.rotate(NOW - 40)
        pending = rotated.outbox.pending()

        def add() -> None:
            fetched = [before]
            outbox = TraceOutbox(
                SqliteDatabase(rotated.path),
                rotated.agent.identifier,
                lambda now: fetched.pop() if fetched else rotated.agent.signer(now),
            )
            insert = outbox.store.insert

            def killed(agent: bytes, verified: VerifiedRecord, **kwargs: Any) -> int:
                insert(agent, verified, **kwargs)
                retried = verified.attestation != before.attestation  # K2's: asked again
                os._exit(CRASH_EXIT_CODE if retried else 1)

            monkeypatch.setattr(outbox.store, "insert", killed)  # the child's own
            outbox.add(tool("refund", n=8), now=NOW - 39)

        assert killed_after(0, add) == CRASH_EXIT_CODE
        assert rotated.outbox.pending() == pending
        late = rotated.outbox.add(tool("refund", n=9), now=NOW - 35).record
        assert rotated.sent() == [(i, True) for i in [*rotated.ids, late]]
        assert rotated.refused() == []
    finally:
        rotated.close()
