"""Review 72b (area: holds): the release of a local identity's restore hold, attacked with
the rows a restored copy of node.db brings back.

6. (a copy's own hold dated the release, low) A copy of node.db that holds an
   `identity_restore_holds` row already (taken while an earlier restore held the identity,
   or edited before it was put back) kept that row's time when the restore of it was found
   (`ON CONFLICT DO NOTHING`): the release counts a held feed issued after the hold's time,
   so one issued after that older time but before this restore was found (a page captured
   between the copy and the restore, handed in again; what the copy's hold predates) let the
   identity go without the vouch where the guard dates no rotation (lost with the disk, or
   written before version 3: docs/vault.md, "A node.db restored from before a rotation", "the
   hold's time and the copy's feeds alone"). Now a restore found dates every hold it finds
   (the later of the two times: one dated ahead is kept).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.support.backups import copy_db, node_db, thief_copy
from tests.support.cli import run
from tests.test_review58b_release import _release, _remote_acme
from troth.node import open_node


def member_copied(home: Path, scratch: Path, *, rotated_after: bool) -> tuple[bytes, Path]:
    """Authority `acme`; node `agent` with `helper` enrolled with acme and `aide`, rotated once
    (arming the guard's identity scope) before node.db is copied, or after it (the rotation
    the copy lacks, dated by the guard); `helper`'s identifier and the copy."""
    run("authority", "create", "acme")
    run("node", "create", "agent")
    run("identity", "create", "helper", "--node", "agent")
    ticket = scratch / "helper.ticket"
    ticket.write_text(
        run("authority", "ticket", "create", "--authority", "acme", "--attr", "t.n=x").stdout
    )
    run("enroll", str(ticket), "--as", "helper", "--node", "agent")
    run("identity", "create", "aide", "--node", "agent")
    if not rotated_after:
        run("identity", "rotate", "aide", "--node", "agent")
    with open_node("agent") as agent:
        helper = agent.identities.find("helper").identifier
    copy = scratch / "agent.db"
    copy_db(node_db(home, "agent"), copy)
    if rotated_after:
        run("identity", "rotate", "aide", "--node", "agent")
    return helper, copy


def edit(db: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    """Run `statements` on the SQLite database `db` (a copy edited before it is put back)."""
    conn = sqlite3.connect(db)
    try:
        for sql, params in statements:
            conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


def early_hold(
    identifier: bytes, held_at: object = 0
) -> tuple[tuple[str, tuple[object, ...]], ...]:
    """The statements that give a copy a hold of `identifier` dated `held_at`, default 0 (any
    value SQLite binds: a damaged time too; `edit`)."""
    return (
        (
            "CREATE TABLE identity_restore_holds (identifier BLOB PRIMARY KEY, "
            "held_at INTEGER NOT NULL)",
            (),
        ),
        ("INSERT INTO identity_restore_holds VALUES (?, ?)", (identifier, held_at)),
    )


def test_a_copys_own_hold_does_not_date_the_release(troth_home: Path, tmp_path: Path) -> None:
    """72b release 6: the copy holds a hold row for `helper` dated 0; put back with its guard
    lost (no date of the rotation it lacks), the restore found at `now + 100`, a page of
    acme's feed issued at `now + 50` (after the copy, before the restore was found) released
    `helper` without the vouch. Now held since `now + 100`, the page no evidence: refused,
    and the vouch releases it."""
    helper, copy = member_copied(troth_home, tmp_path, rotated_after=False)
    edit(copy, *early_hold(helper))
    thief_copy(node_db(troth_home, "agent"), copy)  # its guard lost: no rotation dated
    now = int(time.time())
    _remote_acme(held_at=now + 100, pulled_at=now + 50)
    with open_node("agent") as agent:
        assert agent.identities.restore_held("helper") == now + 100
    refused = _release("helper", code=1)["message"]
    assert "before the hold" in refused, refused
    assert _release("helper", "--vouch-not-rotated")["released"] is True
