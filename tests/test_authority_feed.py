"""The authority's revocation feed cannot be flooded (issue 7): replayed and repeated
revocations append once, a member is bounded by its quota (through its delegates too), an
append over a feed limit is refused, and the feed comes in pages within their limit. Split
from tests/test_authority.py, whose `Setup` fixture these share."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import test_authority
from tests.conftest import NOW
from tests.test_authority import ORDERS, A, Setup
from troth import limits
from troth.credentials import CredentialChain, VerifiedFeed, verify_feed, verify_page
from troth.errors import AuthorityError, AuthorityFailure
from troth.node import init_node, open_node

setup = test_authority.setup  # the fixture, shared


# -- the feed cannot be flooded (issue 7) --------------------------------------------------------


def delegations(setup: Setup, count: int, *, by: str = "customer") -> list[tuple[bytes, bytes]]:
    """`by` (enrolled here) delegates `count` distinct links to one sub-agent: (hash, chain)."""
    if by not in {r.name for r in setup.agents.identities.list_local()}:
        setup.agents.wallet.hold(by, setup.enroll(by, setup.ticket()).encode(), now=NOW)
    setup.agents.identities.create(now=NOW, name=f"{by}-sub")
    made = []
    for n in range(count):
        chain = setup.agents.wallet.delegate(
            by, to=setup.id(f"{by}-sub"), attributes=ORDERS, now=NOW, ttl=600, purpose=f"job {n}"
        )
        made.append((CredentialChain.decode(chain).credentials[-1].hash, chain))
    return made


def test_replayed_revoke_request_appends_once(setup: Setup) -> None:
    """The review's attack: one member replays one signed revoke request 10,000 times."""
    ((target, chain),) = delegations(setup, 1)
    request = setup.revoke_request("customer", target, chain, reason="done")
    before = setup.feed_length()
    answers = {setup.authority.revoke_link(request, now=NOW + n % 300) for n in range(10_000)}
    assert answers == {before}
    assert setup.feed_length() == before + 1


def test_revoking_again_appends_nothing_and_answers_the_same(setup: Setup) -> None:
    (target, chain), (other, _) = delegations(setup, 2)
    seq = setup.revoke_link("customer", target, chain)
    again = [setup.revoke_link("customer", target, chain, reason=f"again {n}") for n in range(5)]
    assert again == [seq] * 5  # distinct signed requests, the same revocation
    assert setup.authority.revoke_credential(target, now=NOW) == seq
    assert setup.authority.revoke_credential(other, now=NOW) == seq + 1
    identity = setup.id("customer-sub")
    first = setup.authority.revoke_identity(identity, now=NOW)
    assert setup.authority.revoke_identity(identity, now=NOW + 5) == first
    assert setup.authority.revoke_credentials([other, target, b"\x07" * 32], now=NOW) == [
        seq + 1,
        seq,
        first + 1,
    ]
    assert setup.feed_length() == first + 2


def test_a_member_is_bounded_by_its_quota(setup: Setup) -> None:
    """101 distinct link revocations in an hour: the 101st is refused, nothing is written; an
    hour after the first, there is room again."""
    links = delegations(setup, 102)
    for n, (target, chain) in enumerate(links[:100]):
        setup.revoke_link("customer", target, chain, now=NOW + n)
    length = setup.feed_length()
    target, chain = links[100]
    with pytest.raises(AuthorityError) as caught:
        setup.revoke_link("customer", target, chain, now=NOW + 100)
    assert caught.value.reason is A.QUOTA_EXCEEDED
    assert "100 feed entries per hour; try again in 59 min" in str(caught.value)
    assert setup.feed_length() == length
    # an old one again costs nothing (idempotent), a new one waits for the window
    setup.revoke_link("customer", links[0][0], links[0][1], now=NOW + 101)
    setup.revoke_link("customer", target, chain, now=NOW + 3600)
    with pytest.raises(AuthorityError) as raised:
        setup.revoke_link("customer", *links[101], now=NOW + 3600)
    assert raised.value.reason is AuthorityFailure.QUOTA_EXCEEDED


