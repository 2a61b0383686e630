"""A member node put back to a copy of its node.db taken before its identity's announced
rotation (review 50g, local 1; review 57r, restore 2; review 57v, release 1), with the CLI."""

from __future__ import annotations

from pathlib import Path

from tests.support.backups import copy_db, node_db, restore_db
from tests.support.cli import run


def enrolled_agent(scratch: Path) -> None:
    """Authority `acme` and node `agent` enrolled with it as `agent` (its ticket in `scratch`)."""
    run("authority", "create", "acme")
    run("node", "create", "agent")
    ticket = scratch / "ticket"
    ticket.write_text(
        run("authority", "ticket", "create", "--authority", "acme", "--attr", "t.n=x").stdout
    )
    run("enroll", str(ticket), "--as", "agent", "--node", "agent")


def restored_before_announced_rotation(home: Path, scratch: Path) -> None:
    """Authority `acme`, node `agent` enrolled as `agent`, node.db copied, `agent` rotated
    (compromised: acme's feed announces it), the copy put back; acme's feed not pulled since."""
    enrolled_agent(scratch)
    copy = scratch / "agent.db"
    copy_db(node_db(home, "agent"), copy)
    run("identity", "rotate", "agent", "--compromised", "--node", "agent")  # announced
    restore_db(node_db(home, "agent"), copy)
