"""Review 63n (credentials and delegation core, adversarially).

1. `delegate` (and `CredentialChain.extended`) kept every history the parent chain carried and
   appended the delegator's current one unless the same bytes were there: a chain handed to the
   delegate carrying another history of hers (an older one, before she rotated, or any other
   beside what its issuers need: the verifier takes extra histories) was extended into a chain
   with two histories for one identity, which every verifier refuses (`malformed`), and
   `delegate` signed and returned it without a word: every delegation she made from that chain
   was dead on arrival. The delegator's history now replaces any other of hers the chain carried.
2. `CredentialWallet.best(needs=...)` (what `CredentialWallet.delegate` picks its parent with,
   `parent_for`) inspected each held chain and let its CredentialError out: one held chain that
   no longer checks (an issuer's primary key past its validity while the chain is unexpired: a
   signing key may be attested past it; a checkpointed issuer history its feed no longer
   attests) made every delegation of that identity fail `issuer invalid`, though another held
   chain covered the attributes. Such a chain is now passed over, as a revoked one is.
3. `CredentialWallet.best` passed over the held chains a held feed revokes, not those carrying
   an issuer history a held feed supersedes (a delegator who rotated after her key was stolen,
   the authority's feed naming it): expiring last, such a chain was picked as the parent of
   every delegation (`CredentialWallet.delegate`) and as a policy-admin's chain to sign bundles
   under (`admin_chain`), and each was refused by every verifier (`superseded history`),
   though the identity held a chain that verifies. `best` now passes it over too, as the
   node's channels do (`supersedes_an_issuer`, troth.node.shown_identity).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.feeds import entries, pages
from tests.support.parties import Party, make_party, signer_as, verified_feed
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    RevocationKind,
    TrustPolicy,
    delegate,
    issue_credential,
)
from troth.credentials.format import CredentialBody
from troth.crypto import KeyType
from troth.errors import CredentialError, CredentialFailure
from troth.identity import Identifier, new_identity, rotate_identity
from troth.node import init_node, open_node
from troth.vault import SoftwareVault

T = 1_780_000_000
DAY = 86_400
READ = Attributes({"orders.access": "read"})


def test_credentials1_another_history_of_the_delegator_in_the_chain_is_replaced() -> None:
    vault = SoftwareVault()
    a, m, b, c = (make_party(vault, now=T) for _ in range(4))
    root = issue_credential(
        a.signer, subject=m.identifier, attributes=READ, now=T, ttl=DAY, depth=3
    )
    chain = delegate(
        m.signer,
        CredentialChain((root,), (a.identity.history,)),
        subject=b.identifier,
        attributes=READ,
        now=T,
        ttl=DAY - 100,
        purpose="p",
    )
    primary, rotated, _ = rotate_identity(
        vault, b.identity, b.primary, b.next_primary, now=T + 10, valid_for=DAY
    )
    b_now = signer_as(vault, primary, rotated, now=T + 10, ttl=DAY)
    # the chain b was handed carries her history before the rotation beside what it needs
    handed = CredentialChain(chain.credentials, (*chain.histories, b.identity.history))
    extended = delegate(
        b_now, handed, subject=c.identifier, attributes=READ, now=T + 20, ttl=1000, purpose="p"
    )
    assert b.identity.history not in extended.histories
    assert rotated.history in extended.histories
    verifier = ChainVerifier(TrustPolicy(frozenset({a.identifier})))
    verified = verifier.verify(
        extended.encode(),
        presenter=c.identifier,
        feeds={a.identifier: verified_feed(a, now=T + 20)},
        now=T + 21,
    )
    assert verified.actor == c.identifier
    assert [link.issuer for link in verified.links] == [a.identifier, m.identifier, b.identifier]


def test_credentials1_two_histories_of_one_issuer_are_still_refused() -> None:
    """The verifier's rule stands: a hand-made chain with two histories of one issuer."""
    vault = SoftwareVault()
    a, m = (make_party(vault, now=T) for _ in range(2))
    primary, rotated, _ = rotate_identity(
        vault, a.identity, a.primary, a.next_primary, now=T + 10, valid_for=DAY
    )
    a_now = signer_as(vault, primary, rotated, now=T + 10, ttl=DAY)
    root = issue_credential(
        a_now, subject=m.identifier, attributes=READ, now=T + 10, ttl=DAY, depth=1
    )
    data = CredentialChain((root,), (rotated.history, a.identity.history)).encode()
    with pytest.raises(CredentialError) as caught:
        ChainVerifier(TrustPolicy(frozenset({a.identifier}))).verify_structure(data, now=T + 20)
    assert caught.value.reason is CredentialFailure.MALFORMED


