"""Review 66l: attacks on the feed's supersession rules (reviews 65k, 65r: `_said`,
`_descends`) and on closing a channel at a local failure (reviews 65e, 65l) that did not work;
each test fails if the defence it names breaks."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.backups import feed_gone_back
from tests.support.channels import T, make_world, pump
from tests.support.histories import encode, extend, honest_history
from tests.test_channel_manager import Net, run, until
from tests.test_review43a_channels import open_as
from troth.channel import ChannelState, ChannelTrust, VerifiedPeer
from troth.channel.events import Closed, Event
from troth.channel.payloads import AuthPayload
from troth.errors import ChannelFailure, CredentialError, StorageError, Unreachable
from troth.identity import verify_history
from troth.node import init_node, open_node
from troth.node.access import AnyAuthenticated
from troth.node.services import call, service_address
from troth.node.services.base import Method, RequestContext
from troth.node.trust import _revoke_again

# -- feed ----------------------------------------------------------------------------------------


def test_the_owner_rotating_three_times_past_the_gone_back_line(troth_home: Path) -> None:
    """The owner rotated to 2, 3 and 4 changes (three supersessions, the held feed's newest
    (4, D)); the store's line went back to (2, B), and the thief forks change 1 with 3 changes:
    the newest held is published again, the 2- and 3-change histories (retired keys) and the
    fork refused, the owner's 4-change one accepted."""
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        first = honest_history(1, start=NOW - 20)
        two_h = extend(first, NOW - 10)
        three_h = extend(two_h, NOW - 9)
        four_h = extend(three_h, NOW - 8)
        two, three, four = (
            verify_history(encode(h.changes), now=NOW) for h in (two_h, three_h, four_h)
        )
        thief = verify_history(encode(extend(extend(first, NOW - 4), NOW - 3).changes), now=NOW)
        start = authority.held_feed(now=NOW)
        authority.revocations.supersede(two, now=NOW, charged_to=authority.identifier)
        back = authority.store.revocation_tip()[0]
        for history in (three, four):
            node.identities.import_history(history, now=NOW)
            authority.revocations.supersede(history, now=NOW, charged_to=authority.identifier)
        held = authority.held_feed(now=NOW, previous=start)
        feed_gone_back(authority, back)
        authority.revocations.supersede(thief, now=NOW, charged_to=authority.identifier)
        again = _revoke_again(authority, held, authority.held_feed(now=NOW), NOW)
        assert again is not None
        again.check_current(four)
        for retired in (two, three, thief):
            with pytest.raises(CredentialError):
                again.check_current(retired)


def test_the_same_change_published_twice_is_said_once(troth_home: Path) -> None:
    """The held (2, B) published again over a thief's (2, A') on the gone-back line (B then
    twice in the store's history of that identity, under two seqs with the fork between): the
    owner asking again, the thief asking again and the re-revoke run again write nothing, and
    the feed refuses the fork."""
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        first = honest_history(1, start=NOW - 10)
        owner = verify_history(encode(extend(first, NOW - 5).changes), now=NOW)
        thief = verify_history(encode(extend(first, NOW - 4).changes), now=NOW)
        start = authority.held_feed(now=NOW)
        authority.revocations.supersede(owner, now=NOW, charged_to=authority.identifier)
        held = authority.held_feed(now=NOW, previous=start)
        feed_gone_back(authority, start.count)
        authority.revocations.supersede(thief, now=NOW, charged_to=authority.identifier)
        again = _revoke_again(authority, held, authority.held_feed(now=NOW), NOW)
        assert again is not None
        tip = authority.store.revocation_tip()
        newest = tip[0] - 1
        assert authority.revocations.supersede(owner, now=NOW) == newest
        assert authority.revocations.supersede(thief, now=NOW) == newest
        assert _revoke_again(authority, held, again, NOW) is not None
        assert authority.store.revocation_tip() == tip
        feed = authority.held_feed(now=NOW)
        feed.check_current(owner)
        with pytest.raises(CredentialError):
            feed.check_current(thief)


# -- channels ------------------------------------------------------------------------------------


class _Stalled:
    """A service whose one method never answers (a call to it stays pending)."""

    name = "stalled"
    oneway: Method | None = None

    def __init__(self) -> None:
        self.methods: Mapping[str, Method] = {"wait": Method(self.wait, AnyAuthenticated())}
        self.reached = asyncio.Event()

    async def wait(self, arguments: Any, context: RequestContext) -> Any:
        self.reached.set()
        await asyncio.Event().wait()

    async def maintain(self, now: int) -> None:
        """Nothing to maintain."""

    def status(self) -> dict[str, Any]:
        return {}


