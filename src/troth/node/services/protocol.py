"""The service protocol's messages (docs/protocols.md, "Services"): the request and response
envelopes, their codec, and the error answers both sides share.

    request  = ["troth.service.request", 2, id, method, arguments]
    response = ["troth.service.response", 2, id, true, result]
             | ["troth.service.response", 2, id, false, {"error": kind, "message": text,
                                                         "reasons": [text, ...]}]

`kind` is "denied" (the access decision refused: `reasons` say who refused whom and why; the
caller raises `Denied`), "no-route" (nothing serves that address: `RoutingError`), "busy" (the
node runs as many requests as it may, or the request's next hop dropped it, `Congested`: it did
not run; `Busy`, send it again later) or "failed" (the service refused or failed the request:
`RemoteError`; a `Busy` its handler raised too, for the request ran: review 28a, busy 1).

The request `id` is an unsigned 64-bit integer, unique among the requests in flight through
one reply worker (troth.node.services.calls). Requests and responses are at most
`limits.MAX_SERVICE_MESSAGE` bytes: both sides decode with that limit, and a service whose
answer would be larger answers an error instead (troth.node.services.host).
"""

from __future__ import annotations

from typing import Any, Final

from troth import limits
from troth.encoding import cbor
from troth.errors import (
    Busy,
    DecodeError,
    Denied,
    RemoteError,
    RoutingError,
    TrothError,
    cut_text,
    one_line_text,
)

__all__ = [
    "BUSY",
    "DENIED",
    "FAILED",
    "LOG_LINES_PER_MINUTE",
    "MAX_ERROR_REASONS",
    "MAX_ERROR_TEXT",
    "MAX_REQUEST_ID",
    "NO_ROUTE",
    "REQUEST",
    "RESPONSE",
    "VERSION",
    "check_message",
    "decode_envelope",
    "decode_request",
    "decode_response",
    "encode_request",
    "error_response",
    "failure_response",
    "request_id_of",
    "result_of",
]

REQUEST: Final = "troth.service.request"
RESPONSE: Final = "troth.service.response"
VERSION: Final = 2
DENIED: Final = "denied"
NO_ROUTE: Final = "no-route"
FAILED: Final = "failed"
BUSY: Final = "busy"
_ERROR_KINDS: Final = frozenset({DENIED, NO_ROUTE, FAILED, BUSY})
MAX_REQUEST_ID: Final = (1 << 64) - 1
"""Request ids are unsigned 64-bit integers."""
LOG_LINES_PER_MINUTE: Final = 10
"""Lines a minute about what peers send that is dropped (an unreadable request, an answer
to no request in flight): the peer chooses how many, and a node's log is a file on its disk
(docs/protocols.md, "Load limits"; review 23b, logs 1)."""
MAX_ERROR_TEXT: Final = 4096
"""Characters an error answer keeps of its message and of each reason when the whole answer
would be over `limits.MAX_SERVICE_MESSAGE` (text a caller sent may be quoted in them: review
44a, malformed 1-2); with MAX_ERROR_REASONS, a cut answer is under 300 KB."""
MAX_ERROR_REASONS: Final = 16
"""Reasons an error answer keeps when the whole answer would be over the limit."""


def encode_request(request_id: int, method: str, arguments: Any) -> bytes:
    """A request (RemoteError when it is over the service message limit; DecodeError when
    `arguments` are not encodable, or nested deeper or made of more items than the other
    side's `decode_envelope` takes: review 51e, calls 6, it dropped such a request and its
    caller waited out its timeout)."""
    request, within = cbor.encode_counted([REQUEST, VERSION, request_id, method, arguments])
    if len(request) > limits.MAX_SERVICE_MESSAGE:
        raise RemoteError(f"a request over the {limits.MAX_SERVICE_MESSAGE}-byte service limit")
    if not within:  # else the encoding walk counted its depth and items (review 53b)
        check_message(request)
    return request


def check_message(message: bytes) -> None:
    """DecodeError ("cannot encode value: ...") when `decode_envelope` would refuse `message`
    (a request or an answer within the size limit) for its depth or its number of items."""
    try:
        cbor.check_limits(message)
    except DecodeError as exc:
        raise DecodeError(f"cannot encode value: {exc}", exc.problem) from None


def decode_envelope(payload: bytes | bytearray | memoryview, type_tag: str, what: str) -> list[Any]:
    """[type tag, version, id, x, y] decoded within the service limit (DecodeError if not)."""
    value = cbor.expect_array(cbor.decode(payload, max_bytes=limits.MAX_SERVICE_MESSAGE), what, 5)
    cbor.expect_header(value, type_tag, VERSION, what)
    if type(value[2]) is not int or not 0 <= value[2] <= MAX_REQUEST_ID:
        raise DecodeError(f"{what}: the request id is not an unsigned 64-bit integer")
    return value


