"""Review 64t, rollback: the rollback guard after a transaction that rolled back (review 64p
made the hub's re-revoke one transaction that rolls back whole on a failure: asked whether
the guard can end ahead of node.db).

rollback 1 (low: a false restore, which fails closed: every ticket voided, every lease
  revoked; fixed, `RollbackGuard.arm`): a `bump` keeps the count it wrote (`_bumped`) for the
  `_publish` its commit runs. A transaction that bumped and rolled back left it behind (the
  callbacks are dropped, the count not). The next `_publish` asked without a bump (`arm` on a
  scope with no entry yet: the first ticket or lease after a first guarded write that
  failed) raised the guard to that rolled back count, past node.db's: the next open's check
  found node.db "a restored copy" and failed closed. `arm` now forgets a count no bump of its
  own transaction wrote.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from troth.storage import SqliteDatabase
from troth.storage.rollback import RollbackGuard, read_guard


@pytest.mark.parametrize("scope", ["authority", "broker"])
def test_rollback1_a_rolled_back_bump_never_raises_the_guard_later(
    tmp_path: Path, scope: str
) -> None:
    """The scope's first bump rolls back; the scope is armed next (a ticket, a lease): the
    guard stays at node.db's count, and a check finds node.db current."""
    db = SqliteDatabase(tmp_path / "node.db")
    guard = RollbackGuard(db, scope)
    with pytest.raises(RuntimeError), db.transaction():
        guard.bump(NOW)
        raise RuntimeError("a failure after the bump")
    with db.transaction():
        guard.arm()
    found = read_guard(guard.path)
    assert found is not None
    assert found[scope] == guard.counter() == 0
    assert not guard.behind()
    assert RollbackGuard(db, scope).check(NOW, lambda: 0) is None
    db.close()