def _short_lived_authority(vault: SoftwareVault) -> Party:
    """An authority whose primary key is valid for 2 days, its signing key attested for 60."""
    primary, identity, following = new_identity(vault, KeyType.ED25519, now=T, valid_for=2 * DAY)
    return Party(
        identity, primary, signer_as(vault, primary, identity, now=T, ttl=60 * DAY), following
    )


def _held(authority: Party, subject: Identifier, ttl: int) -> bytes:
    credential = issue_credential(
        authority.signer, subject=subject, attributes=READ, now=T, ttl=ttl, depth=2
    )
    return CredentialChain((credential,), (authority.identity.history,)).encode()


def test_credentials2_a_held_chain_that_no_longer_checks_does_not_stop_delegating(
    tmp_path: Path,
) -> None:
    vault = SoftwareVault()
    good, short = make_party(vault, now=T), _short_lived_authority(vault)
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        me = node.identities.create(now=T, name="me")
        other = node.identities.create(now=T, name="other")
        covering = _held(good, me.identifier, 20 * DAY)
        node.wallet.hold("me", covering, now=T + 5)
        node.wallet.hold("me", _held(short, me.identifier, 30 * DAY), now=T + 5)  # expires last
        at = T + 3 * DAY  # the short-lived authority's primary key expired
        assert node.wallet.best("me", now=at, needs=READ) == covering
        chain = CredentialChain.decode(
            node.wallet.delegate(
                "me", to=other.identifier, attributes=READ, now=at, ttl=DAY, purpose="p"
            )
        )
        assert CredentialBody.decode(chain.credentials[0].body).issuer == good.identifier


def test_credentials3_a_held_chain_whose_delegator_is_superseded_is_not_a_parent(
    tmp_path: Path,
) -> None:
    vault = SoftwareVault()
    acme, nora = make_party(vault, now=T), make_party(vault, now=T)
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        me = node.identities.create(now=T, name="me")
        other = node.identities.create(now=T, name="other")
        direct = _held(acme, me.identifier, 5 * DAY)
        to_nora = issue_credential(
            acme.signer, subject=nora.identifier, attributes=READ, now=T, ttl=20 * DAY, depth=2
        )
        via_nora = delegate(
            nora.signer,
            CredentialChain((to_nora,), (acme.identity.history,)),
            subject=me.identifier,
            attributes=READ,
            now=T,
            ttl=15 * DAY,
            purpose="p",
        ).encode()
        node.wallet.hold("me", direct, now=T + 5)
        node.wallet.hold("me", via_nora, now=T + 5)  # expires last
        assert node.wallet.best("me", now=T + 10, needs=READ) == via_nora
        # nora rotates (her key stolen); acme's feed, which this node holds, says so
        node.wallet.trust(acme.identifier, "/tcp/127.0.0.1:9", now=T)
        made = entries(acme, [(RevocationKind.SUPERSEDED, nora.identifier.digest)], at=T + 20)
        (page,) = pages(acme, made, now=T + 20, per_page=1)
        node.wallet.update_feed(page, authority=acme.identifier, now=T + 20)
        at = T + 30
        feeds = {acme.identifier: node.wallet.feed(acme.identifier, now=at, max_staleness=60)}
        verifier = ChainVerifier(TrustPolicy(frozenset({acme.identifier})))
        with pytest.raises(CredentialError) as caught:  # what every verifier says of it now
            verifier.verify(via_nora, presenter=me.identifier, feeds=feeds, now=at)
        assert caught.value.reason is CredentialFailure.SUPERSEDED
        assert node.wallet.best("me", now=at, needs=READ) == direct
        assert node.wallet.best("me", now=at) == direct
        chain = CredentialChain.decode(
            node.wallet.delegate(
                "me", to=other.identifier, attributes=READ, now=at, ttl=DAY, purpose="p"
            )
        )
        assert len(chain.credentials) == 2


def test_credentials1_the_current_history_beside_an_older_one_is_kept_alone() -> None:
    """The chain carries both her current history and an older one: only the current stays."""
    vault = SoftwareVault()
    a, m, b = (make_party(vault, now=T) for _ in range(3))
    primary, rotated, _ = rotate_identity(
        vault, m.identity, m.primary, m.next_primary, now=T + 10, valid_for=DAY
    )
    m_now = signer_as(vault, primary, rotated, now=T + 10, ttl=DAY)
    root = issue_credential(
        a.signer, subject=m.identifier, attributes=READ, now=T, ttl=DAY, depth=1
    )
    handed = CredentialChain((root,), (a.identity.history, rotated.history, m.identity.history))
    extended = delegate(
        m_now, handed, subject=b.identifier, attributes=READ, now=T + 20, ttl=100, purpose="p"
    )
    assert extended.histories == (a.identity.history, rotated.history)