def decode_request(payload: bytes | bytearray | memoryview) -> tuple[int, str, Any]:
    """(request id, method, arguments) of a request (DecodeError when malformed)."""
    value = decode_envelope(payload, REQUEST, "request")
    return value[2], cbor.expect_text(value[3], "method"), value[4]


def request_id_of(payload: bytes | bytearray | memoryview) -> int | None:
    """The id of a well-formed request, else None (a message that is not one is not answered)."""
    try:
        return decode_request(payload)[0]
    except DecodeError:
        return None


def decode_response(payload: bytes | bytearray | memoryview) -> tuple[int, list[Any]]:
    """(request id, the whole response) of a response (DecodeError when its envelope is
    malformed; `result_of` reads the rest)."""
    value = decode_envelope(payload, RESPONSE, "response")
    return value[2], value


def result_of(response: list[Any]) -> Any:
    """A decoded response's result, or the error it carries raised: `Denied` (with the
    reasons), `RoutingError` (no route) or `RemoteError` (failed, or a malformed response)."""
    try:
        if response[3] is True:
            return response[4]
        if response[3] is not False:
            raise DecodeError("ok is not a boolean")
        kind, message, reasons = _error_fields(response[4])
    except DecodeError as exc:
        raise RemoteError(f"malformed response: {exc}") from None
    # the peer's text, on one line: what this node logs of it is its own line (review 54v,
    # errors 6)
    message, reasons = one_line_text(message), tuple(map(one_line_text, reasons))
    if kind == DENIED:
        raise Denied(reasons)
    if kind == NO_ROUTE:
        raise RoutingError(message)
    if kind == BUSY:
        raise Busy(message)
    raise RemoteError(message)


def _error_fields(error: Any) -> tuple[str, str, tuple[str, ...]]:
    if not isinstance(error, dict) or set(error) != {"error", "message", "reasons"}:
        raise DecodeError("an error answer is a map of error, message, reasons")
    kind = cbor.expect_text(error["error"], "error")
    if kind not in _ERROR_KINDS:
        raise DecodeError(f"unknown error kind {kind!r}")
    reasons = tuple(
        cbor.expect_text(r, "reason") for r in cbor.expect_array(error["reasons"], "reasons")
    )
    return kind, cbor.expect_text(error["message"], "message"), reasons


def error_response(
    kind: str, message: str, reasons: tuple[str, ...] = (), *, request: int
) -> bytes:
    """An error answer of `kind` (DENIED, NO_ROUTE, BUSY or FAILED) to request id `request`,
    within `limits.MAX_SERVICE_MESSAGE`: one that would be over it keeps MAX_ERROR_REASONS
    reasons and MAX_ERROR_TEXT characters of each text (a caller decodes answers within the
    limit: a larger one would be dropped, and its caller told nothing but `Unreachable`;
    review 44a, malformed 1)."""
    error = {"error": kind, "message": message, "reasons": list(reasons)}
    try:
        answer = cbor.encode([RESPONSE, VERSION, request, False, error])
    except DecodeError:  # past the encoder's own bound (65q, 65y): cut as any too large one
        pass
    else:
        if len(answer) <= limits.MAX_SERVICE_MESSAGE:
            return answer
    kept = [cut_text(reason, MAX_ERROR_TEXT) for reason in reasons[:MAX_ERROR_REASONS]]
    if len(reasons) > MAX_ERROR_REASONS:
        kept.append(f"(and {len(reasons) - MAX_ERROR_REASONS} more reasons)")
    error = {"error": kind, "message": cut_text(message, MAX_ERROR_TEXT), "reasons": kept}
    return cbor.encode([RESPONSE, VERSION, request, False, error])


def failure_response(exc: TrothError, request: int) -> bytes:
    """The error answer to request `request` that `exc` makes: DENIED (with its reasons),
    BUSY, else FAILED."""
    if isinstance(exc, Denied):
        return error_response(DENIED, str(exc), exc.reasons, request=request)
    if isinstance(exc, Busy):
        return error_response(BUSY, str(exc), request=request)
    if isinstance(exc, RemoteError):  # already a remote's answer: not prefixed again
        return error_response(FAILED, str(exc), request=request)
    return error_response(FAILED, f"{type(exc).__name__}: {exc}", request=request)
