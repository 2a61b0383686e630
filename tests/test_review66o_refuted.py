"""Review 66o: attacks on the backdating rule (review 66h) and on the signing refusal of a
restored node (review 66b) that did not work, each kept as a test of the defence it names."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.support.backups import copy_db, node_db, restore_db
from tests.test_review45f_policy import bundles
from tests.test_review66h_backdating import AGENTS, START, Agent, owned, reason
from tests.test_review66h_refuted import put_in
from troth.clock import FixedClock, SystemClock
from troth.errors import PolicyError, PolicyFailure, TraceError, TraceFailure
from troth.limits import MAX_CLOCK_SKEW_SECONDS as SKEW
from troth.node.services.policy import install_bundle, resign_held_bundle
from troth.trace.checkpoint import AnchorStatus
from troth.trace.export import export_jsonl, verify_export
from troth.trace.verify import verify_log


def test_agents_at_the_edge_of_the_skew_cannot_push_the_checkpoint_ahead(tmp_path: Path) -> None:
    """A member dating every record the skew ahead of the log, a checkpoint after each: the
    checkpoint is dated at the log's clock (its floor is the newest record less the skew), so
    another agent at the other edge of the skew is still taken, and no one's record refused."""
    clock = FixedClock(START)
    log = owned(tmp_path / "log.db", clock)
    pusher, honest = Agent(AGENTS[0]), Agent(AGENTS[1])
    for _ in range(5):
        pusher.append(log, clock.now() + SKEW)
        assert log.checkpoint().time == clock.now()
        honest.append(log, clock.now() - SKEW)
        clock.advance(1)
    log.close()


def test_a_backdated_line_stripped_of_the_logs_only_key_fails_its_checkpoint(
    tmp_path: Path,
) -> None:
    """No renewal: the thief's line stripped of the log key's attestation (so it would not
    sign the kept note) no longer verifies the export's checkpoint either (CHECKPOINT_INVALID):
    the line's log material cannot be trimmed to leave only the floor out."""
    clock = FixedClock(START)
    log = owned(tmp_path / "log.db", clock)
    Agent(AGENTS[0]).append(log, START)
    kept = log.checkpoint().note
    put_in(log, Agent(AGENTS[1]), START - SKEW - 1)
    log.checkpoint()
    out = io.StringIO()
    export_jsonl(log, out)
    log.close()
    lines = []
    for text in out.getvalue().splitlines():
        value = json.loads(text)
        if value["index"] == 1:
            value["log"]["attestations"] = []
        lines.append(json.dumps(value).encode())
    with pytest.raises(TraceError) as refused:
        verify_export(lines, anchor=kept)
    assert refused.value.index == 1
    assert refused.value.reason is TraceFailure.CHECKPOINT_INVALID


def test_a_clock_back_behind_its_checkpoint_recovers_without_an_operator(tmp_path: Path) -> None:
    """The log's clock stepped back 1000 s behind its checkpoint (a jump ahead corrected): its
    agents' records refused BACKDATED only until the clock is within the skew of the checkpoint
    again, then taken, and the log verifies against the note signed ahead."""
    clock = FixedClock(START)
    log = owned(tmp_path / "log.db", clock)
    Agent(AGENTS[0]).append(log, START)
    kept = log.checkpoint()
    clock.advance(-1000)
    other = Agent(AGENTS[1])
    assert reason(lambda: other.append(log, clock.now())) is TraceFailure.BACKDATED
    assert log.checkpoint().time >= kept.time  # never dated before the one ahead
    clock.advance(1000 - SKEW)
    other.append(log, clock.now())
    assert verify_log(log, anchor=kept.note).status is AnchorStatus.VALID
    log.close()


def test_a_restored_hub_holding_no_bundle_resigns_nothing(troth_home: Path, tmp_path: Path) -> None:
    """`troth policy bundle resign` on a hub restored from before its first bundle: there is
    nothing to re-sign (NO_BUNDLE), so no revision is made up from the copy's (66o hold 1 is
    `create`'s)."""
    first, _ = bundles(troth_home, tmp_path)
    path, copy = node_db(troth_home, "acme"), tmp_path / "copy.db"
    copy_db(path, copy)
    install_bundle(troth_home, "acme", first.read_bytes(), clock=SystemClock())
    restore_db(path, copy)
    with pytest.raises(PolicyError) as refused:
        resign_held_bundle(troth_home, "acme", digest="00" * 32, clock=SystemClock())
    assert refused.value.reason is PolicyFailure.NO_BUNDLE
