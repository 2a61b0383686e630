"""Review 59b (signed traces): a node's rotation of an identity it holds is dated no earlier
than that identity's newest record (or, for its log identity, checkpoint) in the node's trace
log (docs/formats.md, "Signatures outlive rotations"); review 58c, trace 3, what was left."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import run, run_json
from tests.support.traces import node_trace_db, tool_call
from troth import Node
from troth.clock import Clock, FixedClock, SystemClock
from troth.limits import MAX_CLOCK_SKEW_SECONDS
from troth.node import open_node, troth_home
from troth.trace import TraceRecorder, open_node_log


def _record(name: str, at: int, *, log_clock: Clock | None = None) -> None:
    """One record of identity `name` of the node "default", dated `at`, appended to the node's
    log (whose clock is the system's unless `log_clock`)."""
    with (
        open_node("default", home=troth_home()) as node,
        open_node_log(node, clock=log_clock or SystemClock()) as log,
    ):
        signer = node.identities.signer
        TraceRecorder(log, lambda now: signer(name, now=now), clock=FixedClock(at)).record(
            tool_call()
        )


def _changes(name: str, now: int) -> list[int]:
    """When each change of local identity `name` of the node "default" was made."""
    with open_node("default", home=troth_home()) as node:
        identity = node.identities.get(name, now=now).identity
        return [change.body.created_at for change in identity.changes]


def _rotate(at: int, name: str = "support", *, compromised: bool = False) -> None:
    """`name` rotated through the Python API, the node's clock reading `at`."""
    with Node.open(home=troth_home(), clock=FixedClock(at)) as node:
        node.identities.rotate(name, compromised=compromised)


def test_trace1_the_apis_rotation_after_a_record_dated_ahead_leaves_verify_valid() -> None:
    """review 59b, trace 1: as review 58c's trace 3 (left) through `Node.identities.rotate`:
    its change dated at the node's clock, before the record the log holds, named that record
    `signed by a key after its retirement` at every later verification."""
    run("identity", "create", "support")
    now = SystemClock().now()
    _record("support", now + 250)
    _rotate(now)
    _record("support", now + 260)  # the new key signs on
    report = run_json("trace", "verify")
    assert (report["status"], report["records"]) == ("unanchored", 2)
    assert _changes("support", now)[1:] == [now + 250]


def test_a_compromised_rotation_is_dated_by_the_clock_not_the_log() -> None:
    """review 59i, rotation 2: what the log holds signed by a key known stolen may be the
    thief's; a compromised rotation is dated at the clock, and the record dated ahead of it is
    named signed by a key after its retirement."""
    run("identity", "create", "support")
    now = SystemClock().now()
    _record("support", now + 250)
    _rotate(now, compromised=True)
    assert _changes("support", now)[1:] == [now, now]  # (a compromised rotation: two changes)
    assert "retire" in run("trace", "verify", code=1).stderr


def test_trace2_rotating_the_log_identity_after_a_checkpoint_dated_ahead() -> None:
    """review 59b, trace 2: the log identity signs the log's checkpoints, dated up to 300 s
    ahead of its clock (after a record dated ahead, or by a clock since stepped back);
    `troth identity rotate` of it dated its change before the newest checkpoint, which every
    later `troth trace verify` then refused as signed only by a key retired before it."""
    run("identity", "create", "support")
    now = SystemClock().now()
    _record("support", now + 250)
    with (
        open_node("default", home=troth_home()) as node,
        open_node_log(node, clock=FixedClock(now + 250)) as log,
    ):
        log.checkpoint()
        signer = str(log.log_identity)
    run("identity", "rotate", signer)
    report = run_json("trace", "verify")
    assert (report["status"], report["records"]) == ("unanchored", 1)
    assert _changes(signer, now)[1:] == [now + 250]


def test_a_clock_far_behind_the_record_still_rotates() -> None:
    """The change is dated at most MAX_CLOCK_SKEW_SECONDS ahead of the node's clock, so the
    history stays valid where it is made (a later one is a FUTURE_CHANGE): a rotation is never
    refused for a record dated ahead, its log then names that record (docs/formats.md)."""
    now = SystemClock().now()
    with Node.open(home=troth_home(), clock=FixedClock(now - 1000)) as node:
        node.identities.create("support")
    _record("support", now + 250)
    behind = now - 400
    _rotate(behind)
    assert _changes("support", behind)[1:] == [behind + MAX_CLOCK_SKEW_SECONDS]


def test_a_rotation_after_the_log_is_lost_is_not_refused() -> None:
    """A rotation dated ahead by the log, then the log gone (deleted, or unreadable): the next
    rotation, its clock still before the first's date, is dated at it, not refused as a change
    dated before the previous one (TIME_REVERSED): nothing keeps a compromised key from
    rotating."""
    run("identity", "create", "support")
    now = SystemClock().now()
    _record("support", now + 250)
    _rotate(now)
    for name in ("", "-wal", "-shm"):
        Path(f"{node_trace_db(troth_home())}{name}").unlink(missing_ok=True)
    node_trace_db(troth_home()).write_bytes(b"not a database")
    _rotate(now + 10, compromised=True)
    assert _changes("support", now + 10)[1:] == [now + 250] * 3


def test_a_node_with_no_log_dates_its_rotation_at_its_clock() -> None:
    """No trace.db: the change is dated at the node's clock, and no log is made."""
    run("identity", "create", "support")
    now = SystemClock().now()
    _rotate(now)
    assert _changes("support", now)[1:] == [now]
    assert not node_trace_db(troth_home()).exists()
