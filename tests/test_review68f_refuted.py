"""Review 68f, relays: attacks on the relay marks and the cut-off of reviews 67m and 67s that
did not work, each a passing test that fails if the defence it names breaks.

1. Two channels, the old credential on one and the renewed on the other: b's name forwards
   over its renewed channel, created before over its old one, which shows its expired
   credential; the renewed channel closes: the name does not fall back to the old channel (it
   is decided there first: review 49n), it is held, and the next round, deciding it as b's
   latest open channel shows it (review 67s, relays 1), refuses it and cuts b off.
2. A revoked member reconnecting 10,000 times, each time over a new connection that another
   of its identities' names is up over, refused each time: the connections it left (closed)
   are forgotten by the next cut, so the relay's marks (`_uncut`) hold none of them, and its
   name's earlier connections none either (only connections still open are kept).
3. A member renewing just after its cut is not locked out for the grace period: refused
   (its credential expired) and cut off, it shows its renewed credential on its channel, and
   the next round forwards its name again: the stranger's new message 1 reaches it by its
   name (the reply paths the cut took stay taken: review 67m, refuted 2).
4. A relay restart (the names kept in relays.json, the marks not: the connections they name
   are gone with the process): a revoked owner back over a new channel neither gets its kept
   name forwarding again nor creates it again; its name answers `relay not found`.
5. A member holding its channel open without sending anything is decided each round all the
   same (by what its channel showed, not by its traffic, which the relay forwards unread):
   refused, the stranger no longer reaches it at its connection, and what the stranger sent
   before arrived at b byte for byte as it was sent.

Left as it was (no promise in the docs): members that may still relay forwarding for a
revoked one over names of their own; a sender's own handshake refuses the revoked peer's
credential (docs/protocols.md, "a revoked or expired peer is closed").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from tests.test_reconnect import until
from tests.test_review55a_refuted import MESSAGE_1, Stranger, with_stranger
from tests.test_review66f_relays import _not_reached
from tests.test_review66n_relays import _close
from troth import limits
from troth.errors import Denied
from troth.node.access import AccessRequest, Decision, PeerCaller
from troth.node.services.plugin import RequestContext
from troth.node.services.relay import NOT_FOUND, Relay
from troth.routing import Address


def _refusing(channel: str) -> Callable[[AccessRequest], Decision]:
    """A decision point refusing the callers of `channel` only (the one showing the expired
    credential)."""

    def decide(request: AccessRequest) -> Decision:
        caller = request.caller
        return Decision(
            not (isinstance(caller, PeerCaller) and caller.channel == channel), ("expired",)
        )

    return decide


def test_two_channels_the_old_one_showing_the_expired_credential_is_not_fallen_back_to(
    tmp_path: Path,
) -> None:
    """Refuted 1."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        to_b = (await net.receive()).return_route[0]
        b = net.relay.relays["b"]
        net.relay.relays["b"] = replace(b, channel="renewed", others=(b.channel,))
        net.relay.decide = _refusing(b.channel)
        _close(net, "renewed")
        assert net.relay.relays["b"].lost_at is not None  # held: not over the old channel
        assert net.relay.relays["b"].others == ()
        await net.relay.maintain(net.relay.clock())
        assert net.relay.relays["b"].refused
        await _not_reached(net, to_b)

    with_stranger(tmp_path, test)


def test_a_revoked_member_reconnecting_10000_times_leaves_no_marks(tmp_path: Path) -> None:
    """Refuted 2."""

    async def test(net: Stranger) -> None:
        relays, b = net.relay.relays, net.relay.relays["b"]
        net.relay.decide = lambda request: Decision(False, ("revoked",))
        now = net.relay.clock()
        earlier: tuple[Address, ...] = ()
        for port in range(10_000):  # each connection closed as the next one comes
            connection = Address("tcp", f"198.51.100.7:{port + 1}")
            relays["d"] = replace(b, channel="d-channel", connection=connection)
            relays["b"] = replace(b, connection=connection, earlier=earlier[-2:])
            earlier = (*earlier[-2:], connection)
            net.relay._recheck(now)
            assert relays["b"].refused
        assert not net.relay._uncut
        relays["b"] = replace(b, earlier=earlier)
        assert net.relay._earlier(relays["b"], b.connection or connection) == ((), ())
        assert limits.MAX_CHANNELS_PER_MEMBER < 10_000

    with_stranger(tmp_path, test)


def test_a_member_renewing_just_after_its_cut_is_reached_by_its_name_again(
    tmp_path: Path,
) -> None:
    """Refuted 3."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        to_b = (await net.receive()).return_route[0]
        renewed = False
        net.relay.decide = lambda request: Decision(renewed, ("expired",))
        now = net.relay.clock()
        await net.relay.maintain(now)
        await _not_reached(net, to_b)
        renewed = True  # its renewed credential shown on its channel
        await net.relay.maintain(now + 1)
        assert net.relay.status()["b"]["state"] == "up"
        before = len(net.mine())
        net.send("/relay/b/service/channels")
        await until(lambda: len(net.mine()) > before)

    with_stranger(tmp_path, test)


def test_a_revoked_owner_after_a_restart_gets_its_kept_name_back_neither_way(
    tmp_path: Path,
) -> None:
    """Refuted 4."""

    async def test(net: Stranger) -> None:
        b = net.relay.relays["b"]
        end = net.hub.channels.find(b.channel)
        assert end is not None
        assert end.caller is not None
        now = net.relay.clock()
        net.relay.relays["b"] = Relay(b.owner, None, "", lost_at=now)  # as a restart keeps it
        net.relay._uncut.clear()  # (the marks are not kept)
        net.relay.decide = lambda request: Decision(False, ("revoked",))
        await net.relay.maintain(now)
        assert net.relay.relays["b"].refused
        with pytest.raises(Denied, match="revoked"):
            await net.relay.create("b", RequestContext(end.caller, (), Decision(True, ()), now))
        net.send("/relay/b/service/channels")
        assert bytes((await net.receive()).payload) == NOT_FOUND
        assert not net.mine()

    with_stranger(tmp_path, test)


def test_a_member_holding_its_channel_open_without_sending_is_decided_all_the_same(
    tmp_path: Path,
) -> None:
    """Refuted 5."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        to_b = (await net.receive()).return_route[0]
        b = net.relay.relays["b"]
        end = net.hub.channels.find(b.channel)
        assert end is not None
        net.relay.decide = lambda request: Decision(False, ("revoked",))
        await net.relay.maintain(net.relay.clock())
        await _not_reached(net, to_b)
        assert net.hub.channels.find(b.channel) is end  # its channel kept, its name cut
        assert [bytes(m.payload) for m in net.mine()] == [MESSAGE_1]

    with_stranger(tmp_path, test)
