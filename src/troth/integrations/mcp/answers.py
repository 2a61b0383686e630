"""What an MCP gate answers its agent in its own words: its errors, its denials, and an allowed
call's result in its envelope (docs/policy.md, "MCP gates" and "What the gate serves of a
tool"; troth.integrations.mcp.gate).

- `McpGateError`: every failure the gate answers is its own JSON-RPC internal error with a text
  of its own, no data: an upstream's failed listing or call, the decision point failing (its
  recorder's storage, the caller's credential source). What failed is logged, escaped and cut
  (`upstream_said`), never sent: the MCP SDK answers any other exception a handler raises with
  code 0 and the exception's text, which quoted the upstream (an answer its client refused) or
  the gate's internals (a path, SQL) (review 54j, mcp 1). An upstream's JSON-RPC error on a
  call keeps its message only (review 54g, mcp 3).
- `served_result`: an allowed call's content, structured content and isError, in the gate's
  envelope (review 54g, mcp 2), each content block without its `_meta` (nor a resource
  link its icons): the response's words, not the tool's data (review 54j, mcp 3). Its
  annotations (audience, priority, lastModified) pass: how the tool means its data to be used,
  which the gate passes as it passes the data.
- `RESULT_LIMIT`: the most bytes of a result the connection's way to its client carries (a
  channel's session: MAX_MCP_RESULT, what a frame holds); `over_limit` tells a served result
  over it, which the gate refuses as the upstream answers it, before it waits anywhere (review
  58t, mcp 1: one over a frame waited whole behind a slow client, never to be sent);
  `result_limit` narrows it for a request whose id takes more of the frame than it leaves room
  for (review 58v, mcp 2: a long id took a result under it over a frame, and the client got the
  channel's error while the call was recorded served).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar, Token
from typing import Any, Final

import mcp_types as types
import pydantic_core
from mcp.shared.exceptions import MCPError

from troth import limits
from troth.errors import cut_text

__all__ = [
    "DENIED_PREFIX",
    "RESULT_LIMIT",
    "McpGateError",
    "denied",
    "failed",
    "gate_failed",
    "over_limit",
    "result_limit",
    "served_result",
    "stamp_bytes",
    "unlisted",
    "upstream_said",
]

log = logging.getLogger("troth.mcp")
DENIED_PREFIX: Final = "troth: "
"""How the gate's own texts start: a denial's (then the decision's fixed reason), and the
errors it answers for a failure (review 54g, mcp 1 and 3; review 54j, mcp 1)."""
RESULT_LIMIT: ContextVar[int | None] = ContextVar("troth_mcp_result_limit", default=None)
"""The most bytes of a tools/call result (`over_limit`) the connection being served carries to
its client: set by the session's transport (`run_session`: MAX_MCP_RESULT) around the MCP
server it runs, whose handlers the SDK starts in its context; None (stdio: `troth mcp gate`)
any."""
_AROUND: Final = 73
"""Bytes of a frame around a result besides the request's id: the frame's header (40) and the
JSON-RPC response's (33: `{"jsonrpc":"2.0","id":` and `,"result":` and `}`)."""


def result_limit(
    request_id: types.RequestId | None, stamp: int = 0
) -> AbstractContextManager[None]:
    """`RESULT_LIMIT` narrowed, within the block, for the result answering `request_id`: when
    its id, and the `stamp` bytes its response carries besides (`stamp_bytes`: a 2026-07-28
    answer's serverInfo), take more of a frame than MAX_MCP_RESULT leaves room for, what is
    left of the frame (review 58v, mcp 2: a client's long id took a result under the limit over
    a frame, and it got the channel's error in its place while the call was recorded served;
    review 62c, mcp 1: so did the stamp of a 2026-07-28 answer). With no limit (stdio, in
    memory) one shared object that does nothing: no object made per call (review 61o, mcp
    2)."""
    limit = RESULT_LIMIT.get()
    if limit is None:
        return _UNLIMITED
    ident = len(pydantic_core.to_json(request_id))
    return _Narrowed(min(limit, limits.MAX_MCP_FRAME - _AROUND - ident - stamp))


def stamp_bytes(stamp: Mapping[str, Any]) -> int:
    """The bytes the MCP SDK adds to a result of the 2026-07-28 protocol besides what the gate
    serves (`served_result`, no `_meta` of its own): `,"_meta":{"<serverInfo key>":stamp}`, the
    server's `serverInfo` stamp (`stamp`) in its `_meta` (review 62c, mcp 1)."""
    meta = pydantic_core.to_json({types.SERVER_INFO_META_KEY: dict(stamp)})
    return len(b',"_meta":') + len(meta)


class _Narrowed:
    """`with`: RESULT_LIMIT set to `limit` within the block (`result_limit`)."""

    __slots__ = ("limit", "token")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.token: Token[int | None] | None = None

    def __enter__(self) -> None:
        self.token = RESULT_LIMIT.set(self.limit)

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        if self.token is not None:
            RESULT_LIMIT.reset(self.token)


_UNLIMITED: Final = nullcontext(None)
"""`result_limit` where there is no limit: shared (it holds nothing)."""


class McpGateError(MCPError):
    """The MCP gate's own error: a JSON-RPC internal error, no data, its text the gate's
    (`DENIED_PREFIX`, then what failed and the failure's type), or an upstream's JSON-RPC
    error's message on a call (review 54g, mcp 3). Raised `from None`: what failed is logged
    escaped and cut, so no traceback printing the chain logs its text raw."""

    def __init__(self, reason: str) -> None:
        super().__init__(types.INTERNAL_ERROR, DENIED_PREFIX + reason)


def upstream_said(exc: BaseException) -> str:
    """`exc` as a log line may quote it when the upstream chose its text (an MCPError's
    message), or it may quote anything (a path, SQL, an answer of the upstream): its type, then
    the text cut to MAX_MCP_LOGGED_TEXT characters and escaped (Python's repr), so no newline
    forges a log line and no escape sequence reaches a terminal showing the log (review 51f,
    mcp 3)."""
    return f"{type(exc).__name__}: {cut_text(str(exc), limits.MAX_MCP_LOGGED_TEXT)!r}"


def gate_failed(what: str, exc: BaseException) -> McpGateError:
    """The error answered when `what` (the gate's words: "the upstream failed the call") failed
    with `exc`: its type named, its text logged (`upstream_said`), never sent (review 54j,
    mcp 1)."""
    log.warning("%s: %s", what, upstream_said(exc))
    return McpGateError(f"{what} ({type(exc).__name__})")


def unlisted(exc: BaseException) -> McpGateError:
    """The error a tools/list is answered with when the upstream's listing failed with `exc`
    (an error it answered, its connection gone, a listing over the gate's limits): the gate's
    own, naming the failure's type only; the upstream's text is logged, never sent, and its
    error's data neither (review 54g, mcp 1: they were the answer of any caller, one allowed no
    tool included)."""
    return gate_failed("the upstream's tools could not be listed", exc)


def failed(exc: MCPError) -> McpGateError:
    """The error an allowed call is answered with when the upstream answered it with `exc`, a
    JSON-RPC error: the gate's own (an internal error, no data), the upstream's message kept as
    the text of the call's answer. Its code and data are the protocol's words, which a client
    acts on (-32042 of 2025-11-25: a URL for the user to open, an elicitation the gate's client
    refuses when the upstream asks it as a request), not the tool's (review 54g, mcp 3). The
    message is cut to MAX_MCP_UPSTREAM_ERROR_TEXT characters (mcp 4: it was passed whole, up to
    a frame, into the agent's context)."""
    message = cut_text(exc.error.message, limits.MAX_MCP_UPSTREAM_ERROR_TEXT)
    return McpGateError(f"the upstream failed the call: {message}")


def denied(reason: str) -> types.CallToolResult:
    """A denied call's answer: a tool error with the decision's fixed reason."""
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=DENIED_PREFIX + reason)], is_error=True
    )


