"""Review 59b (signed traces): attacks on the dating of a node's rotations after its records
that did not work (tests/test_review59b_trace.py has the findings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.backups import copy_db, node_db, thief_copy
from tests.support.cli import run, run_json
from tests.support.traces import tool_call
from tests.test_review59b_trace import _changes, _record, _rotate
from troth.clock import FixedClock, SystemClock
from troth.errors import TraceError
from troth.node import open_node, troth_home
from troth.trace import TraceRecorder, open_node_log


def test_a_thiefs_record_in_the_rotations_second_is_refused(tmp_path: Path) -> None:
    """The rotation is dated at the identity's record 250 s ahead, so a record of the retired
    key dated up to then passes the retirement rule: a thief holding node.db from before the
    rotation signs one in that second with it, on the agent's chain. The log refuses it at
    append (a key attested under an older change than node.db's newest), and verifies."""
    run("identity", "create", "support")
    now = SystemClock().now()
    _record("support", now + 250)
    run("node", "create", "thief")
    copy = tmp_path / "stolen.db"
    copy_db(node_db(troth_home(), "default"), copy)
    thief_copy(node_db(troth_home(), "thief"), copy)
    nodes = troth_home() / "nodes"
    (nodes / "thief" / "vault.key").write_bytes((nodes / "default" / "vault.key").read_bytes())
    _rotate(now)
    assert _changes("support", now)[1:] == [now + 250]
    with (
        open_node("thief", home=troth_home()) as thief,
        open_node("default", home=troth_home()) as node,
        open_node_log(node, clock=SystemClock()) as log,
    ):
        signer = thief.identities.signer
        recorder = TraceRecorder(
            log, lambda at: signer("support", now=at), clock=FixedClock(now + 250)
        )
        with pytest.raises(TraceError, match="older change"):
            recorder.record(tool_call())
    report = run_json("trace", "verify")
    assert (report["status"], report["records"]) == ("unanchored", 1)


def test_another_identitys_record_dated_ahead_does_not_date_the_rotation() -> None:
    """A member (here another identity of the node) records 290 s ahead in the node's log to
    push the node's rotation ahead of its clock (a change verifiers behind it refuse as from
    the future, its announcement to an authority among them): only the rotating identity's
    own records date it."""
    run("identity", "create", "support")
    run("identity", "create", "member")
    now = SystemClock().now()
    _record("member", now + 290)
    _rotate(now)
    assert _changes("support", now)[1:] == [now]
