"""Review 69s (wave2): 69m's bounded reads of a crafted trace.db, 69n's argument-value limit,
69o's compromised rotations.

wave2 1. 69m bounded a row's BLOB columns by `length()` before fetching them, but SQLite's
   `length()` of TEXT counts characters up to the first NUL: a crafted trace.db whose record
   envelope (or disclosures, a history, an attestation, a chain, a checkpoint note) is TEXT
   beginning with a NUL byte has length 0, so it was fetched whole into Python (an 8 MiB row
   peaked at ~16 MB; 200 MB at ~400 MB in SQLite and Python) before it was refused as not
   bytes. The leaf and agent columns (32 bytes each), the record id and the log's identity
   were not bounded at all. A column is now fetched only when it is a BLOB within its bound
   (`typeof` first: a row's header, nothing loaded); any other type is MALFORMED, unread; a
   record id only as TEXT of at most 64 characters and no NUL.

wave2 2. A member's MCP budget (MCP_BYTES_PER_SECOND, 1 MiB/s, 16 MiB burst) counted a
   tools/call's bytes only, while deciding it costs ~5.5 us a value (the GIL held): a call of
   16,384 distinct small values (~56 KB, the most 69n lets through) took ~0.09 s, so one
   member kept ~1.6 CPU-seconds a second busy (~18 such calls a second, ~290 in a burst), the
   leftover 69n named. A tools/call is now charged MCP_VALUE_CHARGE (64 bytes) a value of its
   arguments too (counted up to one past the limit): a call of the most costs 1 MiB (4 MiB
   since review 70f, values 1: 256 bytes a value).
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from tests.support.traces import db, log_of
from tests.test_review69m_verify import _ROW, _peak
from troth.errors import StorageError, TraceFailure
from troth.trace.verify import verify_log

_NUL_TEXT = f"CAST(zeroblob({_ROW}) AS TEXT)"


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("envelope", _NUL_TEXT),
        ("disclosures", _NUL_TEXT),
        ("leaf", f"zeroblob({_ROW})"),
        ("agent", f"zeroblob({_ROW})"),
        ("record_id", _NUL_TEXT),
    ],
)
def test_a_crafted_record_column_is_refused_unread(tmp_path: Path, column: str, value: str) -> None:
    """Wave2 1: a record row whose envelope (disclosures) is 8 MiB of TEXT beginning with NUL
    (`length()` 0), or whose leaf (agent) is an 8 MiB BLOB, appended to an honest log of 3
    records, is refused at its index without being fetched."""
    log = log_of(tmp_path / "log.db", 3)
    raw = db(log)
    columns = "idx, record_id, leaf, envelope, disclosures, agent"
    chosen = columns.replace(f" {column}", f" {value}").replace("idx,", "3,", 1)
    if column != "record_id":
        chosen = chosen.replace("record_id", "record_id || 'x'", 1)
    raw.execute(f"INSERT INTO leaves ({columns}) SELECT {chosen} FROM leaves WHERE idx = 2")  # noqa: S608
    raw.close()
    refused, peak = _peak(lambda: verify_log(log))
    assert refused.reason in (TraceFailure.OVER_LIMIT, TraceFailure.MALFORMED)
    assert refused.index == 3
    assert peak < _ROW // 2  # never fetched
    log.close()


_KEPT = {
    "history": "UPDATE histories SET history = CAST(zeroblob(?) AS TEXT)",
    "attestation": "UPDATE attestations SET attestation = CAST(zeroblob(?) AS TEXT)",
    "note": "UPDATE checkpoints SET note = CAST(zeroblob(?) AS TEXT)",
    "chain": "INSERT INTO chains VALUES (randomblob(32), CAST(zeroblob(?) AS TEXT))",
    "window": "INSERT INTO history_windows "
    "SELECT identifier, 0, CAST(zeroblob(?) AS TEXT) FROM histories",
}


@pytest.mark.parametrize("what", sorted(_KEPT))
def test_a_crafted_text_row_the_log_keeps_is_refused_unread(tmp_path: Path, what: str) -> None:
    """Wave2 1: the same for the rows kept beside the records, TEXT beginning with NUL."""
    log = log_of(tmp_path / "log.db", 2)
    log.checkpoint()
    raw = db(log)
    raw.execute(_KEPT[what], (_ROW,))
    raw.close()
    refused, peak = _peak(lambda: verify_log(log))
    assert refused.reason in (TraceFailure.OVER_LIMIT, TraceFailure.MALFORMED)
    assert peak < _ROW // 2
    log.close()


def test_a_members_calls_dense_in_values_spend_its_mcp_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Wave2 2: a member's MCP budget counted a tools/call's bytes only, while its cost to the
    node's gate follows its values (~5.5 us each, the GIL held: 16,384 distinct small values,
    ~56 KB, took ~0.09 s to decide). At MCP_BYTES_PER_SECOND (1 MiB) a member sent ~18 such
    calls a second (~1.6 CPU-seconds a second: one member kept both cores of a small node busy)
    and ~290 in its 16 MiB burst. A tools/call is now charged MCP_VALUE_CHARGE a value too:
    here, a burst of 1 MiB takes 2 calls of 3,000 values, not ~50 (8,000 values before review
    70f, values 1 raised the charge to 256 bytes a value; since its values 2 they are owed once
    the call's bytes are paid, so the second goes below zero and the third waits)."""
    import anyio
    from mcp import Client

    from tests.support.mcp_orders import orders_server, text
    from tests.support.nodes import HUB, MemNet, run_memnet
    from tests.test_mcp_channels import install
    from troth import limits
    from troth.integrations.mcp.connect import connect
    from troth.node.services.mcp import publish_upstream

    monkeypatch.setattr(limits, "MCP_BURST_BYTES", 1 << 20)
    monkeypatch.setattr(limits, "MCP_BYTES_PER_SECOND", 1)
    dense = {"order_id": "o1", "notes": [str(i) for i in range(3_000)]}

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        install(net)
        await publish_upstream(hub, "orders", orders_server())
        writer = await net.member("writer", **{"orders.access": "read"})
        answers: list[str] = []
        with anyio.fail_after(60):
            async with (
                connect(writer, "writer", f"{HUB}/service/mcp.orders") as transport,
                Client(transport, mode="legacy", cache=None) as agent,
            ):
                for _ in range(3):
                    try:
                        answers.append(text(await agent.call_tool("lookup_order", dense)))
                    except Exception as exc:
                        answers.append(str(exc))
        spent = ["the member's MCP budget is spent" in answer for answer in answers]
        assert spent == [False, False, True], answers

    run_memnet(test, tmp_path)


