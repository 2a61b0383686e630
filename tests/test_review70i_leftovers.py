"""Review 70i (leftovers of earlier sessions): attacks that worked on main before their fix.

leftovers 1 (low): `validate_token(..., leeway=)` took any whole number of seconds >= 0 (review
   69i made it int-only, unbounded above). A relying party whose leeway came from a
   configuration (`leeway: 31536000`, a typo, seconds taken for milliseconds) validated a token
   expired a year ago, and one whose lease had ended, for as long as the leeway: a leeway only
   absorbs clock skew. It is now at most `limits.MAX_TOKEN_LEEWAY_SECONDS` (300 s, the skew the
   credential side allows: `MAX_CLOCK_SKEW_SECONDS`), an ArgumentError past it, before the
   token is read.

leftovers 2 (low): the trace log's writer (append, checkpoint, redact) fetched the rows of the
   log's own file whole, unlike its reader (reviews 69m, 69s, 69x): a trace.db with one crafted
   row of a few MB (an agent's head hash, a signer's stored history, a checkpoint's note or
   root, a record's disclosures or the envelope a resolution's parent link names, an older
   chain the issued links' catch-up decodes, the `size` and `redacting` marks) made the next
   append, checkpoint, redaction or open hold it in memory before anything judged it (a
   damaged history hash was even written over by the next append). They are now read as the
   reader reads them (`stored_column`, `troth.trace.log_rows`: never fetched past their
   bound) and refused with the log's TraceError (OVER_LIMIT, or MALFORMED of another type),
   never healed; an older chain past MAX_CHAIN_BYTES is no chain to the catch-up, as one that
   does not decode, and a damaged `redacting` mark stays until the next redaction sets its own.
   So too what a node's rotation of an identity reads of the log to date itself by
   (`signed_until`: a chain holding the identity's digest, its `issued_links` row, a head's
   time), which dates nothing past its bound, as a row that does not decode, never fetched.

leftovers 3 (low): `BundleStore.reload` ran unlocked: two threads reloading at once (a gate
   sharing the node's table calls it before each decision) both read and verified the same
   stored bundle. One whose policies could not be checked (PolicyNotChecked: the validating
   process did not start) noted the bundle dormant after the other had activated it: the
   bundle decided while `troth policy show` listed it as not loaded, for good. Reloads now
   take turns (a lock around the whole reload; the second finds the stamp seen).

leftovers 4 (low): the control client wrote its request and waited for it to be taken
   (`writer.drain()`) without a bound: a node that accepted the connection and never read it
   (hung, its loop blocked) held `troth node ...` for ever once the request filled the
   socket's buffer (a policy push of up to MAX_CONTROL_REQUEST). It now waits at most
   `CONTROL_IO_TIMEOUT` (what the node allows a request to come whole in: past it the node
   drops it), then raises TimeoutError saying the request was not taken.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import tempfile
import threading
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.gates import T, make_world
from tests.support.traces import (
    Held,
    as_schema_3,
    db,
    node_trace_db,
    open_log,
    recorder,
    tool_call,
)
from tests.test_review60b_rotation import as_before_the_table, boss_link, flood, start
from tests.test_review69i_caveats import YEAR, _issued
from tests.test_review69m_verify import _peak
from troth import Node, limits
from troth.clock import FixedClock
from troth.errors import (
    ArgumentError,
    PolicyFailure,
    PolicyNotChecked,
    SecretError,
    TraceError,
    TraceFailure,
)
from troth.gates import BundleStore
from troth.gates.bundles import load_stored_bundle
from troth.node import daemon, troth_home
from troth.secrets import validate_token
from troth.trace import Receipt, TraceLog, verify_log
from troth.trace.record import Decision, Kind, Links
from troth.trace.signing import RecordContent


@pytest.mark.parametrize("leeway", [limits.MAX_TOKEN_LEEWAY_SECONDS + 1, YEAR, 2**80])
def test_a_leeway_past_its_bound_is_refused(tmp_path: Path, leeway: int) -> None:
    """leftovers 1: a token a year past its `exp` validated with `leeway=365 * 86400`; now a
    leeway past MAX_TOKEN_LEEWAY_SECONDS is an ArgumentError naming it."""
    broker, token = _issued(tmp_path)
    with pytest.raises(ArgumentError) as caught:
        validate_token(token, broker.jwks(NOW), audience="svc", now=NOW + YEAR, leeway=leeway)
    assert caught.value.parameter == "leeway"


def test_the_largest_leeway_absorbs_skew_only(tmp_path: Path) -> None:
    """leftovers 1: the bound itself is taken, and keeps a token valid that long past its `exp`
    (60 s), no longer."""
    broker, token = _issued(tmp_path)
    most = limits.MAX_TOKEN_LEEWAY_SECONDS
    keys = broker.jwks(NOW)
    validate_token(token, keys, audience="svc", now=NOW + 60 + most - 1, leeway=most)
    with pytest.raises(SecretError):
        validate_token(token, keys, audience="svc", now=NOW + 60 + most, leeway=most)


def test_two_reloads_at_once_leave_no_active_bundle_listed_unloaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """leftovers 3: the first reload's check of the stored bundle cannot be made
    (PolicyNotChecked) and returns only once a second reload has run (or after a second, when
    the second waits for the first); the bundle is then either active or listed as not loaded,
    never both (it was both: the second reload activated it, the first noted it dormant)."""
    world = make_world()
    other = BundleStore(world.verifier, world.store(world.bundle()).table)
    first_in, second_done = threading.Event(), threading.Event()

    def load(data: bytes, **kwargs: Any) -> Any:
        if threading.current_thread().name == "first":
            first_in.set()
            second_done.wait(1.0)  # the fix keeps the second out meanwhile
            raise PolicyNotChecked(PolicyFailure.OVER_LIMIT, "the validating process did not start")
        return load_stored_bundle(data, **kwargs)

    monkeypatch.setattr("troth.gates.store.load_stored_bundle", load)

    def second() -> None:
        try:
            other.reload(now=T + 5)
        finally:
            second_done.set()

    first = threading.Thread(target=lambda: other.reload(now=T + 5), name="first")
    first.start()
    assert first_in.wait(5)
    later = threading.Thread(target=second, name="second")
    later.start()
    first.join(5)
    later.join(5)
    authority = world.authority.identifier
    listed = [digest for digest, _ in other.dormant.unloaded()]
    assert (other.active(authority) is not None) != (authority.digest in listed)


def test_a_node_that_takes_no_request_bounds_the_clients_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """leftovers 4: a listener that accepts nothing and reads nothing (a hung node, its
    process the one the client expects), a request of MAX_CONTROL_REQUEST and a send buffer of
    a few KB (as on platforms where a unix socket's is 8 KB): the client waited for its request
    to be taken for ever (here: until the test's 5 s bound); now TimeoutError once
    CONTROL_IO_TIMEOUT (shortened here) is past, saying the request was not taken."""
    monkeypatch.setattr(daemon, "CONTROL_IO_TIMEOUT", 0.2)
    real_connect = daemon._connect

    async def small_buffer(path: str, op: str, timeout: float) -> socket.socket:
        client = await real_connect(path, op, timeout)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        return client

    monkeypatch.setattr(daemon, "_connect", small_buffer)
    with tempfile.TemporaryDirectory(dir="/tmp") as directory:  # a short socket path
        path = os.path.join(directory, "c.sock")
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(path)
            listener.listen(1)
            blob = b"x" * (limits.MAX_CONTROL_REQUEST - 1024)
            request = daemon._control_request(path, "push", {"blob": blob}, 60.0, os.getpid())
            with pytest.raises(TimeoutError, match="did not take"):
                asyncio.run(asyncio.wait_for(request, 5))


_ROW = 8 * 1024 * 1024
_EDITS = {
    "head hash": ("UPDATE agents SET hash = zeroblob(?)", "append"),
    "head seq": ("UPDATE agents SET seq = CAST(zeroblob(?) AS TEXT)", "append"),
    "history hash": ("UPDATE histories SET current = zeroblob(?)", "append"),
    "size": ("UPDATE meta SET value = zeroblob(?) WHERE name = 'size'", "append"),
    "checkpoint note": ("UPDATE checkpoints SET note = zeroblob(?)", "checkpoint"),
    "checkpoint root": ("UPDATE checkpoints SET root = zeroblob(?)", "checkpoint"),
    "checkpoint time": ("UPDATE checkpoints SET time = zeroblob(?)", "checkpoint"),
    "disclosures": ("UPDATE leaves SET disclosures = zeroblob(?)", "redact"),
}


def _tampered(tmp_path: Path, edit: str, write: str) -> tuple[TraceLog, Callable[[], object]]:
    """A log of two records of one agent and a checkpoint, `edit` run on its file with an
    8 MiB value, opened again (nothing cached), and the write the edit is in the way of."""
    clock, owner, agent = FixedClock(NOW), Held(), Held()
    path = tmp_path / "log.db"
    with open_log(path, clock, owner) as log:
        writer = recorder(log, agent, clock)
        first, _ = writer.record(tool_call()), writer.record(tool_call())
        log.checkpoint()
        raw = db(log)
        raw.execute(edit, (_ROW,))
        raw.close()
    log = open_log(path, clock, owner)
    writes: dict[str, Callable[[], object]] = {
        "append": lambda: recorder(log, agent, clock).record(tool_call()),
        "checkpoint": log.checkpoint,
        "redact": lambda: log.redact(first.record, "args", agent=agent.identifier),
    }
    return log, writes[write]


@pytest.mark.parametrize("what", sorted(_EDITS))
def test_a_huge_row_of_the_logs_own_file_is_refused_unread_by_its_writer(
    tmp_path: Path, what: str
) -> None:
    """leftovers 2: a row of the log's file the writer reads (an agent's head, a signer's
    stored history hash, the log's size, a checkpoint's note, root or time, a record's
    disclosures) made 8 MiB: the next append, checkpoint or redaction fetched it whole (a peak
    of 8 MiB and more) before failing on it, or not at all; now it is refused with the log's
    TraceError (OVER_LIMIT past its bound, MALFORMED of another type), never fetched."""
    log, write = _tampered(tmp_path, *_EDITS[what])
    with log:
        refused, peak = _peak(write)
    assert refused.reason in (TraceFailure.OVER_LIMIT, TraceFailure.MALFORMED)
    assert peak < _ROW // 2


def test_a_huge_chain_row_the_catch_up_of_issued_links_reads_is_not_fetched() -> None:
    """leftovers 2: a log kept before the issued links' table (review 60b: each append that
    keeps a chain notes the links of the chains kept before, ISSUED_LINKS_CATCH_UP at a time)
    whose older chain row was made 8 MiB: the next append keeping a chain fetched it whole to
    decode it. It is now not fetched (past MAX_CHAIN_BYTES: no chain, noted as none, as a row
    that does not decode; the verifier reports it)."""
    clock = start()
    flood(1, clock=clock)
    as_before_the_table()
    with sqlite3.connect(node_trace_db(troth_home())) as conn:
        conn.execute("UPDATE chains SET chain = zeroblob(?)", (_ROW,))
    tracemalloc.start()
    try:
        flood(1, clock=clock)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < _ROW // 2


@dataclass
class HugeEscalation:
    """A log (its owner's) holding an agent's escalation to a human whose stored envelope was
    then made 8 MiB."""

    path: Path
    clock: FixedClock
    owner: Held
    agent: Held
    human: Held
    asked: Receipt

    def log(self) -> TraceLog:
        return open_log(self.path, self.clock, self.owner)


def huge_escalation(tmp_path: Path) -> HugeEscalation:
    clock, owner, agent, human = FixedClock(NOW), Held(), Held(), Held()
    path = tmp_path / "log.db"
    with open_log(path, clock, owner) as log:
        asked = recorder(log, agent, clock).escalate(human.identifier, question="refund?")
        raw = db(log)
        raw.execute("UPDATE leaves SET envelope = zeroblob(?) WHERE idx = ?", (_ROW, asked.index))
        raw.close()
    return HugeEscalation(path, clock, owner, agent, human, asked)


def test_the_huge_envelope_a_resolution_answers_is_not_fetched(tmp_path: Path) -> None:
    """leftovers 2: an escalation's stored envelope made 8 MiB, then its answer appended (its
    link naming the escalation's hash as it was): the append fetched the envelope whole to
    check the answer against it; now it is refused, OVER_LIMIT, never fetched."""
    held = huge_escalation(tmp_path)
    asked = held.asked
    links = Links(parent=asked.record, parent_agent=held.agent.identifier, parent_hash=asked.hash)
    answer = RecordContent(
        Kind.RESOLUTION,
        values={"inputs": "the order", "reasoning": "fine"},
        decision=Decision("approved"),
        links=links,
    )
    with held.log() as log:
        refused, peak = _peak(lambda: recorder(log, held.human, held.clock).record(answer))
    assert refused.reason is TraceFailure.OVER_LIMIT
    assert peak < _ROW // 2


def test_a_huge_redaction_mark_is_not_fetched_at_open(tmp_path: Path) -> None:
    """leftovers 2: the `redacting` mark (16 random bytes a redaction's commit sets) made
    8 MiB: opening the log fetched it whole to finish the redaction it names, then cleared it;
    now it is not fetched, and stays (the next redaction sets its own)."""
    clock, owner = FixedClock(NOW), Held()
    path = tmp_path / "log.db"
    with open_log(path, clock, owner) as log:
        raw = db(log)
        raw.execute("INSERT INTO meta VALUES ('redacting', zeroblob(?))", (_ROW,))
        raw.close()
    tracemalloc.start()
    try:
        open_log(path, clock, owner).close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < _ROW // 2
    with sqlite3.connect(path) as raw:
        kept = raw.execute("SELECT length(value) FROM meta WHERE name = 'redacting'").fetchall()
    assert kept == [(_ROW,)]


def test_a_huge_row_of_a_schema_3_log_is_not_fetched_by_its_migration(tmp_path: Path) -> None:
    """leftovers 2: a log of schema 3 (ids unique in the log) holding a crafted record row of
    8 MiB: the migration to schema 4, filing each row under the agent its envelope names,
    fetched it whole at the open. It is now copied unread (no agent to read: filed under none,
    as an envelope that does not decode), and the verifier reports it at its index."""
    clock, owner, agent = FixedClock(NOW), Held(), Held()
    path = tmp_path / "log.db"
    with open_log(path, clock, owner) as log:
        recorder(log, agent, clock).record(tool_call())
        raw = db(log)
        as_schema_3(raw)
        raw.execute(
            "INSERT INTO leaves SELECT 1, 'x', leaf, zeroblob(?), NULL FROM leaves", (_ROW,)
        )
        raw.execute("UPDATE meta SET value = 2 WHERE name = 'size'")
        raw.close()
    tracemalloc.start()
    try:
        log = open_log(path, clock, owner)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    with log, pytest.raises(TraceError) as refused:
        verify_log(log)
    assert (refused.value.reason, refused.value.index) == (TraceFailure.OVER_LIMIT, 1)
    assert peak < _ROW // 2


_DATING = {  # the edit, the identity rotated
    "chain": ("UPDATE chains SET chain = chain || zeroblob(?)", "boss"),
    "link": ("UPDATE issued_links SET link = zeroblob(?)", "boss"),
    "time": ("UPDATE agents SET time = zeroblob(?)", "agent"),
}


@pytest.mark.parametrize("what", sorted(_DATING))
def test_a_huge_row_a_rotation_dates_itself_by_is_not_fetched(what: str) -> None:
    """leftovers 2: a rotation reads the node's trace log to date itself no earlier than what
    the identity signed there (`signed_until`: its newest record, the newest link it issued
    of a chain the log keeps); a kept chain holding its digest, its `issued_links` row or an
    agent's head time made 8 MiB was fetched whole by the next rotation of a node's identity.
    Now none is (a row that is not what it should be dates nothing, as before: a damaged log
    never refuses a rotation)."""
    clock = start()
    now = clock.now()
    boss_link(now, clock=clock)
    if what == "chain":
        as_before_the_table()  # the chains after the mark are searched (none noted)
    edit, name = _DATING[what]
    with sqlite3.connect(node_trace_db(troth_home())) as conn:
        conn.execute(edit, (_ROW,))
    tracemalloc.start()
    try:
        with Node.open(home=troth_home(), clock=FixedClock(now)) as node:
            node.identities.rotate(name)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < _ROW // 2
