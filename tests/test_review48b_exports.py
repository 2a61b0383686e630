"""Review 48b, adversarial review of offline trace verification (proof bundles and exports).

Exports 1: a line's readable `record` (what a reader of an evaluation set reads) was compared
with the signed payload by Python equality, where `0 == False` and `1 == 1.0`: a line showing a
record's `seq` 0 as `false`, or its `time` as a float, verified, though the payload (integers
only, RFC 8785 for its domain) holds neither. The readable record must be the payload itself:
its canonical JSON is the payload's bytes.

Exports 2: an export line that is not a bundle (one byte of its JSON edited: not JSON, its
`index` a string, its `envelope` not text) was refused naming no place: `troth trace verify
--file` of a JSONL export said "bundle index: not a int" without saying which of its lines. A
line whose index is read is now located at it (its `envelope` is read where a failure is
located), and a line that names none by its line number in the file.

Exports 3: `troth trace verify --file EXPORT --checkpoint KEPT` whose kept checkpoint is
another log's (or of a size the export holds no proof against) answers `unanchored`, and said
"no kept checkpoint to compare with: pass --checkpoint FILE", though one was passed: it now
says the kept checkpoint was not compared.

The tests were strict xfails until the verifiers refused / located them.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run
from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace.export import export_jsonl, verify_bundle, verify_export
from troth.trace.log import TraceLog


def _log(path: Path) -> TraceLog:
    clock = FixedClock(NOW)
    log = open_log(path, clock)
    agent = Held()
    rec = recorder(log, agent, clock)
    rec.record(tool_call())
    rec.record(tool_call("lookup", args={"order": "o1"}))
    rec.record(tool_call("refund", result="done"))
    return log


def _export(tmp_path: Path) -> list[bytes]:
    log = _log(tmp_path / "trace.db")
    out = io.StringIO()
    export_jsonl(log, out)
    log.close()
    return [line.encode() for line in out.getvalue().splitlines()]


def _text(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("member", "shown"),
    [("seq", False), ("time", float(NOW)), ("version", 2.0)],
)
def test_a_readable_record_of_another_type_is_refused(
    tmp_path: Path, member: str, shown: Any
) -> None:
    """Exports 1: the first record's `seq` (0) shown as `false`, its `time` as a float, its
    `version` as 2.0: MALFORMED, at the line's record, alone and in an export."""
    lines = _export(tmp_path)
    value = json.loads(lines[0])
    assert value["record"][member] == shown  # equal in Python, not the same JSON
    value["record"][member] = shown
    edited = _text(value)
    for verify in (verify_bundle, lambda line: verify_export([line, *lines[1:]])):
        with pytest.raises(TraceError) as caught:
            verify(edited)
        assert caught.value.reason is TraceFailure.MALFORMED, caught.value
        assert "readable record" in caught.value.detail
        assert (caught.value.index, caught.value.record) == (0, value["record"]["id"])


def test_a_readable_record_respelt_verifies(tmp_path: Path) -> None:
    """Exports 1, the other side: the readable record written with other JSON spellings of
    the same values (members in another order, `\\u` escapes) is the same record."""
    lines = _export(tmp_path)
    value = json.loads(lines[0])
    value["record"] = dict(reversed(value["record"].items()))
    edited = json.dumps(value, ensure_ascii=True).encode()
    assert verify_bundle(edited).index == 0
    assert verify_export([edited, *lines[1:]]).records == 3


def _edits(line: bytes) -> list[tuple[bytes, str]]:
    value = json.loads(line)
    return [
        (line.replace(b'"index":1,', b'"index":"1",', 1), "bundle index"),
        (line[:40] + b"\x00" + line[41:], "not JSON"),
        (line.replace(b'"type":"troth.trace.proof"', b'"type":"troth.trace.pro0f"'), "not a"),
        (_text({**value, "envelope": 7}), "bundle envelope"),
    ]


@pytest.mark.parametrize("edit", range(4))
def test_a_line_that_is_no_bundle_is_named_in_an_export(tmp_path: Path, edit: int) -> None:
    """Exports 2: one byte of the second line's JSON edited (its index a string, a NUL in it,
    its type), or its envelope a number: refused, the line named (by its index, when the
    line's index is read, else by its line number in the export)."""
    lines = _export(tmp_path)
    edited, said = _edits(lines[1])[edit]
    assert edited != lines[1]
    with pytest.raises(TraceError) as caught:
        verify_export([lines[0], b"", edited, lines[2]])  # a blank line: line 3 of the file
    assert said in caught.value.detail or said in str(caught.value), caught.value
    if edit == 3:
        assert caught.value.index == 1, caught.value
    else:
        assert caught.value.index is None
        assert caught.value.detail.startswith("line 3: "), caught.value


def test_the_cli_names_the_first_bad_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exports 2, at the CLI: `troth trace verify --file` of an export whose second line is
    not JSON exits 1 and says which line; one whose third line's record was edited names it
    by its index and record id (JSON: index, record)."""
    lines = _export(tmp_path)
    garbled = tmp_path / "garbled.jsonl"
    garbled.write_bytes(b"\n".join([lines[0], lines[1][:-1], lines[2]]) + b"\n")
    value = json.loads(lines[2])
    value["disclosures"]["result"]["value"] = "refused"
    edited = tmp_path / "edited.jsonl"
    edited.write_bytes(b"\n".join([lines[0], lines[1], _text(value)]) + b"\n")
    monkeypatch.setenv("TROTH_HOME", str(tmp_path / "fresh"))
    run("node", "init", "verifier")
    result = run("trace", "verify", "--file", str(garbled), "--node", "verifier", "--json", code=1)
    said = json.loads(result.stdout)
    assert (said["valid"], said["index"], said["reason"]) == (False, None, "malformed"), said
    assert said["detail"].startswith("line 2: "), said
    result = run("trace", "verify", "--file", str(edited), "--node", "verifier", "--json", code=1)
    said = json.loads(result.stdout)
    assert (said["index"], said["record"]) == (2, value["record"]["id"]), said
    assert said["reason"] == TraceFailure.DISCLOSURE_MISMATCH.value, said


def test_an_unanchored_answer_against_a_kept_checkpoint_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exports 3: `troth trace verify --file EXPORT --checkpoint KEPT`, KEPT another log's:
    the answer is `unanchored` (exit 0; 1 with --require-anchor), and said so as "no kept
    checkpoint to compare with: pass --checkpoint FILE", though one was passed. It now says
    the kept checkpoint is not one this answer can be compared with."""
    lines = _export(tmp_path)
    export = tmp_path / "export.jsonl"
    export.write_bytes(b"\n".join(lines) + b"\n")
    other = _log(tmp_path / "other.db")
    kept = tmp_path / "kept.checkpoint"
    kept.write_bytes(other.checkpoint().note)
    other.close()
    monkeypatch.setenv("TROTH_HOME", str(tmp_path / "fresh"))
    run("node", "init", "verifier")
    result = run("trace", "verify", "--file", str(export), "--checkpoint", str(kept))
    assert result.stdout.startswith("unanchored: 3 record(s) verified"), result.stdout
    assert "pass --checkpoint" not in result.stdout, result.stdout
    assert "the kept checkpoint" in result.stdout, result.stdout
    args = ("--checkpoint", str(kept), "--require-anchor")
    run("trace", "verify", "--file", str(export), *args, code=1)
