"""Review 70r (wave2a: of 70i's and 70m's fixes): attacks that worked on main before their fix.

wave2a 1 (low): the opening of a node's trace log (`open_node_log`, each `troth trace ...`,
   each record a node's recorder appends) read the log identity the file binds
   (`meta` row `log_identity`, and `log_identity_pending` while a first opening was under way)
   whole and unchecked (`troth.trace.log_identity`), as 70i's fix no longer reads any other row
   of the writer's: a row of 8 MiB was fetched whole at each opening; a TEXT one failed it with
   a bare TypeError (`bytes(str)`: the CLI's internal error, exit 70); an INTEGER one was made
   that many zero bytes (`bytes(n)`: 1 << 40, a MemoryError; 32, an identifier of zeros, which
   a node of a log bound before review 58c would record as its own log's). The
   row is now read as `TraceLog.log_identity` reads it (never past 32 bytes, a BLOB only) and
   anything else is `trace log damaged` (StorageError): nothing made, recorded or bound over
   it. So too node.db's rows naming the log identities it made for the node's log
   (`trace_log_identities`, read at each opening) and those declared lost (`trace_log_lost`,
   read by `troth trace verify`), taken as `bytes(identifier)` likewise: StorageError
   `node.db damaged`.

wave2a 2 (low): 70m's telling threads that fail to start (the authority service's after a
   revocation, the announcer's after a running node's announcement) are logged and the next
   revocation or announcement tells, for a RuntimeError only: `Thread.start` raises
   MemoryError too (its boot state or thread state not allocated), and then the authority
   service's telling flag stayed set (no node here told again of a revocation for the node's
   life, the revocation, taken, answered with the MemoryError), and the announcer's too, which
   70d's `except BaseException` had reset. Any failure of the start now resets the flag; an
   Exception is logged (the revocation or announcement was taken), anything else raised.

wave2a 3 (low): the node's accepted checkpoint of its log (node.db `trace_accepted`, what
   `troth trace verify` compares the log with, and each acceptance reads under its write) was
   read whole and taken as `bytes(note)`: a row of 8 MiB was fetched whole, a TEXT one failed
   bare (TypeError: exit 70), an INTEGER n became n zero bytes (1 << 40: MemoryError). It is
   read as the trace log reads its own rows (`stored_column`, past MAX_TRACE_CHECKPOINT_BYTES
   not fetched): TraceError OVER_LIMIT or MALFORMED.
"""

from __future__ import annotations

import sqlite3
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run
from tests.support.traces import node_trace_db, record_on_node
from tests.test_review70m_telling2 import bare_announcer
from troth.clock import SystemClock
from troth.errors import StorageError, TraceError
from troth.identity import Identifier
from troth.node import open_node, troth_home
from troth.node.services.authority import AuthorityService
from troth.trace.accepted import AcceptedCheckpoints
from troth.trace.log import open_node_log
from troth.trace.log_identity import lost_logs

_ROW = 8 * 1024 * 1024

_DAMAGE = {
    "huge": ("zeroblob(?)", (_ROW,)),
    "text": ("'not an identifier'", ()),
    "huge integer": ("1 << 40", ()),
}


@pytest.mark.parametrize("what", sorted(_DAMAGE))
@pytest.mark.parametrize("name", ["log_identity", "log_identity_pending"])
def test_a_damaged_log_identity_row_is_refused_unread_at_open(what: str, name: str) -> None:
    """wave2a 1: the log identity row a node's trace.db binds (or reserves) made 8 MiB, TEXT
    or an INTEGER: the opening fetched it whole, failed bare (TypeError, MemoryError) or took
    `bytes(n)` for an identifier; now StorageError `trace log damaged`, never fetched."""
    run("identity", "create", "support")
    record_on_node(troth_home(), 1)
    value, params = _DAMAGE[what]
    with sqlite3.connect(node_trace_db(troth_home())) as raw:
        if name == "log_identity_pending":  # a first opening killed before it bound
            raw.execute("UPDATE meta SET name = ? WHERE name = 'log_identity'", (name,))
        raw.execute(f"UPDATE meta SET value = {value} WHERE name = ?", (*params, name))  # noqa: S608
    tracemalloc.start()
    try:
        with open_node("default", home=troth_home()) as node, pytest.raises(StorageError) as e:
            open_node_log(node, clock=SystemClock()).close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "trace log damaged" in str(e.value)
    assert peak < _ROW // 2


