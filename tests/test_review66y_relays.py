"""Review 66y, relays: an attack on review 66q's relays 1 that broke a promise, fixed.

Relays 1 (medium: a refused owner escapes its cut). 66q cuts an owner naming hops past a
connection this node accepted by its name only when another member's name here forwards
straight over that connection (that member is the connection's own party). It counted every
such name, refused ones too. An operator with two members, M2 with a name straight over the
operator's connection C and M1 naming a made-up hop past C (66f's relays 1 case), had M2
refused first (C cut as M2's own), went on over C as M1 (new reply paths over C), and once M1
was refused too, C was not cut: M2's refused name still made C "another member's", so M1 kept
reaching the strangers it had reached. A refused name vouches for nobody: only names not
refused make a connection another member's (`_straight_over`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests.test_review55a_refuted import Stranger, with_stranger
from tests.test_review66f_relays import _not_reached
from troth.identity import Identifier
from troth.node.access import AccessRequest, Decision
from troth.routing import Address

M2 = Identifier(b"\x32" * 32)
"""The operator's other member, its name straight over b's connection."""


def test_a_refused_members_name_does_not_shield_the_connection(tmp_path: Path) -> None:
    """Relays 1: `d` (M2's, straight over b's connection) refused in an earlier check and
    held; b names a hop of its own past its connection and is refused now: the stranger no
    longer reaches b. Before, b was cut by its name only."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        to_b = (await net.receive()).return_route[0]
        relays = net.relay.relays
        b = relays["b"]
        now = net.relay.clock()
        relays["d"] = replace(
            b, owner=M2, accounts=frozenset({M2.digest}), lost_at=now, refused=True
        )
        b.beyond = (Address("worker", "b-own-hop"),)

        def decide(request: AccessRequest) -> Decision:
            return Decision(request.arguments not in ("b", "d"), ("no credential",))

        net.relay.decide = decide
        await net.relay.maintain(now)
        assert b.refused
        assert relays["d"].refused
        await _not_reached(net, to_b)

    with_stranger(tmp_path, test)
