"""Review 69a (area: outbox): a second review of the trace outbox's hold (68i, 68r).

1. (head-of-line block, medium) A record made while the node's clock ran ahead (a day, a year:
   a bad clock at boot) is refused `record time outside the log's window`; once its attempts
   are spent it waits (WAITED_OUT, `held_back`), signed again each time it goes. But it was
   signed again dated when it was made (`max(made, now - SEND_LATE, floor)`), still ahead
   after the node's clock was put right: it, and every record of the agent after it, waited
   out the whole error (until real time reached that date), the outbox filling up and the
   agent stopping (OVER_LIMIT) meanwhile, although the docs say the fix is a clock. The
   durable outbox and the in-memory batcher alike. Now a record signed again is dated no
   later than when it is signed (`troth.trace.batcher.resign_time`).
2. (laundering, medium: review 68r outbox 1, its strict xfail closed) The outbox signed again
   with the agent's current key any queued row whose envelope verified as the agent's under
   any change's key: a thief holding a retired key and write access to node.db planted a row
   signed by it, dated before the rotation (stale, or set aside BACKDATED for the operator to
   requeue), and the node signed it as its own. Now the outbox never signs again a row signed
   by a key an older change attested (set aside, ATTESTATION_STALE), and the honest rows
   queued before a rotation are signed with the new key by the rotation, in its own
   transaction (troth.trace.outbox_rotation through `IdentityService.rotated_hooks`, which
   the node wires): a process killed before the commit leaves the rows and the old key as
   they were, after it the rows signed by the new key (nothing lost, nothing laundered). Only
   the rows of the key current before the rotation are signed by it (a row of a key an
   earlier rotation retired is a thief's). A process whose signer predates the rotation asks
   for it again when it meets rows the rotation signed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.hsm import NOW as HSM_NOW
from tests.support.hsm import agent_node_fixture  # noqa: F401 - a fixture
from tests.support.traces import Held
from tests.test_review68i_clock import DAY, _send
from tests.test_trace_service import NOW, F, Service, service, tool  # noqa: F401 - a fixture
from troth.identity import Signer, VerifiedIdentity
from troth.node import Node, open_node
from troth.node.node import init_node
from troth.storage import SqliteDatabase
from troth.trace import verify_log
from troth.trace.batcher import TraceBatcher
from troth.trace.outbox import TraceOutbox
from troth.trace.outbox_rotation import resign_for_rotation
from troth.trace.signing import VerifiedRecord, keyid_of, open_envelope, resolve_key, sign_record


def _ahead_then_put_right(service: Service, batcher: Any) -> int:  # noqa: F811
    """A record made while the node's clock ran a day ahead, refused until it waits; a second
    one made after the clock was put right; both sent at the right time: how many of them
    the log took in 5 batches."""
    party = service.world.support
    batcher.add(tool("refund"), now=NOW + DAY)  # the node's clock a day ahead
    for _ in range(4):
        batch = batcher.next_batch(NOW + DAY)
        assert batch is not None
        receipts = _send(service, batch.submission, party)
        assert receipts.results[0].reason is F.TIME_OUT_OF_RANGE
        batcher.answered(receipts, now=NOW + DAY)
    assert batcher.held_back is not None  # it waits (68i, clock 5)
    batcher.add(tool("lookup"), now=NOW + 10)  # put right
    delivered = 0
    for step in range(1, 6):
        batch = batcher.next_batch(NOW + 10 * step)
        if batch is None:
            break
        receipts = _send(service, batch.submission, party)
        batcher.answered(receipts, now=NOW + 10 * step)
        delivered += sum(r.delivered for r in receipts.results)
    return delivered


def plant(outbox: TraceOutbox, agent: Held, key: Signer, *, stale: bool) -> VerifiedRecord:
    """A thief's record (`wire_transfer`, dated NOW - 600) signed by `key`, written into the
    outbox's queue as a writer of node.db can with SQL (`stale`: as review 55b's path)."""
    forged = sign_record(
        key, tool("wire_transfer"), seq=0, prev=None, time=NOW - 600, random=os.urandom
    )
    with outbox.store.transaction():
        outbox.store.insert(
            agent.identifier.digest, forged, made=NOW - 600, chain=None, stale=stale
        )
    return forged


def rotation_killed_before_commit(node: Node, now: int) -> None:
    """`agent`'s rotation at `now`, killed after its hooks ran, before its commit."""

    def crash(before: VerifiedIdentity, at: int, compromised: bool) -> None:
        raise OSError("killed before the commit")

    node.identities.rotated_hooks.append(crash)
    with pytest.raises(OSError, match="killed"):
        node.identities.rotate("agent", now=now)
    node.identities.rotated_hooks.remove(crash)


