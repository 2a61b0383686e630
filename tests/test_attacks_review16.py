"""Review 16's attacks: the fixes of review 15 (d291224, context 2d217ac): a checkpoint's log
key judged by the newest view, window_around stepping the histories cache, the recorder's
one retry on KeyNotFound, `troth authority list` pins.

Each test asserts the secure or correct behaviour and is marked xfail while main has the bug.
"""

# Held (tried, no test kept; "ran" = exercised here, "read" = from the code only):
# - ran: honest checkpoints after the log identity rotates (a node log, checkpoint at NOW,
#   rotation at NOW + 100, a new checkpoint after it): `verify_log` with the node's rows and
#   with no node, the old checkpoint as the kept anchor, a `prove` bundle of the old
#   checkpoint and a full export verified on the node: all valid. check_time takes a
#   checkpoint of the rotation's own second as made before it (`at > retired_at`), as for
#   records.
# - read: every path that verifies a checkpoint passes `resolve=` (LogVerifier's checkpoints
#   and anchor, verify_bundle's `_checkpoint`); verify_bundle's anchor is only parsed (the
#   verifier's own file); with no node (`rows` None) the bundle's history is all there is.
#   Not new: `_judge` resolves in the newest log history only, not the windows the log kept
#   (`_resolve`), so a log identity past 64 changes verified with no node would refuse its
#   older checkpoints (before d291224 too).
# - read: window_around caches only a copy it decoded (DecodeError: None before `remember`),
#   the store's committed row for that same identifier (SQLite reads see a committed
#   snapshot, never a half-written row); `remember` never replaces a fresh entry ending
#   later, and the store only grows, so the cache holds a copy the store held: a later
#   legitimate extension is checked against that copy and stored (check_extends).
# - ran: TraceRecorder._signed retries once (renew=True re-raises), a static Signer has no
#   source (its KeyNotFound is raised); the source's signer is re-read from the store
#   (`_local` compares the stored history, so a stale verified copy is not reused). Rotations
#   through the recorder's own IdentityService: the retry renews and signs under the new
#   change (review 15's test). Another process's rotation: test 2.
# - ran: `troth authority list --json` with one node's vault key removed: that row has pin
#   null and pin_unavailable (the vault error), the other its pin; a node whose node.json is
#   garbage or has a malformed `vault` setting is dropped by the directory, not by `_pin`.

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.traces import DAY, NOW, tool_call
from tests.test_attacks_review15 import thief_export_verified
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.node import init_node, open_node
from troth.trace import TraceRecorder
from troth.trace.log import open_node_log
from troth.trace.verify import verify_log

# -- 1. a retired log key signs a backdated checkpoint -------------------------------------------


def test_a_checkpoint_dated_before_the_records_it_covers_is_refused(tmp_path: Path) -> None:
    """Review 15's thief, one step further. The log identity's key under change 0 leaks; the
    identity rotates a day later. d291224 refuses the thief's checkpoint dated after the
    rotation, but `troth-time` is the thief's to choose: it signs its checkpoint dated a
    minute before the rotation, over records made (and appended) a day after it. Nothing
    compares a checkpoint's time with the records it covers, though the log vouches that it
    appended each record within 300 s of its `t` (formats.md, "When a record entered the
    log"): a checkpoint older than a record it covers is a contradiction only a forger
    makes, and here it carries a retired key past d291224."""
    with pytest.raises(TraceError) as raised:  # troth-time: a minute before the rotation
        thief_export_verified(tmp_path, checkpoint_at=NOW + DAY - 60)
    assert raised.value.reason is TraceFailure.CHECKPOINT_INVALID


# -- 2. a recorder signs with a retired key after a rotation in another process -------------------


def test_a_recorder_in_another_process_stops_signing_with_a_rotated_key(tmp_path: Path) -> None:
    """d291224 renews the recorder's signer on KeyNotFound, tested with the rotation made
    through the recorder's own IdentityService (one vault object). A rotation elsewhere
    (`troth identity rotate`, another process) deletes the key's sealed row, but the
    recorder's process keeps the private key in its vault cache (SoftwareVault._cache): the
    sign succeeds, no KeyNotFound, and the record is signed under change 0 thirty seconds
    after change 1 retired it. The log (which has not seen change 1) appends it, and the
    node's own `troth trace verify` then refuses the log at that record for good (`signed
    by a key after its retirement`): an honest agent's log is broken by a routine rotation."""
    init_node("acme")
    with open_node("acme") as process_a, open_node("acme") as process_b:
        process_a.identities.create(now=NOW, name="agent")
        clock = FixedClock(NOW)
        with open_node_log(process_a, clock=clock) as log:
            identities = process_a.identities
            recorder = TraceRecorder(
                log, lambda now: identities.signer("agent", now=now), clock=clock
            )
            recorder.record(tool_call("before"))
            process_b.identities.rotate("agent", now=NOW + 10)
            clock.advance(30)
            recorder.record(tool_call("after"))
            verify_log(
                log,
                known=identities.check_no_fork,
                checkpoints=identities.attested_by_store,
                rows=identities.window_around,
            )
            assert log.size() == 2
