"""Review 47r, refuted: attacks on bundle verification with a forked history that failed.

- A version 2 bundle (or JSONL line) whose windows put the thief's fork (changes 0 to 5',
  review 47p's set-up) beside the agent's real window 0-63 is refused, SIGNER_INVALID: the
  windows must chain (`check_windows`: each agrees with the one before on every change both
  hold), so one bundle carries one branch and its key's retirement can only be read from it.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from tests.test_review47p_verify import _forked_log
from troth.errors import TraceError, TraceFailure
from troth.trace.export import export_jsonl, verify_bundle


@pytest.mark.parametrize("at", [0, 1])
def test_a_bundle_whose_windows_hold_a_fork_is_refused(tmp_path: Path, at: int) -> None:
    """The thief's record, its history the fork, the real window 0-63 beside it (before:
    `at` 1, after: `at` 0): refused, SIGNER_INVALID, the fork named."""
    silent, _material = _forked_log(tmp_path, True)
    out = io.StringIO()
    export_jsonl(silent.log, out)
    stolen = json.loads(out.getvalue().splitlines()[1])
    verify_bundle(stolen)
    stolen["version"] = 2
    stolen["signer"]["windows"] = [base64.b64encode(silent.bridging()[0]).decode()]
    stolen["signer"]["at"] = at
    with pytest.raises(TraceError) as caught:
        verify_bundle(stolen)
    assert caught.value.reason is TraceFailure.SIGNER_INVALID, caught.value
    assert "the windows" in caught.value.detail
    silent.log.close()
