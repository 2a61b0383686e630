"""Review 62e, storage 1: node.db put back from a backup beside the write-ahead log a killed
process left (docs/storage.md, "Restoring a backup" and "Rollback guard")."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import troth
from tests.support.backups import copy_db, node_db, restores_found
from tests.support.killed import killed_after
from troth.errors import AuthorityError
from troth.faults import CRASH_EXIT_CODE


@pytest.mark.xfail(
    strict=True,
    reason="review 62e, storage 1: a copy put back over node.db alone, beside the -wal a killed "
    "node left, is read with the WAL's pages over its own: the count of irreversible writes is "
    "the WAL's (the guard's), the ticket the copy's (unused)",
)
def test_storage1_a_copy_put_back_beside_a_killed_nodes_wal_is_found(
    troth_home: Path, tmp_path: Path
) -> None:
    with troth.Node.open("acme") as acme:
        ticket = acme.create_authority().ticket({"team.name": "x"})
    path = node_db(troth_home, "acme")
    copy = tmp_path / "acme.db"
    copy_db(path, copy)  # the backup
    with troth.Node.open("a") as a:
        a.enroll(ticket)  # redeemed: counted; every process closed, node.db checkpointed
        member = a.identity.identifier

    def revoke_then_killed() -> None:  # a counted write, then the process killed (SIGKILL)
        acme = troth.Node.open("acme")
        acme.authority().revoke_identity(member)
        os._exit(CRASH_EXIT_CODE)

    assert killed_after(0, revoke_then_killed) == CRASH_EXIT_CODE
    assert Path(f"{path}-wal").stat().st_size  # the killed process's log, beside node.db
    shutil.copyfile(copy, path)  # the backup put back over node.db, as `cp` does
    with troth.Node.open("b") as b, pytest.raises(AuthorityError):
        b.enroll(ticket)  # redeemed again: a second member from a one-use ticket
    assert restores_found(path)
