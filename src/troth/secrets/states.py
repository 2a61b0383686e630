"""The broker's clock and what it publishes of its leases (docs/secrets.md, "The broker's
clock").

`BrokerClock` is the broker's time: the node's clock, never going back. It keeps the latest
time it answered, its high-water mark, so the node's clock set back revives no lease that
expired and no token whose `exp` passed (review 54e, secrets 3: an expired lease not swept yet
was live again until the clock passed its end once more). Behind the mark, the clock's time
does not stand still at it but goes on from it at half the clock's pace (`_SLEW`) until the
clock is back there (review 54l, secrets 1: standing still, a lease issued after a set back of
D, dated from the mark, lived D more than its term, a year more after a clock a year ahead
once): a lease lives at most twice its term meanwhile, and issue budgets refill. A step of the
clock forward by more than `limits.BROKER_CLOCK_JUMP` while behind counts only the seconds the
machine ran meanwhile (`machine_seconds`): a correction next to nothing (review 58d, secrets 3),
a suspension as time gone by (review 58h, secrets 1). The mark is stored in `secret_meta`
("clock") whenever it moves, but by an issue: an issue's second is its lease's locator
(docs/formats.md, "Leases"), which the mark is read back from with it at start.
Only the broker's own calls move it: a relying party's `now`, a token's claims, an agent's
request never do.

`PublishedLeases` is `Broker.revoked_leases()`: the `LeaseStates` a relying party validates
with (each live lease's end and the broker's mark: review 54e, secrets 1).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final

from troth import limits
from troth.errors import SecretError, SecretFailure
from troth.secrets.jwt import LeaseStates, ValidatedToken
from troth.secrets.lease import Lease, LeaseHandle, LeaseState, locator_second
from troth.secrets.store import SqliteSecretStore

__all__ = ["BrokerClock", "PublishedLeases", "check_token_of_lease", "machine_seconds"]

CLOCK_META: Final = "clock"
"""The `secret_meta` row of the broker's high-water mark (an integer, seconds)."""

_READ: Final = (
    "SELECT (SELECT value FROM secret_meta WHERE name = ?), (SELECT max(locator) FROM "
    "secret_leases)"
)
_SLEW: Final = 2
"""Behind the mark, the broker's time goes on 1 second per `_SLEW` seconds of the clock's."""
_ADVANCE: Final = (
    "INSERT INTO secret_meta VALUES (?, ?) "
    "ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)"
)


def machine_seconds() -> float:
    """Seconds the machine has run, its suspensions included (Linux's CLOCK_BOOTTIME; elsewhere
    the monotonic clock): what a step of the node's clock is checked against (review 58h,
    secrets 1)."""
    boot = getattr(time, "CLOCK_BOOTTIME", None)
    return time.monotonic() if boot is None else time.clock_gettime(boot)


class BrokerClock:
    """The broker's time (see the module docstring), its mark kept in memory and in the node's
    database. A step of the clock over `limits.BROKER_CLOCK_JUMP` behind the mark counts only
    as far as `elapsed` says the machine ran meanwhile."""

    def __init__(
        self, store: SqliteSecretStore, *, elapsed: Callable[[], float] = machine_seconds
    ) -> None:
        self._store = store
        self.elapsed = elapsed
        """The machine's seconds gone by, suspensions included (replaced by tests)."""
        self._ran: float | None = None  # `elapsed` at the clock's latest time given
        self._lock = threading.Lock()
        self._stored = self._read()
        self._seen = self._stored
        self._behind: tuple[int, int] | None = None
        """(the clock's time, the broker's) when the clock was last set back behind the mark."""
        self._last = 0  # the clock's latest time given

    def _read(self) -> int:
        row = self._store.db.fetch_one(_READ, (CLOCK_META,))
        stored = int(row[0]) if row is not None and row[0] is not None else 0
        newest = locator_second(int(row[1])) if row is not None and row[1] is not None else 0
        return max(stored, newest)

    def seen(self) -> int:
        """The high-water mark: the latest time answered (0 before any)."""
        return self._seen

    def now(self, now: int, *, store: bool = True) -> int:
        """The broker's time at the clock's `now`: `now` at or past the mark; behind it, the
        mark's time when the clock fell behind, gone on since at half the clock's pace (never
        below the mark). The mark moves to it, stored when it moved past what is stored
        (`store=False`: an issue, whose lease row keeps its second)."""
        with self._lock:
            answer = self._advance(now)
            if not store or answer <= self._stored:
                return answer
        with self._store.transaction():
            self._store.db.execute(_ADVANCE, (CLOCK_META, answer))
            row = self._store.db.fetch_one(
                "SELECT value FROM secret_meta WHERE name = ?", (CLOCK_META,)
            )
        with self._lock:  # another broker on the database may have stored a later one
            stored = max(self._stored, int(row[0]) if row is not None else 0)
            self._stored = stored
            if stored > self._seen:  # go on from that one
                self._seen = stored
                self._behind = (now, stored) if now < stored else None
            return max(answer, self._seen)

    def _advance(self, now: int) -> int:
        """The broker's time at `now`, the mark moved to it (under the lock)."""
        seen, last, ran = self._seen, self._last, self._ran
        self._last, self._ran = now, self.elapsed()
        if now >= seen:
            self._behind = None
            self._seen = now
            return now
        behind = self._behind
        if behind is None or now < last:  # set back (again): go on from the mark
            behind = self._behind = (now, seen)
        elif now - last > limits.BROKER_CLOCK_JUMP:  # a jump: a correction counts for nothing
            # (review 58d, secrets 3), a suspension for the time the machine says went by
            # (review 58h, secrets 1: it counted nothing, a lease lived on through it)
            gone = 0 if ran is None else min(now - last, max(0, int(self._ran - ran)))
            behind = self._behind = (now - gone, seen)
        answer = max(seen, behind[1] + (now - behind[0]) // _SLEW)
        self._seen = answer
        return answer


class PublishedLeases(LeaseStates):
    """`Broker.revoked_leases()`: a lease is live while ACTIVE (a token lease's every token
    is one of its own: every token this broker minted has a row), until its `expires_at`;
    `seen` is the broker's clock."""

    __slots__ = ("_clock", "_store")

    def __init__(self, store: SqliteSecretStore, clock: BrokerClock) -> None:
        self._store = store
        self._clock = clock

    def not_after(self, jti: str) -> int | None:
        try:
            handle = LeaseHandle.parse(jti)
        except SecretError:
            return None
        state = self._store.lease_state(handle)
        return None if state is None or state[0] is not LeaseState.ACTIVE else state[1]

    def seen(self) -> int:
        return self._clock.seen()


def check_token_of_lease(
    validated: ValidatedToken,
    lease: Lease | None,
    audience: str,
    audience_of: Callable[[str], object],
) -> None:
    """What only the broker checks of a valid token (`Broker.validate_token`): it is one its
    lease could carry — the lease's identity as `sub`, its secret's audience
    (`audience_of(secret)`, as stored now), scopes within its scopes, dated within its life (`iat`
    from its issue, `exp` by its cap). SecretError JWT_NOT_OF_LEASE otherwise."""
    if (
        lease is None
        or lease.engine != "token"
        or validated.subject != lease.identity.did
        or not set(validated.scope) <= set(lease.scope)
        or not lease.issued_at <= validated.issued_at <= validated.expires_at <= lease.cap_at
        or audience_of(lease.secret) != audience
    ):
        raise SecretError(SecretFailure.JWT_NOT_OF_LEASE, f"lease {validated.jti}")
