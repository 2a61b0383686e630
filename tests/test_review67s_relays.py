"""Review 67s, relays: findings against review 67m's relay fixes (each test failed before its
fix).

Relays 1 (low: an honest owner cut). Review 67m, relays 3 decided a name held for a closed
channel as that channel last showed its owner (`Relay.shown`), even once the owner showed
itself again over a new channel: an owner that closed its channel near its credential's
expiry and opened a new one with its renewed credential, over the same connection, was
refused by the round that ran before it created its name again, as the expired credential
showed it, and its connection was cut off (every sender's reply path to it there). A name
held for a closed channel is now decided as its owner shows itself on its latest open channel
(the same identifier), and as the closed channel showed it only when it has none; a refused
owner's new channel shows its refusal as well (tests/test_review67s_refuted.py).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import cast

from tests.test_review55a_refuted import Stranger, with_stranger
from tests.test_review66n_refuted import _reached
from tests.test_review66n_relays import _close
from troth.channel.verification import VerifiedPeer
from troth.node.access import AccessRequest, Decision, PeerCaller


def _closed_old_channel(net: Stranger) -> PeerCaller:
    """b's name forwarding over an old channel, now closed (b's channel the test has stays
    open): b as that old channel showed it."""
    b = net.relay.relays["b"]
    old = PeerCaller(cast(VerifiedPeer, SimpleNamespace(identifier=b.owner, credentials=())), "old")
    net.relay.relays["b"] = replace(b, channel="old", shown=old)
    _close(net, "old")
    return old


async def _refuse_x_then_free_it(net: Stranger) -> int:
    """`x` (b's second name) refused (a stale feed) while `d` (b's node's other identity) is
    up over b's connection, then freed after the grace period, and the feed back: the time
    after (the relay's clock)."""
    relays = net.relay.relays
    b = relays["b"]
    relays["d"] = replace(b, channel="d-channel")  # (not found: not decided again, up)
    relays["x"] = replace(b)
    stale = True

    def decide(request: AccessRequest) -> Decision:
        return Decision(not stale or request.arguments != "x", ("revoked",))

    net.relay.decide = decide
    now = net.relay.clock()
    await net.relay.maintain(now)
    assert relays["x"].refused
    now += net.relay.grace
    await net.relay.maintain(now)
    await net.relay.maintain(now + 1)
    assert "x" not in relays
    stale = False
    net.relay.clock = lambda: now + 2
    return now + 2


def test_an_owner_back_with_a_renewed_credential_is_not_cut(tmp_path: Path) -> None:
    """Relays 1: b's name forwards over an old channel, which shows b's credential that has
    since expired; that channel closes while b's other channel over the same connection shows
    b as it is now (renewed); the round decides b's held name: allowed, the stranger still
    reaches b. Before, the round decided by the expired credential and cut b's connection."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        to_b = (await net.receive()).return_route[0]
        b = net.relay.relays["b"]
        expired = _closed_old_channel(net)
        decided: list[PeerCaller] = []

        def decide(request: AccessRequest) -> Decision:
            assert isinstance(request.caller, PeerCaller)
            decided.append(request.caller)
            return Decision(request.caller is not expired, ("credential expired",))

        net.relay.decide = decide
        await net.relay.maintain(net.relay.clock())
        assert decided
        assert decided[-1].identifier == b.owner
        assert net.relay.status()["b"]["state"].startswith("held")
        await _reached(net, to_b)

    with_stranger(tmp_path, test)
