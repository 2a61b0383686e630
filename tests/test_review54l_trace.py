"""Review 54l (adversarial review of 54c's trace changes).

Trace 1: a node's log identity (review 54c, crash 2) is made inside node.db's transaction,
which the reservation in trace.db joins, so that a process killed after the reservation leaves
nothing in node.db. On a vault whose keys live outside node.db (a PKCS#11 token) the identity's
keys are generated in the token at once, and a joined write never deletes them on a failure
(troth.identity.fresh: the caller's transaction may still commit the rows naming them): the
reservation failing (trace.db busy, read-only, its disk full) rolled node.db back and left the
two new keys in the token, usable with the PIN and named by no row, two more at each failed
opening (review 53k's rule: a new key is deleted on every failure before its write commits).
"""

from __future__ import annotations

import pytest

from tests.support.hsm import agent_node_fixture, token_keys  # noqa: F401 - `node` is a fixture
from troth.clock import FixedClock
from troth.errors import StorageError
from troth.node import Node
from troth.storage import SqliteDatabase
from troth.trace import open_node_log

pytestmark = pytest.mark.hsm

NOW = 1_800_000_000


def test_a_log_identitys_reservation_that_fails_leaves_no_key_in_the_token(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trace 1: trace.db refusing the reservation, the opening fails, node.db holds no new
    identity and the token no new key; the next opening makes and binds one."""
    before = token_keys(node)
    identities = len(list(node.identities.list_local()))
    execute = SqliteDatabase.execute

    def failing(self: SqliteDatabase, sql: str, params: tuple[object, ...] = ()) -> object:
        if "INTO meta" in sql and "log_identity_pending" in params:
            raise StorageError("injected: trace.db is busy")
        return execute(self, sql, params)

    monkeypatch.setattr(SqliteDatabase, "execute", failing)
    with pytest.raises(StorageError):
        open_node_log(node, clock=FixedClock(NOW))
    assert len(list(node.identities.list_local())) == identities
    assert token_keys(node) == before
    monkeypatch.setattr(SqliteDatabase, "execute", execute)
    with open_node_log(node, clock=FixedClock(NOW)) as log:
        bound = log.log_identity
    assert token_keys(node) == before + 2  # the log identity's primary and next keys
    assert bound.digest in {each.identifier for each in node.identities.list_local()}
