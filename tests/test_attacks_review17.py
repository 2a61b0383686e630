"""Review 17's attacks: the fixes of review 16 (7eff1a4): the node log refuses a key attested
under an older change than its node's store holds (`TraceLog._admit`, `SignerBridge.newest`),
and a checkpoint dated more than 300 s before a record it covers is refused
(`check_checkpoint_time`), the log dating its checkpoints no earlier than its records.

Each test asserts the secure or correct behaviour and is marked xfail while main has the bug.
"""

# Held (tried, no test kept; "ran" = exercised here, "read" = from the code only):
# - read: a remote agent cannot be locked out by the new node-store check beyond what was refused
#   before: the trace service's collector observes the submitted history into the node's store first
#   (store-or-extend, `identities.observe`), so an older presented history (ROLLBACK) or a fork the
#   node stored first (a thief who rotated a stolen backup: FORK) is refused there before `_admit`
#   runs (SIGNER_INVALID; since review 48a, resend 1, an older prefix of the stored copy is refused
#   ATTESTATION_STALE per record, nothing appended); after `observe` the store's newest index equals
#   the presented one (a concurrent extension only makes the record stale, which the log's own check
#   already refused). A local identity is never replaced by an observed copy, so the node's own
#   agent cannot be pinned to a thief's fork either.
# - read: `newest_change` is index-based (`changes` = current index + 1, also for a history
#   presented from a checkpoint), so a checkpointed suffix does not weaken the comparison.
# - read: the recorder's renew-and-retry terminates: `_RETRIED` allows 3 attempts, attempts
#   after the first ask the source afresh (`renew=True`); a source that keeps returning the
#   retired signer fails with ATTESTATION_STALE after 3 commits, it does not loop.
# - read: cost per commit: one `get_history` per distinct agent per commit (cached in
#   `_Batch.node_newest`), read inside the log's write transaction; it fetches the whole
#   history blob (up to 32 KiB) to use only its `changes` column (a `SELECT changes` would do).
# - read: honest logs made before 7eff1a4 pass `check_checkpoint_time` while the log's clock
#   never stepped back (a record is admitted within 300 s of the clock, the checkpoint is
#   signed later); one whose clock stepped back more than 300 s between a record and the next
#   checkpoint now fails verification (the old dating used only older checkpoints).
# - read: a bundle checks its checkpoint's time against its own record only; a retired log
#   key may still sign a checkpoint dated before its retirement over a forked tree holding an
#   old genuine record (inherent: the bundle reveals no other record's time); an export
#   checks every line's record, so all records it carries.

from __future__ import annotations

from pathlib import Path

from tests.support.traces import NOW, Held, tool_call
from troth.clock import FixedClock
from troth.node import init_node, open_node
from troth.trace import TraceRecorder
from troth.trace.log import open_node_log
from troth.trace.verify import verify_log

# -- 1. a checkpoint dated ahead of its log's clock outlives the log key's rotation ---------------


def test_a_log_identity_rotation_does_not_break_a_checkpoint_signed_before_it(
    tmp_path: Path,
) -> None:
    """7eff1a4 dates a checkpoint `max(now, latest record time)`. An honest agent whose clock
    runs 200 s ahead (within the log's 300 s window) records at NOW + 200; the log, at NOW,
    signs a checkpoint dated NOW + 200 with its key of change 0. Ten seconds later the node
    rotates its log identity (`troth identity rotate`, routine). The checkpoint now claims a
    time after change 0 retired (NOW + 10): `check_time` refuses it as KEY_RETIRED, and the
    node's own `troth trace verify` fails on an honest log, for good (the checkpoint is
    stored). Before 7eff1a4 it was dated NOW."""
    init_node("acme")
    with open_node("acme") as node:
        clock = FixedClock(NOW)
        agent = Held(now=NOW)
        identities = node.identities
        with open_node_log(node, clock=clock) as log:
            agent_clock = FixedClock(NOW + 200)  # ahead of the log, within its window
            TraceRecorder(log, agent.signer(NOW), clock=agent_clock).record(tool_call("ahead"))
            log.checkpoint()  # signed at NOW by the log key of change 0
            identities.rotate(str(log.log_identity), now=NOW + 10)
            clock.advance(60)
            log.checkpoint()  # does nothing new: same size
            verify_log(
                log,
                known=identities.check_no_fork,
                checkpoints=identities.attested_by_store,
                rows=identities.window_around,
            )
