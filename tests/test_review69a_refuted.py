"""Review 69a (area: outbox): attacks on the trace outbox's hold that did not work.

- A record of one agent that waits out a clock (made while the agent's clock ran a day ahead:
  `record time outside the log's window` past its attempts, `held_back`, kept in
  `trace_outbox_held`) holds back only that agent's records: another agent's outbox in the same
  node.db sends and delivers its own, its status holds nothing back, and the first agent's
  hold is kept as it was (the rows and the hold are read per agent).
- After a rotation, a thief's stale row signed by the retired key but stored with the current
  key's attestation (so its key looks current, past review 69a outbox 2's check) does not
  verify under the key that attestation names: set aside, never signed.
- A rotation of a node that never had an outbox makes none and does not fail (its hook looks
  the agent's rows up, no table).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.traces import Held
from tests.test_review68i_clock import DAY, _send
from tests.test_review69a_outbox import plant
from tests.test_trace_service import NOW, F, Service, service, tool  # noqa: F401 - a fixture
from troth.node import init_node, open_node
from troth.storage import SqliteDatabase
from troth.trace.outbox import TraceOutbox
from troth.trace.outbox_store import outbox_exists


def test_one_agents_wait_holds_back_no_other_agents_records(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The support agent's record waits out its clock; the sub agent's, queued in the same
    node.db after it, is delivered at once."""
    world = service.world
    db = SqliteDatabase(tmp_path / "node.db")
    waiting = TraceOutbox(db, world.support.identifier, lambda now: world.support.signer)
    other = TraceOutbox(db, world.sub.identifier, lambda now: world.sub.signer)
    try:
        waiting.add(tool("refund"), now=NOW + DAY)
        for _ in range(4):
            batch = waiting.next_batch(NOW + DAY)
            assert batch is not None
            receipts = _send(service, batch.submission, world.support)
            assert receipts.results[0].reason is F.TIME_OUT_OF_RANGE
            waiting.answered(receipts, now=NOW + DAY)
        held = waiting.status()["held_back"]
        assert held is not None
        queued = other.add(tool("lookup_order"), now=NOW + 1)
        batch = other.next_batch(NOW + 1)
        assert batch is not None
        assert len(batch.submission.records) == 1
        other.answered(_send(service, batch.submission, world.sub), now=NOW + 1)
        assert queued.result() == 0
        assert other.status()["held_back"] is None
        assert waiting.status()["held_back"] == held
        assert waiting.pending() == 1
    finally:
        waiting.close()
        other.close()
        db.close()


def test_a_retired_keys_row_naming_the_current_attestation_is_set_aside(
    tmp_path: Path,
) -> None:
    """After a rotation, a thief holding the retired key plants a stale row it signed, but
    stored with the current key's attestation (public: any row the node queued carries it),
    so the outbox takes its key for the current change's: the envelope does not verify under
    that key (`bad signature`); set aside, never signed by the current key."""
    agent = Held(now=NOW - 1000)
    retired = agent.signer(NOW - 1000)
    agent.rotate(NOW - 500)
    current = agent.signer(NOW)
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, agent.identifier, lambda now: agent.signer(now))
    try:
        forged = plant(outbox, agent, retired, stale=True)
        with outbox.store.transaction():  # what a writer of node.db can write with SQL
            outbox.store.db.execute(
                "UPDATE trace_outbox SET attestation = ? WHERE record = ?",
                (current.attestation, forged.record.id),
            )
        assert outbox.next_batch(NOW) is None
        (refused,) = outbox.store.refused(agent=agent.identifier.digest, limit=5)
        assert refused.record == forged.record.id
        assert refused.reason != F.ATTESTATION_STALE.value  # refused before the key's change
    finally:
        outbox.close()
        db.close()


def test_a_rotation_of_a_node_without_an_outbox_makes_none(tmp_path: Path) -> None:
    """The rotation's hook (review 69a, outbox 2) on a node that never had a trace outbox:
    the look-up of the agent's rows fails as no table, and none is made (a rotation that made
    the outbox's tables, or failed, would break every node without a trace service)."""
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        node.identities.create(now=NOW, name="a")
        node.identities.rotate("a", now=NOW + 1)
        assert node.identities.get("a", now=NOW + 2).identity.change_count == 2
        assert not outbox_exists(node.db)
