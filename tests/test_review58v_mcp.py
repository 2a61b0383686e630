"""Review 58v, mcp: adversarial review of review 58t's bounds on a published MCP server's
session (the gate's MAX_MCP_RESULT, the session's `_Backlog` of MAX_MCP_SESSION_BACKLOG bytes).

1. An honest client whose way back is slow and that has a few more calls in flight than
   MAX_MCP_CALLS_PER_SESSION (which the gate accepts: it holds MAX_MCP_QUEUE more, waiting)
   loses its session when their results are large: a call's place at the upstream is given
   back as the upstream answers, not as its answer leaves the backlog, so the answers waiting
   are bounded by the backlog's bytes only, not by the calls at the upstream at once that
   MAX_MCP_SESSION_BACKLOG leaves room for.
2. A client's long request id takes a result under MAX_MCP_RESULT over MAX_MCP_FRAME in its
   response: the client gets the channel's "message is over the limit" error in its place
   while the trace records the call allowed only (served), never unanswered.
"""

from __future__ import annotations

from typing import Any

from tests.test_review47m_mcp_cancel import outcomes
from tests.test_review58t_mcp import SERVED_EMPTY, answering, lookup, room_for, slow_client
from troth import limits

FULL = limits.MAX_MCP_RESULT - SERVED_EMPTY
"""Characters of a text block making a result of exactly MAX_MCP_RESULT bytes."""


def test_a_few_more_calls_than_run_at_once_do_not_end_a_slow_honest_session() -> None:
    """mcp 1 (fixed by review 59a, mcp 1): the calls past the answers the backlog has room for
    wait in the gate, undecided, until the client takes answers; then each is decided, served
    and recorded allowed, once."""
    calls = limits.MAX_MCP_CALLS_PER_SESSION + 2
    seen = slow_client(answering(FULL), calls, answered=room_for(FULL))
    assert seen.answered == room_for(FULL) == limits.MAX_MCP_CALLS_PER_SESSION
    assert seen.ended == []
    assert sorted(seen.answers()) == list(range(1, calls + 1))
    assert outcomes(seen.recorder) == [("lookup_order", "allowed")] * calls


LONG_ID = "i" * 2 * (limits.MAX_MCP_FRAME - limits.MAX_MCP_RESULT)
"""Most of an id: twice the room MAX_MCP_RESULT leaves in a frame for its id."""


def _long_id(ident: int) -> dict[str, Any]:
    return {**lookup(ident), "id": f"{ident}{LONG_ID}"}


def test_a_result_not_served_for_its_long_id_is_recorded_unanswered() -> None:
    """mcp 2: before, the client got the channel's -32603 "the message is over the
    1046528-byte limit" and the trace said allowed only."""
    seen = slow_client(answering(FULL), 1, request=_long_id)
    (answer,) = seen.answers().values()
    assert answer["error"]["message"].startswith("troth: the upstream's answer is over the")
    assert outcomes(seen.recorder) == [("lookup_order", "allowed"), ("lookup_order", "unanswered")]


def test_a_result_filling_the_frame_left_by_a_long_id_is_served_whole() -> None:
    """The narrowed limit is exact: a result filling what the long id leaves of a frame goes
    out whole in its frame, recorded allowed only."""
    ident = len(f'"1{LONG_ID}"')
    size = limits.MAX_MCP_FRAME - 73 - ident - SERVED_EMPTY
    seen = slow_client(answering(size), 1, request=_long_id)
    (answer,) = seen.answers().values()
    assert len(answer["result"]["content"][0]["text"]) == size
    assert outcomes(seen.recorder) == [("lookup_order", "allowed")]
