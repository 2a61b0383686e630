"""Review 56m, handlers 1: review 56c (api 3) refused, when a method is declared, every handler
that `inspect` does not call a coroutine function: a sync handler, whose answer was awaited,
failed every request. But a handler is typed `Callable[[Request], Awaitable[Any]]`
(`troth._api.network.Handler`), and callables that return an awaitable without being coroutine
functions pass `mypy --strict` and were answered before 56c: a lambda closing over the handler's
state (`lambda request: ask(request, db)`), a decorator's plain wrapper (`functools.wraps`), a
`functools.partial` of an object whose `__call__` is async. Each was refused as "an async
function of a Request".

Was a strict xfail until a method takes any callable and awaits what it answers when that is
awaitable (a sync handler's answer is the answer: nothing fails any more).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import troth
from tests.support.public_api import acme_and_agents


async def _ask(request: troth.Request, suffix: str) -> str:
    return f"{request.arguments}{suffix}"


class _Desk:
    async def __call__(self, request: troth.Request, suffix: str = "") -> str:
        return await _ask(request, suffix)


def _logged(
    handler: Callable[[troth.Request], Awaitable[Any]],
) -> Callable[[troth.Request], Awaitable[Any]]:
    @functools.wraps(handler)
    def wrapper(request: troth.Request) -> Awaitable[Any]:
        return handler(request)  # a plain wrapper: what it returns is the coroutine

    return wrapper


async def _direct(request: troth.Request) -> str:
    return await _ask(request, "!")


def _sync(request: troth.Request) -> str:
    return f"{request.arguments}?"


HANDLERS: dict[str, Callable[..., Any]] = {
    "lambda": lambda request: _ask(request, "!"),
    "partial-of-async-callable": functools.partial(_Desk(), suffix="!"),
    "wraps": _logged(_direct),
}


def _answer(handler: Callable[..., Any]) -> object:
    service = troth.Service("desk")
    service.method("ask", allow=troth.AnyAuthenticated())(handler)

    async def call(agents: troth.Node) -> object:
        with troth.Node.open("desk") as desk:
            async with desk.serve(listen=("127.0.0.1", 0), services=[service]) as running:
                route, peer = running.address, running.identifier
                async with agents.connect(route, expect=peer) as channel:
                    return await channel.call("desk", "ask", "hi")

    with acme_and_agents() as scene:
        return asyncio.run(call(scene.agents))


@pytest.mark.parametrize("kind", list(HANDLERS))
def test_a_callable_that_returns_an_awaitable_is_a_handler(kind: str) -> None:
    assert _answer(HANDLERS[kind]) == "hi!"


def test_a_sync_handlers_answer_is_the_answer() -> None:
    """The handler 56c refused (its answer was awaited, every request failed): answered."""
    assert _answer(_sync) == "hi?"
