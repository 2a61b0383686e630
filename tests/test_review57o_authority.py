"""Review 57o, authority 1: the rotation a revoke request's chain shows is stored, not published.

Review 57g's fix (`Revoking._keep_issuers`) stores each issuer history of a revoke request's
chain that extends the authority's copy, so a member's rotation shown by her delegate's request
is kept (the thief's refresh with her older history is then refused). docs/credentials.md
("Superseded histories") says the authority, learning a member's newest history that way,
"appends a kind-3 entry" (a supersession), so every verifier with a fresh feed refuses a chain
whose issuer presents her shorter history: the thief's delegations with her pre-rotation key.
`_keep_issuers` only stored it: the feed said nothing, and a stateless verifier holding the
authority's fresh feed took the thief's delegation, while the authority itself had her
rotation. Now each issuer history it stores is published as `_learn` publishes a requester's
(charged to that identity's own supersession budget, once per change count; a budget spent
leaves it stored, published when she announces). Was a strict xfail.
"""

from __future__ import annotations

import pytest

from tests.conftest import NOW
from tests.test_review57g_authority import (  # noqa: F401 - the fixture
    ORDERS,
    Member,
    _link_after_rotation,
    _revoke_as,
    member,
)
from troth.credentials import (
    ChainVerifier,
    CredentialChain,
    RevocationKind,
    TrustPolicy,
    delegate,
    verify_feed,
)
from troth.errors import AuthorityError, AuthorityFailure, CredentialError, CredentialFailure
from troth.identity import Identifier, VerifiedIdentity


def delegated_below(
    member: Member,  # noqa: F811 - the fixture's type, not the fixture
    link: CredentialChain,
    now: int,
) -> CredentialChain:
    """`link` (acme, member, sub) and sub's delegation below it (to `member.below`)."""
    return delegate(
        member.member.identities.signer("sub", now=now),
        link,
        subject=member.below,
        attributes=ORDERS,
        now=now,
        ttl=300,
        purpose="job",
    )


def test_a_rotation_a_revoke_request_showed_is_published(member: Member) -> None:  # noqa: F811
    now = NOW + 20  # after her rotation
    link = _link_after_rotation(member, now)
    below = delegated_below(member, link, now)
    member.authority.revoke_link(_revoke_as(member.member, member, below, now, ref="sub"), now=now)
    her = Identifier(member.member.identities.find("member").identifier)
    assert member.authority.identities.stored_changes(her) == 2  # kept (57g)
    # the thief (her pre-rotation key, a copy of her node) delegates to an identity of its own
    stolen = delegate(
        member.thief.identities.signer("member", now=now),
        CredentialChain(link.credentials[:1], link.histories[:1]),  # acme's root
        subject=member.below,
        attributes=ORDERS,
        now=now,
        ttl=300,
        purpose="job",
    )
    authority = member.authority.identifier
    feed = verify_feed(
        member.authority.feed(now=now), authority=authority, now=now, max_staleness=60
    )
    with pytest.raises(CredentialError) as refused:
        ChainVerifier(TrustPolicy(frozenset({authority}))).verify(
            stolen.encode(), presenter=member.below, feeds={authority: feed}, now=now
        )
    assert refused.value.reason is CredentialFailure.SUPERSEDED


@pytest.mark.parametrize("reason", [AuthorityFailure.QUOTA_EXCEEDED, AuthorityFailure.FEED_LIMIT])
def test_a_supersession_that_cannot_be_written_leaves_the_rotation_stored_and_the_request_on(
    member: Member,  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
    reason: AuthorityFailure,
) -> None:
    """The fix's edge: her supersession budget spent, or the feed's last entries kept for the
    authority's own: her rotation is still stored, and her delegate's revocation written."""

    her = Identifier(member.member.identities.find("member").identifier)
    supersede = member.authority.revocations.supersede

    def refuse(
        identity: VerifiedIdentity, *, now: int, charged_to: Identifier | None = None
    ) -> int | None:
        if identity.identifier == her:  # hers, not the requester's (`_learn`)
            raise AuthorityError(reason, "refused here")
        return supersede(identity, now=now, charged_to=charged_to)

    monkeypatch.setattr(member.authority.revocations, "supersede", refuse)
    now = NOW + 20
    link = _link_after_rotation(member, now)
    below = delegated_below(member, link, now)
    member.authority.revoke_link(_revoke_as(member.member, member, below, now, ref="sub"), now=now)
    assert member.authority.identities.stored_changes(her) == 2
    kind = int(RevocationKind.CREDENTIAL)
    assert member.authority.store.find_revocation(kind, below.credentials[-1].hash) is not None
