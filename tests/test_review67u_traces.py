"""Review 67u, traces: review 67k's checkpoint floors (`LogFloor`, fed by `in_order`) attacked.

traces 1 (low: an honest log read INCONSISTENT, or BACKDATED not found, by the order of its
checkpoints). Two checkpoints of one tree (one size, one root) signed at different times (the
log checkpointed again with no record between, as two logs of the same records do; a log
bundle put together from two exports) were put in order by size only, keeping the order they
came in: the later first read "the checkpoint of 1 records is dated T, before the one of 1",
INCONSISTENT, though both are honest, and the other order verified. Checkpoints of one size
are now ordered by time too: no fault, and the later is the floor (a record after both dated
more than the skew before it is BACKDATED), whatever order they come in.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, tool_call
from tests.test_review67u_refuted import START, _owned, _plant
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace.signing import sign_record
from troth.trace.verify import LogVerifier, log_material, verify_records

AGENT = Held()
AGENT.signer(NOW)


def test_of_two_checkpoints_of_one_size_the_later_is_the_floor(tmp_path: Path) -> None:
    """Two checkpoints of the log's first record (one root), at START and an hour later (the
    second signed by a log of the same record, handed over with the first: a log bundle put
    together by hand); the thief's record dated between them (past the first's floor, more
    than the skew before the second): BACKDATED at record 1, whichever comes first (was
    INCONSISTENT, the later first)."""
    log = _owned(tmp_path / "log.db", FixedClock(START))
    record = sign_record(AGENT.signer(NOW), tool_call(), seq=0, prev=None, time=START)
    log.append(record)
    first = log.checkpoint()
    clock = FixedClock(START)
    with _owned(tmp_path / "copy.db", clock) as copy:
        copy.append(record)
        clock.advance(3_600)
        later = copy.checkpoint()
    assert (later.size, later.root) == (first.size, first.root)
    _plant(log, START + 1_800)
    material = log_material(log)
    for notes in ([first.note, later.note], [later.note, first.note]):
        verifier = LogVerifier(replace(material, checkpoints=notes))
        with pytest.raises(TraceError) as refused:
            verify_records(verifier, log.stored(), None)
        assert (refused.value.reason, refused.value.index) == (TraceFailure.BACKDATED, 1)
    log.close()
