"""Review 31a, verify 1: `troth credential verify --node` gave standing over the node's stored
copies to the root of whatever chain it verified, a root the node does not trust included.

Desk trusts acme and globex and stores globex's copy of alice from a checkpoint (after a gap:
desk cannot tell it from a real rotation of hers only globex attests, "What this costs"). The
operator verifies a chain mallory -> alice -> bob with `--trust MALLORY --feed mallory.feed`
(`--trust` takes any identifier: the anchors of that one verification, not desk's): review
30a, verify 1 judged alice's issuer history with mallory, the chain's root, having standing
over it, so globex's copy did not bind it and was replaced by the history mallory's chain
carries (a thief's stale backup of alice, say), its changes recorded refuted (globex's word on
alice forgotten). At a handshake such a chain is dropped (its root not a trust anchor of the
node: "Whose word counts on an identity"), so mallory's word must not count here either.

Was a strict xfail until `verify_chain` gave standing only to a root the node trusts
(`CredentialWallet.trusted`: `troth.node.verify._binds`); an ad-hoc anchor's chain is judged
against every stored copy, as before review 30a, and replaces none.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.channels import MEMBER, T
from tests.support.feeds import pages
from tests.support.parties import make_party
from tests.test_review30a_import import desk_with_globex_copy
from tests.test_trust_scope import NOW, make_two
from troth.credentials import CredentialChain, delegate, issue_credential
from troth.encoding import cbor
from troth.errors import CredentialError, CredentialFailure
from troth.node import open_node
from troth.node.verify import Sources, verify_chain
from troth.storage import SqliteVoucherStore


def test_a_root_the_node_does_not_trust_replaces_no_stored_copy(troth_home: Path) -> None:
    two = make_two()
    alice = two.alice.identifier
    desk_with_globex_copy(two, alice)
    mallory = make_party(two.vault, now=T)  # an authority desk does not trust
    credential = issue_credential(
        mallory.signer, subject=alice, attributes=MEMBER, now=T, ttl=3600, depth=2
    )
    bob = make_party(two.vault, now=T)
    chain = delegate(
        two.alice.party.signer,
        CredentialChain((credential,), (mallory.identity.history,)),
        subject=bob.identifier,
        attributes=MEMBER,
        now=T,
        ttl=600,
        purpose="orders",
    )
    feed = troth_home / "mallory.feed"
    feed.write_bytes(cbor.encode(pages(mallory, [], now=NOW, per_page=1)[0]))
    sources = Sources(frozenset({mallory.identifier}), troth_home, feed_files=(str(feed),))
    with open_node("desk") as node:
        with pytest.raises(CredentialError) as caught:
            verify_chain(chain.encode(), sources, now=NOW, node=node)
        assert caught.value.reason is CredentialFailure.ISSUER_INVALID
        assert "older than the stored copy" in str(caught.value)
        assert node.identities.stored_changes(alice) == 6  # globex's copy stands
        assert SqliteVoucherStore(node.db).refuted() == []
