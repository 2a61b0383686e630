"""Review 56h, trace.append (a performance pass: benchmarks/README.md, "Pass 56h"): what the
software vault's check before each use of a cached key (review 48l, `SoftwareVault._live`)
costs an appending agent. It is per signature by design; these pin that it stays one
`PRAGMA data_version` per record, with no look-up of the key's row while no other connection
commits to the node's database (the trace log is a file of its own), so the check does not
grow on the trace rows' path unnoticed."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from troth.bench.trace_bench import CONTENT, _bench_node, _recorders
from troth.storage.sqlite_stores import SqliteKeyStore

BATCH = 128


def _counting(calls: Counter[str], name: str) -> Callable[..., Any]:
    """`SqliteKeyStore.name`, counting its calls made by the main thread (the recorder's)."""
    method = getattr(SqliteKeyStore, name)

    def counted(self: SqliteKeyStore, *args: Any) -> Any:
        if threading.current_thread() is threading.main_thread():
            calls[name] += 1
        return method(self, *args)

    return counted


def test_one_data_version_and_no_row_lookup_per_record(monkeypatch: pytest.MonkeyPatch) -> None:
    with _bench_node() as (_home, node, log, clock):
        (recorder,) = _recorders(node, log, clock, 1)
        recorder.record_many([CONTENT] * BATCH)  # the key cached, its row seen by this thread
        calls: Counter[str] = Counter()
        for name in ("data_version", "get_sealed_key", "stored_key_nonces"):
            monkeypatch.setattr(SqliteKeyStore, name, _counting(calls, name))
        recorder.record_many([CONTENT] * BATCH)
        recorder.record(CONTENT)
    assert calls == Counter({"data_version": BATCH + 1})


def test_another_connections_commit_is_still_seen_before_the_next_signature(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check is not skipped on this path: a commit to the node's database by another
    thread's connection (one identity created) makes the recorder's next signature look the
    keys it saw up again, once, before it signs."""
    with _bench_node() as (_home, node, log, clock):
        (recorder,) = _recorders(node, log, clock, 1)
        recorder.record(CONTENT)
        calls: Counter[str] = Counter()
        for name in ("data_version", "stored_key_nonces"):
            monkeypatch.setattr(SqliteKeyStore, name, _counting(calls, name))
        other = threading.Thread(target=node.identities.create, kwargs={"now": 1_790_000_000})
        other.start()
        other.join()
        recorder.record_many([CONTENT] * 3)
    assert calls["stored_key_nonces"] == 1
    assert calls["data_version"] == 3