def test_a_huge_log_identity_row_is_refused_unread(tmp_path: Path) -> None:
    """Wave2 1: the log's identity (a 32-byte digest in `meta`) was fetched whole too: an
    8 MiB row is refused without being fetched."""
    log = log_of(tmp_path / "log.db", 2)
    log.checkpoint()
    raw = db(log)
    raw.execute("UPDATE meta SET value = zeroblob(?) WHERE name = 'log_identity'", (_ROW,))
    raw.close()
    refused, peak = _peak(lambda: verify_log(log))
    assert refused.reason in (TraceFailure.OVER_LIMIT, TraceFailure.MALFORMED)
    assert peak < _ROW // 2
    log.close()


def test_a_huge_leaf_is_never_put_in_a_proof(tmp_path: Path) -> None:
    """Wave2 1: an inclusion proof read a crafted 8 MiB leaf whole and answered with it as a
    hash (`troth trace prove`, a service's proof): the log is now said damaged, unread."""
    log = log_of(tmp_path / "log.db", 4)
    raw = db(log)
    raw.execute("UPDATE leaves SET leaf = zeroblob(?) WHERE idx = 1", (_ROW,))
    raw.close()
    tracemalloc.start()
    try:
        with pytest.raises(StorageError, match="damaged"):
            log.inclusion_proof(0, 4)
        assert tracemalloc.get_traced_memory()[1] < _ROW // 2
    finally:
        tracemalloc.stop()
    log.close()
