"""Review 54d, JSON inputs: hostile JSON a file or an upstream controls.

1. A trace log's stored disclosure (a crafted or damaged log file: the `disclosures` column)
   was read back for an export (`export_jsonl`, `prove`, `troth trace export` and `prove`, the
   trace service's `prove`) with a bare `json.loads`: a value nested 100,000 deep escaped as a
   RecursionError, an integer of 5,000 digits as Python's ValueError, and `NaN`, a duplicated
   member name or a lone surrogate were written into the export line as they loaded (a line no
   verifier reads, or one disclosing what the log does not hold). Each is now read as the
   export's verifier reads it back (`exported_value`: I-JSON, `load_json`, no deeper than it
   may be once nested in the line) and refused as TraceError MALFORMED, located at its
   record, as the log's other damage is (review 28b, export 1).
2. An upstream MCP server that wrote bytes that are not UTF-8 on its stdout made the MCP SDK's
   reader raise UnicodeDecodeError in its task groups: `troth mcp gate` failed with the
   exception group (a traceback, exit 1), and `troth mcp serve` answered it, naming neither the
   upstream nor why, where an upstream that exits or speaks no MCP is an OSError naming it
   (review 30c, mcp 3 and 4). `upstream_error` now reads it as one too.
3. The MCP SDK's reader of an upstream's stdout joined every chunk it read (64 KiB at most) to
   the line so far and split the whole again, and held a line of any length: one 64 MiB line
   (a tools/call answered with a file or a page) cost ~80 s of the event loop, every service
   of a node publishing the upstream stalled meanwhile (16 MiB: 8.1 s; troth's reader, 0.6 s
   end to end). `troth.integrations.mcp.upstream` reads each chunk once and drops a line past
   MAX_MCP_UPSTREAM_LINE as it comes (nothing timed here: the bound and the drop are tested).
4. A JWT's JOSE header (read before its signature) holding NaN or Infinity, which are not JSON,
   was read by Python's reader as a number: the token was refused as signed by an unknown key.
   It is now malformed (JWT_MALFORMED), as any header that is not JSON is.
5. `troth policy test --args` of bytes that are not UTF-8 failed encoding Python's surrogate
   escapes of them, with the codec's message naming no option; they are now read as the bytes
   they are (as `--context` reads them), and `load_json` refuses them naming `--args`.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import anyio
import pytest

from tests.support.cli import run, run_json
from tests.support.traces import NOW, Held, db, open_log, recorder, tool_call
from troth.cli.common import home
from troth.clock import FixedClock
from troth.errors import SecretError, SecretFailure, TraceError, TraceFailure
from troth.integrations.mcp import local
from troth.integrations.mcp.gate import upstream_error
from troth.node import DEFAULT_NODE
from troth.secrets.jwt import Jwks, validate_token
from troth.secrets.lease import b64url
from troth.trace import TraceLog
from troth.trace.export import export_jsonl, prove
from troth.trace.record import Disclosure, encode_disclosures

HOSTILE = {
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "digits": b"9" * 5_000,
    "nan": b"NaN",
    "duplicate": b'{"a":1,"a":2}',
    "surrogate": b'"\\ud800"',
    "deeper in the line": b"[" * 30 + b"]" * 30,
    "two values": b"1],[2",
}


def _crafted(path: Path, value: bytes) -> tuple[TraceLog, str]:
    """A log of two records whose first's stored disclosure `args` now holds `value`."""
    clock = FixedClock(NOW)
    log = open_log(path, clock)
    writer = recorder(log, Held(), clock)
    for _ in range(2):
        writer.record(tool_call())
    log.checkpoint()
    conn = db(log)
    record_id = str(conn.execute("SELECT record_id FROM leaves WHERE idx = 0").fetchone()[0])
    held = log.disclosures(record_id)
    held["args"] = Disclosure(held["args"].salt, value)
    conn.execute(
        "UPDATE leaves SET disclosures = ? WHERE record_id = ?",
        (encode_disclosures(held), record_id),
    )
    conn.close()
    return log, record_id


@pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_stored_disclosure_that_is_not_i_json_is_a_typed_export_error(
    tmp_path: Path, value: bytes
) -> None:
    """Json 1."""
    log, record_id = _crafted(tmp_path / "trace.db", value)
    for export in (lambda: export_jsonl(log, io.StringIO()), lambda: prove(log, record_id)):
        with pytest.raises(TraceError) as caught:
            export()
        assert caught.value.reason is TraceFailure.MALFORMED
        assert (caught.value.index, caught.value.record) == (0, record_id)
        assert "stored disclosure args" in str(caught.value)


def test_a_stored_disclosure_in_i_json_is_exported_as_before(tmp_path: Path) -> None:
    """Json 1: what a log holds (canonical JSON) is exported unchanged."""
    log, record_id = _crafted(tmp_path / "trace.db", b'{"amount":-0.5,"to":"\xc3\xa9"}')
    bundle = prove(log, record_id)
    assert bundle["disclosures"]["args"]["value"] == {"amount": -0.5, "to": "é"}


def test_upstream_error_names_an_upstream_that_wrote_bytes_not_utf_8() -> None:
    """Json 2: the SDK's reader's UnicodeDecodeError, alone in its task groups."""
    bad = UnicodeDecodeError("utf-8", b"\xff\n", 0, 1, "invalid start byte")
    group = ExceptionGroup("outer", [ExceptionGroup("inner", [bad])])
    failed = upstream_error(group, "server --flag")
    assert isinstance(failed, OSError)
    assert str(failed) == (
        "the upstream MCP server server --flag failed: it wrote bytes that are not UTF-8 "
        "(invalid start byte at byte 0 of a line)"
    )


