"""The secure channel's states and its one transition table (docs/protocols.md, "Secure
channel"). Every change of `SecureChannel.state` goes through `next_state`.

    initiator: AWAITING_MESSAGE_2 --message 2--> AWAITING_ACCEPT --ACCEPTED--> OPEN
    responder: AWAITING_MESSAGE_1 --message 1--> AWAITING_MESSAGE_3 --message 3--> OPEN
    any state but CLOSED --close--> CLOSED

A step happens only on an authenticated input (a handshake message that decrypts, an
authenticated transport frame) or a local decision; unauthenticated bytes are dropped before
they reach this table.
"""

from __future__ import annotations

import enum
from typing import Final

from troth.channel.packets import HANDSHAKE_FRAME, TRANSPORT_FRAME
from troth.errors import ChannelError, ChannelFailure

__all__ = ["HANDSHAKE_STEPS", "READS", "TRANSITIONS", "ChannelState", "Step", "next_state"]


class ChannelState(enum.Enum):
    """Where a channel end is in its life."""

    AWAITING_MESSAGE_1 = "awaiting message 1"  # responder: created for a message 1
    AWAITING_MESSAGE_2 = "awaiting message 2"  # initiator: message 1 sent
    AWAITING_MESSAGE_3 = "awaiting message 3"  # responder: message 2 sent
    AWAITING_ACCEPT = "awaiting accept"  # initiator: message 3 sent, the responder verified
    OPEN = "open"  # messages flow both ways
    CLOSED = "closed"  # keys dropped; nothing more is read or sent

    # members are singletons: identity hashing means the same as Enum's (a hash of the name)
    # and saves a Python-level call on every table lookup, once per frame
    __hash__ = object.__hash__


class Step(enum.Enum):
    """What moves a channel on."""

    MESSAGE_1 = "message 1 read, message 2 written"
    MESSAGE_2 = "message 2 read, the responder verified, message 3 written"
    MESSAGE_3 = "message 3 read, the initiator verified"
    ACCEPTED = "an ACCEPTED frame"
    DATA = "a data, fragment, credentials, ping or pong frame"
    CLOSE = "closed (locally, by the peer's CLOSE frame, or by a failure)"

    __hash__ = object.__hash__  # as ChannelState's


_S = ChannelState
TRANSITIONS: Final[dict[tuple[ChannelState, Step], ChannelState]] = {
    (_S.AWAITING_MESSAGE_1, Step.MESSAGE_1): _S.AWAITING_MESSAGE_3,
    (_S.AWAITING_MESSAGE_2, Step.MESSAGE_2): _S.AWAITING_ACCEPT,
    (_S.AWAITING_MESSAGE_3, Step.MESSAGE_3): _S.OPEN,
    (_S.AWAITING_ACCEPT, Step.ACCEPTED): _S.OPEN,
    (_S.OPEN, Step.DATA): _S.OPEN,
    **{(state, Step.CLOSE): _S.CLOSED for state in ChannelState if state is not _S.CLOSED},
}
"""(state, step) -> the next state; any pair not here is a protocol violation."""

READS: Final[dict[ChannelState, int]] = {
    _S.AWAITING_MESSAGE_1: HANDSHAKE_FRAME,
    _S.AWAITING_MESSAGE_2: HANDSHAKE_FRAME,
    _S.AWAITING_MESSAGE_3: HANDSHAKE_FRAME,
    _S.AWAITING_ACCEPT: TRANSPORT_FRAME,
    _S.OPEN: TRANSPORT_FRAME,
}
"""The frame type each state reads (any other is dropped unread)."""

HANDSHAKE_STEPS: Final[dict[ChannelState, Step]] = {
    _S.AWAITING_MESSAGE_1: Step.MESSAGE_1,
    _S.AWAITING_MESSAGE_2: Step.MESSAGE_2,
    _S.AWAITING_MESSAGE_3: Step.MESSAGE_3,
}
"""The handshake message each handshake state reads."""


def next_state(state: ChannelState, step: Step) -> ChannelState:
    """The state after `step` (ChannelError PROTOCOL when `state` does not take it)."""
    following = TRANSITIONS.get((state, step))
    if following is None:
        raise ChannelError(ChannelFailure.PROTOCOL, f"{step.value} while {state.value}")
    return following
