"""Review 34b, issued 1: an authority records every credential it issues, with its encoding
(`issued_credentials`), and never forgets one, though only the unexpired ones are ever read
(the member's bound of live credentials, the answer given again, member removal). A member's
node refreshes each maintenance round (30 s) once its credential expires within
`REFRESH_MARGIN` (600 s), so an authority issuing short-lived credentials (`--credential-ttl
60`) stores 2,880 more rows a day for each member, for good, and a member asking `refresh` in
a loop adds up to `MAX_LIVE_CREDENTIALS_PER_MEMBER` rows per credential lifetime whatever the
TTL.

Was a strict xfail until issuing a credential forgets the member's records that expired more
than MAX_CLOCK_SKEW_SECONDS ago (`AuthorityStore.forget_issued_before`, called by
`Authority._issue`; docs/storage.md, "Schema").
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.conftest import NOW
from troth.authority.client import enroll_request, refresh_request
from troth.credentials import Attributes
from troth.limits import MAX_CLOCK_SKEW_SECONDS
from troth.node import init_node, open_node
from troth.node.node import node_dir

TTL = 60
REFRESHES = 100


def test_an_authority_forgets_the_credentials_that_expired(troth_home: Path) -> None:
    """alice refreshes her 60 s credential every 30 s, 100 times: the authority's database
    holds the credentials still valid (within the clock skew), not one row per refresh."""
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
        agents.identities.create(now=NOW, name="alice")
        authority.enroll(enroll_request(agents.identities, "alice", ticket, now=NOW), now=NOW)
        now = NOW
        for _ in range(REFRESHES):
            now += 30
            request = refresh_request(agents.identities, "alice", authority.identifier, now=now)
            authority.refresh(request, now=now)
    with sqlite3.connect(node_dir(troth_home, "auth") / "node.db") as db:
        (rows,) = db.execute("SELECT COUNT(*) FROM issued_credentials").fetchone()
    assert rows <= (TTL + MAX_CLOCK_SKEW_SECONDS) // 30 + 2
