"""Review 32a, secrets: an authority's feed ends another authority's leases of an agent only
when it has standing over that agent (docs/formats.md, "Whose word counts on an identity")."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from tests.support.leases import make_world
from tests.support.parties import make_party
from tests.test_review31b_secrets import broker_for, globex_member
from troth.credentials import RevocationKind
from troth.secrets import LeaseState


def test_a_feed_leaves_the_other_leases_of_a_delegator_it_revokes(tmp_path: Path) -> None:
    """Review 32a, secrets 1 (was a strict xfail until a chain's `ROOT_MEMBER` row named its actor
    with its root, `standing_member`, and `revoke_for_feed` ended another authority's leases only of
    an agent that presented a chain of the feed's authority). The orchestrator is a delegator in
    agent A's acme chain (acme -> user -> orchestrator -> A) and a member of globex, under which it
    holds its own lease; acme revokes it. A's acme lease ends (a chain's issuers are judged by its
    root's feed). But the orchestrator never presented an acme chain here: its node judges it, as a
    peer, by globex alone (acme is no voucher of it: docs/formats.md, "Whose word counts on an
    identity"), so it leases again at once under globex. `revoke_for_feed` ended its globex lease
    anyway (any identity in a chain of acme's, open or, since review 31b secrets 3, ended)."""
    world = make_world(NOW)
    globex = make_party(world.vault, now=NOW)
    broker = broker_for(tmp_path, world.agent_a, world.orchestrator)
    at_acme = broker.issue(world.credential_a(), "payments", now=NOW)
    own = globex_member(world, globex, world.orchestrator)
    at_globex = broker.issue(own, "payments", now=NOW)

    feed = world.feed_revoking(
        [(int(RevocationKind.IDENTITY), world.orchestrator.identifier.digest)], now=NOW + 5
    )
    revoked = broker.revoke_for_feed(feed, now=NOW + 5)

    assert [lease.handle for lease in revoked] == [at_acme.lease.handle]
    (kept,) = broker.leases(world.orchestrator.identifier)
    assert (kept.handle, kept.state) == (at_globex.lease.handle, LeaseState.ACTIVE)


def test_a_later_feed_leaves_a_delegators_lease(tmp_path: Path) -> None:
    """Review 32a, secrets 1, the ended chain (review 31b, secrets 3's path; was a strict xfail
    until the same fix): A's acme lease
    ended first; acme's feed revoking the orchestrator still ended its globex lease, as a
    stored chain rooted at acme names it (as A's delegator)."""
    world = make_world(NOW)
    globex = make_party(world.vault, now=NOW)
    broker = broker_for(tmp_path, world.agent_a, world.orchestrator)
    at_acme = broker.issue(world.credential_a(), "payments", now=NOW)
    broker.revoke(world.credential_a(), at_acme.lease_id, now=NOW + 1)
    at_globex = broker.issue(globex_member(world, globex, world.orchestrator), "payments", now=NOW)

    feed = world.feed_revoking(
        [(int(RevocationKind.IDENTITY), world.orchestrator.identifier.digest)], now=NOW + 5
    )
    assert broker.revoke_for_feed(feed, now=NOW + 5) == []
    (kept,) = broker.leases(world.orchestrator.identifier)
    assert (kept.handle, kept.state) == (at_globex.lease.handle, LeaseState.ACTIVE)
