"""Review 63t: attacks on the fixes of 63m, 63o and 63p that did not work.

Each test is a real attempt, and fails if the defence it names broke:

- mcp (63p, troth.integrations.mcp.pages): a real cursor written otherwise (padding, the
  standard base64 alphabet, cut short, extended), a cursor MAC'd under the connection's key for
  a page at the listing's start or past its end, another connection's key, a listing that
  shrank or changed between pages; pages of tools whose descriptions are non-ASCII or escaped
  (each character up to 6 bytes on the wire) stay within the limit as the SDK writes them.
- gates (63m, gates 1: `VerifiedBundle.unbound_by` at every decision): the bundle of a
  long-lived authority (its history presented from a checkpoint its own feed names) still
  decides once its feed grows, and once its feed names a later change of that history (a
  newer supersession within it): no false deny.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import struct
from collections.abc import Callable
from pathlib import Path

import mcp_types as types
import pydantic_core
import pytest
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage

from tests.support.feeds import superseded
from tests.support.gates import POLICIES, TOOLS
from tests.support.parties import signer_as
from troth import limits
from troth.credentials import (
    ChainVerifier,
    TrustPolicy,
    build_page,
    feed_genesis,
    next_head,
    write_page_sequence,
)
from troth.credentials.revocation_entry import RevocationEntry, RevocationKind
from troth.crypto import KeyType
from troth.gates.bundles import create_bundle, verify_bundle
from troth.identity import Checkpoint, Identifier, new_identity, rotate_identity
from troth.integrations.mcp.channel import encode_message
from troth.integrations.mcp.pages import CURSOR_TEXT, Pages
from troth.node.verify import read_feed_file
from troth.vault import SoftwareVault

# -- mcp: the cursor ------------------------------------------------------------------------------

_KEY = bytes(range(32))
_LIMIT = 6_000


def _tools(count: int = 12, description: str = "d" * 1_500) -> list[types.Tool]:
    return [
        types.Tool(
            name=f"t{n:02d}",
            description=description,
            input_schema={"type": "object", "properties": {"x": {"type": "string"}}},
        )
        for n in range(count)
    ]


def _all_pages(pages: Pages, tools: list[types.Tool], limit: int) -> list[types.ListToolsResult]:
    measures: dict[str, tuple[int, bytes]] = {}
    served = [pages.page(tools, measures, None, limit)]
    while (cursor := served[-1].next_cursor) is not None and len(served) < 100:
        served.append(pages.page(tools, measures, pages.read(cursor), limit))
    return served


def _refused(attempt: Callable[[], object]) -> None:
    with pytest.raises(MCPError) as caught:
        attempt()
    assert caught.value.error.code == types.INVALID_PARAMS
    assert "the cursor is not one of this listing" in caught.value.error.message


def _maced(offset: int, listing: bytes, key: bytes = _KEY) -> str:
    """A cursor written as pages.py's docstring says, under `key`."""
    body = struct.pack(">BI", 1, offset) + listing
    mac = hmac.new(key, b"troth.mcp.cursor" + body, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode()


def _listing(tools: list[types.Tool]) -> bytes:
    digests = b"".join(
        hashlib.sha256(
            t.__pydantic_serializer__.to_json(t, by_alias=True, exclude_none=True)
        ).digest()
        for t in tools
    )
    return hashlib.sha256(digests).digest()[:16]


def test_mcp_a_real_cursor_written_otherwise_is_refused() -> None:
    """Padding, the standard alphabet, cut short, one character more or a block more (no
    length extension of a truncated HMAC), surrounding spaces: only the gate's own text."""
    pages, tools = Pages(_KEY), _tools()
    cursor = pages.page(tools, {}, None, _LIMIT).next_cursor
    assert cursor is not None
    assert len(cursor) == CURSOR_TEXT
    pages.read(cursor)  # the real one reads
    variants = [cursor + "==", cursor + "=", cursor[:-1], cursor[:-4], cursor + "AAAA"]
    variants += [f" {cursor}"[:CURSOR_TEXT], cursor.upper(), cursor[::-1]]
    standard = cursor.replace("-", "+").replace("_", "/")
    if standard != cursor:
        variants.append(standard)
    for variant in variants:
        if variant != cursor:
            _refused(functools.partial(pages.read, variant))


def test_mcp_a_maced_cursor_at_the_start_or_past_the_end_is_refused() -> None:
    """Under the connection's own key and for the caller's listing as it is: offset 0 (never
    given), the listing's length, past it, the largest offset: refused; a middle one serves."""
    pages, tools = Pages(_KEY), _tools()
    listing = _listing(tools)
    served = pages.page(tools, {}, pages.read(_maced(5, listing)), _LIMIT)
    assert served.tools[0].name == "t05"  # the format is as written above
    for offset in (0, len(tools), len(tools) + 1, 2**32 - 1):
        at = pages.read(_maced(offset, listing))
        _refused(functools.partial(pages.page, tools, {}, at, _LIMIT))
    other = _maced(5, listing, key=bytes(32))  # another connection's key, the same listing
    _refused(lambda: pages.read(other))


def test_mcp_a_listing_that_shrank_or_changed_between_pages_refuses_the_cursor() -> None:
    pages, tools = Pages(_KEY), _tools()
    cursor = pages.page(tools, {}, None, _LIMIT).next_cursor
    assert cursor is not None
    at = pages.read(cursor)
    changed = [*tools[:-1], tools[-1].model_copy(update={"description": "other"})]
    for listing in (tools[:-1], tools[1:], changed, list(reversed(tools))):
        _refused(functools.partial(pages.page, listing, {}, at, _LIMIT))
    assert pages.page(tools, {}, at, _LIMIT).tools  # the same listing, measured anew: serves


@pytest.mark.parametrize(
    "description",
    ["😀" * 700, "漢字" * 600, "\x01\x1f" * 300, '"\\' * 700, "\u2028</script>&" * 200],
)
def test_mcp_pages_of_non_ascii_or_escaped_tools_stay_within_the_limit_on_the_wire(
    description: str,
) -> None:
    """Each page as the session writes it (the SDK's `model_dump(mode="json")`, then the
    channel's `encode_message`): within the limit plus the JSON-RPC envelope, every tool served
    once, in order."""
    tools = _tools(20, description)
    served = _all_pages(Pages(_KEY), tools, _LIMIT)
    assert [t.name for page in served for t in page.tools] == [t.name for t in tools]
    assert len(served) > 2
    for page in served:
        result = page.model_dump(by_alias=True, mode="json", exclude_none=True)
        assert len(pydantic_core.to_json(result)) <= _LIMIT
        wire = encode_message(
            SessionMessage(types.JSONRPCResponse(jsonrpc="2.0", id=1, result=result))
        )
        assert len(wire) <= _LIMIT + len('{"jsonrpc":"2.0","id":1,"result":}')


# -- gates: a long-lived authority's bundle, its feed growing -------------------------------------

NOW = 1_800_000_000
T0 = NOW - 100_000
CHECKPOINT = 10


def _long_lived_feeds(tmp_path: Path) -> tuple[bytes, list[Path], Identifier]:
    """A bundle of an authority past MAX_IDENTITY_CHANGES (its history presented from
    CHECKPOINT, which its own feed names), and two files of its feed: one entry; then two
    more (a revocation, and a supersession naming CHECKPOINT + 5, within the bundle's history)."""
    vault = SoftwareVault()
    held = new_identity(vault, KeyType.ED25519, now=T0, valid_for=10**8)
    early = None
    for step in range(1, limits.MAX_IDENTITY_CHANGES + 6):
        held = rotate_identity(
            vault, held.identity, held.primary, held.next_key, now=T0 + step, valid_for=10**8
        )
        if step == CHECKPOINT:
            early = signer_as(vault, held.primary, held.identity, now=T0 + step)
    assert early is not None
    full = held.identity
    me = full.identifier
    presented = full.from_checkpoint(Checkpoint(me.digest, me.digest, CHECKPOINT))
    signer = signer_as(vault, held.primary, presented, now=T0 + 100)
    entries = [
        superseded(0, me, me, CHECKPOINT + 1, full.changes[CHECKPOINT].change_hash, at=T0 + 40),
        RevocationEntry(1, RevocationKind.CREDENTIAL, b"\x05" * 32, me, T0 + 60, "lost"),
        superseded(2, me, me, CHECKPOINT + 6, full.changes[CHECKPOINT + 5].change_hash, at=T0 + 70),
    ]
    encoded = [entry.encode() for entry in entries]
    heads = [next_head(feed_genesis(me), encoded[0])]
    for entry in encoded[1:]:
        heads.append(next_head(heads[-1], entry))
    first = build_page(early, encoded[:1], start=0, head=heads[0], latest=1, now=T0 + 50)
    files = []
    for name, more in (("one", 0), ("three", 2)):
        last = build_page(
            signer,
            encoded[1 : 1 + more],
            start=1,
            head=heads[more],
            latest=1 + more,
            now=NOW - 10,
        )
        path = tmp_path / f"{name}.feed"
        path.write_bytes(b"".join(write_page_sequence([first, last])))
        files.append(path)
    bundle = create_bundle(
        signer,
        authority=me,
        policies=POLICIES,
        schema="",
        tools=TOOLS,
        revision=1,
        now=NOW - 100,
        ttl=3600,
    )
    return bundle, files, me


def test_gates_a_long_lived_authoritys_bundle_still_decides_once_its_feed_grows(
    tmp_path: Path,
) -> None:
    bundle, files, authority = _long_lived_feeds(tmp_path)
    anchors = frozenset({authority})
    one, three = (read_feed_file(str(f), anchors, NOW) for f in files)
    assert (one.count, three.count) == (1, 3)
    verifier = ChainVerifier(TrustPolicy(anchors))
    verified = verify_bundle(bundle, verifier=verifier, feeds={authority: one}, now=NOW)
    for feed in (one, three):
        assert verified.unbound_by(feed) is None
        verified.check_signer(feed)  # neither revoked, superseded nor unbound
        assert verified.signer_in_force(feed)
    # and verified afresh under the grown feed (its newest supersession within the history)
    again = verify_bundle(bundle, verifier=verifier, feeds={authority: three}, now=NOW)
    again.check_signer(three)
