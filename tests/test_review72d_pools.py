"""Review 72d (area: pools): a second review of session 71's pools and budgets (the MCP
server's shared held weight, the authority's feed-page tiers).

1. (pages that cost nothing push a member's sync out of the table of syncs, low) A hosted
   authority's service keeps each source's feed sync (`_Class.walks`: where its next page
   starts; a page continuing it is charged to the pool only, its "free walk"), at most
   MAX_FEED_SIGN_SOURCES of them, the oldest forgotten for a new one. Every page served made
   its source a sync, the page at the feed's end (shared, charged to no one) and a page served
   again from the cache too: MAX_FEED_SIGN_SOURCES members (a ticket's fleet of that many
   uses; strangers, for the strangers' table: any number of throwaway identities) each asking
   for the feed's end, at no cost, pushed out a member's sync in the middle of a long feed,
   whose next page was then charged to its own budget (and, once that was spent, refused
   "busy") instead of continuing free. Now a page signed for no one makes no sync (it moves
   one its source has): only a page signed on request, charged to its source, makes one.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from tests.conftest import NOW
from troth import limits
from troth.errors import RemoteError
from troth.identity import Identifier
from troth.node.access import PeerCaller, Standing
from troth.node.services.authority import AuthorityService, _Payer

_LENGTH = 1024
"""Entries in the feed of `_FourPerPage`."""
_PAGE = 4
"""Entries in each of its pages (a long feed's pages, each up to MAX_FEED_PAGE_BYTES)."""


class _FourPerPage:
    """What the service asks of a hosted authority for a page: a feed of `_LENGTH` entries
    whose pages hold `_PAGE` each (signing stands in as a count)."""

    def __init__(self) -> None:
        self.store = self
        self.signed = 0
        self.identifier = Identifier(b"\x01" * 32)

    def check_not_held(self) -> None:
        return None

    def revocation_tip(self) -> tuple[int, bytes]:
        return _LENGTH, b""

    def changes(self) -> int:
        return 0

    def feed_page(self, *, now: int, since: int) -> tuple[bytes, int]:
        self.signed += 1
        return b"page", min(since + _PAGE, _LENGTH)


class _AnchorsOnly:
    """What the service asks of the node's trust: every peer is a trust anchor in good
    standing, showing no credential of this authority."""

    def standing(self, peer: object, now: int) -> Standing:
        return Standing((), is_anchor=True)


def service() -> AuthorityService:
    """An authority service over `_FourPerPage` (`_page` is all it is asked) on a node whose
    every peer is a trust anchor."""
    return AuthorityService(cast(Any, _FourPerPage()), cast(Any, _AnchorsOnly()), cast(Any, None))


def _apart(count: int) -> list[int]:
    """`count` pages' starts, none where another's page ends nor at one of `_PAGE`'s
    multiples (each signed on request, charged to its asker's own budget)."""
    return [2 * _PAGE * n + 1 for n in range(1, count + 1)]


def member(service: AuthorityService, n: int) -> _Payer:
    """The payer of member `n`'s pages (one of a single-use ticket: no ticket's share)."""
    return _Payer(n.to_bytes(32, "big"), service._members)


@pytest.mark.parametrize("asked", [_LENGTH, 0], ids=["the feed's end", "a page served again"])
def test_pages_signed_for_no_one_keep_a_members_sync(asked: int) -> None:
    """72d pools 1: member 0 syncs a long feed: its own budget spent on pages of its choosing
    (the last one from the start: its sync begins there), its next page continues its sync,
    free. Then MAX_FEED_SIGN_SOURCES other members each ask for the feed's end, or for its
    first page again (served from the cache), each charged to no one. Member 0's next page
    still continues its sync, free (it was pushed out of the table of syncs and charged to
    its spent own budget: "busy")."""
    authority = service()
    syncing = member(authority, 0)
    for since in [*_apart(limits.FEED_PAGE_SIGNS_PER_CALLER_BURST - 1), 0]:
        authority._page(since, NOW, syncing)  # its own budget spent: its sync begins at 0
    authority._page(_PAGE, NOW, syncing)  # continued: free
    signed = authority.authority.signed  # type: ignore[attr-defined]
    for n in range(1, limits.MAX_FEED_SIGN_SOURCES + 1):
        authority._page(asked, NOW, member(authority, n))  # charged to no one
    assert authority.authority.signed == signed + (asked == _LENGTH)  # type: ignore[attr-defined]
    authority._page(2 * _PAGE, NOW, syncing)  # continued: free, not "busy"


def _anchor_showing(root: int) -> PeerCaller:
    """The anchor (one identity) over a channel, showing a chain whose root is member `root`
    (of another authority the node trusts: one of its own ending at itself is a cycle, refused;
    review 72h)."""
    chain = SimpleNamespace(links=[SimpleNamespace(subject=Identifier(bytes([root]) * 32))])
    peer = SimpleNamespace(identifier=Identifier(b"\xaa" * 32), credentials=(chain,))
    return PeerCaller(cast(Any, peer), f"channel {root}")


def test_an_anchor_pays_from_one_budget_whatever_chains_it_shows() -> None:
    """72d pools 2: one anchor asks a burst of pages on each of five channels, each showing a
    chain from a fresh member (of another trusted authority: review 72h): its own budget's
    burst is signed, then "busy" (each chain was a fresh account, and the five spent the
    members' pool whole)."""
    authority = service()
    starts = iter(_apart(64))
    signed = 0
    for root in range(1, 6):
        for _ in range(limits.FEED_PAGE_SIGNS_PER_CALLER_BURST):
            payer = authority._payer(_anchor_showing(root), NOW)
            try:
                authority._page(next(starts), NOW, payer)
            except RemoteError:
                continue
            signed += 1
    assert signed == limits.FEED_PAGE_SIGNS_PER_CALLER_BURST