def _no_memory(self: threading.Thread) -> None:
    raise MemoryError


def _bare_authority_service(told: threading.Event) -> Any:
    """An authority service whose telling only is used, `told` set when it tells."""
    service: Any = object.__new__(AuthorityService)
    service._tell_lock, service._telling, service._tell_again = threading.Lock(), False, False
    service._tell = told.set
    return service


@pytest.mark.parametrize("teller", ["authority service", "announcer"])
def test_a_telling_whose_thread_start_ran_out_of_memory_does_not_stop_the_next(
    monkeypatch: pytest.MonkeyPatch, teller: str
) -> None:
    """wave2a 2: a telling thread's start fails with MemoryError once: the revocation or
    announcement that asked is not failed by it, and the next one's telling runs (the flag
    stayed set: none ran again)."""
    told = threading.Event()
    tell: Callable[[], None]
    if teller == "announcer":
        monkeypatch.setattr("troth.node.traces.tell_nodes_here", lambda *_, **__: told.set())
        announcer = bare_announcer()
        tell = lambda: announcer._tell_here(Identifier(bytes(32)))  # noqa: E731
    else:
        tell = _bare_authority_service(told).tell_local_nodes
    start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", _no_memory)
    tell()
    monkeypatch.setattr(threading.Thread, "start", start)
    tell()
    assert told.wait(10)


@pytest.mark.parametrize("what", sorted(_DAMAGE))
def test_a_damaged_accepted_checkpoint_is_refused_unread(what: str, tmp_path: Path) -> None:
    """wave2a 3: the node's accepted checkpoint of its log (`trace_accepted`'s note) made
    8 MiB, TEXT or an INTEGER: its read (`newest`, `note_of`) fetched it whole, failed bare or
    took `bytes(n)`; now TraceError, never fetched."""
    run("identity", "create", "support")
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")
    run("trace", "verify", "--checkpoint", str(tmp_path / "kept.note"))  # the node accepts it
    value, params = _DAMAGE[what]
    with sqlite3.connect(troth_home() / "nodes" / "default" / "node.db") as raw:
        raw.execute(f"UPDATE trace_accepted SET note = {value}", params)  # noqa: S608
        (origin,) = raw.execute("SELECT origin FROM trace_accepted").fetchone()
    with open_node("default", home=troth_home()) as node:
        with open_node_log(node, clock=SystemClock()) as log:
            identity = log.log_identity
        accepted = AcceptedCheckpoints(node.db)
        tracemalloc.start()
        try:
            with pytest.raises(TraceError):
                accepted.newest(origin)
            with pytest.raises(TraceError):
                accepted.note_of(identity)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < _ROW // 2


@pytest.mark.parametrize("what", sorted(_DAMAGE))
@pytest.mark.parametrize("table", ["trace_log_identities", "trace_log_lost"])
def test_a_damaged_row_naming_a_log_identity_in_node_db_is_refused_unread(
    what: str, table: str
) -> None:
    """wave2a 1: a row of node.db naming a log identity it made for the node's log (read at
    each opening) or one declared lost (read by `troth trace verify`) made 8 MiB, TEXT or an
    INTEGER: fetched whole, failed bare or taken as `bytes(n)`; now StorageError."""
    run("identity", "create", "support")
    record_on_node(troth_home(), 1)
    value, params = _DAMAGE[what]
    with sqlite3.connect(troth_home() / "nodes" / "default" / "node.db") as raw:
        columns = "" if table == "trace_log_identities" else ", 1"
        raw.execute(f"INSERT INTO {table} VALUES ({value}{columns})", params)  # noqa: S608
    tracemalloc.start()
    try:
        with open_node("default", home=troth_home()) as node, pytest.raises(StorageError):
            if table == "trace_log_lost":
                lost_logs(node)
            else:
                open_node_log(node, clock=SystemClock()).close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < _ROW // 2
