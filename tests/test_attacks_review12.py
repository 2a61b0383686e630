"""Review 12's attacks: today's fixes (the brokers' peer lock, a ticket's authority history
stored when its enrollment completes, check_no_fork before a checkpointed copy, needs_refresh
by known_changes).

Each test asserts the secure or correct behaviour and is marked xfail while main has the bug.
"""

# Held (tried, no test kept):
# - the brokers' peer lock: a refused LOCK_EX drops the caller's LOCK_SH (flock(2) conversion),
#   so two brokers recovering at once may let the second see "alone" while the first holds
#   nothing; but the first is inside its own recover (nothing of it in flight) and any broker
#   with an issue in flight never leaves LOCK_SH, so no in-flight lease is aborted early. A
#   SIGKILLed broker's lock goes with its descriptors; the file is opened O_CLOEXEC (Python's
#   default) and troth never forks without exec (the daemon: Popen; MCP servers: subprocess),
#   so no child keeps a broker "open". Another uid cannot reach <db>.brokers inside a node's
#   0700 directory (a library user putting node.db in a shared directory could pre-create it
#   and hold LOCK_SH, which only falls back to the documented grace, or LOCK_EX, which blocks
#   every Broker() there: the same exposure as the database file itself). One broker, one fd:
#   the CLI's put_secret closes its broker; the served broker closes it on stop. Noted, not
#   tested: BrokerService._open leaves the broker (and its LOCK_SH) unclosed when recover
#   raises, until the collector breaks Broker's engine-lambda cycle.
# - PENDING leases: the served broker sweeps every SWEEP_SECONDS and aborts those older than
#   the grace whoever is open, so none outlives grace + SWEEP_SECONDS while a served broker
#   runs; with none running, the next one to start alone aborts all.
# - complete_enrollment: a crash inside its transaction (holder.enroll.before-commit) leaves
#   the pending record and nothing stored; resumption re-checks and re-imports the ticket's
#   history; a failed transaction drops the cached copy of the same identifier it imported
#   (pending.authority is the ticket's); two processes enrolling with one new authority at
#   once: the second's checkpoint is attested by the first's stored copy.
# - check_no_fork: a fork ending before a checkpointed stored copy is refused (remote: no
#   rows; local: its rows differ); a stale cached span can only hold an earlier `first`, whose
#   hashes the prefix is compared with. A remote identity's old records after its stored copy
#   became checkpointed are refused, as docs/traces.md now says.
# - needs_refresh by known_changes: both numbers come from histories signed by the authority
#   (a feed's supersession, the stored copy), and a refreshed chain carries the authority's
#   current history, so it stops asking after one refresh; chains always carry the root
#   authority's history (authority_changes is None only for an unreadable stored chain).
# - bench 8215270: the rotation floor's write runs at the node's durability, in the same
#   directory, with the lease floor's row (ROW_BYTES, one transaction): fair.

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.nodes import MemNet
from tests.support.traces import tool_call
from troth.authority.client import authority_pin_of
from troth.clock import FixedClock
from troth.errors import TraceError
from troth.node import Node, init_node, open_node
from troth.node.runtime import ECHO
from troth.node.services import call
from troth.node.traces import traced_as
from troth.routing import parse_route
from troth.trace.log import TraceLog
from troth.trace.verify import verify_log


def _run_with_long_hub(test: Callable[[MemNet], Awaitable[None]], home: Path) -> None:
    """`run_memnet` with a hub whose authority identity rotated 70 times (each rotation's
    feed page signed before the next, as in review 9's test), the clock moved past them."""

    async def main() -> None:
        net = MemNet(home, FixedClock(int(time.time())))

        def long_authority(node: Node) -> None:
            authority = node.create_authority("hub", now=net.clock.now())
            for _ in range(70):
                net.clock.advance(60)
                node.identities.rotate("hub", now=net.clock.now())
                authority.feed(now=net.clock.now())

        try:
            net.hub = await net.node("hub", listen=("hub", 4000), prepare=long_authority)
            await asyncio.wait_for(test(net), 60)
        finally:
            for runtime in reversed(net.runtimes):
                await runtime.stop()
            for node in net.opened:
                node.close()

    asyncio.run(main())


def test_a_new_member_enrolls_over_a_channel_with_an_authority_past_64_changes(
    tmp_path: Path,
) -> None:
    """An honest authority past 64 changes presents its history from a checkpoint on the
    channel; a new member holds neither a stored copy nor a feed of it yet, only the ticket."""

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        presented = net.hub.node.identities.get("hub", now=net.clock.now()).identity
        assert presented.first_index > 0  # the hub presents a checkpointed history
        newbie = await net.node("newbie")
        pin = authority_pin_of(presented)  # confirmed with the hub's operator
        await newbie.enroll(net.ticket(), "newbie", pin)
        assert newbie.node.wallet.held("newbie")

    _run_with_long_hub(test, tmp_path)


