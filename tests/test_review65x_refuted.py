"""Review 65x: attacks on reconnection and liveness that did not work (docs/protocols.md,
"Reconnecting"). Each test would fail if the defence it names broke.

- A hub that refuses every attempt, with any kind of exception (a typed refusal, an OSError, a
  bug's RuntimeError): the link never stops retrying and its waits grow to the cap, never a
  tight loop at attempt 0 nor a reconnect task that died on an unexpected error.
- A hub that flaps the link's channel while an attempt is under way, and channels opened and
  lost there by other callers meanwhile: never two attempts of one link at once (no storm of
  handshakes from one node), and the link ends connected once the hub lets an attempt end.
"""

from __future__ import annotations

import asyncio
from typing import cast

from tests.test_review28a_links import ROUTE, _End, _RecordedBackoff
from troth.errors import ChannelError, ChannelFailure, Unreachable
from troth.node.channels import ChannelEnd
from troth.node.links import Backoff, Link, Links, LinkState


def test_a_hub_refusing_every_attempt_in_any_way_meets_a_growing_capped_backoff() -> None:
    """Refusals of every kind, 14 in a row: the link retries after each (its task survives a
    RuntimeError too), the waits asked for grow one attempt at a time up to the cap."""
    errors: list[Exception] = [
        Unreachable("cannot connect to hub:4000: connection refused"),
        ChannelError(ChannelFailure.TIMEOUT, "no handshake from /tcp/hub:4000 within 10 s"),
        ConnectionResetError("reset by peer"),
        RuntimeError("a bug in a restore step"),
    ]

    async def run() -> tuple[list[int], LinkState, int]:
        backoff = _RecordedBackoff()
        tries = 0
        done = asyncio.Event()

        async def restore(link: Link) -> None:
            nonlocal tries
            tries += 1
            if tries > 14:
                links.opened(link.route, cast(ChannelEnd, _End("back")))
                done.set()
                return
            raise errors[tries % len(errors)]

        links = Links(restore, backoff=backoff)
        link = links.link(ROUTE)
        link.relays.add("b")
        links.resume(ROUTE)
        async with asyncio.timeout(5):
            await done.wait()
            while link.state is not LinkState.CONNECTED:
                await asyncio.sleep(0)
        await links.stop()
        return cast(list[int], object.__getattribute__(backoff, "asked")), link.state, tries

    asked, state, tries = asyncio.run(run())
    assert tries == 15
    assert state is LinkState.CONNECTED
    assert asked == list(range(1, 15)), asked  # one wait per failed attempt, each one longer
    assert Backoff().ceiling(asked[-1]) == Backoff().max_delay  # up to the cap, no further


def test_a_flapping_hub_never_gets_two_attempts_of_one_link_at_once() -> None:
    """While an attempt is under way, the hub closes the channels to it and other callers open
    new ones, 50 times: one attempt runs at a time, and the link ends connected."""

    async def run() -> tuple[int, int, LinkState]:
        running = most = calls = 0
        release = asyncio.Event()

        async def restore(link: Link) -> None:
            nonlocal running, most, calls
            calls += 1
            running += 1
            most = max(most, running)
            try:
                end = _End(f"attempt-{calls}")
                links.opened(link.route, cast(ChannelEnd, end))
                await release.wait()
            finally:
                running -= 1

        links = Links(restore, backoff=Backoff(base=1e-6, max_delay=1e-6), random=lambda: 0.0)
        link = links.link(ROUTE)
        link.relays.add("b")
        links.resume(ROUTE)
        for n in range(50):
            await asyncio.sleep(0)
            if link.end is not None:
                lost = cast(_End, link.end)
                lost.channel.closed = True
                links.closed(cast(ChannelEnd, lost))
            links.opened(ROUTE, cast(ChannelEnd, _End(f"other-{n}")))
        release.set()
        async with asyncio.timeout(5):
            while link.state is not LinkState.CONNECTED:
                await asyncio.sleep(0)
        await links.stop()
        return most, calls, link.state

    most, calls, state = asyncio.run(run())
    assert most == 1, most
    assert state is LinkState.CONNECTED
    assert calls >= 1
