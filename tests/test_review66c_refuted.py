"""Review 66c, refuted: attacks on the end of `troth mcp gate` that did not work.

- The agent closes its stdin while a call is under way at an upstream that will not answer
  (and started a child in its process group): the gate still records the call (allowed, then
  unanswered), ends the upstream and its child, and exits 0 (`agent_stdio`, `McpGate.close`,
  the SDK's shutdown with review 65v's tree kill).
"""

from __future__ import annotations

from pathlib import Path

from tests.test_review66c_mcp import end_the_gate


def test_the_agent_closing_stdin_mid_call_records_it_and_ends_the_upstream(
    troth_home: Path, tmp_path: Path
) -> None:
    assert end_the_gate(troth_home, tmp_path, "eof") == 0
