"""Review 47l, refuted: attacks on the history windows a member sends with its batch (review
47l, windows 1) that the code already stops.

- A thief holding the agent's key backup from change 0 (its next key included) rotates it
  into a fork and sends the fork's changes as a window, to have the log keep them beside the
  agent's real history (its older records' keys would then resolve under the fork's). The
  fork is a valid history from change 0, and the log's copy (change 0) holds its first
  change; but the windows must chain to the history presented, change by change: the next
  window, or the history, starts at a change the fork does not hold, and the batch is
  refused with nothing kept. (The history presented itself is judged by the node as any
  signer's: a fork of it is the stolen-backup attack review 11 covers.)
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.support.traces import NOW
from tests.test_review47l_windows import LATE, _Silent
from troth.errors import TraceFailure
from troth.trace.stored import history_windows


@pytest.mark.parametrize("fork_first", [True, False])
def test_a_stolen_backups_fork_sent_as_a_window_is_refused(
    tmp_path: Path, fork_first: bool
) -> None:
    """The fork's window first (then the agent's real 63-118), or alone: refused, `signer
    identity invalid`, no window kept, the log's copy of the agent as it was."""
    silent = _Silent(tmp_path / "trace.db", 0)
    thief = copy.copy(silent.agent)  # the backup: the same keys, the next one included
    silent.rotate(150, NOW + 60)
    silent.clock.advance(LATE - silent.clock.now())
    for number in range(5):
        thief.rotate(NOW + 100 + number)
    assert thief.identifier == silent.agent.identifier
    fork = thief.identity.history  # changes 0 to 5, from change 0: verifies on its own
    real = silent.bridging()
    windows = (fork, real[1]) if fork_first else (fork,)
    before = silent.log.history(silent.agent.identifier)
    result = silent.submit(windows)
    assert result.reason is TraceFailure.SIGNER_INVALID
    why = (
        "window 1: " if fork_first else "the history starts at change 118, the one before"
    )  # the real window's first change (63), or the history's (118), is not the fork's
    assert why in result.detail, result.detail
    assert ("change 63" if fork_first else "holds changes 0 to 5") in result.detail
    assert history_windows(silent.log.store) == {}
    assert silent.log.history(silent.agent.identifier) == before
    silent.log.close()
