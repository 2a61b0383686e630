"""Review 49j, the checkpoints a log holds, verified offline (`verify_log`).

1. A log holding a checkpoint dated before a smaller one (its operator, or a thief of a
   retired log key, signing a larger tree backdated to when that key was current) verified:
   docs/formats.md says a log's checkpoints are never dated before an earlier one (the log
   never signs one so), and a verifier that kept the smaller one refuses the larger as
   `dated before the anchored checkpoint` (`CheckpointAnchor.accept`), but the same two
   checkpoints in one log were taken as they came. Refused: inconsistent, naming both sizes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, db, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import verify_log
from troth.trace.checkpoint import sign_checkpoint
from troth.trace.signing import resolve_key


def test_a_larger_checkpoint_dated_before_a_smaller_one_is_refused(tmp_path: Path) -> None:
    """1: the second checkpoint dated 100 s before the first, both within the skew of the
    records they cover."""
    clock, owner, agent = FixedClock(NOW), Held(), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    own = recorder(log, agent, clock)
    own.record(tool_call())
    clock.advance(200)
    log.checkpoint()  # of 1 record, dated NOW + 200
    own.record(tool_call())
    honest = log.checkpoint()  # of 2 records, dated NOW + 200 too
    verify_log(log)
    size, root = honest.size, honest.root
    signer = owner.signer(NOW)
    backdated = sign_checkpoint(
        signer, resolve_key(signer.identity, signer.attestation), size, root, NOW + 100
    )
    raw = db(log)
    raw.execute("DELETE FROM checkpoints WHERE size = ?", (size,))
    raw.execute(
        "INSERT INTO checkpoints VALUES (?, ?, ?, ?)", (size, root, NOW + 100, backdated.note)
    )
    raw.close()
    with pytest.raises(TraceError) as caught:
        verify_log(log)
    assert caught.value.reason is TraceFailure.INCONSISTENT, caught.value
    assert "checkpoint of 2 records is dated" in caught.value.detail
