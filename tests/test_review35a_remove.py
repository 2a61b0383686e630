"""Review 35a, remove 1: removing a member writes a feed entry for each of its credentials a
verifier may still accept, which no quota limits; `MAX_LIVE_CREDENTIALS_PER_MEMBER` (16) bounds
how many that is (review 23a: a member's requests must not mint them without end). Review 34c
(remove 1) made removal revoke the credentials expired within `MAX_CLOCK_SKEW_SECONDS` (300 s)
too, but the bound still counted the unexpired ones only: a member asking `refresh` in a loop
got 16 more each time its 16 expired, so its removal wrote 16 x (1 + 300 / TTL) entries — 96
with a 60 s TTL, 32 with the default hour — each one of the authority's own, out of the
entries the feed keeps for them (`FEED_AUTHORITY_RESERVE`).

A second bound, `MAX_RECENT_CREDENTIALS_PER_MEMBER` (32, whatever the TTL), counts what a
removal revokes: past it, the newest unexpired credential is answered again; when none is
unexpired, the oldest of those expired within the skew are revoked (charged to the member's
quota, as review 24a's rule) and one is issued. (Twice the live bound: a member whose 16 went
out in a burst is still issued a new one when the oldest expires, before the newest does,
review 25.)

Was a strict xfail until `Authority._issue_bounded` bounded the credentials unexpired or
expired within MAX_CLOCK_SKEW_SECONDS (`limits.MAX_RECENT_CREDENTIALS_PER_MEMBER`;
docs/credentials.md, "Enrollment").
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from troth.authority.client import enroll_request, refresh_request
from troth.credentials import Attributes
from troth.limits import (
    MAX_CLOCK_SKEW_SECONDS,
    MAX_LIVE_CREDENTIALS_PER_MEMBER,
    MAX_RECENT_CREDENTIALS_PER_MEMBER,
)
from troth.node import init_node, open_node

TTL = 60


def test_a_removal_writes_no_more_entries_than_the_bound(troth_home: Path) -> None:
    """alice asks `refresh` 20 times each minute for five minutes (her credentials last 60 s);
    the authority then removes her: the removal writes at most
    MAX_RECENT_CREDENTIALS_PER_MEMBER feed entries (96 before)."""
    init_node("auth")
    init_node("agents")
    with open_node("auth") as auth_node, open_node("agents") as agents:
        authority = auth_node.create_authority("acme", now=NOW, credential_ttl=TTL)
        ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"agents.team": "support"}),
            address="node:auth",
            now=NOW,
        )
        alice = agents.identities.create(now=NOW, name="alice")
        authority.enroll(enroll_request(agents.identities, "alice", ticket, now=NOW), now=NOW)
        for minute in range(MAX_CLOCK_SKEW_SECONDS // TTL + 1):
            now = NOW + minute * TTL
            for _ in range(MAX_LIVE_CREDENTIALS_PER_MEMBER + 4):
                request = refresh_request(agents.identities, "alice", authority.identifier, now=now)
                authority.refresh(request, now=now)
        removed_at = NOW + MAX_CLOCK_SKEW_SECONDS + 1
        before = authority.held_feed(now=removed_at).count
        authority.remove_member(alice.identifier, now=removed_at)
        written = authority.held_feed(now=removed_at).count - before
    assert written <= MAX_RECENT_CREDENTIALS_PER_MEMBER
