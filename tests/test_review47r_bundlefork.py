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

Review 47r, bundles 2: a version 2 bundle judged the record's key by the record's history
alone (`newest_view`), not by the windows it carries after it. A thief holding the agent's
key of change 63 signs a record after change 64 retired it, and the log, whose copy of the
agent still ends at 63, appends it (it cannot know); the agent's node then brings the log to
change 153 (windows 63-118, history 118-153). The export bundles the record with window
63-118, which shows the retirement (KEY_RETIRED); the same bundle with window 59-63 as its
history and 63-118 among its windows after it verified, and so did an export of it, with no
stored copy of the agent or with one that moved past it. A key current in the record's
history is now retired when a later history the bundle carries holds its change and the next
one, by `LogVerifier`'s rule (`retired_by`: only from a history that holds the key's own
change; review 47p, verify 1).

The tests were strict xfails until the verifiers refused them ("DID NOT RAISE").
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run
from tests.test_review47i_collector import _batch
from tests.test_review47l_windows import LATE, _Silent
from tests.test_review47o_bundlewin import _lines, _moved_on
from tests.test_review47p_verify import _forked_log
from troth.errors import TraceError, TraceFailure
from troth.identity import indexed_hashes
from troth.trace.bridge import window_spans
from troth.trace.export import export_jsonl, verify_bundle, verify_export
from troth.trace.stored import windows_of


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


def _retired_key_export(tmp_path: Path) -> tuple[_Silent, list[dict[str, Any]], list[bytes]]:
    """The agent's record at change 0; 63 rotations; the thief's copy of it (key 63) signs a
    record at LATE + 150, after the agent's change 64 (LATE + 10), appended while the log's
    copy ends at 63 (windows 0-59, 59-63); the agent's record at change 153 (LATE + 300,
    window 63-118). The log's export, line by line, and the windows it keeps."""
    silent = _Silent(tmp_path / "trace.db", 63)
    thief = copy.copy(silent.agent)
    early = silent.bridging()
    silent.rotate(90, LATE + 10)
    for at, signer, windows in (
        (LATE + 150, thief.signer(LATE + 150), early),
        (LATE + 300, silent.agent.signer(LATE + 300), None),
    ):
        if windows is None:
            spans = window_spans(63, silent.agent.identity.first_index) or []
            windows = tuple(silent.window(first, last) for first, last in spans)
        silent.clock.advance(at - silent.clock.now())
        batch = dataclasses.replace(_batch(silent.collector, signer, at), windows=windows)
        (result,) = silent.collector.submit(batch, submitter=None, now=at).results
        assert result.delivered, result.detail
    out = io.StringIO()
    export_jsonl(silent.log, out)
    bundles = [json.loads(line) for line in out.getvalue().splitlines()]
    return silent, bundles, windows_of(silent.log.store, silent.agent.identifier)


def _first(window: bytes) -> int:
    return indexed_hashes(window)[0]


def test_a_key_retired_by_a_window_the_bundle_carries_is_refused(tmp_path: Path) -> None:
    """The thief's record with window 59-63 as its history (key 63 current there), windows
    0-59, 63-118 and the newest around it: refused KEY_RETIRED alone (no copy of the agent,
    or one past change 118) and in the export, as the log's own bundle of it is."""
    silent, bundles, windows = _retired_key_export(tmp_path)
    with pytest.raises(TraceError) as honest:
        verify_bundle(bundles[1])
    assert honest.value.reason is TraceFailure.KEY_RETIRED, honest.value
    assert [_first(w) for w in windows] == [0, 0, 59, 63]
    stolen = copy.deepcopy(bundles[1])
    text = [base64.b64encode(w).decode() for w in windows]
    stolen["signer"]["history"] = text[2]
    stolen["signer"]["windows"] = [text[1], text[3], bundles[2]["signer"]["history"]]
    stolen["signer"]["at"] = 1
    for known in (None, _moved_on(silent.agent.identifier, 118)):
        with pytest.raises(TraceError) as caught:
            verify_bundle(stolen, known=known)
        assert caught.value.reason is TraceFailure.KEY_RETIRED, caught.value
    with pytest.raises(TraceError) as caught:
        verify_export(_lines([bundles[0], stolen, bundles[2]]))
    assert (caught.value.reason, caught.value.index) == (TraceFailure.KEY_RETIRED, 1)
    silent.log.close()


def test_the_cli_refuses_both_on_a_home_that_knows_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`troth trace verify --file` on a fresh home: the export of two branches and the bundle
    (and an export) of the key retired by its own windows are refused, exit 1."""
    for part in ("fork", "retired"):
        (tmp_path / part).mkdir()
    silent, _material = _forked_log(tmp_path / "fork", True)
    out = io.StringIO()
    export_jsonl(silent.log, out)
    own, stolen = (json.loads(line) for line in out.getvalue().splitlines())
    own["signer"]["history"] = base64.b64encode(silent.bridging()[0]).decode()
    silent.log.close()
    forked = tmp_path / "forked.jsonl"
    forked.write_bytes(b"\n".join(_lines([own, stolen])))
    retired, bundles, windows = _retired_key_export(tmp_path / "retired")
    retired.log.close()
    late = copy.deepcopy(bundles[1])
    text = [base64.b64encode(w).decode() for w in windows]
    late["signer"].update(history=text[2], at=1)
    late["signer"]["windows"] = [text[1], text[3], bundles[2]["signer"]["history"]]
    bundle = tmp_path / "late.json"
    bundle.write_bytes(_lines([late])[0])
    export = tmp_path / "late.jsonl"
    export.write_bytes(b"\n".join(_lines([bundles[0], late, bundles[2]])))
    monkeypatch.setenv("TROTH_HOME", str(tmp_path / "fresh"))
    run("node", "init", "verifier")
    for path, said in (
        (forked, "fork at change 1"),
        (bundle, "retire"),
        (export, "retire"),
    ):
        result = run("trace", "verify", "--file", str(path), "--node", "verifier", code=1)
        assert said in result.output + result.stderr, (path, result.output, result.stderr)