def served_result(result: types.CallToolResult) -> types.CallToolResult:
    """An allowed call's result as the gate serves it: the upstream's content (`_block`),
    structured content and isError, in the gate's envelope. The upstream's `_meta` (the
    serverInfo stamp the protocol reserves for the server the client speaks to, a related task,
    ...) and `resultType` are not the tool's data but the response's, which is the gate's
    (review 54g, mcp 2; as a tool is served without its `_meta`: review 52b, mcp 1)."""
    return types.CallToolResult(
        content=[_block(block) for block in result.content],
        structured_content=result.structured_content,
        is_error=result.is_error,
    )


def over_limit(result: types.CallToolResult, limit: int) -> bool:
    """Whether `result`'s compact UTF-8 JSON (what the MCP SDK writes of it in the response; a
    client of a version before 2026-07-28 is sent it without `resultType`) is over `limit`
    bytes. Its text, data and blobs say it without a copy of it when they are over already
    (JSON writes each character in a byte or more): an upstream's line may be 64 MiB."""
    least = sum(_characters(block) for block in result.content)
    if least > limit:
        return True
    serializer = result.__pydantic_serializer__
    return len(serializer.to_json(result, by_alias=True, exclude_none=True)) > limit


def _characters(block: types.ContentBlock) -> int:
    """The characters of `block`'s text, data or blob (none counted of a resource link)."""
    if isinstance(block, types.TextContent):
        return len(block.text)
    if isinstance(block, types.ImageContent | types.AudioContent):
        return len(block.data)
    if isinstance(block, types.EmbeddedResource):
        held = block.resource
        return len(held.text if isinstance(held, types.TextResourceContents) else held.blob)
    return 0


def _block(block: types.ContentBlock) -> types.ContentBlock:
    """A content block as the gate serves it: its data and annotations, without its `_meta`
    (an embedded resource's contents neither), nor a resource link its icons, which a client
    fetches unasked (as a tool's: review 52b, mcp 1). Review 54j, mcp 3: the upstream's keys a
    client may act on (a related task, an app's UI) passed in every block."""
    note = block.annotations
    if isinstance(block, types.TextContent):
        return types.TextContent(type="text", text=block.text, annotations=note)
    if isinstance(block, types.ImageContent):
        return types.ImageContent(
            type="image", data=block.data, mime_type=block.mime_type, annotations=note
        )
    if isinstance(block, types.AudioContent):
        return types.AudioContent(
            type="audio", data=block.data, mime_type=block.mime_type, annotations=note
        )
    if isinstance(block, types.ResourceLink):
        return types.ResourceLink(
            type="resource_link",
            uri=block.uri,
            name=block.name,
            title=block.title,
            description=block.description,
            mime_type=block.mime_type,
            size=block.size,
            annotations=note,
        )
    contents = block.resource
    resource: types.TextResourceContents | types.BlobResourceContents
    if isinstance(contents, types.TextResourceContents):
        resource = types.TextResourceContents(
            uri=contents.uri, mime_type=contents.mime_type, text=contents.text
        )
    else:
        resource = types.BlobResourceContents(
            uri=contents.uri, mime_type=contents.mime_type, blob=contents.blob
        )
    return types.EmbeddedResource(type="resource", resource=resource, annotations=note)
