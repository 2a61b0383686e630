"""A node's rotation of a local identity, the one place `troth identity rotate` and the Python
API's `Node.identities.rotate` make it: dated no earlier than what the identity signed in the
node's trace log (docs/formats.md, "Signatures outlive rotations").

A record may be dated up to MAX_CLOCK_SKEW_SECONDS ahead of the log (a clock since stepped back
by NTP, a recorder's clock ahead), and a change dated before it retires the record's key before
the record by the rule: every later `troth trace verify` of the node's log named that record
`signed by a key after its retirement`, though its key was current when it entered the log
(review 58c, trace 3; the log identity's checkpoints likewise: review 59b, trace 2; a link it
issued of a chain the log keeps: review 59i, rotation 1). The rule
stays (it is what refuses a thief's record after a rotation); the node dates its change at the
later of its clock and that record (`troth.trace.signed_until`), never more than
MAX_CLOCK_SKEW_SECONDS ahead of its clock (a later change is one verifiers refuse as from the
future, this node too), and never before the identity's current change (a change dated ahead
before, its log since lost, would have the rotation refused as dated before it: nothing may
keep a compromised key from rotating). A compromised rotation (`--compromised`) is dated by
the clock and the current change only: what the log holds signed by that key may be the
thief's, dated ahead to date the rotation ahead, which every verifier whose clock is behind the
node's then refused as from the future, accepting the stolen key meanwhile (review 59i,
rotation 2); a record of the node's own dated ahead of it is then named retired, as a key
known stolen should have it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from troth import limits
from troth.clock import Clock
from troth.crypto import KeyType
from troth.errors import TrothError
from troth.identity.local import LocalIdentity
from troth.identity.service import IdentityService
from troth.node.node import Node
from troth.node.rotation_revoke import failed, mark_due
from troth.trace.log import LOG_FILE
from troth.trace.signed_until import signed_until

__all__ = ["rotate_local"]


def rotate_local(
    node: Node,
    ref: str,
    *,
    clock: Clock,
    key_type: KeyType | None = None,
    compromised: bool = False,
) -> LocalIdentity:
    """Rotate `node`'s local identity `ref` (`IdentityService.rotate`), its change dated at
    the later of `clock` (read once the write lock is held) and the newest record (for the
    log's identity, checkpoint; of a kept chain, link) it signed in the node's trace log, at most
    MAX_CLOCK_SKEW_SECONDS after `clock`, and not before its current change (`compromised`:
    the log not read, and on a broker node its leases recorded due for revocation first:
    troth.node.rotation_revoke; the caller revokes them, then marks them `done`)."""
    identities = node.identities
    identities.check_restored(clock)  # a restore found is held at the clock's own time
    log = None if compromised else node.path / LOG_FILE  # (review 59i, rotation 2)
    dated = _AfterSigned(clock, identities, ref, log)
    # the broker's revocation recorded due first: a kill after the commit loses it not
    due = mark_due(node, ref) if compromised else None  # (review 67l, rotate 1)
    try:
        return identities.rotate(ref, now=dated, key_type=key_type, compromised=compromised)
    except BaseException:
        if due is not None:  # no rotation, nothing due (one committed keeps its row; a
            # row left by a failure here is finished by the identity's next rotation)
            with contextlib.suppress(TrothError):
                failed(node, due)
        raise


class _AfterSigned:
    """`clock`, read inside the rotation's transaction, moved on to what identity `ref` signed
    in the log at `log` (one read-only query of it) and to its current change (the look-up
    the rotation makes next, its history verified once for both)."""

    def __init__(
        self, clock: Clock, identities: IdentityService, ref: str, log: Path | None
    ) -> None:
        self._clock = clock
        self._identities = identities
        self._ref = ref
        self._log = log

    def now(self) -> int:
        now = self._clock.now()
        try:
            identity = self._identities.get(self._ref, now=now).identity
        except TrothError:  # the rotation refuses it, by its own reason
            return now
        floor = max(
            identity.current.body.created_at,
            (signed_until(self._log, identity) if self._log is not None else None) or now,
        )
        return max(now, min(floor, now + limits.MAX_CLOCK_SKEW_SECONDS))
