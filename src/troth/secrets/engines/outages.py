"""Servers a remote engine could not reach (docs/secrets.md, "`postgres`: a role per lease"): a
connect that failed after `OUTAGE_MIN_COST` seconds or more (a connect timeout: a server that
stopped answering) marks its server unreachable for `OUTAGE_FACTOR` times what it cost (at most
`OUTAGE_MAX_SECONDS`), and a call to it meanwhile fails at once, ENGINE_FAILED, without
connecting.

Review 50c, outages 1: every call to a server that stopped answering cost the broker's single
thread a connect timeout (10 s by default, up to 60 s), and a member's issue cost two (the
engine's, then the revocation of the aborted lease): within its issue budget, 600 in a burst
and one a second after, one member held the thread for hours, every other agent's issue and
every feed's revocation queued behind it. Now a dead server costs at most about
1 / `OUTAGE_FACTOR` of the thread (one connect timeout per window); what fails meanwhile
(an issue, a renewal, a revocation: the lease stays REVOKING, retried by the sweep with its
backoff) fails at once. A fast failure (a refused connection, a wrong password, a database
that does not exist) costs nothing and marks nothing: no caller makes a server look down to
the others for longer than the connect it had to wait for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Final

from troth.errors import SecretError, SecretFailure

__all__ = ["OUTAGE_FACTOR", "OUTAGE_MAX_SECONDS", "OUTAGE_MIN_COST", "Outages"]

OUTAGE_MIN_COST: Final = 1.0
"""Seconds a failed connect must have taken to mark its server unreachable."""
OUTAGE_FACTOR: Final = 10
"""A server whose connect failed after `c` seconds is not tried again for `OUTAGE_FACTOR * c`
seconds: its connect timeouts take at most ~10% of the broker's thread."""
OUTAGE_MAX_SECONDS: Final = 600
"""Longest a server is marked unreachable after one failed connect."""

monotonic = time.monotonic
"""The clock the outages are timed with (tests replace it)."""


class Outages:
    """The servers of one engine marked unreachable, each until when (thread-safe)."""

    def __init__(self) -> None:
        self._until: dict[Hashable, float] = {}
        self._lock = threading.Lock()

    def check(self, server: Hashable, name: str) -> None:
        """SecretError ENGINE_FAILED, at once, while `server` (named `name`) is marked."""
        with self._lock:
            until = self._until.get(server)
            if until is None:
                return
            left = until - monotonic()
            if left <= 0:
                del self._until[server]  # (the next connect tries it again)
                return
        raise SecretError(
            SecretFailure.ENGINE_FAILED,
            f"{name} did not answer a connect: not tried again for {left:.0f} s",
        )

    def failed(self, server: Hashable, started: float) -> None:
        """A connect to `server` begun at `started` (`monotonic()`) failed."""
        now = monotonic()
        cost = now - started
        if cost < OUTAGE_MIN_COST:
            return
        with self._lock:
            self._until[server] = now + min(cost * OUTAGE_FACTOR, OUTAGE_MAX_SECONDS)

    def reached(self, server: Hashable) -> None:
        """A connect to `server` succeeded."""
        with self._lock:
            self._until.pop(server, None)
