"""Review 47a, flakes: tests whose outcome hung on timing, shown deterministically here.

Flakes 1: tests/test_channel_held_answers.py's handler sent a message back through the
caller's channel, slept 0.3 s and read how many messages the caller's end had received: on a
loaded machine (CI: 2 cores) the caller may take longer than that to read it, and the test
failed although nothing was held back. Here the caller's end reads each packet 0.4 s late
(what a stalled loop does): the check waits for the message (up to 5 s), so it fails only
when the message is held until the handler ends."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests import test_channel_held_answers, test_review41b_channels
from troth.node.channel_ends import ChannelEnd


def test_a_slow_reader_still_sees_the_handlers_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ChannelEnd.from_peer
    slow: list[ChannelEnd] = []

    async def late(self: ChannelEnd, *args: Any, **kwargs: Any) -> None:
        if self in slow:
            await asyncio.sleep(0.4)
        await real(self, *args, **kwargs)

    monkeypatch.setattr(ChannelEnd, "from_peer", late)
    test_channel_held_answers.scenario(tmp_path, watched=slow)


def test_a_slow_attacker_still_hears_its_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flakes 2: tests/test_review41b_channels.py gave the hub's CLOSE 50 ms to reach the
    stalled attacker's inbox once every end was handled. Here the attacker's reader takes
    0.1 s per packet once it reads again."""
    real = test_review41b_channels.StalledPeer._dec

    async def late(self: test_review41b_channels.StalledPeer, *args: Any) -> None:
        if self.gate.is_set():
            await asyncio.sleep(0.1)
        await real(self, *args)

    monkeypatch.setattr(test_review41b_channels.StalledPeer, "_dec", late)
    test_review41b_channels.test_an_identity_that_stops_reading_opens_no_channel_past_its_per_peer_limit(
        monkeypatch
    )
