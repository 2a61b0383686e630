"""Review 66h: a record backdated before an earlier checkpoint (review 63s, traces 3), the
rule both sides now share (`troth.trace.backdating`), attacked.

1. (63s traces 3, the lead's decision, fixed.) A record dated more than MAX_CLOCK_SKEW_SECONDS
   before a checkpoint that precedes it in the log was appended by the log (a clock stepped
   back, or a thief's `TraceLog` opened with a wrong clock) and, written into trace.db after
   the checkpoint rows were deleted, verified `valid` against the checkpoint a verifier kept
   (`tests/test_review63s_traces.py`). The log now refuses the append (BACKDATED: the fix is
   its clock) and `verify_log` refuses the record after the kept checkpoint, the CLI naming it
   (`test_the_cli_names_the_backdated_record`).
2. (Found with 1.) An export of such a log, and the proof bundle of the backdated record,
   verified `valid` against the kept checkpoint (`troth trace verify --file --checkpoint`)
   while `verify_log` refused the log: an export's line at or past the kept size is now held
   to the same floor when its log material signs the kept note
   (`test_an_export_of_a_backdated_record_is_refused_against_the_kept_note`).

The property (`test_an_honest_log_never_writes_what_its_verifier_refuses`): over appends by
agents whose clocks are up to the skew off the log's, checkpoints and the log's clock stepped
either way, every record the log accepts verifies against every checkpoint it signed, and the
log refuses BACKDATED only while its clock reads before its own newest checkpoint.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.cli import run
from tests.support.traces import (
    NOW,
    Held,
    db,
    node_trace_db,
    record_on_node,
    tool_call,
)
from troth.clock import FixedClock, SystemClock
from troth.errors import TraceError, TraceFailure
from troth.limits import MAX_CLOCK_SKEW_SECONDS as SKEW
from troth.node import open_node
from troth.trace import TraceLog, open_node_log
from troth.trace.checkpoint import AnchorStatus
from troth.trace.export import export_jsonl, verify_bundle, verify_export
from troth.trace.signing import sign_record
from troth.trace.verify import verify_log

START = NOW + 10_000
OWNER = Held()
AGENTS = (Held(), Held(), Held())
for _held in (OWNER, *AGENTS):
    _held.signer(NOW)  # attested at NOW: valid however far back the log's clock steps


class Agent:
    """One agent's chain in one log: signs its next record at a time it is given."""

    def __init__(self, held: Held) -> None:
        self.held = held
        self.seq = 0
        self.prev: bytes | None = None

    def append(self, log: TraceLog, time: int) -> None:
        """Append the next record dated `time`; the chain moves on only when it is taken."""
        record = sign_record(
            self.held.signer(NOW), tool_call(), seq=self.seq, prev=self.prev, time=time
        )
        receipt = log.append(record)
        self.seq, self.prev = self.seq + 1, receipt.hash


def reason(call: object) -> TraceFailure | None:
    try:
        call()  # type: ignore[operator]
    except TraceError as exc:
        return exc.reason
    return None


def owned(path: Path, clock: FixedClock, owner: Held = OWNER) -> TraceLog:
    return TraceLog.open(path, clock=clock, signer=lambda now: owner.signer(NOW))


def test_the_cli_names_the_backdated_record(troth_home: Path, tmp_path: Path) -> None:
    """Traces 1: on a node, a checkpoint signed at a clock 400 s ahead and kept by an auditor,
    then a record dated at the agent's head (over 300 s before it) put into trace.db (the
    checkpoint rows deleted): `troth trace verify --checkpoint` exits 1 naming record 1."""
    run("identity", "create", "support")
    record_on_node(troth_home, 1)
    now = SystemClock().now()
    ahead = FixedClock(now + 400)
    with open_node("default", home=troth_home) as node, open_node_log(node, clock=ahead) as log:
        note = log.checkpoint().note
        signer = node.identities.signer("support", now=now)
        head = log.head(signer.identity.identifier)
        assert head is not None
        stolen = sign_record(signer, tool_call("stolen"), seq=1, prev=head[1], time=head[2])
    kept = tmp_path / "kept.note"
    kept.write_bytes(note)
    run("trace", "verify", "--checkpoint", str(kept))  # the note is the log's: valid
    with TraceLog.open(node_trace_db(troth_home), clock=FixedClock(now)) as thief:
        assert reason(lambda: thief.append(stolen)) is TraceFailure.BACKDATED
        raw = db(thief)
        raw.execute("DELETE FROM checkpoints")
        raw.close()
        thief.append(stolen)
    said = run("trace", "verify", "--checkpoint", str(kept), code=1)
    assert "record 1" in said.stderr, said.stderr
    assert TraceFailure.BACKDATED.value in said.stderr, said.stderr


