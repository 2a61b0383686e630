"""Review 67z of 67t's MCP signal changes (`agent_stdio`, `on_sigterm`): attacks that broke a
promise.

mcp 1: an answer written in part. The agent's writer took one `write` of the answer's line for
all of it: when the stream the gate serves is the program's own unbuffered one (a raw stream,
`python -u`'s or a program's `buffering=0` one, which the SDK serves in place when it cannot
claim fd 1), a write may take only part of its bytes (the `RawIOBase.write` contract: a write
to a pipe interrupted by a signal after some bytes went, or the agent's end closing midway), and
the rest was dropped: the agent got the line cut, the next answer run on after it (neither
JSON-RPC), and the request was counted answered, the drain no longer waiting for it. A write
is now repeated until the whole line is written, so the agent's end closing midway is an EPIPE
(its going away) and the half-sent answer is not counted answered.
"""

from __future__ import annotations

import io
import os
import sys
import threading

import anyio
import mcp_types as types
import pytest
from mcp.shared.message import SessionMessage

from troth.integrations.mcp.agent_stdio import agent_stdio


class _Trickle(io.RawIOBase):
    """A raw stream that takes at most 100 bytes a write (as a raw pipe may)."""

    def __init__(self) -> None:
        self.taken = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        part = bytes(data[:100])
        self.taken += part
        return len(part)


def _answer(request_id: int, size: int) -> SessionMessage:
    result = {"content": [{"type": "text", "text": "x" * size}]}
    return SessionMessage(types.JSONRPCResponse(jsonrpc="2.0", id=request_id, result=result))


def test_an_answer_a_raw_stream_takes_in_parts_is_written_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    in_read, in_write = os.pipe()
    sink = _Trickle()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(os.fdopen(in_read, "rb", buffering=0)))
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(sink))  # type: ignore[type-var]
    os.write(in_write, b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n')
    os.write(in_write, b'{"jsonrpc":"2.0","id":2,"method":"ping"}\n')
    try:

        async def main() -> None:
            with anyio.fail_after(5):
                async with agent_stdio() as (read, write, _), read, write:
                    for _ in range(2):
                        await read.receive()
                    await write.send(_answer(1, 1000))
                    await write.send(_answer(2, 10))

        anyio.run(main)
    finally:
        os.close(in_write)
    lines = bytes(sink.taken).split(b"\n")
    assert lines[-1] == b""
    answers = [types.jsonrpc_message_adapter.validate_json(line) for line in lines[:-1]]
    assert [getattr(answer, "id", None) for answer in answers] == [1, 2]


def _request(request_id: int) -> bytes:
    return b'{"jsonrpc":"2.0","id":%d,"method":"ping"}\n' % request_id


def test_a_partial_write_then_epipe_is_the_agents_going_away(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    in_read, in_write = os.pipe()
    out_read, out_write = os.pipe()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(os.fdopen(in_read, "rb", buffering=0)))
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(os.fdopen(out_write, "wb", buffering=0)))
    os.write(in_write, _request(1) + _request(2))
    taken: list[bytes] = []

    def agent() -> None:  # reads a part of the first answer, then goes away
        taken.append(os.read(out_read, 4096))
        os.close(out_read)

    pending: list[set[object]] = []
    try:

        async def main() -> None:
            with anyio.fail_after(5):
                async with agent_stdio() as (read, write, state):
                    async with read:
                        for _ in range(2):
                            await read.receive()
                    reader = threading.Thread(target=agent)
                    reader.start()
                    try:
                        await write.send(_answer(1, 1 << 20))  # more than the pipe holds
                    finally:
                        await anyio.to_thread.run_sync(reader.join)
                    await write.send(_answer(2, 10))  # after: discarded
                    while not state.gone:
                        await anyio.sleep(0.01)
                    pending.append(set(state.pending))
                    await write.aclose()

        anyio.run(main)
    finally:
        os.close(in_write)
    assert taken
    assert taken[0].startswith(b'{"jsonrpc":"2.0","id":1')
    assert pending == [{1, 2}]  # the half-sent answer not counted answered
