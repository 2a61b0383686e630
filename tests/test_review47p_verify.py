"""Review 47p, verify 1: `troth trace verify` took a key from a kept history window that forks
from the agent's newest history (or from a window linked to it), and dated its retirement by
the other branch's next change.

A thief holding the agent's key backup from change 0 (its next key included) rotates it into
a fork and signs a record there; a log that kept the fork as a history window beside the
agent's real windows and newest history (a log that colluded, or was written to by hand: the
windows are not under the log's checkpoints) verified that record: the fork window verifies
on its own from change 0, is not linked to the newest, and with no stored copy of the agent
nothing judged it; its last key was then "retired" by change 6 of the real history. Two
histories of one identifier that differ at a change are the fork pre-rotation cannot stop,
and the log's own material shows it: the verifier now refuses the agent's kept windows when
two of its histories (the newest, the windows) hold a change with two hashes, and dates a
key's retirement only by a history that holds the key's own change (docs/traces.md, "Signer
histories").

The test was a strict xfail until `LogVerifier` refused the fork (the unlinked case was added
with the fix, and failed "DID NOT RAISE" before it too).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest

from tests.test_review47i_collector import _batch
from tests.test_review47l_windows import EARLY, _Silent
from troth.errors import TraceError, TraceFailure
from troth.trace.verify import LogMaterial, LogVerifier, log_material, verify_records


def _forked_log(tmp_path: Path, linked: bool) -> tuple[_Silent, LogMaterial]:
    """The agent's record at change 0; the thief's fork (changes 1' to 5', made just after)
    and its record at 5'; then the agent's 150 real rotations. Returns the log and what a
    colluding log's material holds: the real newest history, the fork as a window (0-5') and
    the real windows (0-63, 63-118; `linked`: else 0-63 alone, which the newest does not
    link, for a verifier whose stored copy attests the newest)."""
    silent = _Silent(tmp_path / "trace.db", 0)
    thief = copy.copy(silent.agent)  # the backup: the same keys, the next one included
    for number in range(5):
        thief.rotate(EARLY + 1 + number)
    at = EARLY + 10
    silent.clock.advance(at - silent.clock.now())
    forged = _batch(silent.collector, thief.signer(at), at)
    (result,) = silent.collector.submit(forged, submitter=None, now=at).results
    assert result.delivered, result.detail  # the log held change 0 only: first seen
    silent.rotate(150, EARLY + 100)
    agent = silent.agent.identifier
    material = log_material(silent.log)
    real = silent.bridging() if linked else silent.bridging()[:1]
    windows = {agent: [thief.identity.history, *real]}
    histories = {**material.histories, agent: silent.agent.identity.history}
    return silent, dataclasses.replace(material, windows=windows, histories=histories)


@pytest.mark.parametrize("linked", [True, False])
def test_a_log_that_kept_a_forked_window_is_refused(tmp_path: Path, linked: bool) -> None:
    """Refused, SIGNER_INVALID: the fork window and the real window 0-63 hold changes 1 to 5
    with other hashes (whether or not the real one is linked to the newest)."""
    silent, material = _forked_log(tmp_path, linked)
    attests = None if linked else (lambda _checkpoint, _hash: True)
    with pytest.raises(TraceError) as caught:
        verify_records(LogVerifier(material, checkpoints=attests), silent.log.stored(), None)
    assert caught.value.reason is TraceFailure.SIGNER_INVALID, caught.value
    assert "the histories the log kept fork at change 1" in caught.value.detail
    silent.log.close()
