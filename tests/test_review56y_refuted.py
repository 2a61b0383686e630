"""Review 56y, attacks on reviews 56o, 56p and 56q that did not work. Each is a real attempt
that would fail if its defence broke.

- 56q, chains 2: a thief signing with a retired issuer key after the rotation cannot evade the
  node's rows by carrying the issuer's newer history (the old key is no key of its current
  change); an honest link made in the rotation's second, or just before it, is not refused.
- 56p, identity 1: a caller that goes on after SQLite abandoned its transaction (the failure
  caught) commits nothing, so the keys deleted for it name no row; another thread's write,
  meanwhile, is its own and keeps its keys ("this thread's" transaction).
- 56o, rollback 1: the broker killed between raising its guard's scope and committing its
  entry (arming a store an older troth left) reads as current when it opens again, not as a
  restored copy, and is armed then.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.cli import run
from tests.support.gates import SUPPORT
from tests.support.histories import DAY
from tests.support.leases import broker_at, first_lease
from tests.support.traces import under_chain
from tests.test_review56d_rollback import _as_an_older_troth_left_it
from tests.test_review56p_identity import _interrupted, _keys
from tests.test_review56y_chains import boss_and_agent
from troth.credentials import CredentialChain, issue_credential
from troth.errors import StorageError, TraceError, TraceFailure
from troth.identity import IdentityService
from troth.storage import SqliteDatabase
from troth.storage.rollback import RollbackGuard, guard_path, read_guard
from troth.storage.sqlite_stores import SqliteIdentityStore

CONFIG = {"scopes": ["read"], "ttl": 300, "audience": "x"}


def test_chains_a_late_link_carrying_the_newer_history_is_refused(troth_home: Path) -> None:
    now = int(time.time())
    with boss_and_agent(troth_home, now) as (node, _boss, agent, recorder):
        copied = node.identities.signer("boss", now=now - 900)
        late = issue_credential(  # dated after the rotation below
            copied, subject=agent, attributes=SUPPORT, now=now - 100, ttl=DAY, depth=3
        )
        node.identities.rotate("boss", now=now - 500)
        newer = node.identities.signer("boss", now=now - 400).identity.history
        chain = CredentialChain((late,), (newer,)).encode()
        with pytest.raises(TraceError) as caught:
            recorder.record(under_chain(chain), chain=chain)
        assert caught.value.reason is TraceFailure.CREDENTIAL_INVALID


@pytest.mark.parametrize("before", [0, 1])
def test_chains_an_honest_link_made_as_its_key_retired_is_taken(
    troth_home: Path, before: int
) -> None:
    now = int(time.time())
    with boss_and_agent(troth_home, now) as (node, _boss, agent, recorder):
        boss = node.identities.signer("boss", now=now - 500 - before)
        made = issue_credential(
            boss,
            subject=agent,
            attributes=SUPPORT,
            now=now - 500 - before,
            ttl=DAY,
            depth=3,
        )
        node.identities.rotate("boss", now=now - 500)  # in the link's second, or the next
        chain = CredentialChain((made,), (boss.identity.history,)).encode()
        assert recorder.record(under_chain(chain), chain=chain).index == 0
    run("trace", "verify", "--node", "hub")


def test_identity_a_caller_going_on_after_sqlite_abandoned_it_commits_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = SqliteDatabase(tmp_path / "node.db")
    try:
        store = SqliteIdentityStore(db)
        vault = _keys(6)
        identities = IdentityService(vault, store)
        monkeypatch.setattr(store, "add_locals", _interrupted(db, store.add_locals))
        made: list[bool] = []
        with pytest.raises(StorageError), db.transaction():
            with pytest.raises(StorageError):
                identities.create(now=NOW, name="acme")
            assert vault._keys == {}  # deleted: SQLite abandoned the caller's transaction
            monkeypatch.undo()

            def other() -> None:  # another thread's write is its own: kept, committed
                made.append(identities.create(now=NOW, name="other") is not None)

            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
            identities.create(now=NOW, name="late")  # refused: nothing of it can commit
        assert made == [True]
        assert [r.name for r in identities.list_local()] == ["other"]
        assert len(vault._keys) == 2  # the other thread's, named by its committed row
    finally:
        db.close()


def test_rollback_a_broker_killed_arming_an_older_store_opens_as_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "node.db"
    _world, policy, _issued = first_lease(path, now=NOW, config=CONFIG)
    _as_an_older_troth_left_it(path)
    raise_guard = RollbackGuard._raise_guard

    def killed(self: RollbackGuard, counter: int) -> None:
        raise_guard(self, counter)
        raise StorageError("killed after the guard's raise, before the commit")

    monkeypatch.setattr(RollbackGuard, "_raise_guard", killed)
    with pytest.raises(StorageError), broker_at(path, now=NOW + 1, policy=policy):
        pass
    monkeypatch.undo()
    assert read_guard(guard_path(path)) == {"broker": 0}  # raised, the entry not committed
    with broker_at(path, now=NOW + 2, policy=policy) as broker:
        assert broker.restored is None  # current, not a restored copy
    db = SqliteDatabase(path)
    try:
        assert RollbackGuard(db, "broker").armed()
    finally:
        db.close()
