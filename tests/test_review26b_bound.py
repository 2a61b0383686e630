"""Review 26b, the authority's bound of live credentials (`Authority._issue_bounded`): what is
answered again at the bound, on a database from before `issued_credentials.credential`.

1. The upgrade: a node.db whose issued credentials were recorded before the migration (the
   column NULL) is migrated in place; at the bound its newest cannot be answered again, so it
   is revoked (charged) and one issued, which the next request at the bound is answered; a
   removal still writes at most MAX_LIVE_CREDENTIALS_PER_MEMBER entries.
2. A newest that went out as a VC (its encoding not stored): the newest stored one is answered
   again (nothing revoked, nothing charged), not the VC; docs/credentials.md said the VC is
   revoked and one issued.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.test_review25_authority import _enroll
from troth import limits
from troth.authority import Authority
from troth.authority.client import refresh_request
from troth.credentials import CredentialChain, RevocationKind
from troth.node import Node, init_node, open_node
from troth.storage.rollback import guard_path

BOUND = limits.MAX_LIVE_CREDENTIALS_PER_MEMBER


@pytest.fixture
def members(troth_home: Path) -> Iterator[Node]:
    init_node("acme-node")
    init_node("members")
    with open_node("members") as node:
        yield node


def _refresh(authority: Authority, members: Node, at: int) -> CredentialChain:
    request = refresh_request(members.identities, "m", authority.identifier, now=at)
    return authority.refresh(request, now=at)


def test_an_upgraded_database_keeps_the_bound(members: Node) -> None:
    with open_node("acme-node") as node:
        authority = node.create_authority("acme", now=NOW)
        issued = [_enroll(authority, members, "m").credentials[0].hash]
        issued += [_refresh(authority, members, NOW + n).credentials[0].hash for n in range(1, 16)]
        path = node.path / "node.db"
    with sqlite3.connect(path) as conn:  # as the schema before the migration left it
        conn.execute("ALTER TABLE issued_credentials DROP COLUMN credential")
        # the migration after it (review 26b; its table takes review 30a's column with it)
        conn.execute("DROP TABLE refuted_changes")
        for table, column in (("vouchers", "since_idx"), ("vouchers", "since_hash")):
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")  # and review 27h's
        conn.execute("ALTER TABLE identities DROP COLUMN linked")
        conn.execute("DROP TABLE mcp_grantors")  # review 40c's
        conn.execute("DROP TABLE retired_keys")  # review 47f's
        conn.execute("DROP TABLE feed_syncs_due")  # review 48m's
        conn.execute("DROP TABLE identity_forks")  # review 49c's
        conn.execute("DROP TABLE rollback_counters")  # review 51d's
        conn.execute("DROP TABLE voucher_sources")  # review 54x's
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        # (review 53h's rebuild, 66i's column, 69f's links and 71e's quota columns too)
        conn.execute(f"PRAGMA user_version = {version - 14}")
    # nor its guard (review 51d's: left beside it, it finds node.db a restored copy, whose
    # authority is held: review 65o, feed 2)
    guard_path(path).unlink(missing_ok=True)
    with open_node("acme-node") as node:
        authority = node.authority()
        start = authority.store.revocation_tip()[0]
        fresh = _refresh(authority, members, NOW + 20).credentials[0]
        assert fresh.hash not in issued
        revoked = authority.store.find_revocation(RevocationKind.CREDENTIAL, issued[-1])
        assert revoked is not None
        assert authority.store.revocation_tip()[0] == start + 1
        assert _refresh(authority, members, NOW + 21).credentials[0] == fresh
        assert authority.store.revocation_tip()[0] == start + 1
        member = members.identities.get("m", now=NOW).identifier
        authority.remove_member(member, now=NOW + 22)  # (the one revoked at the bound: no entry)
        assert authority.store.revocation_tip()[0] - (start + 1) == BOUND


def test_a_vc_newest_leaves_the_newest_stored_answered_again(members: Node) -> None:
    """`troth credential export --format vc` records the VC issued (no encoding stored): at
    the bound the newest credential whose encoding was stored is answered again, nothing
    revoked nor charged (the VC, live, expires last)."""
    with open_node("acme-node") as node:
        authority = node.create_authority("acme", now=NOW)
        issued = [_enroll(authority, members, "m").credentials[0].hash]
        issued += [_refresh(authority, members, NOW + n).credentials[0].hash for n in range(1, 15)]
        member = members.identities.get("m", now=NOW).identifier
        vc = bytes(32)  # as credential_cmds records an exported VC
        authority.store.record_issued(vc, member.digest, NOW + 15 + 3600, NOW + 15)
        start = authority.store.revocation_tip()[0]
        assert _refresh(authority, members, NOW + 16).credentials[0].hash == issued[-1]
        assert authority.store.revocation_tip()[0] == start
        assert authority.store.find_revocation(RevocationKind.CREDENTIAL, vc) is None
