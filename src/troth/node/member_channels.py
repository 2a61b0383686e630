"""The channels peers opened to a node, counted against each member at the roots of a peer's
chains (`troth.node.access.member_accounts`), for the per-member channel limit
(`ChannelLimits.max_channels_per_member`; docs/protocols.md, "Load limits"). Used by
troth.node.channels.

Counted by the exact set of members before review 58i (channels 1): a delegate showing chains
from two members counted against neither, so k members held 2^k - 1 times the limit through
delegates holding chains from several of them. Now each member's count holds every channel of
a peer whose chains root in it, as a peer's relay names count against each of its members
(`troth.node.services.relay`).

A channel keeps the members it counted against as it opened (review 53o, in-band 1: a refresh
does not move it), and the re-check of open channels sees only the chains it shows now: one
that shows a chain of each of them no more is closed by that re-check (`shows_fewer`), so a
member's delegation that ends (revoked, expired) frees her place as it does for a channel that
shows it (review 58s, channels 2: a delegate of alice and bob showing bob's chain alone held
alice's place for as long as it lived)."""

from __future__ import annotations

import collections
from collections.abc import Hashable
from typing import Final

from troth.channel import VerifiedPeer
from troth.node.access import member_accounts

__all__ = ["UNSHOWN", "MemberChannels", "shows_fewer"]

UNSHOWN: Final = "it shows no more the chain of each member it counts against"
"""Why the re-check closes a channel `shows_fewer` names."""


def shows_fewer(accounts: frozenset[bytes] | None, peer: VerifiedPeer | None) -> bool:
    """Whether `peer` no longer shows a chain rooted in each of `accounts` (the members its
    channel counts against, as it opened; its own identity aside: one that opened showing no
    chain and shows a delegate's since stays, review 53o, in-band 1)."""
    if accounts is None or peer is None:
        return False
    return not accounts <= member_accounts(peer) | {peer.identifier.digest}


class MemberChannels:
    """Open channels (any hashable end) by the members they count against."""

    __slots__ = ("_counts", "_ends")

    def __init__(self) -> None:
        self._counts: collections.Counter[bytes] = collections.Counter()
        self._ends: dict[Hashable, frozenset[bytes]] = {}

    def add(self, end: Hashable, accounts: frozenset[bytes]) -> None:
        """Count `end` against each of `accounts` (once, however often it is added)."""
        if end not in self._ends:
            self._ends[end] = accounts
            self._counts.update(accounts)

    def discard(self, end: Hashable) -> None:
        """`end` closed: counted no more (nothing when it was not counted)."""
        accounts = self._ends.pop(end, None)
        for member in accounts or ():
            left = self._counts[member] - 1
            if left:
                self._counts[member] = left
            else:
                del self._counts[member]

    def most(self, accounts: frozenset[bytes]) -> int:
        """The most channels counted against one of `accounts`."""
        return max((self._counts.get(member, 0) for member in accounts), default=0)

    def __len__(self) -> int:
        return len(self._ends)
