"""Review 66f, relays: attacks on the relay cut-off (reviews 65p, 65s) that did not work, each
a passing test that fails if the defence it names breaks.

1. An owner truly behind another node (the hub's outgoing connection to relay node R1, where
   the hub holds `/relay/hub`) is still cut by its name only after review 66f's relays 1 (which
   cuts an owner at a connection the hub accepted): its refusal leaves the other parties' reply
   paths over the hub's connection to R1 (review 65s, relays 1).
2. A party names an innocent owner's connection as a hop past its own (its relay's
   `beyond`), then has itself refused, to get that owner cut off: a relay cuts only its own
   connection (`Relay.connection`, where its channel arrived, which the hub puts in the
   route), never the hops past it; another sender that reached b still reaches it, b's name
   gone meanwhile (so no name up keeps b's connection).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from tests.support.nodes import MemNet, run_memnet
from tests.test_reconnect import until
from tests.test_review50f_noroute import behind_two_relays
from tests.test_review55a_refuted import MESSAGE_1, Stranger, with_stranger
from troth.node.access import AccessRequest, Decision
from troth.node.services.relay import RelayService
from troth.routing import RoutedMessage, parse_route
from troth.transport import frame


def test_an_owner_behind_the_hubs_connection_to_a_relay_node_is_cut_by_its_name_only(
    tmp_path: Path,
) -> None:
    """Refuted 1: b behind R1 answers a's echo through `/relay/b` at the hub, so a's
    connection at the hub allows the hub's connection to R1 (a reply path); b refused, it
    still does (b's name forwards nothing)."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        await behind_two_relays(net)
        relay = hub.host.services["relay"]
        assert isinstance(relay, RelayService)
        to_r1 = relay.relays["b"].connection
        assert to_r1 is not None
        assert relay.relays["b"].beyond
        (from_a,) = (c for c in hub.tcp.connections() if not c.outgoing)
        assert from_a.allows(to_r1)

        def decide(request: AccessRequest) -> Decision:
            return Decision(request.arguments != "b", ("revoked",))

        relay.decide = decide
        relay._recheck(net.clock.now())
        assert relay.relays["b"].refused
        assert from_a.allows(to_r1)

    run_memnet(test, tmp_path)


def test_a_party_naming_an_innocent_owners_connection_past_its_own_cuts_only_its_own(
    tmp_path: Path,
) -> None:
    """Refuted 2: the stranger holds a name `m` (its relay as `create` makes it over the
    stranger's connection, naming b's connection as a hop past it) and is refused; a second
    sender that reached b through `/relay/b` still reaches b at b's connection."""

    async def test(net: Stranger) -> None:
        assert net.hub.listening is not None
        reader, writer = await asyncio.open_connection(*net.hub.listening)
        try:
            message_1 = RoutedMessage(parse_route("/relay/b/service/channels"), (), MESSAGE_1)
            writer.write(frame(message_1.encode()))
            await until(lambda: len(net.mine()) == 1)
            await reader.readexactly(1)  # b's message 2 came back to it
            net.send("/relay/b/service/channels")
            await net.receive()
            to_b = net.relay.relays["b"].connection
            assert to_b is not None
            first, second = (m.return_route[1] for m in net.mine())  # the senders' connections
            relays = net.relay.relays
            relays["m"] = replace(relays["b"], connection=second, beyond=(to_b,))
            del relays["b"]  # (no name of b's up, which would keep its connection anyway)

            def decide(request: AccessRequest) -> Decision:
                return Decision(request.arguments != "m", ("revoked",))

            net.relay.decide = decide
            net.relay._recheck(net.relay.clock())
            assert relays["m"].refused
            hub_tcp = net.hub_tcp
            one, two = hub_tcp.connection(first), hub_tcp.connection(second)
            assert one is not None
            assert two is not None
            assert not two.allows(to_b)  # the refused party's own connection: cut
            assert one.allows(to_b)  # the other sender's way to b stays
        finally:
            writer.close()

    with_stranger(tmp_path, test)
