"""Review 30, settings 1: `TROTH_CHANNELS_MAX_REASSEMBLY_PER_PEER` or `..._TOTAL` below two
channel frames was taken at start, where every fragment holds its whole decrypted frame
against those budgets (troth.channel.reassembly): a message of two full frames, or any longer
one, then closed its channel (`too large`) on that node, whatever the peer did right; the
settings refuse values that break each channel (docs/protocols.md, "Load limits").

Was a strict xfail until `ChannelLimits` refused either budget below
`MIN_REASSEMBLY_BUDGET` (troth.node.channel_limits: two channel frames, the least a
fragmented message may need).
"""

from __future__ import annotations

import pytest

from troth import limits
from troth.channel.payloads import FRAGMENT
from troth.channel.reassembly import Reassembler, ReassemblyBudget
from troth.errors import ChannelError, ChannelFailure, ConfigError
from troth.node.channels import ChannelLimits

FRAME = limits.MAX_CHANNEL_FRAME
TWO_FRAMES = 2 * FRAME


def _two_frame_message(budget: int) -> bytes | memoryview | None:
    """A message in two fragments, each in a full frame, reassembled under `budget`."""
    chunk = FRAME - FRAGMENT.size
    reassembler = Reassembler(max_message=2 * chunk, budget=ReassemblyBudget(budget))
    got = None
    for offset in (0, chunk):
        frame = bytearray(FRAME)  # the decrypted frame the fragment is a view of
        FRAGMENT.pack_into(frame, 0, 7, 2 * chunk, offset)
        got = reassembler.add(memoryview(frame), now=0)
    return got


def test_two_frames_is_the_least_budget_a_fragmented_message_may_need() -> None:
    assert _two_frame_message(TWO_FRAMES) is not None
    with pytest.raises(ChannelError) as caught:
        _two_frame_message(TWO_FRAMES - 1)
    assert caught.value.reason is ChannelFailure.TOO_LARGE


@pytest.mark.parametrize("name", ["MAX_REASSEMBLY_PER_PEER", "MAX_REASSEMBLY_TOTAL"])
@pytest.mark.parametrize("value", [0, 1000, TWO_FRAMES - 1])
def test_a_reassembly_budget_below_two_frames_is_refused_at_start(name: str, value: int) -> None:
    with pytest.raises(ConfigError) as caught:
        ChannelLimits.from_environment({f"TROTH_CHANNELS_{name}": str(value)})
    assert name.lower() in str(caught.value)


@pytest.mark.parametrize("name", ["MAX_REASSEMBLY_PER_PEER", "MAX_REASSEMBLY_TOTAL"])
def test_a_reassembly_budget_of_two_frames_is_taken(name: str) -> None:
    taken = ChannelLimits.from_environment({f"TROTH_CHANNELS_{name}": str(TWO_FRAMES)})
    assert getattr(taken, name.lower()) == TWO_FRAMES
