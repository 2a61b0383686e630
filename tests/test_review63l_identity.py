"""Review 63l (a review of this session's merged fixes), identity: findings.

identity 1 (medium: the node's stored copy of one authority's identity replaced by another
authority's word, by a command that refuses the VC). Review 63f (identity 1) has `verify_vc`
verify a checkpointed issuer history by the feeds' word (`feed_checkpoints`: the issuer's own
feed, else any other trusted one, as for a chain's issuer). It then passed that history to the
node's `known` (store-or-extend for an issuer the node trusts), as it does for a whole history,
*before* `verify_troth_vc` judged it against the issuer's own feed (`check_current`, `binds`:
another authority's word on a checkpoint counts for that authority's chains only, review 23a).
Before 63f a checkpointed issuer history never verified there, so none was stored.
The attack: a co-trusted authority B presents "A's history from change K", which is B's own
changes from K on (B's keys), with a checkpoint naming B, and B's fresh feed names that change
as A's change K. B signs a VC as A with its own key. A node trusts A and B and holds no copy of
A yet (trusted by identifier, its feed not synced). `troth credential verify --node` refuses
the VC (no feed of A), but by then the node has stored B's made-up history as its copy of A.
A's own history is then a ROLLBACK there ("history is older than the stored copy"), and the
node's copy of A holds B's keys. (A chain verifier stores an issuer history only once the chain
verified: `verify_chain`, review 57w.) Now a checkpointed issuer history is only checked
against the stored copy (`check_known`) until the VC verified, and stored after. A whole
history is judged as before.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.feeds import superseded
from tests.support.parties import Party, make_party, signer_as
from tests.test_review63f_identity import LongLived, _long_lived, _vc
from troth.credentials import build_page, feed_genesis, next_head, write_page_sequence
from troth.credentials.revocation_held import feed_checkpoints
from troth.crypto import KeyType
from troth.errors import CredentialError, CredentialFailure
from troth.identity import (
    Checkpoint,
    encode_history,
    new_identity,
    rotate_identity,
    verify_history,
)
from troth.node import init_node, open_node
from troth.node.verify import Sources, select_feeds, verify_vc
from troth.vault import SoftwareVault

NOW = 1_800_000_000
T0 = NOW - 10_000
K = 3  # the change of B's history presented as A's


def test_identity_1_a_refused_vc_stores_no_co_trusted_authoritys_history_of_its_issuer(
    troth_home: Path,
) -> None:
    vault = SoftwareVault()
    a = make_party(vault, now=T0)  # the authority whose history B makes up
    held = new_identity(vault, KeyType.ED25519, now=T0, valid_for=10**8)
    for step in range(1, K + 2):
        held = rotate_identity(
            vault, held.identity, held.primary, held.next_key, now=T0 + step, valid_for=10**8
        )
    b_full = held.identity
    b = signer_as(vault, held.primary, b_full, now=NOW - 100)
    made_up = Checkpoint(a.identifier.digest, b_full.identifier.digest, K)
    history = encode_history([c.signed for c in b_full.changes[K:]], made_up)
    entry = superseded(
        0, a.identifier, b_full.identifier, K + 1, b_full.changes[K].change_hash, at=NOW - 50
    ).encode()
    head = next_head(feed_genesis(b_full.identifier), entry)
    page = build_page(b, [entry], start=0, head=head, latest=1, now=NOW - 10)
    member = make_party(vault, now=T0)
    init_node("desk")
    b_feed = troth_home / "b.feed"
    b_feed.write_bytes(b"".join(write_page_sequence([page])))
    with open_node("desk") as node:
        for authority in (a.identifier, b_full.identifier):
            node.wallet.trust(authority, f"node:{authority.digest.hex()[:8]}", now=T0)
        assert node.identities.stored_changes(a.identifier) is None  # a first sight
        sources = Sources(frozenset({a.identifier, b_full.identifier}), troth_home, [str(b_feed)])
        feeds = select_feeds(
            feed_files=sources.feed_files, authority=None, anchors=sources.anchors, now=NOW
        )
        as_a = verify_history(
            history,
            now=NOW,
            checkpoints=feed_checkpoints(feeds, now=NOW, max_staleness=sources.max_feed_age),
        )
        assert as_a.identifier == a.identifier  # the premise: B's word makes it verify as A
        signer = signer_as(vault, held.primary, as_a, now=NOW - 100)
        posing = Party(as_a, held.primary, signer, held.next_key)
        vc = _vc(LongLived(posing, as_a, member, b_feed))  # a VC as A, signed with B's key
        with pytest.raises(CredentialError) as refused:
            verify_vc(vc, sources, now=NOW, issuer_history=history, node=node)
        assert refused.value.reason is CredentialFailure.NO_FEED
        assert node.identities.stored_changes(a.identifier) is None
        node.identities.check_known(a.identity)  # A's own history: no rollback of B's here


def test_identity_1_a_long_lived_authoritys_vc_at_a_node_stores_its_history(
    troth_home: Path,
) -> None:
    """The fix's other side: review 63f's long-lived authority, trusted by a node, its VC
    verified there (`--node`): it verifies, and the node holds the authority's history after."""
    world = _long_lived(troth_home.parent)
    authority = world.authority.identifier
    init_node("desk")
    with open_node("desk") as node:
        node.wallet.trust(authority, "node:authority", now=T0)
        sources = Sources(frozenset({authority}), troth_home, [str(world.feed_file)])
        history = world.authority.identity.history
        verified = verify_vc(_vc(world), sources, now=NOW, issuer_history=history, node=node)
        assert verified.subject == world.member.identifier
        assert node.identities.stored_changes(authority) == world.full.current.index + 1
