"""Review 54l (adversarial review of 54c's trace changes).

Trace 1: a node's log identity (review 54c, crash 2) is made inside node.db's transaction,
which the reservation in trace.db joins, so that a process killed after the reservation leaves
nothing in node.db. On a vault whose keys live outside node.db (a PKCS#11 token) the identity's
keys are generated in the token at once, and a joined write never deletes them on a failure
(troth.identity.fresh: the caller's transaction may still commit the rows naming them): the
reservation failing (trace.db busy, read-only, its disk full) rolled node.db back and left the
two new keys in the token, usable with the PIN and named by no row, two more at each failed
opening (review 53k's rule: a new key is deleted on every failure before its write commits).

Trace 2: a resolution redone (review 54c, crash 1) was matched on its outcome alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.hsm import agent_node_fixture, token_keys  # noqa: F401 - `node` is a fixture
from tests.support.traces import Held, open_log, recorder
from troth.clock import FixedClock
from troth.errors import StorageError, TraceError, TraceFailure
from troth.node import Node
from troth.storage import SqliteDatabase
from troth.trace import open_node_log

NOW = 1_800_000_000


@pytest.mark.hsm
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


def test_a_resolution_again_with_other_reasons_is_refused(tmp_path: Path) -> None:
    """Trace 2: a redone resolution (review 54c, crash 1) was matched on its outcome alone: the
    same outcome with other inputs, other reasoning or another trace was answered with the
    recorded resolution's receipt, the caller told its answer stood while the log holds
    another. Only the same answer is a redo; another is refused as a second answer, naming
    the recorded one."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    agent, human = Held(), Held()
    asked = recorder(log, agent, clock).escalate(human.identifier, question="refund 5000?")
    answering = recorder(log, human, clock)
    first = answering.resolve(
        asked.record, of=agent.identifier, outcome="approved", considered="c", reasoning="ok"
    )
    same = answering.resolve(
        asked.record, of=agent.identifier, outcome="approved", considered="c", reasoning="ok"
    )
    assert same.hash == first.hash
    others: tuple[dict[str, Any], ...] = (
        {"considered": "c", "reasoning": "a different reason"},
        {"considered": ["other inputs"], "reasoning": "ok"},
        {"considered": "c", "reasoning": "ok", "trace": "another-trace"},
    )
    for other in others:
        with pytest.raises(TraceError) as refused:
            answering.resolve(asked.record, of=agent.identifier, outcome="approved", **other)
        assert refused.value.reason is TraceFailure.REPLAYED
        assert first.record in str(refused.value)
    assert log.size() == 2
    log.close()
