"""Review 70q, the revocation feed: what members together can make every holder fetch.

70q feeds 1: the reason of a link revocation is the member's to choose, up to
MAX_REVOCATION_REASON characters of any width, so an entry a member caused was up to 1,126
bytes where one with a short reason is about 100: the members' part of the feed (4,128,768
entries, MAX_FEED_ENTRIES less the authority's reserve) reached about 4.6 GB at the authority,
and a new node's first sync walked ~9,000 pages of 512 KiB (about 800 with short reasons),
refusing every chain of the authority meanwhile, many FEED_SYNC_SECONDS rounds long. A reason a
member causes to be written is now at most MAX_MEMBER_REVOCATION_REASON_BYTES of UTF-8 (the
authority's own revocations keep MAX_REVOCATION_REASON characters): the members' part is about
0.7 GB at most.

70q feeds 2 (fixed by review 71e, quota: tests/test_review71e_quota.py): the members' quotas
add up with no budget they share, and one multi-use ticket mints members, each with three
budgets of its own (its link revocations, its delegates', its supersessions: 300 entries an
hour by default). Whoever holds a ticket of many uses enrolls from one network 32 at once, then
one per 4 s (~900 an hour: ENROLL_REQUESTS_BURST), so within hours the members' part of the
feed is full for good and no member can ever again revoke a stolen delegate's link (the
authority still can). Each held feed's index then takes ~620 MB on every node (~150 bytes an
entry, measured), its store ~360 MB. A budget every member shares would let a few members deny
every other member's revocations each window, so the bound that fits is the one review 61c
chose for delegates: the members a ticket enrolled share the quota of that ticket
(`members.quota_ticket`, schema 21: their link revocations, their delegates' and their
supersessions; a single-use ticket's member keeps its own, as before).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import test_authority
from tests.conftest import NOW
from tests.test_authority import A, Setup
from tests.test_authority_feed import delegations, revoke_a_new_link
from troth import limits
from troth.errors import AuthorityError
from troth.node import init_node, open_node

setup = test_authority.setup  # the fixture, shared

WIDE = "\U0001f600" * limits.MAX_REVOCATION_REASON  # 1,024 bytes of UTF-8


def test_a_member_cannot_make_its_entries_ten_times_larger(setup: Setup) -> None:
    """70q feeds 1: a member revokes a link it issued with the longest reason of 4-byte
    characters: refused (request invalid), nothing written; a reason within the member bound
    is taken, and the authority's own revocation keeps the longest reason."""
    (target, chain), (other, _) = delegations(setup, 2)
    length = setup.feed_length()
    with pytest.raises(AuthorityError) as caught:
        setup.revoke_link("customer", target, chain, reason=WIDE)
    assert caught.value.reason is A.REQUEST_INVALID
    assert "reason" in str(caught.value)
    assert setup.feed_length() == length
    short = "\U0001f600" * (limits.MAX_MEMBER_REVOCATION_REASON_BYTES // 4)
    assert setup.revoke_link("customer", target, chain, reason=short) == length
    assert setup.authority.revoke_credential(other, now=NOW, reason=WIDE) == length + 1


def test_every_entry_a_member_causes_is_within_the_member_bound(setup: Setup) -> None:
    """70q feeds 1: the largest entry a member's link revocation writes (the longest reason it
    may give, in 4-byte characters) stays within a sixth of MAX_REVOCATION_ENTRY_BYTES, so
    the members' part of a full feed is bounded near 0.7 GB, not 4.6 GB."""
    ((target, chain),) = delegations(setup, 1)
    widest = "\U0001f600" * (limits.MAX_MEMBER_REVOCATION_REASON_BYTES // 4)
    seq = setup.revoke_link("customer", target, chain, reason=widest)
    (row,) = setup.authority.store.revocation_page(seq, 1 << 20, len)
    assert len(row) <= limits.MAX_REVOCATION_ENTRY_BYTES // 6


def test_members_of_one_ticket_share_one_quota(setup: Setup, troth_home: Path) -> None:
    """70q feeds 2: four members enrolled with one ticket (an authority quota of 1 entry an
    hour) each revoke a link they issued: past the first, refused (QUOTA_EXCEEDED), as a
    member's throwaway delegates share one budget (review 61c)."""
    init_node("strict")
    with open_node("strict") as node:
        strict = Setup(
            node, setup.agents, node.create_authority("strict", now=NOW, revocation_quota=1)
        )
        wallet = setup.agents.wallet
        ticket = strict.ticket(uses=4)
        revoked = 0
        with pytest.raises(AuthorityError) as caught:
            for n in range(4):
                name = f"minted-{n}"
                wallet.hold(name, strict.enroll(name, ticket).encode(), now=NOW)
                setup.agents.identities.create(now=NOW, name=f"{name}-sub")
                revoke_a_new_link(strict, name)
                revoked += 1
        assert caught.value.reason is A.QUOTA_EXCEEDED
        assert revoked == 1
