"""Review 33a, verify: `troth credential verify --node` with an ad-hoc `--trust` root stores
that root's own history, read from its feed file, though the node neither trusts nor hosts it."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import NOW
from troth.credentials import Attributes, CredentialChain, issue_credential
from troth.encoding import cbor
from troth.errors import IdentityError
from troth.identity import verify_history
from troth.node import init_node, open_node
from troth.node.verify import Sources, verify_chain

ORDERS = Attributes({"orders.access": "read"})


def test_an_ad_hoc_roots_feed_file_stores_not_its_history(troth_home: Path) -> None:
    """Review 33a, verify 1. A thief holds a pre-rotation backup of acme's node; acme rotated
    since, and so did the thief's copy: a fork [c0, c1'] (both full histories, each tied to
    acme's identifier by its own hash). Desk has never seen acme and does not trust it. The
    operator verifies the thief's chain with `--trust ACME --feed thief.feed`. Review 32a,
    verify 1 stopped such a root's chain from storing its issuer histories, but the root's
    own history, read from its feed file by `store_or_extend`, is still stored: desk now keeps
    the thief's fork, a full (linked) copy that binds every history, and acme's own history is
    refused there as a fork (trusting acme, its members' chains, its feed): one verification
    of a file locks desk out of acme. At a handshake such a root's chain is dropped and
    nothing is stored; here it must store nothing either.

    Was a strict xfail until `verify_chain` stored a feed file's authority history only when
    the node trusts or hosts that authority, else only checked it (`_feed_known`)."""
    init_node("auth")
    init_node("desk")
    with open_node("auth") as auth:
        auth.create_authority("acme", now=NOW)
    shutil.copytree(troth_home / "nodes" / "auth", troth_home / "nodes" / "thief")
    with open_node("auth") as auth, open_node("thief") as thief:
        auth.identities.rotate("acme", now=NOW + 10)  # the owner rotates the stolen key away
        real = verify_history(auth.identities.export("acme"), now=NOW + 20)
        thief.identities.rotate("acme", now=NOW + 12)  # the thief's fork [c0, c1']
        forged = thief.authority()
        member = thief.identities.create(now=NOW, name="m").identifier
        signer = forged.signer(NOW + 20)
        root = issue_credential(
            signer, subject=member, attributes=ORDERS, now=NOW + 20, ttl=600, depth=1
        )
        chain = CredentialChain((root,), (signer.identity.history,))
        feed = troth_home / "thief.feed"
        feed.write_bytes(cbor.encode(forged.feed(now=NOW + 20, since=0)))
    sources = Sources(
        frozenset({real.identifier}), troth_home, feed_files=(str(feed),), max_feed_age=10**6
    )
    with open_node("desk") as node:
        verify_chain(chain.encode(), sources, now=NOW + 20, node=node)  # valid, for that root
        try:
            node.identities.check_known(real)
        except IdentityError as exc:  # the fork stored refuses acme's own history
            raise AssertionError(f"acme's own history refused: {exc}") from None
        assert node.identities.stored_changes(real.identifier) is None


def test_a_trusted_roots_feed_file_still_stores_its_history(troth_home: Path) -> None:
    """The control of review 33a, verify 1: desk trusts acme, so once the operator verified
    one of its chains with its feed file, acme's own history is stored there (from its feed
    file, store-or-extend, and as the chain's issuer)."""
    init_node("auth")
    init_node("desk")
    with open_node("auth") as auth:
        acme = auth.create_authority("acme", now=NOW)
        member = auth.identities.create(now=NOW, name="m").identifier
        signer = acme.signer(NOW + 20)
        root = issue_credential(
            signer, subject=member, attributes=ORDERS, now=NOW + 20, ttl=600, depth=1
        )
        chain = CredentialChain((root,), (signer.identity.history,))
        feed = troth_home / "acme.feed"
        feed.write_bytes(cbor.encode(acme.feed(now=NOW + 20, since=0)))
        identifier = acme.identifier
    with open_node("desk") as node:
        node.wallet.trust(identifier, "node:auth", now=NOW)
        assert node.identities.stored_changes(identifier) is None
    sources = Sources(
        frozenset({identifier}), troth_home, feed_files=(str(feed),), max_feed_age=10**6
    )
    with open_node("desk") as node:
        verify_chain(chain.encode(), sources, now=NOW + 20, node=node)
        assert node.identities.stored_changes(identifier) == 1
