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
   it.
"""

from __future__ import annotations

import sqlite3
import tracemalloc

import pytest

from tests.support.cli import run
from tests.support.traces import node_trace_db, record_on_node
from troth.clock import SystemClock
from troth.errors import StorageError
from troth.node import open_node, troth_home
from troth.trace.log import open_node_log

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
