"""Review 66q, relays: the mirror case of review 66f's relays 1 (the test failed before its
fix).

Relays 1 (medium: a member denying service to every other party over a node's connection).
Review 66f cut an owner whose channel came over a connection this node accepted at that
connection, whatever hops it named (`Relay.behind` false), so that an owner naming a hop of its
own could not escape its cut. But a connection a node accepted can carry other parties too: a
hub H that connected to relay node R1 to hold its name there, and a member M of H that reached
R1 through H (a reply path it held to R1 at H) and created a name of its own at R1, had its
channel come over H's connection. M, refusing itself on purpose (no credential shown by an
in-band refresh, then its credential again), made R1 cut H's connection as its own once no
name was up over it (H's name held, or gone down since: review 66f, relays 4), and every
other party's reply paths over that connection went with it, each time. An owner whose
connection is the one another member's name at this node forwards over with no hop past it
(that member is the connection's own party: it showed this node a credential granting it the
name, which the owner cannot make up) is now behind that member's node, and cut by its name
only (`RelayService._beyond_peer`). Here b plays H (its name `b`, straight over its
connection) and `m` is the name of another member behind b.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.test_review55a_refuted import Stranger, with_stranger
from tests.test_review66n_refuted import _reached
from tests.test_review66n_relays import _close
from troth.identity import Identifier
from troth.node.access import AccessRequest, Decision
from troth.routing import Address

M = Identifier(b"\x6d" * 32)
"""Another member, behind b."""


@pytest.mark.parametrize("peer_name", ["held", "up, then down"])
def test_a_member_behind_the_connections_own_party_does_not_cut_that_connection(
    tmp_path: Path, peer_name: str
) -> None:
    """Relays 1: m (another member, one hop past b's connection) is refused while b's own
    name is held (or up, then held): the stranger that reached b through b's name still
    reaches b at b's connection. Before, b's connection was cut as m's own."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        to_b = (await net.receive()).return_route[0]
        relays = net.relay.relays
        b = relays["b"]
        relays["m"] = replace(
            b, owner=M, beyond=(Address("worker", "m-at-b"),), accounts=frozenset({M.digest})
        )  # (over b's channel: decided as b's caller shows, refused by name)

        def decide(request: AccessRequest) -> Decision:
            return Decision(request.arguments != "m", ("no credential",))

        net.relay.decide = decide
        now = net.relay.clock()
        if peer_name == "held":
            b.lost_at = now
        await net.relay.maintain(now)
        assert relays["m"].refused
        if peer_name != "held":
            assert b.lost_at is None
            _close(net, b.channel)  # b's channel closes: its name held
            assert b.lost_at is not None
            await net.relay.maintain(now + 1)
        await _reached(net, to_b)

    with_stranger(tmp_path, test)
