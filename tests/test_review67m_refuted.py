"""Review 67m, relays: attacks on the relay cut-off that did not work, each a passing test
that fails if the defence it names breaks.

1. A refused owner re-registering under a new name over the same connection, once its
   refused name was freed, does not let that connection go (review 67m, relays 2 lets a cut
   go only when the owner creates the *same* name again, allowed): once its names and the
   other identity's are down, the stranger that reached it no longer does.
2. A refused owner racing its cut with a registration: its name refused while no other name
   is up over its connection, then allowed again and created again at once: the cut already
   made stays made (the stranger's reply path is gone), and nothing is cut again later.
3. Review 67m's relays 3 (a name held for a closed channel decided again) cutting an honest
   owner: one whose channel closed and that may still create its name is decided each round
   and not cut; its name stays held.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests.test_review55a_refuted import Stranger, with_stranger
from tests.test_review66f_relays import _not_reached
from tests.test_review66n_refuted import _reached
from tests.test_review66n_relays import _close
from tests.test_review67m_relays import _create_as
from troth.node.access import AccessRequest, Decision


def test_a_refused_owner_registering_a_new_name_is_still_cut(tmp_path: Path) -> None:
    """Refuted 1: `x` refused while `d` is up over b's connection, freed; b creates `y` over
    its connection (allowed for it); then d's channel and b's close: not reached."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        to_b = (await net.receive()).return_route[0]
        relays = net.relay.relays
        b = relays["b"]
        relays["d"] = replace(b, channel="d-channel")  # (not found: not decided again, up)
        relays["x"] = replace(b)

        def decide(request: AccessRequest) -> Decision:
            return Decision(request.arguments != "x", ("revoked",))

        net.relay.decide = decide
        now = net.relay.clock()
        await net.relay.maintain(now)
        now += net.relay.grace
        await net.relay.maintain(now)
        assert "x" not in relays
        net.relay.clock = lambda: now + 1
        await _create_as(net, b.owner, "y", b.channel)
        await net.relay.maintain(now + 2)
        _close(net, "d-channel")
        _close(net, b.channel)
        assert relays["y"].lost_at is not None
        await _not_reached(net, to_b)

    with_stranger(tmp_path, test)


def test_an_owner_recreating_its_name_at_once_does_not_undo_the_cut_made(
    tmp_path: Path,
) -> None:
    """Refuted 2: b's only name refused (its connection cut at once), then b creates it
    again, allowed: the stranger's reply path to b is gone all the same."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        to_b = (await net.receive()).return_route[0]
        b = net.relay.relays["b"]
        refused = True

        def decide(request: AccessRequest) -> Decision:
            return Decision(not refused, ("revoked",))

        net.relay.decide = decide
        now = net.relay.clock()
        await net.relay.maintain(now)
        assert net.relay.relays["b"].refused
        refused = False
        await _create_as(net, b.owner, "b", b.channel)
        assert net.relay.relays["b"].lost_at is None
        await _not_reached(net, to_b)

    with_stranger(tmp_path, test)


def test_an_owner_held_for_a_closed_channel_and_still_allowed_is_not_cut(
    tmp_path: Path,
) -> None:
    """Refuted 3: review 67m's relays 3 decides a name held for a closed channel as that
    channel last showed its owner; an owner still allowed is not cut by it, round after round
    (the stranger still reaches b at its connection), and its name stays held, not up."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        to_b = (await net.receive()).return_route[0]
        b = net.relay.relays["b"]
        _close(net, b.channel)
        decided: list[str] = []

        def decide(request: AccessRequest) -> Decision:
            decided.append(str(request.arguments))
            return Decision(True, ())

        net.relay.decide = decide
        now = net.relay.clock()
        await net.relay.maintain(now)
        await net.relay.maintain(now + 1)
        assert decided == ["b", "b"]
        assert net.relay.status()["b"]["state"].startswith("held")
        await _reached(net, to_b)

    with_stranger(tmp_path, test)
