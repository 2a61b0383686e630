"""Review 69o (area: wave1c): the trace outbox at rotation (69a), the channel identity's
renewal and the broker's due revocations (69j).

1. (laundering, high) A `--compromised` rotation signed again with the new key every queued
   row of the key current before it (review 69a, outbox 2), though that key is the one the
   thief's copy holds: a thief with the copied key and write access to node.db planted a row
   signed by it (any content, dated before the rotation), and the owner's own recovery signed
   it with the new key, no copy holds, and dated it anew: the thief's record entered the log
   as the agent's, past the compromise. Now a compromised rotation signs none of them: it sets
   each aside in its transaction (ATTESTATION_STALE, `signed by a key a compromised rotation
   retired`), kept in `trace_outbox_refused`, never sent (deny when in doubt: the honest
   records queued just before it are not delivered either). troth.trace.outbox_rotation;
   `IdentityService.rotated_hooks` now get `compromised`.
2. (a stolen key's identity leased, low-medium) A running broker read the rows a compromised
   rotation leaves due (`broker_revoke_due`) only at its start and maintenance rounds, and
   refused their identities only after its own revocation of them failed (review 69j, gaps
   2). A rotation in another process (`troth identity rotate --compromised` beside the
   daemon) whose revocation failed, or that was killed before it, left the running broker
   leasing, renewing and forwarding for the identity and its delegates until its next round,
   `troth node status` showing `revocations_due: 0`. Now the broker notices them at the next
   request naming an identity and at each sweep (one `PRAGMA data_version` on the loop, the
   rows read when node.db changed) and refuses them as a failed revocation's.
3. (a delivered record refused, low-medium) A rotation signs the agent's queued rows again
   (69a), the rows of a batch in flight too. The log's answer that they were delivered then
   removed none of them (`OutboxStore.delete` matched the bytes sent): they stayed queued,
   were signed again on the head (themselves) and sent, refused REPLAYED (the same id with
   other bytes), set aside, and each `record()` waiting on them answered with that refusal,
   though the log held them. Now a delivered row is removed by its id when a rotation signed
   it again meanwhile.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

import troth
from tests import test_review67f_secrets as review67f
from tests.support.public_api import READ, Agents
from tests.test_review67l_refuted import leased
from tests.test_review69a_outbox import _keys, _node_agent
from tests.test_review69j_gaps import _failing
from tests.test_trace_service import NOW, F, tool
from troth.errors import SecretError
from troth.trace.signing import sign_record
from troth.trace.submit import Head, Receipts, Status, SubmitResult


def test_a_compromised_rotation_signs_no_row_of_the_compromised_key(tmp_path: Path) -> None:
    """Wave1c 1: the thief's row planted under the compromised key, and the rows queued
    before, are not signed by the new key: set aside, kept (their ids), none sent."""
    node, outbox = _node_agent(tmp_path)
    try:
        agent = outbox.identifier.digest
        stolen = node.identities.signer("agent", now=NOW + 5)  # what the thief's copy signs
        planted = sign_record(
            stolen, tool("wire_transfer"), seq=0, prev=None, time=NOW + 5, random=os.urandom
        )
        with outbox.store.transaction():  # what a writer of node.db can write with SQL
            outbox.store.insert(agent, planted, made=NOW + 5, chain=None, stale=False)
        queued = [row.record for row in outbox.store.first(agent, 10)]
        node.identities.rotate("agent", now=NOW + 10, compromised=True)
        assert _keys(outbox, node, NOW + 20) == []
        assert outbox.next_batch(NOW + 20) is None
        refused = outbox.store.refused(agent=agent, limit=10)
        assert sorted(r.record for r in refused) == sorted(queued)
        assert {r.reason for r in refused} == {F.ATTESTATION_STALE.value}
    finally:
        outbox.close()
        node.close()


# -- 69j: the broker's due revocations ---------------------------------------------------------

world = review67f.world  # the fixture: acme's hub brokering `payments` to its members


def test_a_due_revocation_left_while_the_broker_runs_refuses_its_identity(
    world: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Wave1c 2: `ops` rotated as compromised beside the running broker, its revocation
    failing: the broker refuses to lease for it, and its status counts it due."""
    ops = world.hub.identities.create("ops")
    world.hub.enroll(world.acme.ticket(READ), identity=ops)
    leased(world, (world.hub, "ops"))

    async def main() -> None:
        async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
            at, hub = running.address, running.identifier
            _failing(monkeypatch)
            with pytest.raises(SecretError):
                world.hub.identities.rotate(ops, compromised=True)  # its revocation due
            with pytest.raises(troth.TrothError, match="compromised rotation"):
                await world.hub.secrets.lease(
                    "payments", holder="ops", broker=at, expect=hub, scope=["refunds"]
                )
            # what `troth node status` shows (no public call shows it in-process)
            status = running._runtime.status()["services"]["broker"]
            assert status["revocations_due"] == 1

    asyncio.run(main())


# -- 69a: a batch in flight across a rotation ---------------------------------------------------


def test_a_batch_delivered_across_a_rotation_leaves_nothing_queued(tmp_path: Path) -> None:
    """Wave1c 3: both records of the batch in flight delivered, the rotation having signed
    them again meanwhile: neither stays queued, sent again or set aside."""
    node, outbox = _node_agent(tmp_path)
    try:
        agent = outbox.identifier.digest
        batch = outbox.next_batch(NOW + 5)  # sent: in flight
        assert batch is not None
        node.identities.rotate("agent", now=NOW + 10)  # signs the queued rows again
        last = batch.items[-1]
        delivered = tuple(SubmitResult(Status.APPENDED, n) for n in range(len(batch.items)))
        outbox.answered(Receipts(delivered, Head(1, last.hash, NOW + 2)), now=NOW + 11)
        assert outbox.pending() == 0
        assert outbox.next_batch(NOW + 20) is None
        assert outbox.store.refused(agent=agent, limit=10) == []
    finally:
        outbox.close()
        node.close()
