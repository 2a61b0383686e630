"""Review 29a, feeds: a co-trusted authority's copy of another trusted authority, made up after
a gap, keeps that authority's feed from ever being held.

Desk trusts acme and globex and holds globex's feed, not yet acme's (trusting an authority
stores nothing of it: its history arrives with its first feed page). Globex names a made-up
change 5 of acme's identifier (its `previous` names no change of acme's) in its feed and
connects to desk as acme with a globex credential to acme's identifier: desk stores the copy at
first sight. Then acme's first feed page is refused, its history (change 0) being older than
the stored copy: `CredentialWallet.update_feed` judges a page's authority history with
`IdentityService.observe` and no `Binds`, so every copy binds it. Without acme's feed every
chain of acme's is refused at desk: globex cut desk off from every acme member.

Was a strict xfail until `CredentialWallet.update_feed` judged the page's authority history
with the node's `Binds` (`CredentialWallet.feed_binds`, given by `NodeTrust`: as for a peer,
the authority itself, an anchor, has standing over its own history) and stored it only once the
whole page verified: globex's copy does not bind acme's history (globex vouched for "acme" under
its made-up change only), so the page is taken, the copy replaced and globex's word on acme
forgotten, and acme's member is admitted with her acme chain. A node's handshake with acme
(an anchor: `ChannelTrust.known_by`) already judged acme's history so; its feed did not.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.channels import MEMBER, T
from tests.support.feeds import pages
from tests.support.parties import claim_with_new_key
from tests.test_review23a_checkpoints import forged_change
from tests.test_trust_scope import NOW, make_two
from troth.channel import AnyAuthenticatedIdentity, verify_peer
from troth.channel.verification import HandshakeClaim
from troth.credentials import CredentialChain, issue_credential
from troth.node import init_node, open_node
from troth.node.trust import NodeTrust


def test_a_gap_copy_of_acme_does_not_keep_its_feed_out(troth_home: Path) -> None:
    two = make_two()
    acme = two.acme.identifier
    globex = two.globex.identifier
    vault = two.vault
    init_node("desk")
    with open_node("desk") as node:
        for authority in (acme, globex):
            node.wallet.trust(authority, f"node:{authority}", now=T)
        forged = forged_change(two, acme, 5, os.urandom(32))
        node.wallet.update_feed(forged.page, authority=globex, now=NOW)
        node_trust = NodeTrust(node, None)
        node_trust.reload(NOW)
        as_acme = claim_with_new_key(vault, forged.primary, forged.identity, now=T)
        chain = CredentialChain(
            (
                issue_credential(
                    two.globex.signer, subject=acme, attributes=MEMBER, now=T, ttl=3600, depth=1
                ),
            ),
            (two.globex.identity.history,),
        ).encode()
        trust = node_trust.channel_trust(AnyAuthenticatedIdentity())
        assert verify_peer(trust, as_acme, (chain,), NOW).identifier == acme
        (acme_page,) = pages(two.acme, [], now=T, per_page=1)
        feed = node.wallet.update_feed(acme_page, authority=acme, now=NOW)
        assert feed.authority == acme
        assert node.identities.stored_changes(acme) == 1  # acme's own history, over the copy
        node_trust.reload(NOW)  # holds acme's feed now
        alice = two.alice
        claim = HandshakeClaim(
            alice.party.identity.history, alice.attestation, vault.public_key(alice.channel_key)
        )
        peer = verify_peer(trust, claim, (two.chain(two.acme),), NOW)
        assert [c.authority for c in peer.credentials] == [acme]
