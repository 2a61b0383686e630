"""Review 10's attacks: the transport's read-callback fast path and review 9's fixes.

Each test asserts the secure or correct behaviour and is marked xfail while main has the bug.
Held (no test kept): many small frames in one read (routed inline only under 64 KiB, the same
work the consumer did); a peer that never reads its answers (corked answers written at the
callback's end, the next send waits for the drain, the rest queue until reading pauses, the
write timeout drops it); order across a waiting routing, a heavy read and the consumer; an
exception in a callback-routed handler (one message dropped, the connection stays); the Calls
deadline timer (a cancelled earliest call, a later earlier deadline re-arms it); node.lock (a
0700 directory, flock released at death, a second start touches nothing); the held feed's
attestation of a fork (the stored copy refuses it as FORK)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.channels import T, World, make_world
from tests.support.histories import DAY
from tests.support.parties import make_channel_party
from tests.test_resilience_enrollment import now, troth
from troth.authority.tickets import Ticket
from troth.channel import ChannelSettings
from troth.credentials import Attributes
from troth.crypto import KeyType
from troth.crypto.private import generate_private_key
from troth.errors import IdentityError, IdentityFailure, TrothError
from troth.identity import (
    ChangeBody,
    Checkpoint,
    Identifier,
    SignedChange,
    encode_history,
    next_key_digest,
    verify_history,
)
from troth.node import init_node, open_node
from troth.node.access import AnyAuthenticated, RulesPolicy, Standing
from troth.node.channels import LISTENER, ChannelLimits, ChannelManager, caller_of
from troth.node.services import Method, RequestContext, ServiceHost, call
from troth.node.services.echo import EchoService
from troth.routing import Address, Router, parse_route
from troth.transport import Listener, TcpSettings, TcpTransport

# -- 1. a forged ticket takes over the stored copy of a real authority -------------------------


def _forged_continuation(identifier: bytes, index: int, previous: bytes, at: int) -> bytes:
    """A history of `identifier` presented from change `index` that names the real last change
    as previous but holds the attacker's key: the checkpoint vouches for itself."""
    key = generate_private_key(KeyType.ED25519)
    body = ChangeBody(
        index,
        previous,
        key.public_key,
        next_key_digest(generate_private_key(KeyType.ED25519).public_key),
        at,
        at,
        at + 30 * DAY,
    )
    encoded = body.encode()
    signed = SignedChange(encoded, key.sign(encoded), key.sign(encoded))
    return encode_history([signed], Checkpoint(identifier, identifier, index))


def acme_and_victim(start: int) -> tuple[Identifier, Ticket]:
    """Nodes acme (hosting authority acme) and victim (identity victim, never enrolled):
    acme's identifier and a genuine ticket of it."""
    init_node("acme")
    init_node("victim")
    with open_node("acme") as acme, open_node("victim") as victim:
        authority = acme.create_authority("acme", now=start)
        good = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"agents.team": "a"}),
            address="node:acme",
            now=start,
        )
        victim.identities.create(now=start, name="victim")
    return authority.identifier, good


def test_a_forged_ticket_cannot_rewrite_a_known_authoritys_history() -> None:
    """A member enrolled with acme (its history stored) is handed a ticket "for acme" whose
    history is a one-change checkpointed suffix: acme's identifier, previous = acme's real last
    change, the attacker's key, the checkpoint naming acme itself. `troth enroll` with it must
    not change the stored copy of acme (else the attacker's key is acme's current key to this
    node: feed pages, chains and handshakes signed by it verify, acme's own do not)."""
    start = now()
    real, good = acme_and_victim(start)
    troth("enroll", str(good), "--as", "victim", "--node", "victim")
    forged = _forged_continuation(real.digest, 1, real.digest, start)
    evil = Ticket(os.urandom(len(good.code)), forged, "node:acme")
    troth("enroll", str(evil), "--as", "victim", "--node", "victim", code=None)  # refused
    with open_node("acme") as acme, open_node("victim") as victim:
        # acme rotates: the victim must still accept its real history (on main: FORK, the
        # attacker's change is now change 1 of the victim's stored copy of acme)
        acme.identities.rotate("acme", now=start + 60)
        victim.identities.import_history(acme.identities.export("acme"), now=start + 60)
        assert victim.identities.stored_changes(real) == 2
        with pytest.raises(IdentityError) as raised:  # and the attacker's key is not acme's
            verify_history(forged, now=start, checkpoints=victim.identities.attested_by_store)
        assert raised.value.reason is IdentityFailure.UNATTESTED_CHECKPOINT


