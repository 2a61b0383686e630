"""Per-source bounds of a node's trace records (limits.TRACE_OUTBOX_SOURCE_PERCENT): the
records a node makes on behalf of one member (a broker's leases, a gate's decisions) may fill
only that share of the node's trace outbox, and of an agent's in-memory trace queue, so one
member's allowed operations, repeated while the trace service is out of reach, cannot leave
every other member's audited operation refused (docs/traces.md, "Where records go")."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import NOW as LEASE_NOW
from tests.support.leases import audited_broker, make_world
from tests.test_trace_outbox import Outboxes
from tests.test_trace_service import (  # noqa: F401 - `service` is a fixture
    NOW,
    Service,
    revoke_subs_chain,
    service,
    tool,
)
from troth.errors import SecretError, TraceError, TraceFailure
from troth.identity import Identifier
from troth.secrets import AllowListPolicy, LeaseState
from troth.trace.batcher import TraceBatcher

MEMBER_A = Identifier(bytes([0xA]) * 32)
MEMBER_B = Identifier(bytes([0xB]) * 32)


def test_one_members_allowed_leases_cannot_stop_anothers(tmp_path: Path) -> None:
    """The broker's audit goes to the node's trace outbox and the trace service is out of
    reach (nothing drains; bound made small: 20 records). Agent B, allowed the payments
    secret, takes a lease and hands it back again and again: each is a `lease` record, every
    one an allowed operation. Agent A, allowed it too, must still get its lease."""
    world = make_world(LEASE_NOW)
    allowed = {"payments": None}
    policy = AllowListPolicy({world.agent_a.identifier: allowed, world.agent_b.identifier: allowed})
    broker = audited_broker(tmp_path / "node.db", world, policy, max_records=20)
    refused = 0
    for _ in range(20):
        try:
            issued = broker.issue(
                world.credential_b(), "payments", scope=["refunds"], now=LEASE_NOW
            )
            broker.revoke(world.credential_b(), issued.lease_id, now=LEASE_NOW)
        except (SecretError, TraceError):
            refused += 1
    assert refused > 0  # B met its share
    issued = broker.issue(world.credential_a(), "payments", scope=["refunds"], now=LEASE_NOW)
    assert issued.lease.state is LeaseState.ACTIVE
    broker.close()


def test_the_outbox_counts_each_source_and_frees_its_share_on_delivery(
    tmp_path: Path,
    service: Service,  # noqa: F811 - the fixture imported above
) -> None:
    """Source B's records fill its share (25% of 20: 5), the sixth is refused OVER_LIMIT naming
    the bound; A and the node itself (no source) still record; a new process counts the same
    (the source is stored with each record)."""
    outboxes = Outboxes(tmp_path / "node.db", service.world.support, max_records=20)
    outbox = outboxes.open()
    for _ in range(5):
        outbox.add(tool("refund"), now=NOW, source=MEMBER_B)
    with pytest.raises(TraceError) as raised:
        outbox.add(tool("refund"), now=NOW, source=MEMBER_B)
    assert raised.value.reason is TraceFailure.OVER_LIMIT
    assert "TRACE_OUTBOX_SOURCE_PERCENT" in str(raised.value)
    outbox.add(tool("refund"), now=NOW, source=MEMBER_A)
    outbox.add(tool("refund"), now=NOW)
    outboxes.crash()
    again = outboxes.open()
    with pytest.raises(TraceError, match="TRACE_OUTBOX_SOURCE_PERCENT"):
        again.add(tool("refund"), now=NOW, source=MEMBER_B)
    assert again.claim()
    batch = again.next_batch(NOW)
    assert batch is not None
    again.answered(service.submit(batch.submission, service.world.support), now=NOW)
    assert again.pending() == 0  # delivered: B's share is free again
    for _ in range(5):
        again.add(tool("refund"), now=NOW, source=MEMBER_B)
    assert again.store.source_usage(MEMBER_B.digest)[0] == 5
    outboxes.close()


def test_a_members_records_set_aside_count_until_discarded(
    tmp_path: Path,
    service: Service,  # noqa: F811 - the fixture imported above
) -> None:
    """A record refused by the service stays in the outbox (set aside) and in its member's
    share; discarding it frees that share."""
    world = service.world
    outboxes = Outboxes(tmp_path / "node.db", world.sub, max_records=4)  # share: 1 record
    outbox = outboxes.open()
    chain = revoke_subs_chain(world)
    refused = outbox.add(tool("b", chain), chain=chain, now=NOW, source=MEMBER_B)
    assert outbox.claim()
    batch = outbox.next_batch(NOW)
    assert batch is not None
    outbox.answered(service.submit(batch.submission, world.sub), now=NOW)
    assert (outbox.pending(), outbox.status()["refused"]) == (0, 1)
    with pytest.raises(TraceError, match="TRACE_OUTBOX_SOURCE_PERCENT"):
        outbox.add(tool("a"), now=NOW, source=MEMBER_B)
    with outbox.store.transaction():
        assert outbox.store.discard([refused.record]) == [refused.record]
    outbox.add(tool("a"), now=NOW, source=MEMBER_B)
    outboxes.close()


def test_the_in_memory_queue_counts_each_source(
    service: Service,  # noqa: F811 - the fixture imported above
) -> None:
    """An agent's in-memory queue (TraceBatcher, 20 records) keeps the same shares."""
    party = service.world.support
    batcher = TraceBatcher(lambda now: party.signer, queue_size=20)
    for _ in range(5):
        batcher.add(tool("refund"), now=NOW, source=MEMBER_B)
    with pytest.raises(TraceError, match="TRACE_OUTBOX_SOURCE_PERCENT"):
        batcher.add(tool("refund"), now=NOW, source=MEMBER_B)
    batcher.add(tool("refund"), now=NOW, source=MEMBER_A)
    batcher.add(tool("refund"), now=NOW)
    assert batcher.pending() == 7


