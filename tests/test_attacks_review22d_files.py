"""Review 22d (files): `troth trace prove` writes its bundle with `bundle_text(lines=True)`
(bf475ac): UTF-8, values compact. Written to stdout (no `--out`: `troth trace prove ID >
proof.json`, the shell's way), the text goes through the reporter's `escape_text`, which turns
DEL and the C1 controls (U+007F-U+009F; `json.dumps(ensure_ascii=False)` leaves them raw in a
string) into `\\x7f`/`\\x85` — not JSON escapes. A tool call whose result holds a NEL (U+0085,
an ordinary character in text from EBCDIC-origin or Windows-1252-misdecoded data) gets a proof
that `troth trace verify --file` cannot parse: the record's offline proof never verifies.

2. with `--json` (how scripts run every troth command) the reporter prints the bundle as
   `json.dumps(indent=2)`: review 22c's traces 2 is back — a tool call whose arguments and
   result are each an array of numbers at the disclosure limit makes a 2.8 MiB bundle, over
   MAX_TRACE_LINE_BYTES, which `verify --file` refuses.

Each test asserts the correct behaviour and was a strict xfail until prove's stdout text is the
bundle itself (a JSON text needs no terminal escaping: escape it as JSON, `\\u0085`, or write
the bundle with `ensure_ascii` for C1/DEL).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import run, run_json
from tests.support.traces import tool_call
from troth import limits
from troth.clock import SystemClock
from troth.node import open_node, troth_home
from troth.trace import TraceRecorder, open_node_log


def test_the_bundle_trace_prove_prints_verifies(tmp_path: Path) -> None:
    """A tool call whose result holds U+0085; `troth trace prove ID > proof.json` then
    `troth trace verify --file proof.json` verifies the record."""
    run("identity", "create", "support")
    clock = SystemClock()
    with open_node("default", home=troth_home()) as node, open_node_log(node, clock=clock) as log:
        agent = TraceRecorder(
            log, lambda now: node.identities.signer("support", now=now), clock=clock
        )
        record = agent.record(tool_call(args={"order": "o1"}, result="line one\x85line two"))
    run("trace", "checkpoint")
    out = tmp_path / "proof.json"
    out.write_bytes(run("trace", "prove", record.record).stdout_bytes)
    report = run_json("trace", "verify", "--file", str(out))
    assert (report["verified"], report["index"]) == (True, 0)


def test_the_bundle_trace_prove_prints_as_json_verifies(tmp_path: Path) -> None:
    """Review 22c's record (arguments and result each 131,071 zeros) proved with `--json`."""
    series = [0] * ((limits.MAX_TRACE_DISCLOSURE_BYTES - 1) // 2)
    run("identity", "create", "support")
    clock = SystemClock()
    with open_node("default", home=troth_home()) as node, open_node_log(node, clock=clock) as log:
        agent = TraceRecorder(
            log, lambda now: node.identities.signer("support", now=now), clock=clock
        )
        record = agent.record(tool_call(args=series, result=series))
    run("trace", "checkpoint")
    out = tmp_path / "proof.json"
    out.write_bytes(run("trace", "prove", record.record, "--json").stdout_bytes)
    report = run_json("trace", "verify", "--file", str(out))
    assert (report["verified"], report["index"]) == (True, 0)
