"""Review 51c (performance of secrets.token.issue, benchmarks/README.md "Pass 51c"): what the
issue path's cheaper forms must keep.

1. The issue's one query (`config_and_live`) counted the account's PENDING and REVOKING
   leases with `state IN (?, ?)`: SQLite builds the IN list as an ephemeral B-tree at every
   run (its page zeroed, its allocations: ~40 k of an issue's ~910 k instructions). Each state
   is now an equality range of `secret_leases_live`; the quota still counts both states, and
   a lease that ended frees its place.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import make_world, open_broker
from tests.test_review49h_tokenkid import _issue_statements
from tests.test_secrets_tokens import CONFIG
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, LeaseState
from troth.secrets.store import sql_blob


def test_a_token_issue_builds_no_ephemeral_table(tmp_path: Path) -> None:
    conn, statements = _issue_statements(tmp_path / "node.db")
    queries = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "INSERT"))]
    assert len(queries) == 3  # the one read, the lease, its audit record
    conn.text_factory = bytes  # EXPLAIN shows the blobs bound as text (not UTF-8)
    for sql in queries:
        opcodes = {bytes(row[1]).decode() for row in conn.execute("EXPLAIN " + sql)}
        assert "OpenEphemeral" not in opcodes, sql
        assert "OpenAutoindex" not in opcodes, sql


@pytest.mark.parametrize(
    ("states", "refused"),
    [
        ((LeaseState.PENDING, LeaseState.REVOKING), True),
        ((LeaseState.PENDING, LeaseState.PENDING), True),
        ((LeaseState.REVOKING, LeaseState.REVOKING), True),
        ((LeaseState.PENDING, LeaseState.REVOKED), False),
        ((LeaseState.REVOKED, LeaseState.REVOKING), False),
    ],
)
def test_the_quota_counts_pending_and_revoking_leases(
    tmp_path: Path, states: tuple[LeaseState, LeaseState], refused: bool
) -> None:
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, quota=2)
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    credential = world.credential_a()
    for state in states:  # two leases, then moved to the states of the case
        handle = broker.issue(credential, "payments", now=NOW).lease.handle
        db.execute(
            "UPDATE secret_leases SET state = ? WHERE locator = ? AND handle = ?",
            (int(state), handle.locator, sql_blob(handle.digest)),
        )
    if not refused:
        broker.issue(credential, "payments", now=NOW)
        return
    with pytest.raises(SecretError) as raised:
        broker.issue(credential, "payments", now=NOW)
    assert raised.value.reason is SecretFailure.QUOTA_EXCEEDED
