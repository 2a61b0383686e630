"""Review 58f (gates, MCP): attacks that were refuted, pinned.

1. A cancellation naming a request id the agent reused reaches the call sent last under it
   (the MCP SDK keeps one call per id: the last): that call is recorded unanswered after its
   allowed record, the other runs, is answered and stays recorded allowed only. Reusing an id
   cannot leave a call that never got its answer recorded as only allowed.
2. A session the gate ends because its client takes no answers (review 58f, mcp 1) while a
   call of it waits at the upstream: the call is recorded unanswered, as any call whose
   session ends before its answer (review 47m).
"""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types

from tests.test_review47m_mcp_cancel import Blocking, outcomes
from tests.test_review55s_mcp import call, raw, raw_session
from tests.test_review58f_mcp import PINGS, offer, pinged, served
from troth.gates import ListRecorder


def test_a_cancel_of_a_reused_id_ends_the_last_call_of_it_recorded_unanswered() -> None:
    recorder, upstream = ListRecorder(), Blocking()
    answers: list[Any] = []

    async def main() -> None:
        async with raw_session(upstream, recorder) as (send, out):
            await send.send(call(5, "lookup_order", {"order_id": "first"}))
            await upstream.started.wait()
            await send.send(call(5, "lookup_order", {"order_id": "second"}))
            with anyio.fail_after(10):  # both allowed and at the upstream
                while len(recorder.records) < 2:
                    await anyio.sleep(0.01)
            cancel = {"requestId": 5, "reason": "agent"}
            await send.send(
                raw({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": cancel})
            )
            with anyio.fail_after(10):
                while len(recorder.records) < 3:
                    await anyio.sleep(0.01)
            upstream.release.set()
            with anyio.fail_after(10):
                answers.append((await out.receive()).message)
            with anyio.move_on_after(0.2):  # the cancelled call is not answered (MCP)
                answers.append((await out.receive()).message)

    anyio.run(main)
    assert outcomes(recorder) == [
        ("lookup_order", "allowed"),
        ("lookup_order", "allowed"),
        ("lookup_order", "unanswered"),
    ]
    arguments = [record.request.arguments for record in recorder.records]  # type: ignore[union-attr]
    assert arguments == [{"order_id": "first"}, {"order_id": "second"}, {"order_id": "second"}]
    assert len(answers) == 1
    assert isinstance(answers[0], types.JSONRPCResponse)
    assert answers[0].id == 5
    assert answers[0].result["content"][0]["text"] == "order first"
    assert upstream.answered == 1


def test_a_session_ended_for_its_answers_records_its_call_in_flight_unanswered() -> None:
    recorder, upstream = ListRecorder(), Blocking()
    ended: list[bool] = []

    async def main() -> None:
        release = anyio.Event()

        async def way_back(frame: bytes) -> bool:  # the peer reads nothing
            await release.wait()
            return True

        async with served(way_back, upstream, recorder, release) as (inbound, ending):
            assert offer(inbound, call(1, "lookup_order", {"order_id": "o1"}))
            with anyio.fail_after(10):
                await upstream.started.wait()
            taken = await pinged(inbound, PINGS)
            assert len(taken) < PINGS  # refused: the session ended
            release.set()
            with anyio.fail_after(10):
                while not ending:
                    await anyio.sleep(0.01)
            ended.extend(ending)

    anyio.run(main)
    assert ended == [True]
    assert outcomes(recorder) == [("lookup_order", "allowed"), ("lookup_order", "unanswered")]
    assert upstream.answered == 0
