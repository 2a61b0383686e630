"""A node process recording to its trace service until it is killed:
`python -m tests.support.outbox_worker NODE FIRST COUNT` ($TROTH_HOME names the home).

It runs node NODE (a NodeRuntime over TCP, as `troth node start` does; node.json names the
trace service) and records COUNT records as the node's identity through
`runtime.traces.recorder()`, the n-th with arguments {"n": FIRST + n}. After each `record()`
returns it prints `n record-id` (flushed): a printed record is one the node acknowledged.
Then it prints `done` and waits to be killed (the test SIGKILLs it at a moment of its
choosing, usually earlier)."""

from __future__ import annotations

import asyncio
import sys

from troth.node import open_node
from troth.node.runtime import NodeRuntime
from troth.trace import Kind, RecordContent, ToolCall


async def main(name: str, first: int, count: int) -> None:
    with open_node(name) as node:
        runtime = NodeRuntime(node)
        await runtime.start()
        recorder = runtime.traces.recorder()
        for n in range(first, first + count):
            content = RecordContent(
                Kind.TOOL_INVOCATION, tool=ToolCall("refund"), values={"args": {"n": n}}
            )
            queued = recorder.record(content)
            print(n, queued.record, flush=True)
            if n % 8 == 0:
                await asyncio.sleep(0.01)  # the pump sends meanwhile
        print("done", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
