"""The bytes incomplete fragmented messages hold on a node, counted against each member at the
roots of a peer's chains (`troth.node.access.member_accounts`), for the per-member reassembly
limit (`ChannelLimits.max_reassembly_per_peer`; docs/protocols.md, "Load limits"). Used by
`troth.node.channel_limits.PeerReassembly`.

A node keeps one reassembly budget per exact set of members (the channels of a member and of
its delegates share it: review 41b, delegates 1), and each budget takes the node's bytes once,
against the peer's authorities. Before review 58l (reassembly 1) the per-member limit was that
budget's own: a delegate showing chains from two members drew on a budget of its own, neither
member's, so k members held 2^k - 1 times the limit through delegates holding chains from
several of them. Now every byte a budget takes also counts against each of its members here,
and a budget takes bytes only while each of them stays within the limit, as a peer's channels
count against each of its members (`troth.node.member_channels`; review 58i, channels 1)."""

from __future__ import annotations

from collections.abc import Iterable

from troth.node.shares import Shares

__all__ = ["MemberBytes"]


class MemberBytes:
    """Reassembly bytes held, by the members they count against (kept as a `Shares` keyed by
    member: its bound and shares unused)."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts = Shares(lambda: 0)

    def fits(self, members: Iterable[bytes], size: int, limit: int) -> bool:
        """Whether `size` more bytes keep each of `members` within `limit`."""
        held = self._counts.held
        return all(held(member) + size <= limit for member in members)

    def take(self, members: Iterable[bytes], size: int) -> None:
        """`size` bytes are held, counting against each of `members`."""
        self._counts.take(members, size)

    def give(self, members: Iterable[bytes], size: int) -> None:
        """`size` bytes taken for `members` are given back (counts at zero are forgotten)."""
        self._counts.release(members, size)

    def held(self, member: bytes) -> int:
        """The bytes counting against `member` now."""
        return self._counts.held(member)

    def __len__(self) -> int:
        """How many members hold bytes now (what the counts keep)."""
        return self._counts.holders()
