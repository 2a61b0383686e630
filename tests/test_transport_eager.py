"""`start_eagerly` (troth.transport.eager): a coroutine run at once inside a callback until it
first waits; what is left of it goes on in a task that behaves as the coroutine's own task
would (results, exceptions, cancellation)."""

from __future__ import annotations

import asyncio

import pytest

from troth.transport.eager import start_eagerly


def test_a_coroutine_that_does_not_wait_runs_to_its_end_at_once() -> None:
    async def main() -> None:
        done: list[str] = []

        async def quick() -> None:
            done.append("ran")

        assert start_eagerly(quick(), asyncio.get_running_loop()) is None
        assert done == ["ran"]  # before any loop iteration

    asyncio.run(main())


def test_its_exception_is_raised_at_once() -> None:
    async def main() -> None:
        async def fails() -> None:
            raise ValueError("bad")

        with pytest.raises(ValueError, match="bad"):
            start_eagerly(fails(), asyncio.get_running_loop())

    asyncio.run(main())


def test_a_coroutine_that_waits_goes_on_in_a_task_with_what_it_awaited() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        first: asyncio.Future[int] = loop.create_future()
        second: asyncio.Future[int] = loop.create_future()
        seen: list[object] = []

        async def waits() -> None:
            seen.append(await first)
            try:
                await second
            except KeyError as exc:
                seen.append(exc.args[0])
            await asyncio.sleep(0)  # a bare yield
            seen.append("end")

        task = start_eagerly(waits(), loop)
        assert task is not None
        assert seen == []
        first.set_result(7)
        await asyncio.sleep(0.01)
        second.set_exception(KeyError("k"))
        await task
        assert seen == [7, "k", "end"]

    asyncio.run(main())


def test_cancelling_the_task_cancels_the_coroutine() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        never: asyncio.Future[None] = loop.create_future()
        seen: list[str] = []

        async def waits() -> None:
            try:
                await never
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

        task = start_eagerly(waits(), loop)
        assert task is not None
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert seen == ["cancelled"]

    asyncio.run(main())
