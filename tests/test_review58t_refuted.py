"""Review 58t, refuted: attacks on the bounds review 58t put on a published MCP server's
session (the gate's MAX_MCP_RESULT, the session's MAX_MCP_SESSION_BACKLOG) that did not work;
each test fails if the defence it names breaks.

1. A result over the limit in structured content only (its text blocks small): the gate
   measures the whole result's JSON, not its text, and refuses it.
2. A result under the limit in characters whose JSON is over it (control characters, written
   \\u0000, six bytes each): refused too.
3. Answers that are not the gate's (pongs echoing a client's long ids) fill no more than the
   backlog: the session ends past MAX_MCP_SESSION_BACKLOG bytes, not 128 answers.
4. A client that takes its answers as they come is never held to the backlog: the bytes it
   took are no longer counted, so it gets far more than MAX_MCP_SESSION_BACKLOG in all.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types

from tests.test_review47m_mcp_cancel import outcomes
from tests.test_review58t_mcp import answering, replying, slow_client
from troth import limits

OVER = f"over the {limits.MAX_MCP_RESULT}-byte limit"


def _refused_once(upstream: Any) -> None:
    seen = slow_client(upstream, 1)
    (answer,) = seen.answers().values()
    assert OVER in answer["error"]["message"]
    assert outcomes(seen.recorder) == [("lookup_order", "allowed"), ("lookup_order", "unanswered")]


def test_a_result_over_the_limit_in_structured_content_is_refused() -> None:
    rows = {"rows": "r" * limits.MAX_MCP_RESULT}
    text: list[types.ContentBlock] = [types.TextContent(type="text", text="see the rows")]
    _refused_once(replying(lambda: types.CallToolResult(content=text, structured_content=rows)))


def test_a_result_whose_escapes_take_it_over_the_limit_is_refused() -> None:
    size = limits.MAX_MCP_RESULT // 3  # a third of the limit in characters, twice it in JSON
    control: list[types.ContentBlock] = [types.TextContent(type="text", text="\x00" * size)]
    _refused_once(replying(lambda: types.CallToolResult(content=control)))


def test_pongs_of_long_ids_hold_no_more_than_the_backlog() -> None:
    pings = 3 * limits.MAX_MCP_SESSION_BACKLOG // limits.MAX_MCP_RESULT  # ~24 of 1/3 MiB
    long_id = "i" * (limits.MAX_MCP_RESULT // 3)

    def ping(ident: int) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": f"{ident}{long_id}", "method": "ping"}

    seen = slow_client(answering(1), pings * 2, request=ping, taken=1)
    assert seen.ended == [True]
    assert seen.held <= limits.MAX_MCP_SESSION_BACKLOG + limits.MAX_MCP_FRAME, seen.held


def test_a_client_that_reads_as_it_goes_gets_more_than_the_backlog() -> None:
    calls = 3 * limits.MAX_MCP_SESSION_BACKLOG // limits.MAX_MCP_RESULT  # ~24 MiB in all
    seen = slow_client(answering(limits.MAX_MCP_RESULT - 1024), calls, slow=False)
    assert seen.ended == []
    assert sorted(seen.answers()) == list(range(1, calls + 1))
    assert all("result" in answer for answer in seen.answers().values())
