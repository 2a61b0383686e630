"""Review 60l, refuted: attacks on this session's performance changes (reviews 60c and 60d)
and the lead's small fixes (review 60z) that found the defence holding.

- gates (60c): the arguments' JSON by the one C encoder made once is the stdlib encoder's text
  for odd values too (-0.0, 1e16, a float or int subclass with its own repr, enum members, an
  OrderedDict, a dict subclass with its own `items`/`__iter__`, a `str` subclass key with its
  own `__str__`/`__hash__`, a value shared twice, nesting near the recursion limit), what it
  refused it refuses (bytes, Decimal, a set, nesting past the limit), and two threads writing
  with it at once each get their own text (it keeps no state between calls: no markers);
- the MCP gate's call slots (60d, `anyio.Semaphore(MAX_MCP_CALLS_PER_SESSION,
  fast_acquire=True)`): a slot given back goes to the call waiting longest, not to one that
  asks again without yielding; a waiter cancelled after the slot was handed to it gives it on;
  never more than MAX_MCP_CALLS_PER_SESSION held;
- the session's room (60d, `_wake` only when a call waits): a waiter cancelled leaves none
  counted, and the next call to wait is still woken by the frame taken that makes its room;
- `inside_nodes` (60z): a target reached through a symlinked directory, by `..`, or by a
  relative path is inside; `Node.open(home=...)` refuses a kept checkpoint under that home;
- `ByteBudgets._full_at` (60f/60i): a remembered refusal lasts one second of `now` only, a
  clock that steps back scans again;
- `read_bounded` (60g): a pipe's short reads are read on up to the limit, one byte more is
  refused, a directory is an OSError naming what was read.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import decimal
import enum
import json
import os
import threading
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import mcp_types as types
import pytest

import troth
from troth import limits
from troth.bounded_read import read_bounded
from troth.gates.engine import _ARGS_ENCODER, _ENCODER, _json_text
from troth.integrations.mcp.room import AnswerRoom
from troth.node.home import inside_nodes
from troth.rates import ByteBudgets


class Color(enum.IntEnum):
    RED = 1


class Shade(enum.Enum):
    DARK = "dark"


class Word(enum.StrEnum):
    A = "a"


class Float(float):
    def __repr__(self) -> str:
        return "7"


class Int(int):
    def __repr__(self) -> str:
        return "7"

    def __str__(self) -> str:
        return "7"


class Items(dict[Any, Any]):
    """A dict whose own `items` and iteration lie (the encoder reads the dict's own)."""

    def items(self) -> Any:
        return [("fake", 1)]

    def __iter__(self) -> Any:
        return iter(["fake"])


class Key(str):
    def __str__(self) -> str:
        return "other"

    def __hash__(self) -> int:
        return 1


def _nested(depth: int) -> dict[str, Any]:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return {"x": value}


SHARED = [1, 2]


@pytest.mark.parametrize(
    "value",
    [
        {"z": -0.0, "big": 1e16, "small": 1e-7, "max": 1.7976931348623157e308},
        {"f": Float(1.5), "i": Int(3), "b": True, "zero": False, "n": 0},
        {"c": Color.RED, "w": Word.A},
        {"o": collections.OrderedDict([("b", 1), ("a", 2)])},
        {"d": Items({"real": 2})},
        {Key("k"): 1, "t": (1, (2,))},
        {"s": SHARED, "again": SHARED},
        {"u": "\u2028\x7f\x1f\ud83d"},
        _nested(200),
    ],
)
def test_odd_values_are_written_as_the_stdlib_encoder_writes_them(value: dict[str, Any]) -> None:
    assert _json_text(value) == _ENCODER.encode(value)
    assert _ARGS_ENCODER is not None  # the one made once, whether or not `_flat` takes it
    assert "".join(_ARGS_ENCODER(value, 0)) == _ENCODER.encode(value)


@pytest.mark.parametrize(
    "value",
    [
        {"b": b"x"},
        {"d": decimal.Decimal("1.5")},
        {"s": {1}},
        {"e": Shade.DARK},
        {"nan": float("-inf")},
        {(1, 2): 1},
        _nested(100_000),
    ],
)
def test_what_the_stdlib_encoder_refuses_is_refused(value: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError, RecursionError)):
        _ENCODER.encode(value)
    with pytest.raises((TypeError, ValueError, RecursionError)):
        _json_text(value)


def test_two_threads_writing_with_the_one_encoder_get_their_own_text() -> None:
    values = [{"who": who, "n": list(range(300)), "d": {"k": [who] * 50}} for who in "ab"]
    wrong: list[str] = []
    start = threading.Barrier(2)

    def run(value: dict[str, Any]) -> None:
        expected = json.dumps(value, separators=(",", ":"))
        assert _ARGS_ENCODER is not None
        start.wait()
        for _ in range(300):  # the shared encoder itself (`_json_text` takes it for flat ones)
            if "".join(_ARGS_ENCODER(value, 0)) != expected:
                wrong.append(value["who"])

    threads = [threading.Thread(target=run, args=(value,)) for value in values]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


async def _taken_slots() -> anyio.Semaphore:
    """The gate's call slots, made as `gate_server` makes them, every one taken."""
    calls = anyio.Semaphore(limits.MAX_MCP_CALLS_PER_SESSION, fast_acquire=True)
    for _ in range(limits.MAX_MCP_CALLS_PER_SESSION):
        await calls.acquire()
    return calls


