"""Review 47d: attacks on the pruning of `secret_lease_accounts` that failed, kept as guards
(the finding is in tests/test_review47d_secrets.py)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from tests.support.parties import make_party
from tests.test_review46d_secrets import LATER, _count, _stub_broker
from tests.test_review47d_secrets import _delegated
from troth.secrets import LeaseState
from troth.secrets.engine import SecretSpec
from troth.secrets.lease import SecretValue


def test_a_lease_stuck_revoking_past_retention_keeps_its_account_row(tmp_path: Path) -> None:
    """Attack: get an identity's row pruned while it still holds a lease its upstream
    object outlives, so revoke-all and `list` (which read an identity's leases through its
    rows) miss it. A lease whose revocation keeps failing stays REVOKING past the retention;
    the prune rounds that forget the identity's ended lease under another account (so the
    passes run) keep the stuck lease's row, and the identity's leases still include it."""
    world, _policy, broker, engine = _stub_broker(tmp_path)
    member = make_party(world.vault, now=NOW)
    other = _delegated(world, member, world.agent_b)  # agent b under member's account
    ended = broker.issue(other, "s", now=NOW)
    broker.revoke(other, ended.lease_id, now=NOW)
    credential = world.member_credential(world.agent_b)
    issued = broker.issue(credential, "s", now=NOW)

    def fail(spec: SecretSpec, ref: str | None, upstream: SecretValue) -> None:
        raise OSError("upstream gone")

    engine.revoke = fail  # type: ignore[method-assign]
    broker.sweep(issued.lease.expires_at + 1)
    assert _count(broker, "secret_lease_accounts") == 2
    assert [broker.prune(LATER + round_ * 10) for round_ in range(3)] == [1, 0, 0]
    rows = broker.store.db.fetch_all("SELECT identity, account FROM secret_lease_accounts")
    me = world.agent_b.identifier.digest
    assert [(bytes(r[0]), bytes(r[1])) for r in rows] == [(me, me)]
    (lease,) = broker.store.leases_in(
        (LeaseState.REVOKING,), identity=world.agent_b.identifier, limit=None
    )
    assert lease.handle == issued.lease.handle
    assert [x.handle for x in broker.leases(credential)] == [issued.lease.handle]
