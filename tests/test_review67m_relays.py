"""Review 67m, relays: findings against the relay cut-off of reviews 66f, 66n, 66q and 66y
(each test failed before its fix).

Relays 1 (medium: a refused owner escapes its cut). A connection a refusal left uncut, another
name still up over it (`RelayService._uncut`, review 66f, relays 4), waited for the *names* of
the relays that wanted it cut to be down. Once the refused owner's grace period ran out, its
name was free for anyone holding `troth.relay` for it (or `*`) to create over another
connection; up again, the name no longer wanted the cut, and the connection was let go for
good: when the other name up over it went down, nothing cut it, and every sender that had
reached the refused owner there went on reaching it, both ways. Review 66n marked a name freed
as wanting the cut for good (`_FOR_GOOD`), but only at the next cut gone through after the
maintenance round that freed it, and a name taken over by a new owner before that round never
was. A name freed or taken over by another owner now hands its wants to `_FOR_GOOD` as it
goes (`RelayService._let_go`).

Relays 2 (low: an honest owner cut). A refused name freed after the grace period wanted its
connection cut for good (`_FOR_GOOD`, review 66n, relays 1), whatever came after: an owner
refused by a stale feed (or a revocation since superseded) while another name was up over its
connection, allowed again only after its grace period and creating its name again there, had
that connection cut much later, once no name was up over it (its channel closed and opened
again), every sender's reply path to it with it, where one allowed again within the grace
period is not (review 66n, refuted 2). A freed name's want is now a mark (name, owner) that
the owner creating that same name again over that connection, as its own, lets go (a new name
does not: tests/test_review67m_refuted.py); past `MAX_RELAYS_PER_OWNER` marks a connection
wants its cut for good, as before, so an entry stays bounded.

Relays 3 (medium: a refused owner escapes its cut). Each round decided again only the names
whose channel was open: an owner that closed its channel (its connection kept open) before its
revocation reached the node held a name for a closed channel, never decided again, and was
never cut: every sender that had reached it went on reaching it at its connection, both ways.
A relay now keeps its owner as its channel last showed it (`Relay.shown`), and a name held for
a closed channel is decided by that; refused, it is cut off as an open one is, once (it is
then refused: decided no more until its owner creates it again).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from tests.test_review55a_refuted import Stranger, with_stranger
from tests.test_review66f_relays import _not_reached
from tests.test_review66n_refuted import _reached
from tests.test_review66n_relays import _close
from tests.test_review67s_relays import _refuse_x_then_free_it
from troth.channel.verification import VerifiedPeer
from troth.identity import Identifier
from troth.node.access import AccessRequest, Decision, PeerCaller
from troth.node.services.plugin import RequestContext

E = Identifier(b"\x65" * 32)
"""Another member, holding `troth.relay=*`."""


async def _create_as(net: Stranger, who: Identifier, name: str, channel: str) -> None:
    """`who` creates `name` over `channel` (its access decided: allowed)."""
    peer = cast(VerifiedPeer, SimpleNamespace(identifier=who, credentials=()))
    now = net.relay.clock()
    context = RequestContext(PeerCaller(peer, channel), (), Decision(True, ()), now)
    assert await net.relay.create(name, context) == f"/relay/{name}"


@pytest.mark.parametrize("freed", ["freed first", "taken over"])
def test_a_refused_name_taken_by_another_owner_does_not_undo_the_cut(
    tmp_path: Path, freed: str
) -> None:
    """Relays 1: b's second name `x` refused while `d` (another identity of b's node) is up
    over b's connection; past the grace period E creates `x` (after the round that freed it,
    or before; over b's channel here, the one the test has: it goes down with b's name); then
    b's name and d's go down: the stranger no longer reaches b. Before, b's connection was let
    go when `x` came up again."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        to_b = (await net.receive()).return_route[0]
        relays = net.relay.relays
        b = relays["b"]
        relays["d"] = replace(b, channel="d-channel")  # (not found: not decided again, up)
        relays["x"] = replace(b)

        def decide(request: AccessRequest) -> Decision:  # (E may create `x`: review 68f)
            caller = request.caller
            mine = isinstance(caller, PeerCaller) and caller.identifier == b.owner
            return Decision(request.arguments != "x" or not mine, ("no credential",))

        net.relay.decide = decide
        now = net.relay.clock()
        await net.relay.maintain(now)
        assert relays["x"].refused
        now += net.relay.grace
        if freed == "freed first":
            await net.relay.maintain(now)
            assert "x" not in relays
        net.relay.clock = lambda: now
        await _create_as(net, E, "x", b.channel)
        assert relays["x"].owner == E
        assert relays["x"].lost_at is None
        _close(net, b.channel)
        _close(net, "d-channel")
        assert relays["b"].lost_at is not None
        assert relays["d"].lost_at is not None
        await _not_reached(net, to_b)

    with_stranger(tmp_path, test)


def test_an_owner_allowed_again_after_its_grace_period_is_not_cut_later(tmp_path: Path) -> None:
    """Relays 2: b's second name `x` refused (a stale feed) while `d` is up over b's
    connection, freed after the grace period; the feed back, b creates `x` again over its
    connection, and only later do d's channel and then b's close: the stranger still reaches b
    there, as it does when b is allowed again within the grace period (review 66n, refuted 2).
    Before, the cut waited for good and struck b, honest for long, once no name was up."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        to_b = (await net.receive()).return_route[0]
        relays = net.relay.relays
        b = relays["b"]
        now = await _refuse_x_then_free_it(net)
        await _create_as(net, b.owner, "x", b.channel)
        await net.relay.maintain(now + 1)
        _close(net, "d-channel")
        _close(net, b.channel)
        assert relays["b"].lost_at is not None
        assert relays["x"].lost_at is not None
        await _reached(net, to_b)

    with_stranger(tmp_path, test)


def test_an_owner_that_closed_its_channel_before_its_refusal_is_still_cut(
    tmp_path: Path,
) -> None:
    """Relays 3: b closes its channel (its connection kept open) before its revocation
    reaches the hub; the next round refuses it as its channel last showed it: the stranger
    that reached b no longer does. Before, a name held for a closed channel was never decided
    again, and b kept its senders at its connection for good."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        to_b = (await net.receive()).return_route[0]
        b = net.relay.relays["b"]
        _close(net, b.channel)
        assert b.lost_at is not None

        def decide(request: AccessRequest) -> Decision:
            return Decision(False, ("revoked",))

        net.relay.decide = decide
        await net.relay.maintain(net.relay.clock())
        await _not_reached(net, to_b)

    with_stranger(tmp_path, test)