def test_an_outbox_record_made_while_the_clock_ran_ahead_goes_once_it_is_put_right(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Outbox 1 (the durable outbox)."""
    party = service.world.support
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, party.identifier, lambda now: party.signer)
    try:
        assert _ahead_then_put_right(service, outbox) == 2
        assert outbox.held_back is None
        assert outbox.pending() == 0
        assert verify_log(service.log).size == 2
    finally:
        outbox.close()
        db.close()


def test_a_queued_record_made_while_the_clock_ran_ahead_goes_once_it_is_put_right(
    service: Service,  # noqa: F811
) -> None:
    """Outbox 1 (the in-memory batcher)."""
    batcher = TraceBatcher(lambda now: service.world.support.signer)
    batcher.set_head(None)
    assert _ahead_then_put_right(service, batcher) == 2
    assert batcher.held_back is None


def _node_agent(tmp_path: Path) -> tuple[Node, TraceOutbox]:
    """A node with identity `agent` and its trace outbox, two records queued, signed by the
    agent's key before any rotation."""
    init_node("n", home=tmp_path)
    node = open_node("n", home=tmp_path)
    agent = node.identities.create(name="agent", now=NOW - 100)
    outbox = TraceOutbox(
        node.db, agent.identifier, lambda now: node.identities.signer("agent", now=now)
    )
    for n in (1, 2):
        outbox.add(tool("refund", n=n), now=NOW + n)
    return node, outbox


def _keys(outbox: TraceOutbox, node: Node, now: int) -> list[bool]:
    """Per queued row of the agent: whether its key is attested under the current change."""
    identity = node.identities.get("agent", now=now).identity
    rows = outbox.store.first(identity.identifier.digest, 10)
    return [resolve_key(identity, row.attestation).is_current for row in rows]


def _sent_under(outbox: TraceOutbox, node: Node, now: int) -> list[tuple[str, bool]]:
    """The next batch's records: (id, whether its key is the current change's)."""
    identity = node.identities.get("agent", now=now).identity
    batch = outbox.next_batch(now)
    assert batch is not None
    sent = []
    for item, record in zip(batch.items, batch.submission.records, strict=True):
        _, _, _, key = open_envelope(record.envelope)
        (attestation,) = [a for a in batch.submission.attestations if keyid_of(a) == key]
        sent.append((item.record, resolve_key(identity, attestation).is_current))
    return sent


def test_a_rotation_signs_the_queued_records_again_with_the_new_key(tmp_path: Path) -> None:
    """Outbox 2 (the honest side): a node's records queued before its agent rotates are
    signed with the new key by the rotation itself, in its transaction, and go under it,
    though the outbox's signer was fetched before the rotation (it is asked again); a record
    queued after the rotation with that signer is signed by the new key too (the retired
    key, deleted from the software vault in the rotation's transaction, is asked again). A
    compromised rotation signs none of them (review 69o, wave1c 1: test_review69o_wave1c)."""
    node, outbox = _node_agent(tmp_path)
    try:
        ids = [row.record for row in outbox.store.first(outbox.identifier.digest, 10)]
        node.identities.rotate("agent", now=NOW + 10)
        assert _keys(outbox, node, NOW + 20) == [True, True]
        late = outbox.add(tool("refund", n=3), now=NOW + 11)  # its signer fetched before
        assert _keys(outbox, node, NOW + 20) == [True, True, True]
        sent = _sent_under(outbox, node, NOW + 20)  # signed again under the new history
        assert sent == [(i, True) for i in [*ids, late.record]]
    finally:
        outbox.close()
        node.close()


def test_a_rotation_that_does_not_commit_leaves_the_records_as_they_were(
    tmp_path: Path,
) -> None:
    """Outbox 2 (crash): a rotation that fails after its records were signed again (a
    process killed before its commit) rolls them back with it: the old key, still the
    current one, sends them as they were; nothing is lost nor signed by a key that is not
    the agent's."""
    node, outbox = _node_agent(tmp_path)
    try:
        before = [row.envelope for row in outbox.store.first(outbox.identifier.digest, 10)]

        rotation_killed_before_commit(node, NOW + 10)
        rows = outbox.store.first(outbox.identifier.digest, 10)
        assert [row.envelope for row in rows] == before
        assert _keys(outbox, node, NOW + 20) == [True, True]
        assert [current for _, current in _sent_under(outbox, node, NOW + 20)] == [True, True]
    finally:
        outbox.close()
        node.close()


def test_a_retired_keys_row_planted_stale_is_set_aside_not_signed(tmp_path: Path) -> None:
    """Outbox 2 (review 55b's path of 68r outbox 1): after a rotation, a thief holding the
    retired key plants straight into the queue a stale row signed by it, dated before the
    rotation: it is set aside ATTESTATION_STALE, never signed by the current key."""
    agent = Held(now=NOW - 1000)
    retired = agent.signer(NOW - 1000)
    agent.rotate(NOW - 500)
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, agent.identifier, lambda now: agent.signer(now))
    try:
        forged = plant(outbox, agent, retired, stale=True)
        assert outbox.next_batch(NOW) is None
        (refused,) = outbox.store.refused(agent=agent.identifier.digest, limit=5)
        assert (refused.record, refused.reason) == (
            forged.record.id,
            F.ATTESTATION_STALE.value,
        )
    finally:
        outbox.close()
        db.close()


