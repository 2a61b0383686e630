"""Review 30a, requests 1: an issuer of a chain a request to an authority carries is judged
against a stored copy from a checkpoint with no `Binds`.

Acme's node stores globex's copy of dora (mia's delegate, whom acme never saw) made up after a
gap. Dora delegated to `below` and asks acme to revoke that link: her request's own history is
judged with the authority's `Binds` (acme has standing over its requesters' histories: review
30a, enrollment 1), but the chain's issuer histories were checked with `check_known` alone
(`Authority._check_issuers`), so her history as the issuer of the link is refused (older than
the stored copy): globex keeps acme's delegators from revoking what they issued.

Was a strict xfail until `_check_issuers` judged each issuer history as a requester's
(`Authority._check_known`: acme, the chain's root, has standing over it); the requester's copy
is then replaced by `_learn`.
"""

from __future__ import annotations

from tests.support.channels import MEMBER
from tests.test_review30a_enrollment import acme, enroll_alice, stores_globex_copy  # noqa: F401
from tests.test_trust_scope import NOW, make_two
from troth.authority import Authority
from troth.authority.requests import make_request
from troth.credentials import CredentialChain, delegate
from troth.node import Node


def test_a_gap_copy_does_not_refuse_a_delegators_revocation(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    chain = enroll_alice(authority, members)  # alice is the member here
    assert isinstance(chain, CredentialChain)
    dora = members.identities.create(now=NOW, name="dora").identifier
    to_dora = delegate(
        members.identities.signer("alice", now=NOW),
        chain,
        subject=dora,
        attributes=MEMBER,
        now=NOW,
        ttl=3600,
        purpose="agent",
    )
    stores_globex_copy(node, make_two(), dora)
    below = members.identities.create(now=NOW, name="below").identifier
    dora_signer = members.identities.signer("dora", now=NOW)
    link = delegate(
        dora_signer, to_dora, subject=below, attributes=MEMBER, now=NOW, ttl=600, purpose="x"
    )
    request = make_request(
        dora_signer,
        "revoke",
        authority.identifier,
        [link.credentials[-1].hash, link.encode(), "done"],
        now=NOW,
    )
    seq = authority.revoke_link(request, now=NOW)
    assert authority.store.revocation_tip()[0] == seq + 1
    assert node.identities.stored_changes(dora) == 1  # her history, over globex's copy
