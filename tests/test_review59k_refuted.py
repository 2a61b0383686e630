"""Review 59k: attacks on the late fixes of reviews 59e and 59f that did not work.

- trace: an export of another node's log, verified on a node that accepted a checkpoint of its
  own log, is not compared with it (nor refused: `unanchored`, exit 0); an export whose
  checkpoint is forged (its root changed) is refused and moves nothing the node accepted; an
  export of the node's log rolled back below the accepted checkpoint is still refused when the
  node's log is rolled back too (review 59k trace 1 does not reopen review 59f trace 1).
- api: honest values at review 59e's new bounds are taken: a clock reading exactly 0 or
  `limits.LAST_CLOCK_READING` tickets, enrolls, delegates and verifies (nothing overflows past
  9999 with a TTL added); text outside the BMP (an emoji, a valid surrogate pair in UTF-16) is no
  lone surrogate in an attribute value, a purpose or a caveat; a clock reading `True`, a float or
  NaN is the ArgumentError, not taken as 1.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import cast

import pytest

import troth
from tests.support.cli import run
from tests.support.public_api import acme_and_agents
from tests.support.traces import record_on_node
from tests.test_review59e_api import _Clock
from tests.test_review59f_trace import rolled_back
from troth import limits
from troth.node import open_node, troth_home
from troth.trace.accepted import AcceptedCheckpoints


def _accepted_sizes() -> list[int]:
    with open_node("default", home=troth_home()) as node:
        rows = node.db.fetch_all("SELECT size FROM trace_accepted ORDER BY origin")
    return [int(row[0]) for row in rows]


def _own_log_accepted(tmp_path: Path, records: int) -> None:
    run("identity", "create", "support")
    record_on_node(troth_home(), records)
    run("trace", "checkpoint")
    run("trace", "verify", "--checkpoint", str(tmp_path / "ops.note"))


def test_trace_another_nodes_export_is_not_compared_with_this_nodes_checkpoint(
    tmp_path: Path,
) -> None:
    _own_log_accepted(tmp_path, 1)  # accepted: 1 record of this node's log
    run("node", "create", "other")
    run("trace", "checkpoint", "--node", "other")  # a log of 0 records
    export = tmp_path / "other.jsonl"
    run("trace", "export", "--node", "other", "--out", str(export))
    out = run("trace", "verify", "--file", str(export)).stdout  # not refused as "shorter"
    assert out.startswith("unanchored"), out
    assert _accepted_sizes() == [1]


def test_trace_a_forged_export_checkpoint_is_refused_and_moves_nothing(tmp_path: Path) -> None:
    _own_log_accepted(tmp_path, 1)
    record_on_node(troth_home(), 2)
    run("trace", "checkpoint")
    export = tmp_path / "export.jsonl"
    run("trace", "export", "--out", str(export))
    lines = export.read_text().splitlines()
    forged = []
    for line in lines:
        data = json.loads(line)
        head, size, _root, rest = data["checkpoint"].split("\n", 3)
        other = base64.b64encode(bytes(32)).decode()
        data["checkpoint"] = "\n".join([head, str(int(size) + 5), other, rest])
        forged.append(json.dumps(data))
    export.write_text("\n".join(forged) + "\n")
    said = run("trace", "verify", "--file", str(export), code=1).stderr
    assert "checkpoint" in said, said
    assert _accepted_sizes() == [1]
    with open_node("default", home=troth_home()) as node:
        assert AcceptedCheckpoints(node.db).newest(head) is not None


def test_trace_a_rolled_back_log_proves_no_prefix_of_the_accepted_one(tmp_path: Path) -> None:
    """The export of the log as rolled back (1 record, the node accepted 2): the node's log is
    rolled back too, so it proves nothing past its size and the export stays refused."""
    rolled_back(tmp_path)
    export = tmp_path / "eval.jsonl"
    run("trace", "export", "--out", str(export))
    said = run("trace", "verify", "--file", str(export), code=1).stderr
    assert "shorter than the anchored checkpoint" in said, said


@pytest.mark.parametrize("reading", [0, limits.LAST_CLOCK_READING])
def test_api_a_clock_at_either_bound_is_taken(tmp_path: Path, reading: int) -> None:
    hub = troth.Node.open("acme", home=tmp_path, clock=_Clock(reading))
    agents = troth.Node.open("agents", home=tmp_path, clock=_Clock(reading))
    with hub, agents:
        acme = hub.create_authority()
        support = agents.identities.create("support")
        sub = agents.identities.create("sub")
        agents.enroll(acme.ticket({"orders.access": ["read", "\U0001f600"]}), identity=support)
        chain = agents.delegate(
            support,
            to=sub,
            attributes={"orders.access": "\U0001f600"},
            ttl=600,
            purpose="an emoji \U0001f600",
            caveats=['context.note == "\U0001f600"'],
        )
        verifier = troth.Verifier(trust=[acme.identifier], feeds=acme, clock=_Clock(reading))
        verified = verifier.verify(chain, presenter=sub, context={"note": "\U0001f600"})
        assert verified is not None


@pytest.mark.parametrize("reading", [True, 1.0, math.nan], ids=["bool", "float", "nan"])
def test_api_a_clock_reading_no_whole_number_is_refused(reading: object) -> None:
    with acme_and_agents() as scene:
        clock = _Clock(cast(int, reading))  # not an int: what is tried
        verifier = troth.Verifier(trust=[scene.acme.identifier], feeds=scene.acme, clock=clock)
        with pytest.raises(troth.ArgumentError, match="now"):
            verifier.verify(scene.member, presenter=scene.support)
