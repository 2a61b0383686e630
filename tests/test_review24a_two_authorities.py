"""Review 24a, two authorities: a long-lived member of two authorities (past 64 changes, each
rotation batch announced to both, as docs/formats.md "Checkpointed histories" asks) is
presented to every verifier from one checkpoint: the oldest within its last 64 changes that
any feed its node holds names (`IdentityService._presentable`). Both authorities name the
same changes, so which one's checkpoint is presented is a tie the store breaks as it finds
rows. A verifier that trusts only the other authority (and has no stored copy of the member)
cannot attest that checkpoint, and refuses the member (`checkpointed history not attested`),
though that verifier's own authority named the very same change.

Two authorities 1: the member must verify for a verifier trusting either one of them.
Fixed: a checkpoint is attested by a fresh held feed naming its change, the checkpoint's
authority's or another's (`feed_checkpoints`, `CredentialWallet.checkpoints`): the owner could
have named that authority in the checkpoint instead, so nothing more is accepted.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from tests.support.enroll import enroll_in_process
from troth.authority import Authority
from troth.authority.client import rotated_request
from troth.clock import FixedClock
from troth.credentials import Attributes
from troth.credentials.revocation_held import feed_checkpoints
from troth.identity import verify_history
from troth.node import Node, init_node, open_node

ANNOUNCE_EVERY = 32  # as tests/test_identity_long_life.py
STEP = 60


def sync(node: Node, authority: Authority, clock: FixedClock) -> None:
    node.wallet.sync_feed(
        authority.identifier,
        lambda since: authority.feed(now=clock.now(), since=since),
        now=clock,
    )


def test_a_member_of_two_authorities_verifies_for_a_verifier_trusting_either(
    troth_home: Path,
) -> None:
    clock = FixedClock(NOW)
    for name in ("acme", "globex", "owner", "verifier", "v-acme", "v-globex"):
        init_node(name)
    with (
        open_node("acme") as acme_node,
        open_node("globex") as globex_node,
        open_node("owner") as owner,
        open_node("verifier") as verifier,
        open_node("v-acme") as v_acme,
        open_node("v-globex") as v_globex,
    ):
        authorities = [
            acme_node.create_authority("acme", now=NOW),
            globex_node.create_authority("globex", now=NOW),
        ]
        owner.identities.create(now=NOW, name="agent")
        for authority, address in zip(authorities, ("node:acme", "node:globex"), strict=True):
            ticket = authority.create_ticket(
                creator=authority.identifier, attributes=Attributes(), address=address, now=NOW
            )
            enroll_in_process(owner, "agent", authority, str(ticket), clock)
        for number in range(100):
            clock.advance(STEP)
            owner.identities.rotate("agent", now=clock)
            if (number + 1) % ANNOUNCE_EVERY == 0:  # announced to each, each feed synced
                for authority in authorities:
                    now = clock.now()
                    request = rotated_request(
                        owner.identities, "agent", authority.identifier, now=now
                    )
                    authority.rotated(request, now=now)
                    sync(owner, authority, clock)
        history = owner.identities.export("agent")
        for authority in authorities:  # a verifier trusting this one only, no stored copy
            sync(verifier, authority, clock)
            feed = verifier.wallet.feed(authority.identifier, now=clock.now(), max_staleness=300)
            checkpoints = feed_checkpoints(
                {authority.identifier: feed}, now=clock.now(), max_staleness=300
            )
            verified = verify_history(history, now=clock.now(), checkpoints=checkpoints)
            assert verified.current.index == 100
        # and a node trusting one of them (its held feeds, its stored copies: none of hers)
        for node, authority, address in zip(
            (v_acme, v_globex), authorities, ("node:acme", "node:globex"), strict=True
        ):
            node.wallet.trust(authority.identifier, address, now=clock.now())
            sync(node, authority, clock)
            checkpoints = node.wallet.checkpoints(now=clock.now(), max_staleness=300)
            verified = verify_history(history, now=clock.now(), checkpoints=checkpoints)
            assert verified.current.index == 100
