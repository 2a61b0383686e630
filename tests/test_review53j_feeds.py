"""Review 53j, feeds 1: two copies of one authority's feed that fork.

Review 53e (feeds 1) made `select_feeds` (`troth credential verify --feed A --feed B`) keep, of
each authority, the copy with the most entries, on the ground that "a feed only grows, so the
copy with more entries holds every revocation the other has". That holds for two copies of one
history only. An authority restored from a backup taken before a revocation (or one whose key
signed two histories) publishes a second line: past the restore it appends other entries at the
same positions. A node syncing refuses such a page (it does not extend the head it holds), but
two feed files were never compared: the forked copy, padded with more entries, was chosen and
the revocation the other copy holds was hidden. Was a strict xfail until `select_feeds` refused
two copies of which the shorter is not the first entries of the longer (FEED_INVALID).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import troth
from tests.support.enroll import acme_and_agent
from troth.authority import Authority
from troth.authority.client import enroll_request
from troth.clock import FixedClock
from troth.credentials import write_page_sequence
from troth.errors import CredentialError, CredentialFailure
from troth.node.verify import authority_pages, select_feeds

NOW = 1_800_000_000


def _feed_file(authority: Authority, path: Path, now: int) -> str:
    pages = (page for page, _ in authority_pages(authority, now))
    path.write_bytes(b"".join(write_page_sequence(pages)))
    return str(path)


def _roll_back(authority: Authority, count: int) -> None:
    """The authority's feed as its backup held it: its first `count` entries only."""
    store = authority.revocations.store
    store._db.execute("DELETE FROM revocations WHERE seq >= ?", (count,))  # type: ignore[attr-defined]


def test_a_padded_fork_of_a_feed_does_not_hide_a_revocation(tmp_path: Path) -> None:
    with acme_and_agent(tmp_path / "home", NOW) as (authority, agent, _member, ticket):
        request = enroll_request(agent.identities, "agent", ticket, now=NOW)
        chain = authority.enroll(request, now=NOW)
        stolen = chain.credentials[0].hash
        before = authority.revocations.store.revocation_tip()[0]
        authority.revoke_credential(stolen, now=NOW + 1, reason="stolen")
        honest = _feed_file(authority, tmp_path / "honest.feed", NOW + 2)
        _roll_back(authority, before)  # restored from a backup taken before the revocation
        for n in range(2):  # then entries of its own, past the honest copy's count
            authority.revoke_credential(bytes([n + 1]) * 32, now=NOW + 3, reason="other")
        forked = _feed_file(authority, tmp_path / "forked.feed", NOW + 4)
        anchors = frozenset({authority.identifier})
        for files in ((honest, forked), (forked, honest)):
            with pytest.raises(CredentialError) as refused:
                select_feeds(feed_files=files, authority=None, anchors=anchors, now=NOW + 5)
            assert refused.value.reason is CredentialFailure.FEED_INVALID
            assert "fork" in str(refused.value)


def test_copies_of_one_history_are_still_chosen_by_count(tmp_path: Path) -> None:
    """The control: an older copy that is the newer one's first entries is no fork."""
    with acme_and_agent(tmp_path / "home", NOW) as (authority, agent, _member, ticket):
        request = enroll_request(agent.identities, "agent", ticket, now=NOW)
        chain = authority.enroll(request, now=NOW)
        older = _feed_file(authority, tmp_path / "older.feed", NOW)
        authority.revoke_credential(chain.credentials[0].hash, now=NOW + 1, reason="stolen")
        authority.revoke_credential(b"\x07" * 32, now=NOW + 1, reason="other")
        newer = _feed_file(authority, tmp_path / "newer.feed", NOW + 2)
        anchors = frozenset({authority.identifier})
        for files in ((older, newer), (newer, older), (newer, newer)):
            feeds = select_feeds(feed_files=files, authority=None, anchors=anchors, now=NOW + 3)
            assert feeds[authority.identifier].credential_revoked(chain.credentials[0].hash)


def test_the_verifier_refuses_a_padded_fork_among_its_sources(
    troth_home: Path, clock: FixedClock
) -> None:
    """The Python API's `Verifier` alike (its newest copy by count: review 35d, verifier 1): a
    node holding the honest copy, and the rolled-back authority itself with more entries."""
    with (
        troth.Node.open("acme", clock=clock) as hub,
        troth.Node.open("agents", clock=clock) as node,
    ):
        acme = hub.create_authority()
        customer = node.identities.create("customer")
        member = node.enroll(acme.ticket({"orders.access": "read"}), identity=customer)
        hosted: Authority = acme._hosted  # the authority behind the API's handle
        before = hosted.revocations.store.revocation_tip()[0]
        clock.advance(200)
        acme.revoke(member, reason="left the team")
        trust = [acme.identifier]
        with pytest.raises(troth.CredentialError) as refused:  # the node syncs the honest copy
            troth.Verifier(trust=trust, feeds=[node], clock=clock).verify(
                member, presenter=customer
            )
        assert refused.value.reason is troth.CredentialFailure.REVOKED
        _roll_back(hosted, before)
        for n in range(2):
            hosted.revoke_credential(bytes([n + 1]) * 32, now=clock.now(), reason="other")
        sources: list[troth.Node | troth.Authority] = [node, acme]
        for feeds in (sources, sources[::-1]):
            verifier = troth.Verifier(trust=trust, feeds=feeds, clock=clock)
            with pytest.raises(troth.CredentialError) as refused:
                verifier.verify(member, presenter=customer)
            assert refused.value.reason is troth.CredentialFailure.FEED_INVALID
