"""Review 66e: attacks on policy ask-back (65w) and link forgetting (65x) that did not work.
Each test would fail if the defence it names broke.

- A member sends 30 `get`s naming a revision above the hub's while the hub's ask-back to it
  goes unanswered: one ask-back reaches it (one at a time per member and authority), not one
  per `get` (no amplification through the member's own requests).
- A member names a higher revision, then answers the ask-back with a bundle of a lower
  revision than the hub holds: refused as a rollback, the hub's revision stays (monotonic
  across ask-back).
- A link holding an operator's relay, failing every attempt, is never forgotten by
  `Links.forget_unneeded` (its task goes on retrying); one needing nothing there is forgotten.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from tests.support.nodes import MemNet, run_memnet
from tests.test_gates_distribution import bundle, revision_of
from tests.test_review28a_links import ROUTE
from troth.errors import Unreachable
from troth.node.links import Backoff, Link, Links, LinkState
from troth.node.services.calls import call
from troth.node.services.policy import POLICY, PolicyService
from troth.routing import parse_route


def _answering(service: PolicyService, answer: Any, counts: list[int]) -> asyncio.Event:
    """`service`'s `get` counted and answered `answer` once the returned event is set."""
    release = asyncio.Event()

    async def get(arguments: Any, context: Any) -> Any:
        counts.append(1)
        await release.wait()
        return answer

    service.methods = {
        **service.methods,
        "get": dataclasses.replace(service.methods["get"], handler=get),
    }
    return release


async def _hub_end(net: MemNet, member: Any) -> Any:
    authority = net.authority.identifier
    return await member.channel_to(parse_route(member.trust.routes[authority]), expect=authority)


def test_a_members_repeated_gets_make_one_ask_back_at_a_time(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        hub = net.hub
        assert hub is not None
        hub.policies.accept(bundle(net, 2), now=net.clock.now())
        b = await net.member("agent-b")
        at_b = b.host.services["policy"]
        at_hub = hub.host.services["policy"]
        assert isinstance(at_b, PolicyService)
        assert isinstance(at_hub, PolicyService)
        asked: list[int] = []
        release = _answering(at_b, None, asked)
        end = await _hub_end(net, b)
        for _ in range(30):
            await call(b.router, (end.enc, POLICY), "get", [authority.digest, 9])
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(asked) == 1
        assert len(at_hub._asking) == 1
        release.set()
        await asyncio.gather(*list(at_hub._tasks), return_exceptions=True)
        assert len(asked) == 1
        assert not at_hub._asking

    run_memnet(test, tmp_path)


def test_an_ask_back_answered_with_a_lower_revision_is_refused(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        hub = net.hub
        assert hub is not None
        older = bundle(net, 3)
        hub.policies.accept(bundle(net, 4), now=net.clock.now())
        b = await net.member("agent-b")
        at_b = b.host.services["policy"]
        at_hub = hub.host.services["policy"]
        assert isinstance(at_b, PolicyService)
        assert isinstance(at_hub, PolicyService)
        asked: list[int] = []
        _answering(at_b, older, asked).set()
        end = await _hub_end(net, b)
        await call(b.router, (end.enc, POLICY), "get", [authority.digest, 9])
        for _ in range(20):
            await asyncio.sleep(0)
        await asyncio.gather(*list(at_hub._tasks), return_exceptions=True)
        assert asked == [1]  # asked back, answered the older bundle
        assert revision_of(hub, authority) == 4

    run_memnet(test, tmp_path)


def test_forget_unneeded_keeps_a_failing_relay_link_retrying() -> None:
    async def run() -> tuple[list[str], int, LinkState, bool]:
        tries = 0

        async def restore(link: Link) -> None:
            nonlocal tries
            tries += 1
            raise Unreachable("the hub is gone")

        links = Links(restore, backoff=Backoff(base=1e-6, max_delay=1e-6), random=lambda: 0.0)
        relay = links.link(ROUTE)
        relay.relays.add("b")
        links.resume(ROUTE)
        other = links.link("/tcp/old:4000")
        other.authority = None
        links.resume("/tcp/old:4000")  # idle without relays: not resumed
        for _ in range(10):
            await asyncio.sleep(0)
        gone = links.forget_unneeded()
        before = tries
        for _ in range(10):
            await asyncio.sleep(0)
        running = ROUTE in links._tasks and not links._tasks[ROUTE].done()
        await links.stop()
        return gone, tries - before, relay.state, running

    gone, more, state, running = asyncio.run(run())
    assert gone == ["/tcp/old:4000"]
    assert more > 0  # the relay link goes on retrying
    assert running
    assert state in (LinkState.RECONNECTING, LinkState.CONNECTING)