# -- 2. an answer made while a packet is handled waits for a slow request after it -------------

SLOW = Address("service", "slow")
ECHO = Address("service", "echo")


class _Slow:
    """A service whose handler (not inline: it runs in a task) waits for a gate."""

    name = "slow"
    oneway = None

    def __init__(self, started: asyncio.Event, gate: asyncio.Event) -> None:
        self.started = started
        self.gate = gate
        self.methods = {"wait": Method(self.wait, AnyAuthenticated())}

    async def wait(self, arguments: Any, context: RequestContext) -> Any:
        self.started.set()
        await self.gate.wait()
        return arguments

    async def maintain(self, now: int) -> None:
        """Nothing."""

    def status(self) -> dict[str, Any]:
        return {}


def _tcp_peer(
    world: World, clock: Callable[[], int], services: frozenset[Address]
) -> tuple[Router, TcpTransport, ChannelManager]:
    """A node-like peer on real TCP: router, transport, channel manager, echo service."""
    who = make_channel_party(world.vault, now=T)
    credentials = (world.credential(who),)
    router = Router()
    manager = ChannelManager(
        router,
        me=lambda: who.me(credentials),
        trust=world.trust,
        services=lambda: services,
        settings=ChannelSettings(),
        clock=clock,
        limits=ChannelLimits(),
    )
    manager.start()
    rules = {("echo", "echo"): AnyAuthenticated(), ("slow", "wait"): AnyAuthenticated()}
    policy = RulesPolicy("peer", rules, lambda peer, now: Standing(()))
    ServiceHost(router, policy, clock=clock, callers=caller_of).add(EchoService())
    return router, TcpTransport(router, TcpSettings()), manager


def test_an_answer_is_not_held_back_by_a_slow_request_of_the_same_packet() -> None:
    async def main() -> None:
        world = make_world()

        def clock() -> int:
            return T + 1

        hub_router, hub_tcp, hub_channels = _tcp_peer(world, clock, frozenset({ECHO, SLOW}))
        started, gate = asyncio.Event(), asyncio.Event()
        policy = RulesPolicy(
            "hub", {("slow", "wait"): AnyAuthenticated()}, lambda peer, now: Standing(())
        )
        ServiceHost(hub_router, policy, clock=clock, callers=caller_of).add(_Slow(started, gate))
        a_router, a_tcp, a_channels = _tcp_peer(world, clock, frozenset({ECHO}))
        try:
            _, port = await hub_tcp.listen("127.0.0.1", 0, Listener(frozenset({LISTENER})))
            end = await a_channels.open(parse_route(f"/tcp/127.0.0.1:{port}/service/channels"))

            async def ask(service: Address, method: str, value: str) -> Any:
                return await call(a_router, (end.enc, service), method, value, timeout=3)

            # sent in one loop iteration: the first leaves alone, the next two in one packet
            first = asyncio.create_task(ask(ECHO, "echo", "first"))
            fast = asyncio.create_task(ask(ECHO, "echo", "fast"))
            slow = asyncio.create_task(ask(SLOW, "wait", "slow"))
            assert await first == "first"
            await asyncio.wait_for(started.wait(), 5)
            try:
                assert await fast == "fast"  # on main: Unreachable after 3 s, gate still shut
            finally:
                gate.set()
                with contextlib.suppress(TrothError):
                    await slow
        finally:
            await a_channels.close_all()
            await hub_channels.close_all()
            await a_tcp.close()
            await hub_tcp.close()

    asyncio.run(asyncio.wait_for(main(), 30))
