"""What a secure channel reports as it processes packets (docs/protocols.md, "Secure channel").
Events are small frozen dataclasses; a host reacts to them (the node's ChannelManager forgets a
channel on `Closed`, counts `Dropped` and `GivenUp`, answers `Received`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from troth.channel.packets import RouteProblem
from troth.channel.verification import VerifiedPeer
from troth.errors import ChannelFailure

__all__ = [
    "Accepted",
    "Closed",
    "DropReason",
    "Dropped",
    "Established",
    "Event",
    "GivenUp",
    "NotRouted",
    "Received",
]


@dataclass(frozen=True, slots=True)
class Established:
    """The peer is verified and admitted (again, after an in-band credential refresh)."""

    peer: VerifiedPeer
    handshake_hash: bytes


@dataclass(frozen=True, slots=True)
class Accepted:
    """The responder verified and admitted us (the initiator): XX lets the initiator finish
    first, so only this tells it the channel is really open."""


@dataclass(frozen=True, slots=True)
class Received:
    """An application message from the peer (a view of the decrypted frame, or reassembled)."""

    payload: bytes | memoryview


_set_payload = vars(Received)["payload"].__set__  # the slot's descriptor


def received(payload: bytes | memoryview) -> Received:
    """`Received(payload)` for the per-message hot path: the frozen dataclass's `__init__`
    sets the field through `object.__setattr__`; this sets its slot directly."""
    event: Received = object.__new__(Received)
    _set_payload(event, payload)
    return event


class DropReason(enum.Enum):
    """Why a frame was dropped without changing the channel's state."""

    DUPLICATE = "duplicate"  # a nonce inside the replay window, already received
    REPLAY = "replay"  # a nonce below the replay window
    UNDECRYPTABLE = "undecryptable"  # did not authenticate: wrong key, junk, tampered, cut
    MALFORMED = "malformed"  # not a packet of well-formed frames
    UNEXPECTED = "unexpected"  # a frame type this state does not read


@dataclass(frozen=True, slots=True)
class Dropped:
    """A frame that could not be authenticated (or was a replay): dropped and counted. Such a
    frame never changes the channel's state: anyone on the path can send one."""

    reason: DropReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Closed:
    """The channel closed: `reason` is the close code; `by_peer` when the peer's
    authenticated CLOSE frame said so."""

    reason: ChannelFailure
    detail: str
    by_peer: bool


@dataclass(frozen=True, slots=True)
class NotRouted:
    """Instead of message 2, a node on the way answered that it cannot route to the peer (a
    route error: docs/formats.md). Unauthenticated, so the channel's state is unchanged; only
    a handshake still waiting for message 2 reports it, and its host may give up at once
    rather than wait for the handshake timeout."""

    problem: RouteProblem


@dataclass(frozen=True, slots=True)
class GivenUp:
    """Incomplete fragmented messages of the channel given up for a later one that would pass
    a reassembly bound: their tails were lost on the way (troth.channel.reassembly; review
    49f, reassembly 1). Counted; the channel goes on."""

    messages: int


Event = Established | Accepted | Received | Dropped | Closed | NotRouted | GivenUp
