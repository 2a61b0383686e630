"""Review 49j, checkpoint notes (C2SP signed-note, "Format" and "Signatures") handed to an
offline verifier in a proof bundle.

1. A note holding an ASCII control character (an escape sequence in another key's signature
   line, a carriage return, a NUL) verified: "Signed notes MUST be valid UTF-8 and MUST NOT
   contain any ASCII control characters (those below U+0020) other than newline".
2. A signature line whose key name holds a Unicode space or a plus was skipped as another
   key's: "Key names MUST be non-empty and MUST NOT contain any Unicode spaces or plus
   (U+002B) characters" (Go's note.Open refuses such a note as malformed).
3. A signature line by the log's name and one of its keys' ids that does not verify (a forged
   line: a 4-byte key id is easily collided), beside the log's good one, was skipped: "If a
   signature from a known key fails to verify, clients SHOULD reject the whole note", as
   `verify_note` and Go's note.Open do.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.test_review48b_refuted import _lines, _log, _text
from troth.errors import TraceError, TraceFailure
from troth.trace.checkpoint import format_note, parse_note
from troth.trace.export import verify_bundle


@pytest.fixture(scope="module")
def line() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        return _lines(_log(Path(directory) / "trace.db"))[1]


def _with_note(line: dict[str, Any], edit: Any) -> bytes:
    text, signatures = parse_note(line["checkpoint"].encode())
    edited = copy.deepcopy(line)
    edited["checkpoint"] = format_note(text, edit(signatures)).decode()
    return _text(edited)


def _refused(data: bytes) -> str:
    with pytest.raises(TraceError) as caught:
        verify_bundle(data)
    assert caught.value.reason is TraceFailure.CHECKPOINT_INVALID, caught.value
    return caught.value.detail


def test_the_line_verifies_as_it_is(line: dict[str, Any]) -> None:
    verify_bundle(_text(line))
    verify_bundle(_with_note(line, lambda sigs: [*sigs, ("witness.example/w", b"abcd", b"x")]))


@pytest.mark.parametrize("control", ["\x1b[2J", "\r", "\x00", "\t"])
def test_a_note_with_a_control_character_is_refused(line: dict[str, Any], control: str) -> None:
    """1: in another key's signature line (which was skipped), and in the text."""
    name = f"witness.example/{control}w"
    assert "control" in _refused(_with_note(line, lambda sigs: [(name, b"abcd", b"x"), *sigs]))
    edited = copy.deepcopy(line)
    edited["checkpoint"] = line["checkpoint"].replace("\n", control + "\n", 1)
    assert "control" in _refused(_text(edited))


@pytest.mark.parametrize("name", ["witness.example/a+b", "witness.example/a\u00a0b"])
def test_a_key_name_with_a_plus_or_a_unicode_space_is_refused(
    line: dict[str, Any], name: str
) -> None:
    """2."""
    assert "key name" in _refused(_with_note(line, lambda sigs: [*sigs, (name, b"abcd", b"x")]))


def test_a_failing_signature_by_the_logs_key_rejects_the_note(line: dict[str, Any]) -> None:
    """3: before the good line and after it."""
    (name, key_id, _signature), *_ = parse_note(line["checkpoint"].encode())[1]
    forged = (name, key_id, bytes(64))
    assert "bad signature" in _refused(_with_note(line, lambda sigs: [forged, *sigs]))
    assert "bad signature" in _refused(_with_note(line, lambda sigs: [*sigs, forged]))
