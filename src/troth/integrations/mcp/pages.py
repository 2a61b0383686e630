"""The pages of an MCP gate's answer to tools/list (docs/policy.md, "MCP gates"; MCP
specification, "Pagination": an opaque `cursor` in, `nextCursor` out, an invalid cursor
answered with -32602 Invalid params).

A session over a secure channel carries each answer in one frame (`RESULT_LIMIT`:
MAX_MCP_RESULT, less what the request's id and a 2026-07-28 answer's stamp take), while the gate
reads and serves listings of up to MAX_UPSTREAM_LISTING_BYTES (review 63k, limits 4: 24 tools of
48 KB each, every limit kept, made every channel client's tools/list the channel's error, so it
saw no tool). So the caller's tools (those gate 1 lets it see, in the listing's order) are
served in pages, each as many whole tools as its answer holds within the limit, every page but
the last with a `nextCursor`. Over stdio (no limit) the answer is one page, as before.

A cursor is the position of the next page in one caller's listing, and the digest of that
listing (each tool as served, in order), MAC'd under a key of the connection (`Pages`):

    cursor = base64url(version (1) || offset (4, big-endian) || listing (16) || mac (16))
    mac = HMAC-SHA256(key, "troth.mcp.cursor" || version || offset || listing)[:16]

It is opaque to the client and refused (`bad_cursor`: Invalid params, the gate's own text) when
it is not one this connection was given (forged, garbage, another session's or another
caller's), or when the caller's listing is no longer the one it was given for (the upstream's
tools, the bundle or the caller's credential changed between pages: the client lists again from
the start, never a page of one listing joined to another's). A page is always cut from the
listing the caller may see now, so no cursor shows a tool the gate hides from it. The key lives
as long as the connection and is never sent.
"""

from __future__ import annotations

import base64
import secrets
import struct
from collections.abc import MutableMapping, Sequence
from typing import Final, NamedTuple

import mcp_types as types
from mcp.shared.exceptions import MCPError

from troth.crypto.hashing import constant_time_equal, hmac_sha256, sha256
from troth.integrations.mcp.answers import DENIED_PREFIX, McpGateError

__all__ = ["CURSOR_TEXT", "Measures", "Pages", "Position", "bad_cursor"]

_VERSION: Final = 1
_LABEL: Final = b"troth.mcp.cursor"
_DIGEST: Final = 16  # bytes of the listing's digest, and of the MAC, a cursor carries
_BODY: Final = struct.Struct(">BI")  # version, offset
_RAW: Final = _BODY.size + 2 * _DIGEST
CURSOR_TEXT: Final = len(base64.urlsafe_b64encode(bytes(_RAW)).rstrip(b"="))
"""Characters of every cursor the gate gives (50): any other text is refused unread."""
_SLACK: Final = 32
"""Bytes of a page's answer left free besides what is measured: the MCP SDK's cache hints
(`ttlMs`, `cacheScope`: the gate sets none, so their defaults are measured) written longer."""

Measures = MutableMapping[str, tuple[int, bytes]]
"""Each tool of one listing (by name) as a page serves it: the bytes of its compact JSON and
their digest (computed once per listing: `_Listed.measures`)."""


def bad_cursor() -> MCPError:
    """The answer to a tools/list whose cursor is not one this connection was given for the
    caller's listing as it is now: Invalid params (MCP "Pagination"), one text whatever failed
    (no oracle)."""
    return MCPError(
        types.INVALID_PARAMS,
        DENIED_PREFIX + "the cursor is not one of this listing: list the tools from the start",
    )


