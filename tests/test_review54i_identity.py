"""Review 54i: identity change histories as peers see them (layer 1). Each test is an attack
that worked before its fix (docs/formats.md, "Pre-rotation and stored histories")."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import IdentityError, IdentityFailure
from troth.identity import verify_history
from troth.node import init_node, open_node
from troth.trace.export import export_jsonl


def _export_after_rotation(tmp_path: Path) -> tuple[Held, bytes, Path]:
    """An agent's record at change 0, a rotation, a record at change 1, in a log: the agent,
    its history before the rotation (a stolen backup's), the log's JSONL export."""
    agent = Held()
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    recorder(log, agent, clock).record(tool_call())
    before = agent.identity.history
    agent.rotate(NOW + 100)
    clock.advance(200)
    recorder(log, agent, clock).record(tool_call())
    out = io.StringIO()
    export_jsonl(log, out)
    log.close()
    export = tmp_path / "export.jsonl"
    export.write_text(out.getvalue())
    return agent, before, export


def test_a_rotation_a_trace_verification_saw_refuses_the_stale_backup_after(
    tmp_path: Path, troth_home: Path
) -> None:
    """Identity 1: `troth trace verify --file EXPORT --node N` verified the agent's rotation
    (the export's newest history, extending N's stored copy) and stored nothing
    (`check_no_fork`), so N imported (and admitted at a handshake) the stale backup, the
    retired key, right after: the promise of review 50g (verify 1) for `troth identity verify
    --node`, which stores a verified extension of a stored copy."""
    agent, before, export = _export_after_rotation(tmp_path)
    backup = tmp_path / "backup.history"
    backup.write_bytes(before)
    init_node("verifier")
    run("identity", "import", str(backup), "--node", "verifier")  # the node knows change 0
    answer = run_json("trace", "verify", "--file", str(export), "--node", "verifier")
    assert answer["verified"] is True
    with open_node("verifier") as node:
        assert node.identities.stored_changes(agent.identifier) == 2
        with pytest.raises(IdentityError) as caught:
            node.identities.observe(verify_history(before, now=NOW + 300))
        assert caught.value.reason is IdentityFailure.ROLLBACK
