"""Review 53k, CLI: `troth enroll FILE` with a ticket file others can read (cli 1); a damaged
local identity row reported as a malformed input, exit 1, not as the database failing (cli 2)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.support.cli import run
from troth.credentials import Attributes
from troth.node.node import init_node, open_node


def _now() -> int:
    """The clock's second (the CLI checks against the clock; read per test, never at import:
    a ticket made at collection time expired before a whole suite reached this file)."""
    return int(time.time())


def _ticket_file(home: Path, mode: int) -> Path:
    """A ticket of authority acme (node acme) in a file of `mode`; node agent holds `agent`."""
    init_node("acme")
    init_node("agent")
    now = _now()
    with open_node("acme") as acme, open_node("agent") as agent:
        authority = acme.create_authority("acme", now=now)
        ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"agents.team": "a"}),
            address="node:acme",
            now=now,
        )
        agent.identities.create(now=now, name="agent")
    path = home / "ticket.txt"
    path.write_text(str(ticket))
    path.chmod(mode)
    return path


def test_enroll_warns_of_a_ticket_file_others_can_read(troth_home: Path) -> None:
    """cli 1: a ticket is a one-time secret. Enrolling with it at once is what makes a copy
    worthless (the authority redeems a ticket once), so the enrollment goes on; stderr says
    that the copy others could read may have been redeemed first."""
    path = _ticket_file(troth_home, 0o644)
    result = run("enroll", str(path), "--as", "agent", "--node", "agent")
    assert "others can read" in result.stderr
    again = run("enroll", str(path), "--as", "agent", "--node", "agent", "--json")
    assert again.stderr == ""  # with --json stderr stays empty (tests/test_review49g_refuted.py)


def test_enroll_says_nothing_of_a_private_ticket_file(troth_home: Path) -> None:
    path = _ticket_file(troth_home, 0o600)
    result = run("enroll", str(path), "--as", "agent", "--node", "agent")
    assert "others can read" not in result.stderr


def test_a_damaged_local_identity_row_is_a_database_failure(troth_home: Path) -> None:
    """cli 2: the row's history does not decode: node.db is damaged (docs/cli.md, exit 4: the
    database failed), not an input the user gave that troth judged (exit 1)."""
    init_node("n")
    with open_node("n") as node:
        node.identities.create(now=_now(), name="agent")
        db = node.db.path
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE identities SET history = ? WHERE name = 'agent'", (b"\x82\x01ga",))
    for command in (["identity", "show", "agent"], ["identity", "rotate", "agent"]):
        result = run(*command, "--node", "n", code=4)
        assert "node.db" in result.stderr
