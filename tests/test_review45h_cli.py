"""Review 45h (limits end to end), the CLI's input files: for each artifact troth writes to a file
(or stdout) at its largest, the limit `read_input` (or the trace reader) reads it under is at
least what was written, output formatting included.

- chain (`credential export`, raw CBOR): held up to MAX_CHAIN_BYTES, made by `delegate` up to
  MAX_PRESENTED_CHAIN_BYTES; read under MAX_CHAIN_BYTES.
- history (`identity export`, raw CBOR): MAX_IDENTITY_HISTORY_BYTES; read under the same.
- ticket (`ticket create`): its prefix, unpadded base64url of at most MAX_TICKET_BYTES and a
  newline (65,550 bytes); read under MAX_TICKET_TEXT (98,304).
- policy bundle (`policy create`, raw CBOR; `create_bundle` refuses more): at most
  MAX_POLICY_BUNDLE_BYTES; read under the same.
- checkpoint (`trace verify --anchor FILE`, a signed note): 350 bytes at the largest size and
  time; read under MAX_TRACE_CHECKPOINT_BYTES.
- VC (`credential export --format vc`: JSON indented, a newline): 64,924 bytes at most, pinned
  by tests/test_review45d_refuted.py; read under MAX_VC_BYTES.
- export line and proof bundle (`trace export`, `trace prove`: compact JSON values): pinned by
  tests/test_attacks_review22b_traces.py, 22c and 22d; read under MAX_TRACE_LINE_BYTES.

All pass on main: they pin what holds.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.support.traces import NOW
from troth import limits
from troth.authority.tickets import TICKET_PREFIX
from troth.cli.common import read_input
from troth.cli.credential_cmds import _ticket_text
from troth.identity import Identifier
from troth.trace.checkpoint import format_note, log_origin, parse_checkpoint, parse_note


def test_the_largest_written_form_of_each_binary_artifact_is_read_back(tmp_path: Path) -> None:
    """A file of exactly the largest a writer makes is read; one byte more is refused, typed
    (OSError: exit 4), before anything parses it."""
    cases = {
        "chain": (
            limits.MAX_CHAIN_BYTES,
            max(limits.MAX_CHAIN_BYTES, limits.MAX_PRESENTED_CHAIN_BYTES),
        ),
        "history": (limits.MAX_IDENTITY_HISTORY_BYTES, limits.MAX_IDENTITY_HISTORY_BYTES),
        "bundle": (limits.MAX_POLICY_BUNDLE_BYTES, limits.MAX_POLICY_BUNDLE_BYTES),
    }
    for what, (read_limit, largest_written) in cases.items():
        assert largest_written <= read_limit
        path = tmp_path / what
        path.write_bytes(b"x" * largest_written)
        assert len(read_input(str(path), read_limit, what)) == largest_written
        path.write_bytes(b"x" * (read_limit + 1))
        with pytest.raises(OSError, match="larger than"):
            read_input(str(path), read_limit, what)


def test_the_longest_ticket_text_is_read_from_a_file(tmp_path: Path) -> None:
    """A ticket `Ticket.parse` takes at its largest (MAX_TICKET_BYTES decoded) is its prefix and
    unpadded base64url, written with a newline: within MAX_TICKET_TEXT, read back whole."""
    encoded = math.ceil(limits.MAX_TICKET_BYTES * 4 / 3)
    text = TICKET_PREFIX + "A" * encoded
    path = tmp_path / "ticket"
    path.write_text(text + "\n")
    assert path.stat().st_size <= limits.MAX_TICKET_TEXT
    assert _ticket_text(str(path)) == text


def test_the_largest_checkpoint_note_is_within_the_anchor_limit(tmp_path: Path) -> None:
    """The note a log signs (`sign_checkpoint`: origin, size, root, time, one signature line) at
    the largest size and time is far within MAX_TRACE_CHECKPOINT_BYTES, and the file
    `trace verify --anchor` writes is read back under it."""
    origin = log_origin(Identifier(bytes(range(32))))
    largest = (1 << 63) - 1  # SQLite integers; the note takes up to 19 digits
    body = f"{origin}\n{largest}\n{'A' * 43}=\ntroth-time {largest}\n".encode()
    note = format_note(body, [(origin, b"k" * 4, b"s" * 64)])
    assert len(note) <= limits.MAX_TRACE_CHECKPOINT_BYTES
    path = tmp_path / "anchor"
    path.write_bytes(note)
    data = read_input(str(path), limits.MAX_TRACE_CHECKPOINT_BYTES, "checkpoint")
    parse_note(data)
    checkpoint, _ = parse_checkpoint(data)
    assert checkpoint.size == largest
    assert largest > NOW
