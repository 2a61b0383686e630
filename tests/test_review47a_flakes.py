"""Review 47a, flakes: tests whose outcome hung on timing, shown deterministically here.

Flakes 1: tests/test_channel_held_answers.py's handler sent a message back through the
caller's channel, slept 0.3 s and read how many messages the caller's end had received: on a
loaded machine (CI: 2 cores) the caller may take longer than that to read it, and the test
failed although nothing was held back. Here the caller's end reads each packet 0.4 s late
(what a stalled loop does): the check waits for the message (up to 10 s), so it fails only
when the message is held until the handler ends."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests import test_channel_held_answers
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