def test_members_cannot_fill_the_in_memory_queue(
    service: Service,  # noqa: F811 - the fixture imported above
) -> None:
    """Members filling their shares of an in-memory queue (TraceBatcher, 20 records) leave
    TRACE_OUTBOX_MEMBERS_PERCENT's rest to records made for no member (an expiry, a
    revocation), as the durable outbox does."""
    party = service.world.support
    batcher = TraceBatcher(lambda now: party.signer, queue_size=20)
    members = [Identifier(bytes([n]) * 32) for n in range(4)]
    for member in members[:3]:
        for _ in range(5):  # 25 % of 20 each
            batcher.add(tool("refund"), now=NOW, source=member)
    for _ in range(3):
        batcher.add(tool("refund"), now=NOW, source=members[3])
    with pytest.raises(TraceError, match="TRACE_OUTBOX_MEMBERS_PERCENT"):
        batcher.add(tool("refund"), now=NOW, source=members[3])
    assert batcher.pending() == 18  # 90 % of 20
    batcher.add(tool("revoke"), now=NOW)
    batcher.add(tool("revoke"), now=NOW)
    with pytest.raises(TraceError, match="records wait"):
        batcher.add(tool("revoke"), now=NOW)


def test_an_outbox_an_earlier_version_wrote_gets_the_shares(
    tmp_path: Path,
    service: Service,  # noqa: F811 - the fixture imported above
) -> None:
    """A node database whose outbox has no `trace_outbox_sources` (an earlier version): its
    queued records count for no member, and the next records count as usual."""
    outboxes = Outboxes(tmp_path / "node.db", service.world.support, max_records=8)
    outbox = outboxes.open()
    outbox.add(tool("refund"), now=NOW)
    outboxes.crash()
    old = sqlite3.connect(tmp_path / "node.db")
    old.execute("DROP TABLE trace_outbox_sources")
    old.commit()
    old.close()
    again = outboxes.open()
    assert again.pending() == 1
    for _ in range(2):
        again.add(tool("refund"), now=NOW, source=MEMBER_B)
    with pytest.raises(TraceError, match="TRACE_OUTBOX_SOURCE_PERCENT"):
        again.add(tool("refund"), now=NOW, source=MEMBER_B)
    outboxes.close()
