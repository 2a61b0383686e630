"""Review 69x (wave4c: this session's late fixes) findings.

wave4c 1: 69u's lock in NodeTrust (review 69u, wave3 3) was held by `read_due` across its
    query of node.db (`syncs_due`): `set_feed`, which a node's event loop runs itself
    (troth.node.feedsync `sync_feed`, membership's local sync), waited behind a worker
    thread's SQL read, so the whole loop stood still for as long as the read took (a busy
    file: up to its busy timeout), every channel and service with it. The marks are read
    outside the install lock now (reads of them take their own lock, so an older read is
    still never installed after a newer one); the install itself is in memory only.

wave4c 2: the MCP service charged a frame (its bytes, and since 69s its values) account by
    account of the member accounts the peer counts against (`all(take(...))`): one account
    short refused the frame, but the accounts taken before it stayed charged. A peer holding
    chains of two members whose own budget was spent kept spending the other member's with
    frames that were all refused (the accounts' order is a frozenset's). Charged with
    `take_all` now: refused, nothing spent.

wave4c 3: 69q's warning for a span `SigningSpanProcessor(strict=False)` could not sign held
    the span's whole name (`%r`): a tool call's span named by its tool (an upstream's, a
    model's text), 1 MB long, and refused (a decision that is no record text) wrote a 1 MB
    log line per span, though the record keeps such a name bounded; 10,000 lost spans, 10 GB
    of log. The name is shown cut to OTEL_SHOWN_NAME characters now.

wave4c 4: 69s bounded the record columns of a crafted trace.db (leaf, agent, record id) but
    not the keys of the rows kept beside them, which `verify_log` reads whole: a history's or
    a history window's identifier, a chain's digest (BLOBs of 32 bytes), an attestation's
    keyid (TEXT, 64 hex digits) were fetched whatever their size (`CAST(c AS BLOB)`): an 8 MiB
    key was loaded into Python before it was refused. They are fetched only as their type
    within STORED_DIGEST_BYTES (a keyid: 64 characters, no NUL) now; MALFORMED otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import tracemalloc
from pathlib import Path
from typing import Any, cast

import pytest

import troth
from troth import limits
from troth.credentials.revocation import VerifiedFeed
from troth.errors import RemoteError
from troth.identity import Identifier
from troth.integrations.mcp.frames import McpFrame
from troth.node import open_node
from troth.node.access import Decision, PeerCaller
from troth.node.services import mcp as mcp_service
from troth.node.services.base import RequestContext
from troth.node.trust import NodeTrust
from troth.rates import ByteBudgets
from troth.routing import Address


class _Feed:
    """A feed as `NodeTrust.set_feed` weighs it."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.authority = Identifier(bytes(32))
        self.head = b""


def test_a_feed_is_installed_while_another_thread_reads_the_marks(troth_home: Path) -> None:
    """wave4c 1: a worker's `read_due` is inside its query of node.db (held there, as by a
    busy file) when the loop installs a feed: the install does not wait for the query."""
    with troth.Node.open("desk"):
        pass
    acme = Identifier(bytes(32))
    with open_node("desk") as node:
        trust = NodeTrust(node, None)
        store = node.wallet.store
        real = store.syncs_due
        installed: list[bool] = []
        loop = threading.Thread(target=trust.set_feed, args=(acme, cast(VerifiedFeed, _Feed(3))))

        def held_query() -> list[tuple[bytes, str]]:
            loop.start()
            loop.join(1)
            installed.append(not loop.is_alive())
            return real()

        try:
            store.syncs_due = held_query  # type: ignore[method-assign]
            reader = threading.Thread(target=trust.read_due)
            reader.start()
            reader.join()
            loop.join()
            assert installed == [True]
            assert trust.feeds[acme].count == 3
        finally:
            trust.detach()


