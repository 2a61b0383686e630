"""Review 63u2, feed: `Node.feed` (review 63u, docs 3) on the node hosting the authority.

feed 1 (medium: CPU and store reads in the feed's size, at every decision): docs/policy.md's
tool gate asks `node.feed` at every decision (`DecisionPoint(store, node.feed)`), and a
`troth.Verifier(feeds=node)` at every verification. On the hosting node each call made a new
`Authority` whose feed view held nothing, so it read every entry of the feed from the store
(`revocation_rows(0)`): review 63a, authority 2 fixed that cost for `Authority` as a feed
source, not for the hosting `Node`. The handle now keeps the last feed it read and reads only
the entries after it (`held_feed(previous=...)`, which checks that the store still holds its
head and reads all of it again when not).
"""

from __future__ import annotations

import pytest

import troth
from troth.storage.sqlite_authority import SqliteAuthorityStore


def test_node_feed_on_the_hosting_node_reads_only_what_is_new(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    starts: list[int] = []
    rows = SqliteAuthorityStore.revocation_rows

    def reading(self: SqliteAuthorityStore, start: int) -> object:
        starts.append(start)
        return rows(self, start)

    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        members = [agents.enroll(acme.ticket({"orders.access": "read"})) for _ in range(3)]
        for member in members:
            acme.revoke(member, reason="left")
        first = hub.feed(acme.identifier)
        assert first is not None
        monkeypatch.setattr(SqliteAuthorityStore, "revocation_rows", reading)
        for _ in range(5):
            again = hub.feed(acme.identifier)
            assert again is not None
            assert again.count == first.count
        assert all(start == first.count for start in starts), starts
        monkeypatch.setattr(SqliteAuthorityStore, "revocation_rows", rows)
        acme.revoke_identity(agents.identity, reason="gone")
        grown = hub.feed(acme.identifier)
        assert grown is not None
        assert grown.count == first.count + 1
        assert grown.identity_revoked(agents.identity.identifier.digest)
        assert all(grown.credential_revoked(m.id) for m in members)
