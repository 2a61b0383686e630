"""Review 57n: attacks on this session's fixes that did not work.

Handshakes 1's fix spends a network's handshake budget only on the messages 1 its source's own
limits let in (review 57c, handshakes 1): one address flooding messages 1 spends none of it
past what it holds, so its neighbours on the same /24 are still answered.

Storm 1's fix charges a caller showing no credential of the hosted authority to its own budget
when it is one of the authority's members (review 57e, storm 1). A member the authority removed
is no member there: it does not get a budget of its own back that way, but pays from its
network's, with every stranger there.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.support.hostile_tcp import accepted, frames_from, hostile_hub, raw
from tests.support.load import message_1
from tests.support.nodes import HUB, MemNet, ask_authority, run_memnet
from tests.test_reconnect import until
from troth.authority.client import enroll_request, refresh_request
from troth.authority.tickets import Ticket, new_code
from troth.errors import AuthorityFailure, RemoteError
from troth.limits import ENROLL_REQUESTS_BURST, HANDSHAKE_BURST

LIMITED = AuthorityFailure.RATE_LIMITED.value


def test_a_removed_member_pays_from_its_networks_budget(tmp_path: Path) -> None:
    """m, a member on 10.7.7.2, is removed; mallory, a stranger on 10.7.7.1, spends the
    network's enroll budget. m's refresh is then refused as rate limited, unchecked (charged to
    the network), not answered "not a member" after its signature was checked (charged to a
    member's budget of its own)."""

    async def test(net: MemNet) -> None:
        m = await net.node("m", host="10.7.7.2")
        await m.enroll(net.ticket(), "m")
        hub = net.hub
        assert hub is not None
        net.authority.remove_member(net.identifier(m), now=net.clock.now())
        await hub.worker.run(hub.trust.refresh_hosted, net.clock.now())
        mallory = await net.node("mallory", host="10.7.7.1")
        bogus = Ticket(new_code(), net.authority.history(), HUB)
        request = enroll_request(mallory.node.identities, "mallory", bogus, now=net.clock.now())
        for _ in range(ENROLL_REQUESTS_BURST):
            with pytest.raises(RemoteError):
                await ask_authority(mallory, net, "enroll", request)
        authority = net.authority.identifier
        request = refresh_request(m.node.identities, "m", authority, now=net.clock.now())
        with pytest.raises(RemoteError, match=LIMITED):
            await ask_authority(m, net, "refresh", request)

    run_memnet(test, tmp_path / "home", budget=120)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs 127/8")
@pytest.mark.usefixtures("loopback_sources")  # its clients stand for remote hosts
def test_one_address_flooding_messages_1_leaves_its_neighbours_budget(tmp_path: Path) -> None:
    """127.0.33.1 sends four times the handshake burst of messages 1 over 4 connections: its 16
    half-open handshakes are all it gets, the rest refused on its own limit, none for the
    network's rate; 127.0.33.2, on the same /24, is answered after it."""
    sent = 4 * HANDSHAKE_BURST

    async def main() -> None:
        async with hostile_hub(tmp_path) as hub:
            counters = hub.channels.counters
            socks = [raw(hub, "127.0.33.1") for _ in range(4)]
            await until(lambda: len(accepted(hub)) == len(socks))

            def flood() -> None:
                for n in range(sent):
                    socks[n % len(socks)].sendall(message_1(f"flood-{n}"))

            try:
                await asyncio.to_thread(flood)
                flooding = accepted(hub)
                await until(lambda: sum(c.frames_read for c in flooding) == sent)
                neighbour = raw(hub, "127.0.33.2")
                neighbour.sendall(message_1("neighbour"))
                assert len(await frames_from(neighbour, 1)) == 1
                neighbour.close()
            finally:
                for sock in socks:
                    sock.close()
            assert counters.refused_handshake_rate == 0, counters
            assert counters.handshakes_started <= 16 + 1, counters

    asyncio.run(main())
