"""Review 56m, relayed budgets: the enroll and refresh budgets of review 56g (budgets 1) of an
authority whose node is reached through a relay (`/tcp/hub:4000/relay/acme`).

A stranger's budget is the network its channel came from (an IPv4 /24, an IPv6 /48), and
behind a relay the sender as the relay names it: the host tag of the relay's connection to it
(`Connection.relayed_sender`, what the per-source channel limits count), so one stranger
flooding through a public relay does not lock every relayed newcomer out (refuted in
tests/test_review56m_refuted.py). But that tag is a keyed hash of the sender's host (an IPv4
address, an IPv6 /64), not of its network: through a relay each address of a /24 is a budget
of its own (each /64 of a /48, 65,536 of them), where directly the whole network is one. With
more of them than MAX_ENROLL_REQUEST_SOURCES the oldest is forgotten for each new one (evict),
so cycling through them sends enroll requests without end.

Was a strict xfail until a relay's host tag names the host's network in its first four hex
digits (`troth.transport.connection.network_of_tag`), and the relayed node counts a relayed
sender's network by them (`troth.node.channels._source_network`: the enroll budgets, and the
fair share of half-open handshakes between networks), as it counts a direct one's /24 (/48).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, run_memnet
from troth.authority.client import enroll_request
from troth.authority.tickets import Ticket, new_code
from troth.errors import RemoteError
from troth.limits import ENROLL_REQUESTS_BURST
from troth.node import Node
from troth.node.runtime import NodeRuntime
from troth.node.services import call, service_address
from troth.routing import parse_route

ACME = f"{HUB}/relay/acme"
LIMITED = "too many enroll and refresh requests"


async def relayed_acme(net: MemNet) -> NodeRuntime:
    """acme, a node hosting authority acme, reached only through the hub's relay (ACME)."""

    def host_acme(node: Node) -> None:
        node.create_authority("acme", now=net.clock.now())

    acme = await net.node("acme", prepare=host_acme, host="10.1.1.1")
    await acme.enroll(net.ticket(**{"troth.relay": "acme"}), "acme")
    await acme.create_relay("acme", HUB)
    return acme


async def bogus_enroll(node: NodeRuntime, acme: NodeRuntime, to: str = ACME) -> str:
    """`node` asks acme's authority to redeem a made-up code over a channel to `to`: the
    refusal's text."""
    authority = acme.node.authority()
    ticket = Ticket(new_code(), authority.history(), to)
    name = node.name
    request = enroll_request(node.node.identities, name, ticket, now=node.clock.now())
    end = await node.channel_to(
        parse_route(to),
        also_trust=frozenset({authority.identifier}),
        expect=authority.identifier,
        claimed=True,
    )
    with pytest.raises(RemoteError) as refused:
        await call(node.router, (end.enc, service_address("authority")), "enroll", request)
    return str(refused.value)


async def spend(node: NodeRuntime, acme: NodeRuntime, to: str = ACME) -> None:
    """`node` spends its source's whole budget at acme: the next one is refused unchecked."""
    for _ in range(ENROLL_REQUESTS_BURST):
        assert LIMITED not in await bogus_enroll(node, acme, to)
    assert LIMITED in await bogus_enroll(node, acme, to)


def test_hosts_of_one_network_share_a_budget_through_a_relay(tmp_path: Path) -> None:
    """mallory at 10.6.6.6 spends its budget through the relay; mallory's other host,
    10.6.6.7 (the same /24), is refused as well, as it is when both reach acme directly."""

    async def test(net: MemNet) -> None:
        acme = await relayed_acme(net)
        mallory = await net.node("mallory", host="10.6.6.6")
        await spend(mallory, acme)
        again = await net.node("mallory2", host="10.6.6.7")
        assert LIMITED in await bogus_enroll(again, acme)

    run_memnet(test, tmp_path / "home", budget=120)


def test_a_host_of_another_network_behind_the_relay_keeps_its_budget(tmp_path: Path) -> None:
    """Relayed budgets 1, the other side: mallory's network spent, a host of another network
    (10.6.7.6) through the same relay is still checked (the relay's own network is no one's)."""

    async def test(net: MemNet) -> None:
        acme = await relayed_acme(net)
        await spend(await net.node("mallory", host="10.6.6.6"), acme)
        other = await net.node("carol", host="10.6.7.6")
        assert LIMITED not in await bogus_enroll(other, acme)

    run_memnet(test, tmp_path / "home", budget=120)
