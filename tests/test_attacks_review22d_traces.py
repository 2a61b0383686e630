"""Review 22d (traces): the member attribution of bf475ac (a record counts for the chain's
first subject, `lease_account`; the members' records together at most
TRACE_OUTBOX_MEMBERS_PERCENT, so the node's own acts always have room) misses the revoke path.

`Broker.revoke` hands the book only the actor (`_actor(caller)`), and `LeaseBook.revoke`:

1. audits an agent revoking its own lease (`_start_revoke` -> `_record`, then the upstream
   end, `finish_revoke`) with no member: two records per revocation that count for no member,
   so a member's issue/revoke cycles put two records in the node's reserve for each one in its
   share. With the trace service out of reach one member fills 75% of the outbox (share: 25%)
   and, with another member's ordinary leases, all of it: the operator's revocation of a
   member's leases is then refused and the leases stay live — what the 90% bound was for.
2. audits a refused revoke (NO_SUCH_LEASE) under `identity` (`_deny(..., account=None)`: the
   actor), so each delegate a member mints for free has a share of its own again (review 22c
   traces 1, back through `revoke`): one member's delegates fill the denials' 75%, and another
   member's allowed leases within its own share are refused.

3. the gate counts a denial for `record.credential.links[0].subject`, but `DecisionPoint`
   hands the record no credential when the caller's is refused (revoked, expired, no bundle in
   force: `_decide` keeps `credential = None`): such denials count for no member, up to the
   denials' 75%. A member revoked by its authority (a compromised agent) that keeps calling
   fills 75% of the outbox, and with another member's allowed calls within its share the
   whole of it: the node's own expiry record (the reserve the 90% bound keeps) is refused.

Tests 1-2 assert the correct behaviour and were strict xfails until `revoke` takes the
credential and counts its records (allowed and refused) for `lease_account(credential)`;
test 3 until a refused caller's denial counts for the member its chain names (the chain's
first subject, known before it is refused) or for the members' bound.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from tests.conftest import NOW
from tests.support.gates import T
from tests.support.gates import make_world as gates_world
from tests.support.leases import ATTRS, CHAIN_TTL, audited_broker, make_world
from tests.support.parties import make_party
from tests.support.traces import unreachable_outbox
from tests.test_trace_wiring import NOW as GATE_NOW
from tests.test_trace_wiring import gate_for
from troth.credentials import CredentialChain, delegate
from troth.errors import SecretError, TraceError
from troth.secrets import AllowListPolicy, LeaseId, LeaseState
from troth.secrets.audit import AuditEvent, AuditKind
from troth.storage import SqliteDatabase
from troth.trace.adapters import TraceAuditSink, TraceDecisionRecorder


def test_a_members_own_revocations_leave_the_node_room_to_revoke(tmp_path: Path) -> None:
    """Outbox of 20 records (a member's share: 5; members together: 18), the trace service out
    of reach. Member B issues and revokes its own lease until its share refuses; member A
    holds leases within its share. The operator then revokes A's leases: they must end."""
    world = make_world(NOW)
    allowed = {"payments": None}
    policy = AllowListPolicy({world.agent_a.identifier: allowed, world.agent_b.identifier: allowed})
    broker = audited_broker(tmp_path / "node.db", world, policy, max_records=20)
    try:
        for _ in range(5):  # B's share: 5 issue records; each revocation adds 2 unattributed
            try:  # (counted for B, its share refuses B's next lease or revocation: B stops)
                issued = broker.issue(world.credential_b(), "payments", scope=["refunds"], now=NOW)
                broker.revoke(world.credential_b(), issued.lease_id, now=NOW)
            except (SecretError, TraceError):
                break
        for _ in range(5):  # A's ordinary leases, within its share (the last may not fit)
            with contextlib.suppress(SecretError, TraceError):
                broker.issue(world.credential_a(), "payments", scope=["refunds"], now=NOW)
        assert broker.leases(world.agent_a.identifier)  # A holds leases
        with contextlib.suppress(SecretError, TraceError):
            broker.revoke_identity(world.agent_a.identifier, now=NOW + 1)
        leases = broker.leases(world.agent_a.identifier, include_ended=True)
        assert [lease.state for lease in leases if lease.state is LeaseState.ACTIVE] == []
    finally:
        broker.close()


def test_a_members_delegates_refused_revokes_share_its_share(tmp_path: Path) -> None:
    """Outbox of 20 records (share: 5, denials: 15). Agent A (a delegate of member `user`) and
    four fresh delegates of A each revoke a lease that is not theirs until refused. Member B
    must still get its own share: five allowed leases."""
    world = make_world(NOW)
    allowed = {"payments": None}
    policy = AllowListPolicy({world.agent_a.identifier: allowed, world.agent_b.identifier: allowed})
    broker = audited_broker(tmp_path / "node.db", world, policy, max_records=20)
    try:
        callers = [world.credential_a()]
        for _ in range(4):
            fresh = make_party(world.vault, now=NOW)
            chain = delegate(
                world.agent_a.signer,
                CredentialChain.decode(world.chain_a),
                subject=fresh.identifier,
                attributes=ATTRS,
                now=NOW,
                ttl=CHAIN_TTL,
                purpose="refund order 4472",
            )
            callers.append(
                world.verifier.verify(
                    chain.encode(), presenter=fresh.identifier, feeds=world.feeds(), now=NOW
                )
            )
        for caller in callers:
            for _ in range(5):
                try:
                    broker.revoke(caller, LeaseId.new(NOW), now=NOW)
                except TraceError:
                    break
                except SecretError:
                    continue
        issued = 0
        for _ in range(5):
            try:
                broker.issue(world.credential_b(), "payments", scope=["refunds"], now=NOW)
            except SecretError:  # AUDIT_FAILED: its record did not fit
                break
            issued += 1
        assert issued == 5  # B's own share, whatever user's delegates were refused
    finally:
        broker.close()


def test_a_revoked_members_denials_leave_the_node_room(tmp_path: Path) -> None:
    """The gate and the broker's audit share the node's outbox (20 records; a member's share:
    5; members together: 18); the trace service is out of reach. Member `other` is revoked by
    its authority and keeps calling (denied); member `support` makes its 5 allowed calls. The
    node's own record of a lease's expiry must still fit."""
    world = gates_world()
    node = make_party(world.vault, now=T)
    db = SqliteDatabase(tmp_path / "node.db")
    client = unreachable_outbox(db, node, max_records=20, now=GATE_NOW)
    gate = gate_for(world, TraceDecisionRecorder(client))
    other, credential = world.new_member()
    revoked = world.member_credential(other, credential)
    world.revoke(1, credential.hash, now=T + 5)  # its authority revokes it
    try:
        for _ in range(20):  # denied, each recorded until the outbox refuses
            try:
                assert not gate.invoke(revoked, "lookup_order", {"order_id": "o1"}).allowed
            except TraceError:
                break
        support = world.credential(world.support_chain, world.support)
        for _ in range(5):  # its own share
            try:
                gate.invoke(support, "lookup_order", {"order_id": "o2"})
            except TraceError:
                break
        expiry = AuditEvent(GATE_NOW, AuditKind.EXPIRE, node.identifier, "payments", None, "x")
        TraceAuditSink(client).append(expiry)  # the node's own act: always room (the reserve)
    finally:
        db.close()