# -- 2. a node's own log, its identity past 64 changes -------------------------------------------


def _long_lived(node: Node, start: int, *, record_each: bool) -> int:
    """Review 9's monthly rotations for six years: node's identity rotated 70 times, each
    published in its authority's feed (so the node presents it from a checkpoint), a record
    signed into the node's log before them (and after each, with `record_each`)."""
    authority = node.create_authority(node.name, now=start)
    at = start
    with traced_as(node, node.name, clock=FixedClock(at)) as early:
        early.record(tool_call("before-rotations"))
    for _ in range(70):
        at += 60
        node.identities.rotate(node.name, now=at)
        authority.feed(now=at)
        if record_each:
            with traced_as(node, node.name, clock=FixedClock(at)) as each:
                each.record(tool_call("after-a-rotation"))
    assert node.identities.get(node.name, now=at).identity.first_index > 0
    return at


def test_a_nodes_own_log_verifies_after_its_identity_passes_64_changes() -> None:
    """An honest long-lived identity signs records into its node's log all along: `troth trace
    verify` must answer valid (today's fix says a node's own identities pass: it keeps their
    change rows), but the log files the history the identity presents, from a checkpoint."""
    init_node("acme")
    with open_node("acme") as acme:
        _long_lived(acme, int(time.time()), record_each=True)
    run("trace", "verify", "--node", "acme")  # on main: exit 1, "signer identity invalid"
    _exported_and_verified("acme")


def _exported_and_verified(node: str) -> None:
    """The node's log exported (each record with the history that resolves its key) verifies
    on the node, record signed before the 64 changes included."""
    run("trace", "checkpoint", "--node", node)
    export = Path(tempfile.mkdtemp()) / "export.jsonl"
    run("trace", "export", "--format", "jsonl", "--out", str(export), "--node", node)
    assert len(export.read_text().splitlines()) > 1
    run("trace", "verify", "--file", str(export), "--node", node)


def test_a_nodes_log_takes_records_after_its_identity_rotated_64_times_in_silence() -> None:
    """The identity signed a record, then rotated 70 times without signing one (an agent that
    acts rarely): every record it signs now is refused, so whatever must be recorded first (a
    delegation, a gate's decision, a lease) fails closed for good."""
    init_node("acme")
    with open_node("acme") as acme:
        at = _long_lived(acme, int(time.time()), record_each=False)
        with traced_as(acme, "acme", clock=FixedClock(at + 1)) as late:
            late.record(tool_call("after-rotations"))  # on main: TraceError, signer invalid
    # and the record made before the rotations still verifies: its key, under change 0, was
    # retired by change 1, which the node's rows bridged into the log
    run("trace", "verify", "--node", "acme")
    _exported_and_verified("acme")


def test_a_key_whose_retirement_the_log_cannot_show_is_refused() -> None:
    """Deny when in doubt: without the bridged window (deleted here), nothing the log kept says
    when the key of change 0 retired, so a verifier with the log alone refuses its record, not
    taking it as current; the node itself still reads it from its own change rows."""
    init_node("acme")
    with open_node("acme") as acme:
        at = _long_lived(acme, int(time.time()), record_each=False)
        with traced_as(acme, "acme", clock=FixedClock(at + 1)) as late:
            late.record(tool_call("after-rotations"))
        trace_db = acme.path / "trace.db"
    with sqlite3.connect(trace_db) as conn:
        assert conn.execute("DELETE FROM history_windows WHERE last > 0").rowcount == 1
    refused = pytest.raises(TraceError, match=r"change 1 \(which retired this key\) is in no")
    with TraceLog.open(trace_db, clock=FixedClock(at + 2)) as alone, open_node("acme") as node:
        attests = node.identities.attested_by_store
        with refused:
            verify_log(alone, checkpoints=attests)
    run("trace", "verify", "--node", "acme")


def test_members_of_an_authority_past_64_changes_reach_each_other(tmp_path: Path) -> None:
    """Chains rooted at an authority that presents its history from a checkpoint verify at
    another member: the authority's feed names its own rotations, so its checkpointed history
    is bound to its chains (review 23a's rule, checkpoints 1-2, must not refuse it)."""

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        presented = net.hub.node.identities.get("hub", now=net.clock.now()).identity
        assert presented.first_index > 0
        pin = authority_pin_of(presented)
        a = await net.node("a", listen=("a", 4000))
        b = await net.node("b")
        await a.enroll(net.ticket(), "a", pin)
        await b.enroll(net.ticket(), "b", pin)
        end = await b.channel_to(parse_route("/tcp/a:4000"))
        assert await call(b.router, (end.enc, ECHO), "echo", "across") == "across"

    _run_with_long_hub(test, tmp_path)
