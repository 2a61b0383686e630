"""Review 22e (traces): review 22d's fix makes `Broker.revoke` count a revocation (allowed or
refused) for `lease_account(credential)`, but the served broker does not hand it the
credential: `BrokerEndpoint._revoke` calls `broker.revoke(caller.actor(), ...)` with the bare
identity (the module docstring: "revoke and list: the caller's identity alone"), so
`Broker.revoke` takes `account = caller` and `LeaseBook._deny` counts a refused revoke
(NO_SUCH_LEASE for a made-up lease id) for the peer's own identity.

The node service's decision point lets "any authenticated identity" call revoke, credential or
not. So each fresh key pair — a delegate a member minted for free, or a peer holding no
credential at all (which the gate counts as the one UNCREDENTIALED member) — has a
TRACE_OUTBOX_SOURCE_PERCENT share of its own: four of them fill the members' room
(TRACE_OUTBOX_MEMBERS_PERCENT), and a real member's allowed leases within its own share are
refused (AUDIT_FAILED).

The test asserts the correct behaviour and was a strict xfail until a served revoke counts for
the member the caller's current credential names (`lease_account`), or for UNCREDENTIALED when
it has none.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from tests.support.leases import audited_broker, make_world
from tests.support.parties import make_party
from troth.secrets import AllowListPolicy, LeaseId
from troth.secrets.endpoint import BrokerCaller, BrokerEndpoint
from troth.secrets.wire import LeaseArgs


def test_served_revokes_by_fresh_identities_share_one_share(tmp_path: Path) -> None:
    """Outbox of 20 records (one member's share: 5; the members together: 18). Four peers with
    no credential (fresh key pairs) each revoke made-up leases through the served endpoint until
    refused. Member B must still get its own share: five allowed leases."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_b.identifier: {"payments": None}})
    broker = audited_broker(tmp_path / "node.db", world, policy, max_records=20)
    endpoint = BrokerEndpoint(broker)
    try:
        for _ in range(4):
            peer = make_party(world.vault, now=NOW).identifier
            caller = BrokerCaller(peer, (), refused="no current credential")
            for _ in range(6):  # refused with NO_SUCH_LEASE (audited), then AUDIT_FAILED
                args = LeaseArgs(LeaseId.new(NOW)).to_wire()
                answer = endpoint.handle("revoke", args, caller, NOW)
                assert answer["refused"] in {"NO_SUCH_LEASE", "AUDIT_FAILED"}, answer
        issued = 0
        for _ in range(5):
            answer = endpoint.handle(
                "issue",
                {"secret": "payments", "scope": ["refunds"], "ttl": None},
                BrokerCaller(world.agent_b.identifier, (world.credential_b(),)),
                NOW,
            )
            if "lease" not in answer:
                break
            issued += 1
        assert issued == 5  # B's own share, whatever the uncredentialed peers were refused
    finally:
        broker.close()
