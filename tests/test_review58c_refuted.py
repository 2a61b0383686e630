"""Review 58c (signed traces): attacks tried that the product already stops, each a real
attempt that fails if the defence breaks."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.support.cli import run
from tests.support.traces import node_trace_db, record_on_node
from troth.clock import SystemClock
from troth.identity import Identifier
from troth.node import open_node, troth_home
from troth.trace import open_node_log


def test_a_cut_trace_db_is_reported_and_left_as_it_is() -> None:
    """trace.db cut to its first pages (a torn copy, a full disk): `troth trace verify` exits
    4 naming the file as malformed, and leaves it as it was (nothing rebuilt over it)."""
    run("identity", "create", "support")
    record_on_node(troth_home(), 3)
    run("trace", "checkpoint")
    path = node_trace_db(troth_home())
    for name in ("-wal", "-shm"):
        Path(f"{path}{name}").unlink(missing_ok=True)
    with path.open("r+b") as cut:
        cut.truncate(8192)
    said = run("trace", "verify", code=4).stderr
    assert "malformed" in said
    assert path.stat().st_size == 8192


def test_first_openings_at_once_bind_one_log_identity() -> None:
    """Two processes' first openings of a node's log at once (here threads, each with its own
    node.db connection) agree on one log identity, neither taking the other's for a lost log
    (review 58c, trace 1 reads node.db's record of the identities it made)."""
    run("node", "create", "n")
    bound: list[Identifier] = []
    failed: list[BaseException] = []
    start = threading.Barrier(2)

    def open_once() -> None:
        try:
            with open_node("n", home=troth_home()) as node:
                start.wait()
                with open_node_log(node, clock=SystemClock()) as log:
                    bound.append(log.log_identity)
        except BaseException as exc:  # reported below
            failed.append(exc)

    threads = [threading.Thread(target=open_once) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failed
    assert len(bound) == 2
    assert bound[0] == bound[1]
    assert run("trace", "verify", "--node", "n").stdout.startswith("unanchored: 0 record(s)")
