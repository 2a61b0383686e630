"""Review 67s, relays: attacks on review 67m's relay fixes that did not work, each a passing
test that fails if the defence it names breaks.

1. Another identity clearing a refused owner's mark: b's name `x` refused while `d` is up
   over b's connection, freed after the grace period; an identity whose identifier differs
   from b's in its last byte only (a member's delegate, or one made to look like b) creates
   `x` over b's connection: the mark (`x`, b) is b's alone (compared by the whole
   identifier), so once d's name and b's go down the stranger no longer reaches b.
2. A refused owner hiding behind its closed channel (review 67s, relays 1 decides a name held
   for a closed channel as the owner's latest open channel shows it): b's closed channel
   showed it allowed, its channel open now shows it refused: it is cut all the same.
3. A name held for a closed channel kept for good by review 67m's re-decision: its owner,
   allowed round after round, never back, has its name freed after the grace period.
4. A key rotation (the same identifier, another key and credential shown) between the
   refusal of an owner's name and its creating that name again, allowed: the mark is the
   identifier's, and it is let go; the stranger still reaches b once its names go down
   (review 67m, relays 2 for an owner whose key changed).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import cast

from tests.test_review55a_refuted import Stranger, with_stranger
from tests.test_review66f_relays import _not_reached
from tests.test_review66n_refuted import _reached
from tests.test_review66n_relays import _close
from tests.test_review67m_relays import _create_as
from tests.test_review67s_relays import _closed_old_channel, _refuse_x_then_free_it
from troth.channel.verification import VerifiedPeer
from troth.identity import Identifier
from troth.node.access import AccessRequest, Decision, PeerCaller
from troth.node.services.plugin import RequestContext


def test_another_identity_creating_the_refused_name_does_not_clear_the_mark(
    tmp_path: Path,
) -> None:
    """Refuted 1."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        to_b = (await net.receive()).return_route[0]
        b = net.relay.relays["b"]
        await _refuse_x_then_free_it(net)
        near = Identifier(b.owner.digest[:-1] + bytes([b.owner.digest[-1] ^ 1]))
        await _create_as(net, near, "x", b.channel)
        assert net.relay.relays["x"].owner == near
        _close(net, "d-channel")
        _close(net, b.channel)
        await _not_reached(net, to_b)

    with_stranger(tmp_path, test)


def test_a_refused_owner_is_decided_by_its_open_channel_not_its_closed_one(
    tmp_path: Path,
) -> None:
    """Refuted 2."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        to_b = (await net.receive()).return_route[0]
        before = _closed_old_channel(net)

        def decide(request: AccessRequest) -> Decision:
            return Decision(request.caller is before, ("revoked",))

        net.relay.decide = decide
        await net.relay.maintain(net.relay.clock())
        await _not_reached(net, to_b)

    with_stranger(tmp_path, test)


def test_a_name_held_for_a_closed_channel_is_freed_after_the_grace_period(
    tmp_path: Path,
) -> None:
    """Refuted 3."""

    async def test(net: Stranger) -> None:
        b = net.relay.relays["b"]
        _close(net, b.channel)
        net.relay.decide = lambda request: Decision(True, ())
        now = net.relay.clock()
        for step in range(3):
            await net.relay.maintain(now + step)
        assert "b" in net.relay.status()
        await net.relay.maintain(now + net.relay.grace)
        assert "b" not in net.relay.status()

    with_stranger(tmp_path, test)


def test_an_owner_whose_key_rotated_lets_its_own_mark_go(tmp_path: Path) -> None:
    """Refuted 4."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        to_b = (await net.receive()).return_route[0]
        b = net.relay.relays["b"]
        now = await _refuse_x_then_free_it(net)
        rotated = cast(
            VerifiedPeer, SimpleNamespace(identifier=b.owner, credentials=(), key=b"rotated")
        )
        context = RequestContext(PeerCaller(rotated, b.channel), (), Decision(True, ()), now)
        assert await net.relay.create("x", context) == "/relay/x"
        _close(net, "d-channel")
        _close(net, b.channel)
        await _reached(net, to_b)

    with_stranger(tmp_path, test)