async def _settle() -> None:
    for _ in range(8):
        await anyio.lowlevel.checkpoint()


def test_a_slot_given_back_goes_to_the_call_waiting_not_to_one_that_asks_again() -> None:
    order: list[str] = []

    async def main() -> None:
        calls = await _taken_slots()

        async def waiter() -> None:
            async with calls:
                order.append("waiter")

        async with anyio.create_task_group() as group:
            group.start_soon(waiter)
            await _settle()
            calls.release()  # then at once, without yielding, asks again: it waits its turn
            await calls.acquire()
            order.append("again")
        assert order == ["waiter", "again"]
        assert calls.value == 0  # the waiter's went to "again"; the others still held

    anyio.run(main)


def test_a_waiter_cancelled_after_its_slot_was_handed_to_it_gives_it_on() -> None:
    held: list[int] = []

    async def main() -> None:
        calls = await _taken_slots()
        got = 0
        tasks: list[asyncio.Task[Any]] = []

        async def waiter() -> None:
            nonlocal got
            tasks.append(asyncio.current_task())  # type: ignore[arg-type]
            with contextlib.suppress(asyncio.CancelledError):
                async with calls:
                    got += 1

        async def second() -> None:
            async with calls:
                held.append(calls.value)

        async with anyio.create_task_group() as group:
            group.start_soon(waiter)
            await _settle()
            group.start_soon(second)
            await _settle()
            calls.release()  # handed to the first waiter...
            tasks[0].cancel()  # ...cancelled before it runs (its future done): the slot goes on
        assert got == 0
        assert held == [0]  # the second got it, none extra
        assert calls.value == 1

    anyio.run(main)


def test_a_cancelled_room_waiter_leaves_the_next_one_woken() -> None:
    frame = 1000
    note = types.JSONRPCNotification(jsonrpc="2.0", method="x")

    async def main() -> None:
        room = AnswerRoom(2 * frame, 8, frame)
        for _ in range(2):
            assert room.queued(note, frame)
        promised: list[int] = []

        async def call(ident: int) -> None:
            async with room.promised(ident):
                promised.append(ident)

        async with anyio.create_task_group() as group:
            with anyio.CancelScope() as gone:
                gone.cancel()
                await call(1)  # cancelled as it waits
            assert room._waiting == 0
            group.start_soon(call, 2)
            await _settle()
            assert promised == []
            room.taken(frame)
            with anyio.fail_after(5):
                while not promised:
                    await anyio.lowlevel.checkpoint()
        assert promised == [2]

    anyio.run(main)


def test_inside_nodes_sees_through_links_dots_and_relative_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes = tmp_path / "home" / "nodes"
    (nodes / "default").mkdir(parents=True)
    (tmp_path / "link").symlink_to(nodes / "default")
    assert inside_nodes(tmp_path / "link" / "vault.key", nodes)
    assert inside_nodes(tmp_path / "x" / ".." / "home" / "nodes" / "default" / "a", nodes)
    assert inside_nodes(nodes, nodes)
    monkeypatch.chdir(nodes / "default")
    assert inside_nodes(Path("vault.key"), nodes)
    assert inside_nodes(Path("kept.note"), Path(os.path.relpath(nodes)))
    assert not inside_nodes(tmp_path / "home" / "kept.note", nodes)


def test_a_node_opened_with_its_own_home_refuses_a_checkpoint_under_it(
    tmp_path: Path, troth_home: Path
) -> None:
    home = tmp_path / "elsewhere"
    (tmp_path / "link").symlink_to(home)
    with troth.Node.open("default", home=home) as node:
        for inside in (
            tmp_path / "link" / "nodes" / "default" / "kept.note",
            home / "nodes" / "other" / "vault.key",
        ):
            with pytest.raises(troth.ArgumentError, match="outside the home's node directories"):
                node.traces.verify(checkpoint=inside)
    assert not (home / "nodes" / "default" / "kept.note").exists()


def test_a_remembered_refusal_lasts_its_second_only() -> None:
    budgets = ByteBudgets(rate=1, burst=5, max_sources=1)
    assert budgets.take("a", 5, now=100)
    assert not budgets.take("b", 1, now=100)  # full, remembered for second 100
    assert not budgets.take("b", 1, now=99)  # stepped back: scanned again, still full
    assert budgets.take("b", 1, now=105)  # "a" refilled: forgotten for the newcomer


def test_a_bounded_read_takes_a_pipe_written_in_pieces_whole_and_refuses_one_byte_more(
    tmp_path: Path,
) -> None:
    """A pipe's reads come back short (one pipe buffer, 64 KiB, at a time): the limit is the
    input's, not the first read's."""
    limit = 200_000
    for size, whole in ((limit, True), (limit + 1, False)):
        read, write = os.pipe()

        def feed(fd: int = write, n: int = size) -> None:
            with open(fd, "wb", buffering=0) as out:
                for start in range(0, n, 10_000):
                    out.write(b"x" * min(10_000, n - start))

        writer = threading.Thread(target=feed)
        writer.start()
        with open(read, "rb") as stream:
            if whole:
                assert read_bounded("-", limit, "input", stream=stream) == b"x" * size
            else:
                with pytest.raises(OSError, match=f"larger than {limit} bytes"):
                    read_bounded("-", limit, "input", stream=stream)
                stream.read()  # let the writer finish
        writer.join()
    with pytest.raises(OSError, match="cannot read checkpoint"):
        read_bounded(tmp_path, limit, "checkpoint")  # a directory
