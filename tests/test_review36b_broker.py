"""Review 36b, broker: whose operators may call the served broker's `revoke-identity`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.brokers import client, run_broker
from tests.support.nodes import MemNet, globex_over_tcp
from troth.credentials import Attributes
from troth.errors import Denied
from troth.secrets import LeaseState


def test_a_co_trusted_authoritys_admin_is_not_the_brokers_operator(tmp_path: Path) -> None:
    """Broker 1: the hub hosts acme's broker and also trusts globex (it enrolled with it, to
    use globex's services). globex grants `troth.broker=admin` to whomever it likes, and the
    rule of `revoke-identity` was an unpinned `RequireAttributes`: globex's admin passed the
    hub's decision point as the broker's operator (only the lease-level filter by the
    operator's authority stood between it and acme's members' leases). The rule is pinned to
    the authority the node hosts: globex's admin is refused by the decision point, the reason
    naming the hub's authority, and the member's lease stays ACTIVE; acme's own admin still
    revokes it. Was a strict xfail until `BrokerService` pinned its operators' rule to the
    hosted authority (`RequireAttributes(ADMIN_ATTRIBUTE, authority=hosted)`)."""

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        _globex, globex, ticket = await globex_over_tcp(net)
        await net.hub.enroll(ticket, "hub")  # the hub trusts globex from now on
        mallory = await net.node("mallory")
        admin_ticket = globex.create_ticket(
            creator=globex.identifier,
            attributes=Attributes({"troth.broker": "admin"}),
            address="/tcp/globex:4000",
            now=net.clock.now(),
        )
        await mallory.enroll(str(admin_ticket), "mallory")
        agent = await net.member("support")
        issued = await client(agent).issue("payments", scope=("refunds",))
        holder = net.identifier(agent)
        with pytest.raises(Denied) as denied:
            await client(mallory).revoke_identity(holder)
        (reason,) = denied.value.reasons
        assert "no credential from " + str(net.authority.identifier) in reason
        (lease,) = await client(agent).leases()
        assert lease.handle == issued.lease.handle
        assert lease.state is LeaseState.ACTIVE
        admin = await net.member("ops", **{"troth.broker": "admin"})
        (revoked,), count = await client(admin).revoke_identity(holder)
        assert count == 1
        assert revoked.handle == issued.lease.handle

    run_broker(test, tmp_path)
