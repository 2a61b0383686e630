"""Review 58i, reassembly 1: the memory a channel's incomplete messages hold passed what they
were charged, and the documented bound on it (docs/protocols.md, "Secure channel": "the memory
they hold at most 61/60" of the charged bytes), by far more than the uncharged room after a
large frame.

Each fragment held costs the receiver its decrypted frame (charged) and its bookkeeping (a
view of the chunk, its place in the message's table, the message's own record: ~0.4 KiB, not
charged). An authenticated peer chooses its fragments' sizes: at the smallest the receiver took
(4 KiB) a channel held 1.10 times what it was charged (18.1 MB for 16.5 MB), and sixteen
messages of one 1-byte last fragment each held 12.7 KB for 352 bytes charged: ~50 MiB for the
node's 4,096 open channels that no reassembly budget saw. Now a fragment is charged at least
32 KiB (`MIN_CHARGE`; an honest sender's fill a frame, ~60 KiB, but a message's last), so what
is held passes its charge by at most 1/25 (the documented bound now).
"""

from __future__ import annotations

import gc
import tracemalloc
from fractions import Fraction

import pytest

from tests.support.channels import T, make_world, pump
from troth.channel import SecureChannel
from troth.channel.payloads import FRAGMENT, Kind
from troth.channel.reassembly import MIN_FRAGMENT
from troth.limits import MAX_APPLICATION_MESSAGE

BOUND = Fraction(26, 25)  # docs/protocols.md, "Secure channel"


def _held(pieces: list[tuple[int, int, int, int]]) -> tuple[int, int]:
    """(bytes charged, bytes allocated) on a receiver for the fragments `pieces` of a hostile
    (authenticated) sender: (message id, total, offset, size) each, none completing a message."""
    world = make_world()
    sender, receiver = world.initiator(), world.responder()
    pump(sender, receiver)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for message_id, total, offset, size in pieces:
            _send_fragment(sender, message_id, total, offset, size)
            for packet in sender.outgoing():
                assert receiver.receive(packet, T + 2) == []
            del packet
        gc.collect()
        allocated = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    return receiver.reassembling, allocated


def _send_fragment(
    sender: SecureChannel, message_id: int, total: int, offset: int, size: int
) -> None:
    sender._emit([(Kind.FRAGMENT, (FRAGMENT.pack(message_id, total, offset), bytes(size)))])


@pytest.mark.parametrize("messages", [1, 16])
def test_fragments_of_the_smallest_size_hold_at_most_the_bound(messages: int) -> None:
    total = MAX_APPLICATION_MESSAGE
    pieces = [(m, total, i * MIN_FRAGMENT, MIN_FRAGMENT) for m in range(messages) for i in range(8)]
    charged, allocated = _held(pieces)
    assert allocated <= BOUND * charged, (charged, allocated)


def test_tiny_last_fragments_hold_at_most_the_bound() -> None:
    pieces = [(m, 100_000, 99_999, 1) for m in range(16)]
    charged, allocated = _held(pieces)
    assert allocated <= BOUND * charged, (charged, allocated)


def test_the_largest_frames_hold_at_most_the_bound() -> None:
    size = 65_480  # a fragment's chunk in a full frame: decrypted with 1 KiB of room after it
    pieces = [(m, MAX_APPLICATION_MESSAGE, 0, size) for m in range(16)]
    charged, allocated = _held(pieces)
    assert allocated <= BOUND * charged, (charged, allocated)
