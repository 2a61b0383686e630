"""Review 34g, secrets: what the broker does when its audit sink refuses records.

1. Every transition wrote its audit record inside its transaction and failed (AUDIT_FAILED,
   nothing committed) when the sink raised: fail closed. The served broker's sink is the
   node's trace, which refuses records when it cannot keep them (its outbox full while the
   trace service is unreachable, the log's disk full). Fail closed is right for what an agent
   asks for (an issue, a renewal, a forward), but the revocations the broker and its node make
   failed with it: `revoke_for_feed` (an identity or credential revoked by its authority), the
   sweep's expiries, an operator's `revoke_lease` and `revoke_identity` were rolled back, so a
   revoked agent's leases stayed ACTIVE — its tokens accepted by `broker.validate_token`, its
   database role and open sessions (which outlive VALID UNTIL) alive — for as long as the sink
   refused, however long past their expiry. Anyone who can keep the trace from taking records
   (cut the link to the trace service, then wait, or fill the log's disk) held revocation off.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import make_world, open_broker
from troth.credentials import RevocationKind
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, Broker, LeaseHandle, LeaseState
from troth.secrets.audit import AuditEvent, AuditKind, SqliteAuditLog

TOKEN = {"scopes": ["refunds"], "ttl": 60, "max_ttl": 600, "audience": "payments"}


class _Sink:
    """An audit sink that refuses every record while `down` (a full trace outbox)."""

    def __init__(self) -> None:
        self.down = False
        self.events: list[AuditEvent] = []

    def append(self, event: AuditEvent) -> None:
        if self.down:
            raise OSError("the trace outbox is full")
        self.events.append(event)


def _state(broker: Broker, handle: LeaseHandle) -> LeaseState:
    lease = broker.book.lease(handle)
    assert lease is not None
    return lease.state


def test_a_feed_revokes_leases_while_the_audit_sink_refuses(tmp_path: Path) -> None:
    """Secrets 1: the feed revoking an agent ends its lease though the sink refuses the
    record, which the node's own audit table keeps; its token is refused at once (was a strict
    xfail until the records of the revocations the broker and its node make went to the
    node's `secret_audit` table when the sink refused them: `LeaseBook._append`, `ending`)."""
    world = make_world(NOW)
    sink = _Sink()
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, audit=sink)
    broker.put_secret("payments", "token", TOKEN, b"", now=NOW)
    issued = broker.issue(world.credential_a(), "payments", now=NOW)
    token = str(issued.credential.reveal()["token"])
    sink.down = True

    feed = world.feed_revoking(
        [(int(RevocationKind.IDENTITY), world.agent_a.identifier.digest)], now=NOW + 5
    )
    revoked = broker.revoke_for_feed(feed, now=NOW + 5)

    assert [lease.state for lease in revoked] == [LeaseState.REVOKED]
    with pytest.raises(SecretError) as caught:
        broker.validate_token(token, audience="payments", now=NOW + 6)
    assert caught.value.reason is SecretFailure.REVOKED
    kept = [event for _, event in SqliteAuditLog(db).read()]
    assert [(e.kind, e.lease) for e in kept] == [
        (AuditKind.REVOKE, issued.lease.handle),
        (AuditKind.REVOKED, issued.lease.handle),
    ]


def test_the_sweep_ends_expired_leases_while_the_audit_sink_refuses(tmp_path: Path) -> None:
    """Secrets 1: the sweep ends a lease past its expiry though the sink refuses records; an
    operator's revocation of another goes through too. What an agent asks for still fails
    closed (an issue: AUDIT_FAILED). Was a strict xfail until the same fix."""
    world = make_world(NOW)
    sink = _Sink()
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, audit=sink)
    broker.put_secret("payments", "token", TOKEN, b"", now=NOW)
    expiring = broker.issue(world.credential_a(), "payments", now=NOW, ttl=10)
    other = broker.issue(world.credential_a(), "payments", now=NOW, ttl=300)
    sink.down = True

    report = broker.sweep(NOW + 20)
    assert (report.expired, report.failed) == (1, 0)
    assert _state(broker, expiring.lease.handle) is LeaseState.REVOKED
    assert broker.revoke_lease(other.lease.handle, now=NOW + 21).state is LeaseState.REVOKED
    with pytest.raises(SecretError) as caught:
        broker.issue(world.credential_a(), "payments", now=NOW + 22)
    assert caught.value.reason is SecretFailure.AUDIT_FAILED
