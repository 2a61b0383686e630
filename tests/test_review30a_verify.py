"""Review 30a, verify 1: `troth credential verify --node` judges a chain's issuer histories
against the node's stored copies with no `Binds`.

Desk trusts acme and globex and stores globex's copy of acme's alice made up after a gap (as
when globex connects as her). Bob shows his chain acme -> alice -> bob. At a handshake desk
judges alice's issuer history with acme, the chain's root, having standing over it (review 29a,
issuers 1), but `verify_chain(node=)` (the command line's `--node`) stored issuer histories with
`store_or_extend` (`import_history`, every copy binding): alice's history is refused as older
than the stored copy, and so is every acme chain through her.

Was a strict xfail until `verify_chain` judged issuer histories as the handshake does
(`ChainVerifier(known_in=)`: a copy that does not bind a full history, the chain's root having
standing over it, refuses nothing) and stored them, a copy that does not bind them replaced,
only once the whole chain verified.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.channels import MEMBER, T
from tests.support.feeds import pages
from tests.support.parties import make_party
from tests.test_review30a_import import desk_with_globex_copy
from tests.test_trust_scope import NOW, make_two
from troth.credentials import CredentialChain, delegate
from troth.encoding import cbor
from troth.node import open_node
from troth.node.verify import Sources, verify_chain


def test_a_gap_copy_does_not_refuse_a_chain_through_her(troth_home: Path) -> None:
    two = make_two()
    alice = two.alice.identifier
    desk_with_globex_copy(two, alice)
    bob = make_party(two.vault, now=T)
    chain = delegate(
        two.alice.party.signer,
        CredentialChain.decode(two.chain(two.acme)),
        subject=bob.identifier,
        attributes=MEMBER,
        now=T,
        ttl=600,
        purpose="orders",
    )
    feed = troth_home / "acme.feed"
    feed.write_bytes(cbor.encode(pages(two.acme, [], now=NOW, per_page=1)[0]))
    sources = Sources(frozenset({two.acme.identifier}), troth_home, feed_files=(str(feed),))
    with open_node("desk") as node:
        verified = verify_chain(chain.encode(), sources, now=NOW, node=node)
        assert verified.actor == bob.identifier
        assert node.identities.stored_changes(alice) == 1  # her history, over globex's copy
