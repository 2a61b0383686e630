"""Review 51e, calls 6: `Channel.call` sent arguments the other node's decoder refuses (nested
deeper than `limits.MAX_CBOR_DEPTH`: a list 40 deep encodes, and is within the size limit),
and the other node dropped the request unanswered: the caller waited out its timeout and got
`Unreachable` "no answer", as if the network were down. A handler's answer nested as deep
was dropped the same way at the caller. What one side may send, the other accepts: a request
past the decoder's depth or item limits is now refused when it is made (`DecodeError`, as
arguments that cannot be encoded are), and such an answer is a `RemoteError` to the caller."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import troth
from troth import limits
from troth.encoding import cbor
from troth.node.services.protocol import encode_request

DEEP: Any = 1
for _n in range(limits.MAX_CBOR_DEPTH + 4):
    DEEP = [DEEP]


def test_a_request_the_other_side_would_refuse_is_refused_when_made() -> None:
    with pytest.raises(troth.DecodeError, match="nested deeper"):
        encode_request(1, "echo", DEEP)
    with pytest.raises(troth.DecodeError):
        encode_request(1, "echo", list(range(limits.MAX_CBOR_ITEMS)))
    request = encode_request(1, "echo", [[["deep enough"]]])
    assert cbor.decode(request)[4] == [[["deep enough"]]]


def _scene(arguments: Any, method: str) -> Any:
    desk = troth.Service("desk")

    @desk.method("deep", allow=troth.AnyAuthenticated())
    async def deep(request: troth.Request) -> Any:
        return DEEP

    async def run() -> Any:
        with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
            service, name = method.split(".")
            async with hub.serve(listen=("127.0.0.1", 0), services=[desk]) as running:
                at, peer = running.address, running.identifier
                async with agents.connect(at, expect=peer) as channel:
                    return await channel.call(service, name, arguments, timeout=5)

    return asyncio.run(run())


def test_deep_arguments_are_refused_by_the_caller_not_lost() -> None:
    with pytest.raises(troth.DecodeError, match="nested deeper"):
        _scene(DEEP, "echo.echo")


def test_a_deep_answer_is_a_remote_error_not_lost() -> None:
    with pytest.raises(troth.RemoteError, match="nested deeper"):
        _scene(None, "desk.deep")


@pytest.mark.parametrize("depth", [limits.MAX_CBOR_DEPTH - 1, limits.MAX_CBOR_DEPTH])
@pytest.mark.parametrize("text", ["", "é" * 40, "\x80"])
def test_the_senders_check_refuses_what_decode_refuses_and_only_that(depth: int, text: str) -> None:
    """At the edge of the depth, with text whose UTF-8 holds bytes an array's header may
    start with (the check's shortcut counts them): the check and `decode` agree."""
    value: Any = [text, b"\x80\xbf"]
    for _n in range(depth - 1):
        value = [value]
    data = cbor.encode(value)
    try:
        cbor.decode(data)
    except troth.DecodeError:
        with pytest.raises(troth.DecodeError):
            cbor.check_limits(data)
    else:
        cbor.check_limits(data)
