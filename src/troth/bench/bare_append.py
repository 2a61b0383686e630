"""The ceiling of the durable append benchmark: the least of a trace append's work that any
pure-Python design does, timed beside the raw signing rate (`trace.append.ceiling`).

Per record: the payload of a real record (its members, an id, seq and prev of its own) as
compact sorted-key JSON (`json.dumps`: no RFC 8785 writer), its DSSE PAE signed with Ed25519,
the envelope as JSON with base64, its SHA-256 and the leaf's; per 128 records one SQLite
transaction (WAL, `synchronous = FULL`: fsynced) inserting a row each, committed by a second
thread while the next 128 are signed. No disclosure commitments, Merkle nodes, replay lookup,
heads or identity checks: those are troth's on top of this.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from troth.crypto.bench_floor import ed25519_signer

__all__ = ["bare_appends"]

PAYLOAD_TYPE: Final = b"application/vnd.troth.trace.v1+json"
_BATCH: Final = 128
_Row = tuple[int, str, bytes, bytes]


@contextmanager
def bare_appends(directory: Path, template: dict[str, Any]) -> Iterator[Callable[[int], float]]:
    """A batch (n records, one agent) over a log of its own in `directory`; seconds per record."""
    db = sqlite3.connect(directory / "bare.db", isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE leaves (idx INTEGER PRIMARY KEY, id TEXT UNIQUE, leaf, envelope)")
    sign, keyid = ed25519_signer(), os.urandom(32).hex()
    size = 0

    def record(seq: int, prev: str | None) -> tuple[str, bytes, bytes]:
        payload = json.dumps(
            {**template, "id": os.urandom(16).hex(), "seq": seq, "prev": prev},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        pae = b"DSSEv1 %d %s %d %s" % (len(PAYLOAD_TYPE), PAYLOAD_TYPE, len(payload), payload)
        envelope = json.dumps(
            {
                "payload": base64.b64encode(payload).decode(),
                "payloadType": PAYLOAD_TYPE.decode(),
                "signatures": [{"keyid": keyid, "sig": base64.b64encode(sign(pae)).decode()}],
            }
        ).encode()
        leaf = hashlib.sha256(b"\x00" + envelope).digest()
        return hashlib.sha256(payload).hexdigest(), leaf, envelope

    def commit(rows: list[_Row]) -> None:
        db.execute("BEGIN")
        db.executemany("INSERT INTO leaves VALUES (?, ?, ?, ?)", rows)
        db.execute("COMMIT")

    def batch(n: int) -> float:
        nonlocal size
        batches: queue.Queue[list[_Row] | None] = queue.Queue(maxsize=2)

        def committer() -> None:
            while (rows := batches.get()) is not None:
                commit(rows)

        start = time.perf_counter()
        thread = threading.Thread(target=committer)
        thread.start()
        prev: str | None = None
        for first in range(0, n, _BATCH):
            rows = []
            for seq in range(first, min(n, first + _BATCH)):
                prev, leaf, envelope = record(seq, prev)
                rows.append((size, f"{size:032x}", leaf, envelope))
                size += 1
            batches.put(rows)
        batches.put(None)
        thread.join()
        return (time.perf_counter() - start) / n

    try:
        yield batch
    finally:
        db.close()
