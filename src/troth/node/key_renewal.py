"""A node's channels replaced before the attestation of the channel key they show expires
(docs/protocols.md, "Continuous evaluation"; review 68t, expiry 1).

A channel's peer closes it (`peer invalid`) once the attestation of the channel key this node
proved at the handshake has expired, and refuses its requests from then on (review 68n,
expiry 1); the key cannot change on an open channel. The node renews the attestation a day
before it expires (`IdentityService.purpose_key`), so each maintenance round closes the
channels that still show the old one, each at its own time (`replace_at`) within the last
KEY_REPLACE_WINDOW seconds before that expiry and no later than KEY_REPLACE_MARGIN before it:
its link (or the next `channel_to`) opens a new one with the renewed key, a reconnect's cost,
never a peer's refusal, and a node's channels (one key for all of them) are not all cut at
the same second. A clock stepped forward over the window makes every channel due at once: a
round closes at most KEY_REPLACEMENTS_PER_ROUND of them, those whose last time came first
(review 69c, renewal 1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Final

from troth.errors import DecodeError
from troth.identity.attestation import PurposeKeyAttestation
from troth.node.channel_ends import ChannelEnd

__all__ = [
    "KEY_REPLACEMENTS_PER_ROUND",
    "KEY_REPLACE_MARGIN",
    "KEY_REPLACE_WINDOW",
    "due_for_new_key",
    "replace_at",
    "replace_from",
    "replace_times",
]

KEY_REPLACE_WINDOW: Final = 12 * 3600
"""Seconds before the shown key's attestation expires from which its channels are replaced
(at most half the attestation's validity; under the day before expiry at which the key is
renewed, so the new channel shows a renewed key)."""
KEY_REPLACE_MARGIN: Final = 3600
"""Seconds before that expiry by which every such channel is replaced (at most a quarter of
the validity): well over MAX_CLOCK_SKEW_SECONDS, so a peer whose clock is ahead by the skew
allowed has not cut it first."""
KEY_REPLACEMENTS_PER_ROUND: Final = 64
"""Channels a maintenance round closes for the renewed key at most (the ones past their last
time first): a clock stepped forward over the window, or a node down through it, made every
channel of the node due in one round, all cut and reconnecting at once (review 69c, renewal
1). Spread over the window a round finds a few; MAX_OPEN_CHANNELS channels take 64 rounds
(MAINTENANCE_SECONDS each), well under KEY_REPLACE_MARGIN."""


def replace_times(attestation: bytes, channel_id: str) -> tuple[int, int] | None:
    """When the channel `channel_id`, which shows `attestation`, is replaced if idle, and the
    last time, when it is replaced even with requests in flight (at most the window's end,
    KEY_REPLACE_MARGIN before the expiry; None: the attestation does not decode, as no
    channel this node opened shows)."""
    window = _window(attestation)
    if window is None:
        return None
    start, end = window
    spread = max(1, end - start)
    digest = hashlib.blake2b(channel_id.encode(), digest_size=8).digest()
    at = start + int.from_bytes(digest, "big") % spread
    # the last time spread as well, half-way from its own time to the window's end: a peer
    # keeping each of its channels busy does not have them all cut in the same second
    return at, at + max(0, end - at + 1) // 2


def replace_from(attestation: bytes) -> int | None:
    """When the first channel showing `attestation` is replaced (its window's start; None: the
    attestation does not decode): a channel opened showing it from then on is due at once."""
    window = _window(attestation)
    return None if window is None else window[0]


def _window(attestation: bytes) -> tuple[int, int] | None:
    """The window in which channels showing `attestation` are replaced (None: it does not
    decode)."""
    try:
        decoded = PurposeKeyAttestation.decode(attestation)
    except DecodeError:
        return None
    expires_at = decoded.expires_at
    validity = max(0, expires_at - decoded.created_at)
    start = expires_at - min(KEY_REPLACE_WINDOW, validity // 2)
    return start, expires_at - min(KEY_REPLACE_MARGIN, validity // 4)


def replace_at(attestation: bytes, channel_id: str) -> int | None:
    """When the channel `channel_id`, which shows `attestation`, is replaced if idle (None:
    the attestation does not decode)."""
    times = replace_times(attestation, channel_id)
    return None if times is None else times[0]


def due_for_new_key(
    ends: Iterable[ChannelEnd],
    now: int,
    *,
    renewed: frozenset[bytes],
    busy: Callable[[ChannelEnd], bool],
) -> list[ChannelEnd]:
    """The open `ends` to replace at `now`: those past their `replace_at` whose shown
    attestation is not one of `renewed` (the ones the node shows now: closing a channel whose
    replacement would show the same key again gains nothing), and that are not `busy` (a
    request in flight over it, either way) unless past their last time: a planned close failed
    the requests in flight with Unreachable, where an idle moment came within the window
    (review 68v, renewal 1). At most KEY_REPLACEMENTS_PER_ROUND, the earliest last times
    first (review 69c, renewal 1: a clock stepped forward cut all of them at once)."""
    due: list[tuple[int, str, ChannelEnd]] = []
    for end in ends:
        channel = end.channel
        if channel.handshaking or channel.closed:
            continue
        attestation = channel.me.attestation
        if attestation in renewed:
            continue
        times = replace_times(attestation, end.id)
        if times is None or now < times[0]:
            continue
        if now >= times[1] or not busy(end):
            due.append((times[1], end.id, end))
    due.sort(key=lambda row: row[:2])
    return [end for _, _, end in due[:KEY_REPLACEMENTS_PER_ROUND]]
