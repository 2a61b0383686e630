"""Review 32a, verify: `troth credential verify --node` with an ad-hoc `--trust` root stores
the issuer histories its chain carries, a copy from a checkpoint only that root's word made."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.channels import MEMBER, T
from tests.support.parties import make_party
from tests.test_review23a_checkpoints import forged_change
from tests.test_trust_scope import NOW, make_two
from troth.credentials import CredentialChain, delegate, issue_credential
from troth.encoding import cbor
from troth.node import init_node, open_node
from troth.node.verify import Sources, verify_chain


def test_an_ad_hoc_roots_chain_stores_no_copy_from_a_checkpoint(troth_home: Path) -> None:
    """Review 32a, verify 1. Desk trusts acme only and has never seen acme's alice. The
    operator verifies a chain globex -> "alice" -> bob with `--trust GLOBEX --feed
    globex.feed` (`--trust` takes any identifier). Globex made up alice's change 5 (after a
    gap: a key it holds) and its feed file checkpoints it. Review 31a, verify 1 gave such a
    root no standing over stored copies, but `verify_chain` still stored the chain's issuer
    histories, so desk now keeps globex's made-up copy of alice from a checkpoint, which no
    feed desk holds names (who attests it is unknown: it binds every history), and her own
    full history is refused there as older than that copy: one verification of a file
    locks acme's member out of desk. At a handshake such a chain is dropped (its root is not
    desk's trust anchor), so it must store nothing here either.

    Was a strict xfail until `verify_chain` stored a chain's issuer histories only when the
    node trusts or hosts its root (`troth.node.verify._anchor_here`)."""
    two = make_two()
    alice = two.alice.identifier
    init_node("desk")
    with open_node("desk") as node:
        node.wallet.trust(two.acme.identifier, f"node:{two.acme.identifier}", now=NOW)
    forged = forged_change(two, alice, 5, os.urandom(32))
    credential = issue_credential(
        two.globex.signer, subject=alice, attributes=MEMBER, now=T, ttl=3600, depth=2
    )
    bob = make_party(two.vault, now=T)
    chain = delegate(
        forged.signer,
        CredentialChain((credential,), (two.globex.identity.history,)),
        subject=bob.identifier,
        attributes=MEMBER,
        now=T,
        ttl=600,
        purpose="orders",
    )
    feed = troth_home / "globex.feed"
    feed.write_bytes(cbor.encode(forged.page))
    sources = Sources(
        frozenset({two.globex.identifier}),
        troth_home,
        feed_files=(str(feed),),
        max_feed_age=10**6,
    )
    with open_node("desk") as node:
        verify_chain(chain.encode(), sources, now=NOW, node=node)  # it verifies, for globex
        assert node.identities.stored_changes(alice) is None
        node.identities.check_known(two.alice.party.identity)