OFFSET = st.one_of(st.none(), st.integers(-SKEW, SKEW), st.sampled_from([-SKEW, SKEW]))
ROUND = st.tuples(
    st.tuples(OFFSET, OFFSET, OFFSET), st.booleans(), st.integers(-3 * SKEW, 2 * SKEW)
)
"""One round: each agent records or not (its clock's offset from the log's), the log
checkpoints or not, then its clock steps (back as well)."""


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ROUND, min_size=2, max_size=4))
def test_an_honest_log_never_writes_what_its_verifier_refuses(
    plan: list[tuple[tuple[int | None, ...], bool, int]],
) -> None:
    """The same rule on both sides (see the module docstring)."""
    with tempfile.TemporaryDirectory() as folder:
        clock = FixedClock(START)
        log = owned(Path(folder) / "log.db", clock)
        agents = [Agent(held) for held in AGENTS]
        notes: list[bytes] = []
        newest: int | None = None
        for offsets, checkpoint, step in plan:
            for agent, offset in zip(agents, offsets, strict=True):
                if offset is None:
                    continue
                time = clock.now() + offset
                said = reason(lambda agent=agent, time=time: agent.append(log, time))
                if said is TraceFailure.BACKDATED:
                    assert newest is not None
                    assert clock.now() < newest  # only a clock stepped back before it
                    assert time < newest - SKEW
                elif said is None and newest is not None:
                    assert time >= newest - SKEW
            if checkpoint:
                signed = log.checkpoint()
                notes.append(signed.note)
                newest = signed.time
            clock.advance(step)
        for note in notes:
            report = verify_log(log, anchor=note)
            assert report.status is AnchorStatus.VALID
        log.close()


def test_an_export_of_a_backdated_record_is_refused_against_the_kept_note(
    tmp_path: Path,
) -> None:
    """Traces 2: the log of traces 1 exported (by its operator, honestly, from the file the
    thief wrote): the export and the record's bundle are refused at index 1, BACKDATED; the
    export's other line and an honest log's export verify against their kept notes."""
    clock = FixedClock(START)
    log = owned(tmp_path / "log.db", clock)
    agent, thief = Agent(AGENTS[0]), Agent(AGENTS[1])
    agent.append(log, START)
    kept = log.checkpoint().note
    honest = io.StringIO()
    clock.advance(60)
    Agent(AGENTS[2]).append(log, clock.now() - SKEW)  # behind, within the skew of the note
    log.checkpoint()
    export_jsonl(log, honest)
    assert verify_export(honest.getvalue().encode().splitlines(), anchor=kept).status is (
        AnchorStatus.VALID
    )
    raw = db(log)
    raw.execute("DELETE FROM checkpoints")
    raw.close()
    with TraceLog.open(log.store.path, clock=FixedClock(START - SKEW - 1)) as writer:
        thief.append(writer, START - SKEW - 1)
    log.checkpoint()
    out = io.StringIO()
    export_jsonl(log, out)
    lines = out.getvalue().encode().splitlines()
    with pytest.raises(TraceError) as refused:
        verify_export(lines, anchor=kept)
    assert (refused.value.reason, refused.value.index) == (TraceFailure.BACKDATED, 2)
    with pytest.raises(TraceError) as bundle:
        verify_bundle(lines[2], anchor=kept)
    assert (bundle.value.reason, bundle.value.index) == (TraceFailure.BACKDATED, 2)
    assert verify_bundle(lines[1], anchor=kept).status is AnchorStatus.UNANCHORED
    log.close()