def test_the_local_gate_of_an_upstream_writing_bytes_not_utf_8_is_a_typed_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Json 2, through `serve_local_gate` (`troth mcp gate`)."""
    run("identity", "create", "someone")
    monkeypatch.setattr(local, "START_TIMEOUT", 30)  # the bytes come at once: never waited
    upstream = [
        sys.executable,
        "-c",
        "import sys; sys.stdout.buffer.write(b'\\xff\\n'); sys.stdout.flush(); "
        "sys.stdin.buffer.read()",  # alive until the gate closes its stdin (_writes)
    ]
    with pytest.raises(OSError, match=r"failed: it wrote bytes that are not UTF-8"):
        anyio.run(local.serve_local_gate, home(), DEFAULT_NODE, "someone", upstream)


# -- json 3 ---------------------------------------------------------------------------------------

_NOTICE = b'{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":1}}'


def _writes(*pieces: str) -> list[str]:
    """A Python command writing the bytes each expression of `pieces` makes on its stdout, one
    write each, then waiting until its stdin closes: alive as long as the session, and gone as
    the session's end closes its stdin, as an upstream that minds its stdin (MCP's stdio
    shutdown), not after the SDK's 2 s grace and a kill (a sleep before, 72f ci)."""
    code = "import sys\n"
    for piece in pieces:
        code += f"sys.stdout.buffer.write({piece}); sys.stdout.flush()\n"
    return [sys.executable, "-c", code + "sys.stdin.buffer.read()\n"]


def test_an_upstream_line_over_the_limit_is_dropped_and_the_next_read() -> None:
    """Json 3: a line past the limit (written in many pieces) is dropped as it comes, the
    session told; the line after it is read as before."""
    from mcp import StdioServerParameters
    from mcp.shared.message import SessionMessage

    from troth.integrations.mcp.upstream import LineTooLong, upstream_stdio

    command = _writes(
        """b'{"jsonrpc":"2.0","id":1,"result":{"x":"' + b"a" * 1000""",
        """b"a" * 300_000 + b'"}}\\n'""",
        repr(_NOTICE + b"\n" + _NOTICE[:10]),
    )
    parameters = StdioServerParameters(command=command[0], args=command[1:])

    async def main() -> list[SessionMessage | Exception]:
        async with upstream_stdio(parameters, max_line=100_000) as (read, _write):
            return [await read.receive(), await read.receive()]

    first, second = anyio.run(main)
    assert isinstance(first, LineTooLong)
    assert str(first) == "a line of the upstream over 100000 bytes, dropped"
    assert isinstance(second, SessionMessage)
    assert second.message.model_dump(exclude_unset=True)["method"] == "notifications/message"


def test_the_line_reader_keeps_no_more_than_the_limit() -> None:
    """Json 3: what `_Lines` holds of a line never passes the limit, however it comes."""
    from troth.integrations.mcp.upstream import LineTooLong, _Lines

    lines = _Lines(10)
    assert lines.feed(b"12345") == []
    assert lines.feed(b"67890") == []
    found = lines.feed(b"x" * 1000)
    assert len(found) == 1
    assert isinstance(found[0], LineTooLong)
    assert (lines.parts, lines.size) == ([], 0)
    assert lines.feed(b"y" * 1000 + b"\nab\n\ncd") == [b"ab", b""]
    assert lines.feed(b"ef\n") == [b"cdef"]
    assert lines.feed(b"0123456789\n") == [b"0123456789"]


# -- json 4 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_a_jwt_header_holding_nan_is_a_malformed_token(constant: bytes) -> None:
    """Json 4: Python's reader took `NaN` (not JSON, RFC 8259 §6) in a token's JOSE header,
    read before its signature: the token was refused as signed by an unknown key."""
    header = b64url(b'{"alg":' + constant + b',"kid":"k"}')
    token = f"{header}.{b64url(b'{}')}.{b64url(b'x' * 64)}"
    with pytest.raises(SecretError) as caught:
        validate_token(token, Jwks(), audience="a", now=NOW)
    assert caught.value.reason is SecretFailure.JWT_MALFORMED


# -- json 5 ---------------------------------------------------------------------------------------


def test_policy_test_args_of_bytes_not_utf_8_name_the_option(tmp_path: Path) -> None:
    """Json 5: `troth policy test --args` given bytes that are not UTF-8 (argv's bytes, as
    Python hands them on: `\\udcff` for the byte 0xff) failed in `str.encode` with Python's
    codec message, naming no option; `--context` of `troth credential verify` reads them as
    the bytes they are, which `load_json` refuses as not UTF-8."""
    (tmp_path / "any").write_bytes(b"x")
    found = run_json(
        "policy",
        "test",
        *("--bundle", str(tmp_path / "any"), "--chain", str(tmp_path / "any")),
        *("--tool", "refund", "--args", '{"a":"\udcff"}', "--trust-bundle-authority"),
        code=2,  # a bad option value (json 6)
    )
    assert "--args" in found["message"]
    assert "not UTF-8 (invalid start byte at byte 6)" in found["message"]


@pytest.mark.parametrize("args", ["[1]", "{", '{"a":"\udcff"}'])
def test_policy_test_args_not_a_json_object_is_a_usage_error(tmp_path: Path, args: str) -> None:
    """Json 6: `troth policy test` exits 1 for a deny; a malformed `--args` exited 1 too, so a
    script read a typo as the policy's verdict. A bad option value is a usage error (2), as a
    malformed `--context` of `troth credential verify` is, and the message names `--args`."""
    (tmp_path / "any").write_bytes(b"x")
    found = run_json(
        "policy",
        "test",
        *("--bundle", str(tmp_path / "any"), "--chain", str(tmp_path / "any")),
        *("--tool", "refund", "--args", args, "--trust-bundle-authority"),
        code=2,
    )
    assert "--args" in found["message"]
