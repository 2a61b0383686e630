"""Review 72b (area: holds): attacks on the restore holds' rows that did not work."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.backups import copy_db, node_db, restore_db
from tests.support.cli import run
from tests.test_review57i_restore import _restored_after_rotation
from tests.test_review58b_release import _release, _remote_acme
from troth.errors import StorageError
from troth.node import open_node


def test_a_hold_planted_early_in_the_copy_does_not_date_the_release(
    troth_home: Path, tmp_path: Path
) -> None:
    """Tried (72b): a copy of node.db put back that already holds an `identity_restore_holds`
    row for `helper` dated 0 (a copy taken while held, or one edited before it was put back:
    the restore kept the earliest hold until 72b release 6) and its `feed_state`
    dates lowered to 0 (the restore keeps them as the copy's own feeds' dates), so that a
    page of acme's feed issued just after the rotation the copy lacks, before the margin (a
    page captured then and handed in again), postdates both. Refused: the floor is the
    rollback guard's date of that rotation and its margin, which the copy does not hold
    (review 60a, release 1), and the hold is dated by this restore (release 6); the vouch
    still releases it."""
    run("authority", "create", "acme")
    run("node", "create", "agent")
    for name in ("helper", "aide"):
        run("identity", "create", name, "--node", "agent")
    ticket = tmp_path / "helper.ticket"
    ticket.write_text(
        run("authority", "ticket", "create", "--authority", "acme", "--attr", "t.n=x").stdout
    )
    run("enroll", str(ticket), "--as", "helper", "--node", "agent")
    with open_node("agent") as agent:
        helper = agent.identities.find("helper").identifier
    copy = tmp_path / "agent.db"
    copy_db(node_db(troth_home, "agent"), copy)
    conn = sqlite3.connect(copy)
    try:
        conn.execute(
            "CREATE TABLE identity_restore_holds (identifier BLOB PRIMARY KEY, "
            "held_at INTEGER NOT NULL)"
        )
        conn.execute("INSERT INTO identity_restore_holds VALUES (?, 0)", (helper,))
        conn.execute("UPDATE feed_state SET issued_at = 0")
        conn.commit()
    finally:
        conn.close()
    run("identity", "rotate", "aide", "--node", "agent")
    restore_db(node_db(troth_home, "agent"), copy)
    now = int(time.time())
    _remote_acme(held_at=now + 1, pulled_at=now + 3)
    with open_node("agent") as agent:
        assert agent.identities.restore_held("helper") == now + 1  # dated again (release 6)
    refused = _release("helper", code=1)["message"]
    assert "after the last rotation the restored copy lacks" in refused, refused
    assert _release("helper", "--vouch-not-rotated")["released"] is True


def test_two_holds_for_one_identity_in_the_copy_release_nothing(troth_home: Path) -> None:
    """Tried (72b): a copy of node.db put back whose `identity_restore_holds` was made again
    without its key, holding two rows for `clerk` (dated 0 and TEXT),
    so that the restore's holds (`ON CONFLICT (identifier)`) or the read of one row
    (`fetch_one`) would take the weaker. Nothing signs: the restore cannot be recorded on
    that table (its conflict clause names a key the table lacks), so every identity is
    refused (StorageError, node.db damaged), fail closed, `clerk` and the rotated `courier`
    alike."""
    path = _restored_after_rotation(troth_home)
    with open_node("laptop") as node:
        clerk = node.identities.find("clerk").identifier
    conn = sqlite3.connect(path)
    try:
        conn.execute("CREATE TABLE identity_restore_holds (identifier BLOB, held_at INTEGER)")
        for held_at in ("0", "'x'"):
            conn.execute(
                f"INSERT INTO identity_restore_holds VALUES (?, {held_at})",  # noqa: S608
                (clerk,),
            )
        conn.commit()
    finally:
        conn.close()
    with open_node("laptop") as node:
        for name in ("clerk", "courier"):
            with pytest.raises(StorageError, match="ON CONFLICT"):
                node.identities.signer(name, now=NOW + 30)
