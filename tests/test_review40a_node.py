"""Review 40a, node: `troth credential verify --node` judges the presenter by the node's stored
copy of her history (`troth.node.verify._stored_presenter`), so the root's feed can tell that
copy is superseded. A stored copy that starts at a checkpoint (stored on a trusted authority's
word, "A stored copy from a checkpoint") was verified with no checkpoints: it failed to verify,
and the presenter was judged by her identifier alone, the feed's supersession unchecked.

Desk trusts acme and globex and stores globex's copy of alice from its checkpoint at change 5.
Globex's feed then says alice's histories shorter than 7 changes are superseded (she rotated
twice since); a chain globex -> alice presented by alice (the default presenter: its last
subject) was valid at desk, whose stored copy of her is exactly what the feed supersedes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.channels import T
from tests.support.feeds import pages
from tests.test_review30a_import import desk_with_globex_copy
from tests.test_trust_scope import NOW, Two, make_two
from troth.credentials import RevocationEntry, RevocationKind, Supersession
from troth.encoding import cbor
from troth.errors import CredentialError, CredentialFailure
from troth.identity import Identifier
from troth.node import open_node
from troth.node.verify import Sources, verify_chain


def globex_supersedes(two: Two, alice: Identifier, troth_home: Path) -> Sources:
    """Sources trusting globex alone, its feed (a file) naming a change 7 of alice's."""
    entry = RevocationEntry(
        0,
        RevocationKind.SUPERSEDED,
        alice.digest,
        two.globex.identifier,
        T,
        "",
        Supersession(7, os.urandom(32)),
    )
    feed = troth_home / "globex.feed"
    feed.write_bytes(cbor.encode(pages(two.globex, [entry], now=NOW, per_page=1)[0]))
    return Sources(frozenset({two.globex.identifier}), troth_home, feed_files=(str(feed),))


def test_a_checkpointed_stored_copy_of_the_presenter_is_judged_by_the_feed(
    troth_home: Path,
) -> None:
    """Review 40a, node 1.

    Was a strict xfail until `_stored_presenter` verified the stored copy with the node's
    store attesting its checkpoint (`IdentityService.attested_by_store`, as the node's own
    lookups do), so a copy from a checkpoint is the presenter's history the feed judges."""
    two = make_two()
    alice = two.alice.identifier
    desk_with_globex_copy(two, alice)  # stored: globex's copy, from a checkpoint at change 5
    sources = globex_supersedes(two, alice, troth_home)
    with open_node("desk") as node, pytest.raises(CredentialError) as caught:
        verify_chain(two.chain(two.globex), sources, now=NOW, node=node)
    assert caught.value.reason is CredentialFailure.SUPERSEDED
    assert "superseded" in str(caught.value)


def test_a_full_stored_copy_of_the_presenter_was_already_judged(troth_home: Path) -> None:
    """The control: desk storing alice's full history refuses the chain the same way."""
    two = make_two()
    alice = two.alice.identifier
    desk_with_globex_copy(two, two.acme.identifier)  # desk initialised, alice not stored
    with open_node("desk") as node:
        node.identities.import_history(two.alice.party.identity.history, now=NOW)
    sources = globex_supersedes(two, alice, troth_home)
    with open_node("desk") as node, pytest.raises(CredentialError) as caught:
        verify_chain(two.chain(two.globex), sources, now=NOW, node=node)
    assert caught.value.reason is CredentialFailure.SUPERSEDED


def test_a_checkpointed_stored_copy_another_authority_attested_refuses_no_chain(
    troth_home: Path,
) -> None:
    """Judging the presenter by her stored copy from globex's checkpoint must not refuse acme's
    chain to her because acme's feed names none of that copy's changes (that rule is for a
    history the presenter shows: review 23a): only the feed's supersession counts here."""
    two = make_two()
    desk_with_globex_copy(two, two.alice.identifier)
    feed = troth_home / "acme.feed"
    feed.write_bytes(cbor.encode(pages(two.acme, [], now=NOW, per_page=1)[0]))
    sources = Sources(frozenset({two.acme.identifier}), troth_home, feed_files=(str(feed),))
    with open_node("desk") as node:
        verified = verify_chain(two.chain(two.acme), sources, now=NOW, node=node)
    assert verified.actor == two.alice.identifier