def _failing_store(peer: VerifiedPeer) -> None:
    raise StorageError("database is locked")


def _failing(trust: ChannelTrust) -> ChannelTrust:
    return dataclasses.replace(trust, observe=_failing_store)


def test_a_call_pending_on_a_channel_a_local_failure_closed_fails_at_once() -> None:
    """The caller's re-check of the hub meets a failing store: the channel is closed, its call
    still waiting for the hub's answer fails with Unreachable at once (not at its 20 s
    timeout), the manager forgets the end, and another peer's channel to the hub stays open."""

    async def test(net: Net) -> None:
        stalled = _Stalled()
        hub = await net.hub(services=(stalled,))
        alice, bob = net.world.alice, net.world.bob
        a_peer, b_peer = net.peer("10.66.1.1"), net.peer("10.66.1.2")
        to_hub = await open_as(a_peer, alice.me((net.world.credential(alice),)))
        other = await open_as(b_peer, bob.me((net.world.credential(bob),)))
        route = (to_hub.enc, service_address("stalled"))
        pending = asyncio.ensure_future(call(a_peer.router, route, "wait", 1, timeout=20))
        await asyncio.wait_for(stalled.reached.wait(), 5)
        to_hub.channel.trust = _failing(to_hub.channel.trust)
        await a_peer.manager.check_peers()
        assert to_hub.channel.state is ChannelState.CLOSED
        assert to_hub.channel.close_reason is ChannelFailure.PEER_INVALID
        with pytest.raises(Unreachable):
            await asyncio.wait_for(pending, 1)
        assert not a_peer.manager.ends
        await until(lambda: sum(1 for e in hub.manager.ends.values() if e.peer) == 1)
        await hub.manager.check_peers()
        assert other.channel.state is ChannelState.OPEN

    run(test)


def _mutated(data: bytes, rng: random.Random) -> bytes:
    """`data` with bytes flipped, cut short, grown or cut out."""
    b = bytearray(data)
    choice = rng.randrange(4)
    if choice == 0:
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif choice == 1:
        del b[rng.randrange(len(b)) :]
    elif choice == 2:
        at = rng.randrange(len(b))
        b[at:at] = rng.randbytes(rng.randint(1, 8))
    else:
        i, j = sorted((rng.randrange(len(b)), rng.randrange(len(b))))
        del b[i:j]
    return bytes(b)


def _local(events: list[Event]) -> list[str]:
    return [e.detail for e in events if isinstance(e, Closed) and "local failure" in e.detail]


def test_a_peers_mangled_handshake_or_refresh_is_never_taken_for_a_local_failure() -> None:
    """65e/65l close a channel at a failure of this side's own and log it as one (`_failed_here`:
    "a local failure"): a peer whose message 3 (history, attestation, chains, the payload)
    or refresh is mangled on purpose meets the peer's refusal (a close code of its own), never
    that path (which would send the operator after a failing disk and hide the peer)."""
    world = make_world()
    rng = random.Random(66)
    chain = world.credential(world.alice)
    refused = 0
    for n in range(48):
        a, b = world.initiator(), world.responder()
        if n % 2:
            pump(a, b)
            a.send_credentials((_mutated(chain, rng),))
            events = [e for p in a.outgoing() for e in b.receive(p, T + 2)]
        else:
            p = AuthPayload.decode(a._auth_payload())
            parts = [p.history, p.attestation, p.credentials[0]]
            which = n // 2 % 4
            if which < 3:
                parts[which] = _mutated(parts[which], rng)
            payload = AuthPayload(parts[0], parts[1], (parts[2],)).encode()
            data = payload if which < 3 else _mutated(payload, rng)
            a._auth_payload = functools.partial(bytes, data)  # type: ignore[method-assign]
            events = []
            for _ in range(3):
                events += [e for p in a.outgoing() for e in b.receive(p, T + 2)]
                events += [e for p in b.outgoing() for e in a.receive(p, T + 2)]
        assert not _local(events), n
        refused += any(isinstance(e, Closed) for e in events)
    assert refused >= 40  # the mangling was read and refused, not lost on the way
