"""Review 53e, feeds: which copy of a feed a verification on this machine goes by.

Feeds 1. `troth credential verify --feed A --feed B` (`troth.node.verify.select_feeds`) kept
the feed of each authority from the LAST file that held it: two verified, fresh copies of one
authority's feed, the older one given last (a copy saved before a revocation and still within
`--max-feed-age`, say from a shared directory of feeds given by a glob), and the revocation
the newer copy holds was hidden: the revoked chain verified. A feed only grows, so the copy
with more entries holds every revocation the other has; the Python API's `Verifier` already
kept it (review 35d, verifier 1). Was a strict xfail until `select_feeds` kept, of each
authority, the copy with the most entries, then the latest issued.

Feeds 2. `verify_chain` (`troth credential verify CHAIN --max-feed-age AGE`) chose the feeds by
AGE but verified the chain under a `TrustPolicy` with the default feed age (300 s): a chain
with a feed file 10 minutes old was refused as `stale` under `--max-feed-age 1h`, which the
refusal's own hint told the operator to raise (`verify_vc` passed the age already). Was a
strict xfail until the chain's policy took `Sources.max_feed_age`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.enroll import acme_and_agent
from troth.authority import Authority
from troth.authority.client import enroll_request
from troth.credentials import write_page_sequence
from troth.errors import CredentialError, CredentialFailure
from troth.node.verify import Sources, authority_pages, select_feeds, verify_chain

NOW = 1_800_000_000


def _feed_file(authority: Authority, path: Path, now: int) -> str:
    pages = (page for page, _ in authority_pages(authority, now))
    path.write_bytes(b"".join(write_page_sequence(pages)))
    return str(path)


def test_an_older_copy_of_a_feed_given_last_does_not_hide_a_revocation(tmp_path: Path) -> None:
    with acme_and_agent(tmp_path / "home", NOW) as (authority, agent, _member, ticket):
        request = enroll_request(agent.identities, "agent", ticket, now=NOW)
        chain = authority.enroll(request, now=NOW)
        older = _feed_file(authority, tmp_path / "older.feed", NOW)
        authority.revoke_credential(chain.credentials[0].hash, now=NOW + 1, reason="stolen")
        newer = _feed_file(authority, tmp_path / "newer.feed", NOW + 2)
        anchors = frozenset({authority.identifier})
        for files in ((older, newer), (newer, older)):
            feeds = select_feeds(feed_files=files, authority=None, anchors=anchors, now=NOW + 3)
            assert feeds[authority.identifier].credential_revoked(chain.credentials[0].hash)
            sources = Sources(anchors, tmp_path, feed_files=files)
            with pytest.raises(CredentialError) as refused:
                verify_chain(chain.encode(), sources, now=NOW + 3)
            assert refused.value.reason is CredentialFailure.REVOKED


def test_a_chain_is_verified_within_the_feed_age_it_was_given(tmp_path: Path) -> None:
    with acme_and_agent(tmp_path / "home", NOW) as (authority, agent, member, ticket):
        request = enroll_request(agent.identities, "agent", ticket, now=NOW)
        chain = authority.enroll(request, now=NOW).encode()
        files = (_feed_file(authority, tmp_path / "acme.feed", NOW),)
        anchors = frozenset({authority.identifier})
        later = NOW + 600  # within the chain's hour, past the default 300 s
        hour = Sources(anchors, tmp_path, feed_files=files, max_feed_age=3600)
        assert verify_chain(chain, hour, now=later).actor == member
        with pytest.raises(CredentialError) as refused:  # the control: a tighter age holds
            verify_chain(chain, Sources(anchors, tmp_path, feed_files=files), now=later)
        assert refused.value.reason is CredentialFailure.STALE_FEED
