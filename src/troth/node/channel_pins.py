"""The stored histories a node's open channels depend on, pinned in its known-histories cache
while they are open (review 55q, pins; troth.identity.known).

`NodeTrust` refuses a channel whose peer's history, or a credential issuer's, is an older
prefix of a copy stored here (`outgrown`: a stolen pre-rotation backup's, after the owner's
rotation was stored; review 55j, rotation 1), from the cache alone, on the event loop. The cache
dropped its older half at KNOWN_CACHE_SIZE entries, so 4096 other histories stored after the
rotation (a member's delegates, each at its handshake) forgot it (review 55m, rotation 1). The
channel manager tells `ChannelPins` each channel's peer as it is admitted (again at a refresh)
and each channel it forgets: the digests of the peer's identity and of its credentials'
issuers are pinned exactly once per channel, and released exactly once, when it is forgotten.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol

from troth.channel import VerifiedPeer

__all__ = ["ChannelPins", "Pins", "depends_on"]


class Pins(Protocol):
    """Reference-counted pins by identity digest (`KnownHistories.pin`, `IdentityService.pin`)."""

    def pin(self, digest: bytes) -> None: ...

    def unpin(self, digest: bytes) -> None: ...


def depends_on(peer: VerifiedPeer) -> frozenset[bytes]:
    """The digests `NodeTrust._judge` asks `outgrown` of for `peer`: its identity's and its
    credentials' issuers'."""
    digests = {peer.identifier.digest}
    for credential in peer.credentials:
        digests.update(issuer.identifier.digest for issuer in credential.issuers)
    return frozenset(digests)


class ChannelPins:
    """The pins each open channel holds (none when no `Pins` is given)."""

    def __init__(self, pins: Pins | None) -> None:
        self._pins = pins
        self._held: dict[Hashable, frozenset[bytes]] = {}

    def hold(self, channel: Hashable, peer: VerifiedPeer) -> None:
        """Pin what `peer`, admitted on `channel`, depends on; at a refresh (a new verified
        peer on the same channel) the new set is pinned before the old one is released."""
        if self._pins is None:
            return
        digests = depends_on(peer)
        old = self._held.get(channel, frozenset())
        for digest in digests - old:
            self._pins.pin(digest)
        self._held[channel] = digests
        for digest in old - digests:
            self._pins.unpin(digest)

    def release(self, channel: Hashable) -> None:
        """Release the pins of `channel`, forgotten (a no-op for one that held none)."""
        held = self._held.pop(channel, None)
        if held is not None and self._pins is not None:
            for digest in held:
                self._pins.unpin(digest)

    def __len__(self) -> int:
        """How many channels hold pins."""
        return len(self._held)
