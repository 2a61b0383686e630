"""Review 67o: attacks on the authority's feed pages that did not work (docs/protocols.md,
"Services": `feed [since]`; docs/credentials.md, "Revocation is real"). Each test is the
attack, passing because the defence it names holds. The control socket's attacks of the brief
(another user, a planted listener or link, a stale socket, idle and undecodable requests,
oversized requests and answers) are the tests of reviews 34d, 46b, 53u and 55r, not repeated.

- A `since` that is negative or far past the feed's end (2**63) is refused before anything is
  spent, as one past the end by one is (tests/test_feed_budgets.py).
- One stranger asking the same page over and over is served the cached page: it spends no
  budget, so it is never "busy" (and the node does not sign again).
- A member holding a feed is handed pages of a restored authority (an older page, one dated
  before its copy, one that starts before its end): refused, nothing of its copy rolled back.
- Two pages disagreeing at one position (an authority's fork, entries or an "up to date" page
  with another head): refused, the member's copy unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.nodes import MemNet, run_memnet
from tests.test_authority import Setup
from tests.test_authority import setup as setup  # the fixture
from tests.test_feed_budgets import ask, grow_feed
from troth import limits
from troth.credentials import (
    RevocationEntry,
    RevocationKind,
    VerifiedFeed,
    build_page,
    feed_genesis,
    next_head,
)
from troth.errors import CredentialError, CredentialFailure
from troth.node.services.authority import FEED_REUSE

# -- feed pages at the authority's node ----------------------------------------------------------


@pytest.mark.parametrize("since", [-1, -(2**63), 2**63, 2**64 - 1])
def test_a_since_outside_the_feed_spends_nothing(since: int, tmp_path: Path) -> None:
    """Negative and huge positions are refused as outside the feed (no page read, no budget
    spent): the member's whole burst is still signed after them."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        grow_feed(net, 16, 1)
        await hub.maintain()
        mallory = await net.member("mallory")
        net.clock.advance(FEED_REUSE)
        for _ in range(2 * limits.FEED_PAGE_SIGNS_PER_CALLER_BURST):
            refused = await ask(net, mallory, since)
            assert refused != "ok"
            assert not refused.startswith("busy"), refused
        answers = [
            await ask(net, mallory, start)
            for start in range(1, limits.FEED_PAGE_SIGNS_PER_CALLER_BURST + 1)
        ]
        assert answers == ["ok"] * limits.FEED_PAGE_SIGNS_PER_CALLER_BURST

    run_memnet(test, tmp_path / "home")


def test_the_same_page_asked_again_and_again_is_never_busy(tmp_path: Path) -> None:
    """A stranger asks for one page (not the feed's end) five times its burst: the page signed
    for its first request is served again from the cache, charging nothing."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        grow_feed(net, 16, 1)
        await hub.maintain()
        stranger = await net.node("stranger")
        net.clock.advance(FEED_REUSE)
        answers = [
            await ask(net, stranger, 3) for _ in range(5 * limits.FEED_PAGE_SIGNS_PER_CALLER_BURST)
        ]
        assert answers == ["ok"] * len(answers)

    run_memnet(test, tmp_path / "home")


# -- a member's copy against a restored or forked authority ------------------------------------


def _held(setup: Setup, count: int) -> VerifiedFeed:
    """The agents' node holding the authority's feed of `count` entries (synced)."""
    targets = [bytes([7, n]) * 16 for n in range(count)]
    setup.authority.revoke_credentials(targets, now=NOW)
    wallet = setup.agents.wallet
    authority = setup.authority.identifier
    return wallet.sync_feed(
        authority, lambda since: setup.authority.feed(now=NOW, since=since), now=NOW
    )


def _entry(seq: int, tag: int, setup: Setup) -> bytes:
    target = bytes([9, tag]) * 16
    by = setup.authority.identifier
    return RevocationEntry(seq, RevocationKind.CREDENTIAL, target, by, NOW, "").encode()


def _refused(setup: Setup, page: bytes, held: VerifiedFeed, at: int) -> CredentialFailure:
    """`page` handed to the agents' wallet: its refusal's reason; the held copy unchanged."""
    wallet = setup.agents.wallet
    authority = setup.authority.identifier
    with pytest.raises(CredentialError) as refused:
        wallet.update_feed(page, authority=authority, now=at)
    after = wallet.held_feed(authority)
    assert after is not None
    assert (after.count, after.head, after.latest) == (held.count, held.head, held.latest)
    assert held.revoked_credentials <= after.revoked_credentials
    return refused.value.reason


def test_a_restored_authoritys_older_pages_do_not_roll_a_member_back(setup: Setup) -> None:
    """The member holds 3 entries as of NOW + 10; the authority, restored from a backup of one
    entry, serves what it has: its page from the start (ends before the member's copy), and the
    page at the member's end signed earlier (a replayed one)."""
    held = _held(setup, 3)
    wallet = setup.agents.wallet
    authority = setup.authority.identifier
    later = setup.authority.feed(now=NOW + 10, since=3)
    held = wallet.update_feed(later, authority=authority, now=NOW + 10)
    signer = setup.authority.signer(NOW)
    first = _entry(0, 0, setup)
    genesis_page = build_page(
        signer,
        [first],
        start=0,
        head=next_head(feed_genesis(setup.authority.identifier), first),
        latest=1,
        now=NOW + 20,
    )
    assert _refused(setup, genesis_page, held, NOW + 20) is CredentialFailure.FEED_INVALID
    replayed = setup.authority.feed(now=NOW + 5, since=3)  # dated before the copy
    assert _refused(setup, replayed, held, NOW + 20) is CredentialFailure.FEED_ROLLBACK


def test_two_pages_disagreeing_at_one_position_are_refused(setup: Setup) -> None:
    """The authority signs another line after entry 3 than the member holds: a page of two
    entries from 3 hashed from its own head at 3, and an "up to date" page at 3 naming another
    head. Both refused; the member's copy stays its own."""
    held = _held(setup, 3)
    signer = setup.authority.signer(NOW)
    other = b"\x42" * 32  # the forked line's head at entry 3
    entries = [_entry(3, 1, setup), _entry(4, 2, setup)]
    head = next_head(next_head(other, entries[0]), entries[1])
    fork = build_page(signer, entries, start=3, head=head, latest=5, now=NOW + 1)
    assert _refused(setup, fork, held, NOW + 1) is CredentialFailure.FEED_INVALID
    tip = build_page(signer, [], start=3, head=other, latest=3, now=NOW + 1)
    assert _refused(setup, tip, held, NOW + 1) is CredentialFailure.FEED_INVALID