def test_a_rotation_does_not_sign_a_row_an_earlier_rotation_retired_the_key_of(
    tmp_path: Path,
) -> None:
    """Outbox 2 (the rotation's own check): a thief's row signed by a key an earlier rotation
    retired, planted while the next key is current, is not signed again by the next
    rotation (only the rows of the key current before it are), and is set aside."""
    agent = Held(now=NOW - 1000)
    oldest = agent.signer(NOW - 1000)
    agent.rotate(NOW - 500)
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, agent.identifier, lambda now: agent.signer(now))
    try:
        honest = outbox.add(tool("refund"), now=NOW - 100)
        forged = plant(outbox, agent, oldest, stale=False)
        before = agent.identity
        agent.rotate(NOW - 50)
        assert resign_for_rotation(db, before, lambda: agent.signer(NOW - 50), NOW - 50) == 1
        batch = outbox.next_batch(NOW)
        assert batch is not None
        assert [item.record for item in batch.items] == [honest.record]
        (refused,) = outbox.store.refused(agent=agent.identifier.digest, limit=5)
        assert (refused.record, refused.reason) == (
            forged.record.id,
            F.ATTESTATION_STALE.value,
        )
    finally:
        outbox.close()
        db.close()


def test_a_rotation_elsewhere_on_a_token_signs_the_queued_records_again(
    node: Node,
) -> None:
    """Outbox 2 on a PKCS#11 node: another opening of the node (a `troth identity rotate`)
    rotates the agent; the records this outbox queued before are signed by
    the token's new key in that rotation, and this outbox, whose signer predates it, sends
    them under the new key."""
    agent = node.identities.get("agent", now=HSM_NOW).identifier
    outbox = TraceOutbox(node.db, agent, lambda now: node.identities.signer("agent", now=now))
    try:
        ids = [outbox.add(tool("refund", n=n), now=HSM_NOW + n).record for n in (1, 2)]
        with open_node("hsm") as other:
            other.identities.rotate("agent", now=HSM_NOW + 10)
        assert _keys(outbox, node, HSM_NOW + 20) == [True, True]
        assert _sent_under(outbox, node, HSM_NOW + 20) == [(i, True) for i in ids]
    finally:
        outbox.close()
