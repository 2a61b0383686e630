"""Review 66q, relays: attacks on review 66q's relays 1 fix (an owner behind another member's
name straight over its connection is cut by its name only) that did not work, each a passing
test that fails if the defence it names breaks.

1. An owner connected straight to the hub that names a hop of its own (review 66f, relays 1)
   and holds a second name straight over the same connection, with another identity of its
   member (a delegate: the same `member_accounts`), is still its connection's own party:
   refused, it is cut at its connection, and the stranger that reached it there no longer
   does.
2. Two members colluding over one connection, each naming a hop of its own, make neither
   the connection's own party: only a name straight over the connection (no hop past it)
   does, so the one refused is still cut at its connection.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.test_review55a_refuted import Stranger, with_stranger
from tests.test_review66f_relays import _not_reached
from troth.identity import Identifier
from troth.node.access import AccessRequest, Decision
from troth.routing import Address

OTHER = Identifier(b"\x6f" * 32)
"""Another identity over b's connection."""


def _refuse(net: Stranger, name: str) -> None:
    def decide(request: AccessRequest) -> Decision:
        return Decision(request.arguments != name, ("no credential",))

    net.relay.decide = decide


@pytest.mark.parametrize("delegate", [False, True], ids=["the owner", "a delegate"])
def test_a_hop_of_ones_own_behind_ones_own_name_is_still_cut_at_the_connection(
    tmp_path: Path, delegate: bool
) -> None:
    """Refuted 1: b's name `b` names one hop past b's connection; `d` is straight over it,
    held, b's or a delegate's of b's member. b refused: the stranger no longer reaches b."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        to_b = (await net.receive()).return_route[0]
        relays = net.relay.relays
        b = relays["b"]
        owner = OTHER if delegate else b.owner
        relays["d"] = replace(b, owner=owner, lost_at=net.relay.clock())
        b.beyond = (Address("worker", "b-own-hop"),)
        _refuse(net, "b")
        await net.relay.maintain(net.relay.clock())
        assert b.refused
        await _not_reached(net, to_b)

    with_stranger(tmp_path, test)


def test_another_member_naming_a_hop_too_does_not_make_the_connection_its_own(
    tmp_path: Path,
) -> None:
    """Refuted 2: `b` and `o` (another member's) each name a hop past b's connection, `o`
    held; b refused: the stranger no longer reaches b."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        to_b = (await net.receive()).return_route[0]
        relays = net.relay.relays
        b = relays["b"]
        b.beyond = (Address("worker", "b-own-hop"),)
        relays["o"] = replace(
            b, owner=OTHER, accounts=frozenset({OTHER.digest}), lost_at=net.relay.clock()
        )
        _refuse(net, "b")
        await net.relay.maintain(net.relay.clock())
        assert b.refused
        await _not_reached(net, to_b)

    with_stranger(tmp_path, test)