class Pages:
    """The pages of one connection's tools/list answers (module docstring): the key its cursors
    are MAC'd under (random, never sent)."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)

    def read(self, cursor: str) -> Position:
        """The position `cursor` names; `bad_cursor` when it is not one this connection gave
        (checked before the caller's listing is made: `Position.listing` is compared then)."""
        if len(cursor) != CURSOR_TEXT or not cursor.isascii():
            raise bad_cursor()
        try:
            raw = base64.b64decode(cursor + "==", altchars=b"-_", validate=True)
        except ValueError:  # binascii.Error: not base64url
            raise bad_cursor() from None
        if base64.urlsafe_b64encode(raw).rstrip(b"=") != cursor.encode():
            raise bad_cursor()  # not as the gate writes it (its last character's spare bits)
        body, mac = raw[: _BODY.size + _DIGEST], raw[_BODY.size + _DIGEST :]
        if not constant_time_equal(mac, hmac_sha256(self._key, _LABEL + body)[:_DIGEST]):
            raise bad_cursor()
        version, offset = _BODY.unpack_from(body)
        if version != _VERSION:
            raise bad_cursor()
        return Position(int(offset), body[_BODY.size :])

    def page(
        self,
        tools: Sequence[types.Tool],
        measures: Measures,
        at: Position | None,
        limit: int | None,
    ) -> types.ListToolsResult:
        """The page of `tools` (the caller's listing, in order; `measures` its listing's cache)
        at `at` (`read` of the request's cursor; None: the first), as many whole tools as an
        answer of at most `limit` bytes holds (None: all), with a `nextCursor` when more are
        left. `bad_cursor` when `at` was given for another listing (stale); McpGateError when
        not one tool fits (a request's id taking the frame)."""
        measured = [_measure(tool, measures) for tool in tools]
        listing = sha256(b"".join(digest for _, digest in measured))[:_DIGEST]
        start = 0 if at is None else at.offset
        # another listing's cursor (stale), or past its end: refused, never mixed
        if at is not None and not (
            constant_time_equal(at.listing, listing) and 0 < start < len(tools)
        ):
            raise bad_cursor()
        if limit is None:
            return types.ListToolsResult(tools=list(tools[start:]))
        left = sum(size for size, _ in measured[start:]) + len(measured) - start - 1
        if left <= limit - _overhead(None):  # the rest fits: the last page
            return types.ListToolsResult(tools=list(tools[start:]))
        room, end = limit - _overhead(CURSOR_TEXT), start
        while end < len(tools) and measured[end][0] + (end > start) <= room:
            room -= measured[end][0] + (end > start)
            end += 1
        if end == start:
            raise McpGateError(f"no tool fits an answer of {limit} bytes to this request")
        cursor = self._cursor(end, listing)
        return types.ListToolsResult(tools=list(tools[start:end]), next_cursor=cursor)

    def _cursor(self, offset: int, listing: bytes) -> str:
        """The cursor of the page at `offset` of the listing of digest `listing`."""
        body = _BODY.pack(_VERSION, offset) + listing
        mac = hmac_sha256(self._key, _LABEL + body)[:_DIGEST]
        return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode("ascii")


class Position(NamedTuple):
    """What a cursor names: the offset of its page in the caller's listing, and the digest of
    that listing when the cursor was given."""

    offset: int
    listing: bytes


def _measure(tool: types.Tool, measures: Measures) -> tuple[int, bytes]:
    """`tool`'s bytes and digest as a page serves it (its compact JSON, as the MCP SDK writes
    it in the answer), kept in `measures` for its listing."""
    found = measures.get(tool.name)
    if found is None:
        text = tool.__pydantic_serializer__.to_json(tool, by_alias=True, exclude_none=True)
        found = measures[tool.name] = (len(text), sha256(text))
    return found


def _overhead(cursor: int | None) -> int:
    """The bytes of a page's answer besides its tools and their commas (with a cursor of
    `cursor` characters, or none), `_SLACK` included."""
    empty = types.ListToolsResult(tools=[], next_cursor=None if cursor is None else "a" * cursor)
    text = empty.__pydantic_serializer__.to_json(empty, by_alias=True, exclude_none=True)
    return len(text) + _SLACK
