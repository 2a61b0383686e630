"""Review 26b, authority store 1: an authority takes a co-trusted authority's word for a
requester's history, and publishes it as its own.

`Authority._attests` accepts a requester's checkpointed history when the authority's node
stores a copy holding its first change (`IdentityService.attested_by_store`). That copy may be
one the node stored at first sight on another authority's word (its feed's checkpoint: any
peer admitted with a chain of an anchor the node trusts is stored). Acme's node trusts globex;
globex names a made-up change 1 of dora — a delegate of acme's member mia, whom acme's node
never saw — and acme's node stores it. Globex, as dora (its made-up history, a key of its own),
issues a link under mia's real link to dora and asks acme to revoke it: `revoke_link` admits the
request (dora issued a link in the chain), `_learn` stores and SUPERSEDES dora's history with
the made-up one in acme's feed. Acme's feed now names the made-up change: every verifier trusting
acme takes globex-as-dora's history as dora's (the feed binds it to her identifier: acme's
chains, mia's link to dora, verify for globex) and refuses dora's real history as superseded
where acme vouched for her. A node never publishes another authority's word as its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.channels import MEMBER
from tests.test_review23a_checkpoints import forged_change
from tests.test_trust_scope import NOW, make_two
from troth.authority import Authority
from troth.authority.client import enroll_request
from troth.authority.requests import make_request
from troth.credentials import delegate
from troth.credentials.revocation_held import feed_checkpoints
from troth.errors import AuthorityError, IdentityError, IdentityFailure
from troth.identity import verify_history
from troth.node import Node, init_node, open_node


@pytest.fixture
def acme(troth_home: Path) -> Iterator[tuple[Authority, Node, Node]]:
    init_node("acme-node")
    init_node("members")
    with open_node("acme-node") as node, open_node("members") as members:
        yield node.create_authority("acme", now=NOW), node, members


def test_an_authority_does_not_publish_anothers_word_on_a_history(
    acme: tuple[Authority, Node, Node],
) -> None:
    authority, node, members = acme
    two = make_two()  # globex (its feed, a vault for its made-up change)
    ticket = authority.create_ticket(
        creator=authority.identifier, attributes=MEMBER, address="node:acme-node", now=NOW
    )
    members.identities.create(now=NOW, name="mia")
    mia = authority.enroll(enroll_request(members.identities, "mia", ticket, now=NOW), now=NOW)
    dora = members.identities.create(now=NOW, name="dora").identifier
    to_dora = delegate(
        members.identities.signer("mia", now=NOW),
        mia,
        subject=dora,
        attributes=MEMBER,
        now=NOW,
        ttl=3600,
        purpose="agent",
    )
    forged = forged_change(two, dora, 1, dora.digest)  # globex's made-up change 1 of dora
    node.wallet.trust(two.globex.identifier, f"node:{two.globex.identifier}", now=NOW)
    node.wallet.update_feed(forged.page, authority=two.globex.identifier, now=NOW)
    # acme's node admits globex-as-dora (globex's chain) and stores the history, first sight
    checkpoints = node.wallet.checkpoints(now=NOW, max_staleness=10**6)
    node.identities.import_history(forged.identity.history, now=NOW, checkpoints=checkpoints)
    below = members.identities.create(now=NOW, name="below").identifier
    link = delegate(
        forged.signer, to_dora, subject=below, attributes=MEMBER, now=NOW, ttl=600, purpose="x"
    )
    request = make_request(
        forged.signer,
        "revoke",
        authority.identifier,
        [link.credentials[-1].hash, link.encode(), "as dora"],
        now=NOW,
    )
    with contextlib.suppress(AuthorityError):  # refused: or at least not published
        authority.revoke_link(request, now=NOW)
    made_up = forged.identity.current_change_hash
    assert authority.store.supersession_hash(dora.digest, 2) != made_up
    # a verifier trusting acme alone: acme's feed must not bind globex's history to dora
    feeds = {authority.identifier: authority.revocations.held(now=NOW)}
    with pytest.raises(IdentityError) as refused:
        verify_history(
            forged.identity.history,
            now=NOW,
            checkpoints=feed_checkpoints(feeds, now=NOW, max_staleness=10**6),
        )
    assert refused.value.reason is IdentityFailure.UNATTESTED_CHECKPOINT