@pytest.mark.parametrize("spent", [b"m1", b"m2"])
def test_a_refused_mcp_frame_spends_no_members_budget(
    monkeypatch: pytest.MonkeyPatch, spent: bytes
) -> None:
    """wave4c 2: a peer counted against members m1 and m2, one of whose budgets is spent,
    sends a frame: refused, and the other member's budget is as it was."""
    monkeypatch.setattr(mcp_service, "member_accounts", lambda peer: frozenset({b"m1", b"m2"}))
    service = mcp_service.McpService.__new__(mcp_service.McpService)
    service.name = "mcp.orders"
    service.sessions = {}
    service._rates = ByteBudgets(
        rate=limits.MCP_BYTES_PER_SECOND, burst=limits.MCP_BURST_BYTES, max_sources=4
    )
    assert service._rates.take(spent, limits.MCP_BURST_BYTES, now=0)
    frame = McpFrame(bytes(16), b'{"jsonrpc":"2.0","id":1,"method":"ping"}').encode()
    caller = PeerCaller(cast(Any, object()), "chan-1")
    context = RequestContext(caller, (Address("worker", "peer"),), Decision(True), 0)
    with pytest.raises(RemoteError, match="budget is spent"):
        asyncio.run(service.send([frame, "reply"], context))
    other = b"m2" if spent == b"m1" else b"m1"
    assert service._rates.take(other, limits.MCP_BURST_BYTES, now=0)


def test_a_lost_spans_warning_shows_its_name_cut(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """wave4c 3: a span of a 1 MB name that is not signed (strict=False) is one warning
    within a few hundred characters, naming the span's start and its id."""
    from opentelemetry.sdk.trace import TracerProvider

    from tests.support.traces import NOW, Held, open_log, recorder
    from troth.clock import FixedClock
    from troth.trace.otel import SigningSampler, SigningSpanProcessor

    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    processor = SigningSpanProcessor(recorder(log, Held(), clock), strict=False)
    provider = TracerProvider(sampler=SigningSampler())
    provider.add_span_processor(processor)
    refused = {"gen_ai.operation.name": "execute_tool", "troth.decision": "\x00"}
    with (
        caplog.at_level(logging.WARNING, logger="troth.trace.otel"),
        provider.get_tracer("agent").start_as_current_span(
            "execute_tool " + "x" * 1_000_000, attributes=refused
        ) as span,
    ):
        ids = f"{span.get_span_context().span_id:016x}"
    assert processor.failures == 1
    (warned,) = [r.getMessage() for r in caplog.records if r.name == "troth.trace.otel"]
    assert "execute_tool xxx" in warned
    assert ids in warned
    assert len(warned) < 1024
    log.close()


_KEY = 8 * 1024 * 1024
_KEYS = {
    "history": "INSERT INTO histories SELECT zeroblob(?1), history, changes, current "
    "FROM histories",
    "window": "INSERT INTO history_windows SELECT zeroblob(?1), 0, history FROM histories",
    "chain": "INSERT INTO chains VALUES (zeroblob(?1), x'00')",
    "keyid": "INSERT INTO attestations SELECT CAST(zeroblob(?1) AS TEXT), identifier, "
    "attestation FROM attestations",
    "keyid-text": "INSERT INTO attestations SELECT substr(hex(zeroblob(?1 / 2)), 1), "
    "identifier, attestation FROM attestations",
}


@pytest.mark.parametrize("what", sorted(_KEYS))
def test_a_crafted_key_of_a_kept_row_is_refused_unread(tmp_path: Path, what: str) -> None:
    """wave4c 4: an 8 MiB identifier, digest or keyid of a row kept beside an honest log's
    records is refused MALFORMED by `verify_log` without being fetched."""
    from tests.support.traces import db, log_of
    from troth.errors import TraceError, TraceFailure
    from troth.trace.verify import verify_log

    log = log_of(tmp_path / "log.db", 2)
    raw = db(log)
    raw.execute(_KEYS[what], (_KEY,))
    raw.close()
    tracemalloc.start()
    try:
        with pytest.raises(TraceError) as refused:
            verify_log(log)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused.value.reason in (TraceFailure.OVER_LIMIT, TraceFailure.MALFORMED)
    assert peak < _KEY // 2
    log.close()