def revoke_a_new_link(strict: Setup, name: str) -> None:
    """`name` (an identity of `strict.agents` holding a chain of `strict`'s authority)
    delegates a new link to `name`-sub, made before, and revokes it with that authority."""
    below = strict.agents.wallet.delegate(
        name, to=strict.id(f"{name}-sub"), attributes=ORDERS, now=NOW, ttl=60, purpose="y"
    )
    strict.revoke_link(name, CredentialChain.decode(below).credentials[-1].hash, below)


def test_the_quota_follows_the_member_through_its_delegates(setup: Setup, troth_home: Path) -> None:
    """Delegating to throwaway identities buys no extra revocations: every link revocation its
    delegates request is charged to one budget of the member whose credential roots the chain
    (the member's own revocations have a budget of their own)."""
    init_node("strict")
    with open_node("strict") as node:
        strict = Setup(
            node, setup.agents, node.create_authority("strict", now=NOW, revocation_quota=3)
        )
        wallet = setup.agents.wallet
        wallet.hold("member", strict.enroll("member", strict.ticket()).encode(), now=NOW)
        revoked = 0
        with pytest.raises(AuthorityError) as caught:
            for n in range(4):
                name = f"throwaway-{n}"
                setup.agents.identities.create(now=NOW, name=name)
                setup.agents.identities.create(now=NOW, name=f"{name}-sub")
                to_it = wallet.delegate(
                    "member", to=strict.id(name), attributes=ORDERS, now=NOW, ttl=600, purpose="x"
                )
                wallet.hold(name, to_it, now=NOW)
                revoke_a_new_link(strict, name)
                revoked += 1
        assert caught.value.reason is A.QUOTA_EXCEEDED
        assert revoked == 3
        assert f"the delegates of {strict.id('member')}" in str(caught.value)


def test_the_authority_itself_is_not_limited(setup: Setup) -> None:
    for n in range(1000):
        setup.authority.revoke_credential(n.to_bytes(32, "big"), now=NOW)
    seqs = setup.authority.revoke_credentials(
        [n.to_bytes(32, "big") for n in range(500, 2000)], now=NOW
    )
    assert seqs == list(range(500, 2000))  # 500 already revoked, 1,000 new in one transaction
    assert setup.feed_length() == 2000


def test_an_append_over_a_limit_is_refused_never_written(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup.authority.revoke_credentials([b"\x01" * 32, b"\x02" * 32], now=NOW)
    monkeypatch.setattr(limits, "MAX_FEED_ENTRIES", 3)
    with pytest.raises(AuthorityError) as caught:  # all of a bulk revocation, or nothing
        setup.authority.revoke_credentials([b"\x03" * 32, b"\x04" * 32], now=NOW)
    assert caught.value.reason is A.FEED_LIMIT
    assert setup.feed_length() == 2
    monkeypatch.setattr(limits, "MAX_REVOCATION_ENTRY_BYTES", 200)
    with pytest.raises(AuthorityError) as caught:
        setup.authority.revoke_credential(b"\x05" * 32, now=NOW, reason="x" * 200)
    assert caught.value.reason is A.FEED_LIMIT
    assert setup.feed_length() == 2


def test_feed_pages(setup: Setup) -> None:
    targets = [n.to_bytes(32, "big") for n in range(10_000)]
    setup.authority.revoke_credentials(targets, now=NOW, reason="r" * 40)
    authority = setup.authority.identifier
    held: VerifiedFeed | None = None
    sizes = []
    while held is None or not held.complete:
        page = setup.authority.feed(now=NOW, since=0 if held is None else held.count)
        sizes.append(len(page))
        held = verify_page(page, authority=authority, now=NOW, previous=held)
    assert len(sizes) > 1
    assert max(sizes) <= limits.MAX_FEED_PAGE_BYTES
    assert held.revoked_credentials == set(targets)
    up_to_date = setup.authority.feed(now=NOW + 1, since=10_000)
    fresh = verify_feed(
        up_to_date, authority=authority, now=NOW + 1, max_staleness=60, previous=held
    )
    assert fresh.count == 10_000
    assert fresh.new_entries == ()
    with pytest.raises(AuthorityError) as caught:
        setup.authority.feed(now=NOW, since=10_001)
    assert caught.value.reason is A.REQUEST_INVALID
