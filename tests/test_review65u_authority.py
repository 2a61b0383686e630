"""Review 65u, authority: the authority as its members (removed ones too) meet it.

Authority 1: a removed member (or one revoked for good) still made the authority write to its
feed. A `rotated` announcement from her is NOT_A_MEMBER, but a `revoke` request carrying her
old chain (revoked at her removal: `verify_structure` checks no windows nor revocation) with her
newer history in it had the chain's issuer histories stored and published as superseding the
older ones (`_keep_issuers`, review 57g) before her standing was checked: each rotation she
made after her removal cost the authority a feed entry, which no membership bounds.
"""

from __future__ import annotations

import pytest

from tests.conftest import NOW
from tests.test_authority import ORDERS, A, Setup
from tests.test_authority import setup as setup  # the fixture, shared
from troth.credentials import CredentialChain
from troth.errors import AuthorityError


def _removed_member_chain(setup: Setup) -> tuple[bytes, CredentialChain]:
    """alice enrolled, delegated to alice-sub, was removed, and rotated since: the hash of
    her delegation and her old chain carrying her newest history."""
    setup.enroll("alice", setup.ticket())
    setup.agents.wallet.hold("alice", setup.enroll("alice", setup.ticket()).encode(), now=NOW)
    setup.agents.identities.create(now=NOW, name="alice-sub")
    setup.authority.remove_member(setup.id("alice"), now=NOW + 1)
    setup.agents.identities.rotate("alice", now=NOW + 2)
    encoded = setup.agents.wallet.delegate(
        "alice", to=setup.id("alice-sub"), attributes=ORDERS, now=NOW + 2, ttl=600, purpose="job"
    )
    chain = CredentialChain.decode(encoded)
    return chain.credentials[-1].hash, chain


@pytest.mark.parametrize("for_good", [False, True])
def test_a_removed_member_makes_the_authority_write_no_entry(setup: Setup, for_good: bool) -> None:
    """Authority 1."""
    target, chain = _removed_member_chain(setup)
    if for_good:
        setup.authority.revoke_identity(setup.id("alice"), now=NOW + 2)
    before = setup.feed_length()
    with pytest.raises(AuthorityError) as caught:
        setup.revoke_link("alice", target, chain.encode(), now=NOW + 3)
    assert caught.value.reason in (A.NO_STANDING, A.NOT_A_MEMBER)
    assert setup.feed_length() == before


def test_a_removed_members_delegate_makes_the_authority_write_no_entry(setup: Setup) -> None:
    """Authority 1, through a delegate: alice-sub (stored here: it revoked a link of its own
    while alice was a member) rotates after alice's removal and asks to revoke a link it made
    under its new history; its supersession was charged to alice's delegates' account."""
    agents = setup.agents
    setup.agents.wallet.hold("alice", setup.enroll("alice", setup.ticket()).encode(), now=NOW)
    for name in ("alice-sub", "worker"):
        agents.identities.create(now=NOW, name=name)
    to_sub = agents.wallet.delegate(
        "alice", to=setup.id("alice-sub"), attributes=ORDERS, now=NOW, ttl=600, purpose="sub"
    )
    agents.wallet.hold("alice-sub", to_sub, now=NOW)

    def link(now: int, purpose: str) -> tuple[bytes, bytes]:
        chain = agents.wallet.delegate(
            "alice-sub",
            to=setup.id("worker"),
            attributes=ORDERS,
            now=now,
            ttl=300,
            purpose=purpose,
        )
        return CredentialChain.decode(chain).credentials[-1].hash, chain

    target, chain = link(NOW, "first")
    setup.revoke_link("alice-sub", target, chain)  # alice-sub's history is stored here
    setup.authority.remove_member(setup.id("alice"), now=NOW + 1)
    agents.identities.rotate("alice-sub", now=NOW + 2)
    target, chain = link(NOW + 2, "second")
    before = setup.feed_length()
    with pytest.raises(AuthorityError) as caught:
        setup.revoke_link("alice-sub", target, chain, now=NOW + 3)
    assert caught.value.reason in (A.NO_STANDING, A.NOT_A_MEMBER)
    assert setup.feed_length() == before
