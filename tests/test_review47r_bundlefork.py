"""Review 47r, bundles 1: `verify_export` (`troth trace verify --file` of a JSONL export)
judged each line by the histories it carries alone, so an export whose lines carry two
branches of one agent verified.

Review 47p's set-up: a thief holding the agent's key backup from change 0 rotates it into a
fork (changes 1' to 5') and signs a record there. An export in which the agent's own record
at change 0 carries the agent's real history (changes 0 to 63, a window its log keeps) and
the thief's record the fork verified, each line alone from change 0: nothing compared the
lines, and the export's "newest history" of the agent, by which it judges every key's
retirement (review 35c, trace 1), could be either branch. Two histories of one identifier
that differ at a change are the fork pre-rotation cannot stop, as `LogVerifier` refuses of
the windows a log kept (review 47p, verify 1): the export verifier now refuses an export
whose lines' histories of an agent (each line's history and windows) hold a change with two
hashes, by the same check (`no_fork`).

The test was a strict xfail until `verify_export` refused it ("DID NOT RAISE").
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from tests.test_review47o_bundlewin import _lines
from tests.test_review47p_verify import _forked_log
from troth.errors import TraceError, TraceFailure
from troth.trace.export import export_jsonl, verify_bundle, verify_export


def test_an_export_whose_lines_carry_two_branches_is_refused(tmp_path: Path) -> None:
    """The agent's record at change 0 carries its real window 0-63, the thief's record the
    fork 0-5': each line verifies alone; the export is refused, SIGNER_INVALID."""
    silent, _material = _forked_log(tmp_path, True)
    out = io.StringIO()
    export_jsonl(silent.log, out)
    own, stolen = (json.loads(line) for line in out.getvalue().splitlines())
    own["signer"]["history"] = base64.b64encode(silent.bridging()[0]).decode()
    for bundle in (own, stolen):
        verify_bundle(bundle)
    with pytest.raises(TraceError) as caught:
        verify_export(_lines([own, stolen]))
    assert caught.value.reason is TraceFailure.SIGNER_INVALID, caught.value
    assert "fork at change 1" in caught.value.detail
    assert caught.value.index == 1
    silent.log.close()
