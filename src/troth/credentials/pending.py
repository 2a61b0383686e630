"""A holder's enrollments in flight (docs/storage.md, "Recovery rules"): one pending record per
identity, authority and ticket, recorded before the request is sent.

An enrollment with another ticket for the same authority leaves the interrupted one's record:
the authority may have made the member by it, its answer lost, and only that record can get
the member its credential (review 61l, enrollment 1: the newer one replaced it, and once the
newer ticket was refused for good, when resumed after a passing failure, the member the
authority made was stranded). The older records of that authority go when a newer one
completes (the holder then holds a credential from it), in the transaction that stores it; a
newer one stays when an older one completes (its redemption may carry other attributes:
review 39a, resume 4). Past MAX_PENDING_PER_AUTHORITY, a new ticket gives up the oldest.
"""

from __future__ import annotations

from dataclasses import dataclass

from troth import limits
from troth.storage import CredentialStore, PendingEnrollmentRecord

__all__ = ["Recorded", "newest_first", "record_pending", "recorded_after", "superseded"]


@dataclass(frozen=True, slots=True)
class Recorded:
    """A pending enrollment recorded: its record, the interrupted one with the same ticket it
    resumes (its start kept), and those of the same authority given up past
    MAX_PENDING_PER_AUTHORITY."""

    record: PendingEnrollmentRecord
    resumed: PendingEnrollmentRecord | None
    given_up: tuple[PendingEnrollmentRecord, ...] = ()


def record_pending(
    store: CredentialStore,
    identifier: bytes,
    authority: bytes,
    ticket: str,
    address: str,
    *,
    now: int,
) -> Recorded:
    """Record (in the caller's transaction) that `identifier` enrolls with `authority` using
    `ticket`, sent to `address`: the same ticket's record resumed (its start kept), another
    ticket's left pending (the oldest given up past the bound)."""
    of_authority = [p for p in store.list_pending(identifier) if p.authority == authority]
    resumed = next((p for p in of_authority if p.ticket == ticket), None)
    given_up: tuple[PendingEnrollmentRecord, ...] = ()
    if resumed is None:
        excess = len(of_authority) + 1 - limits.MAX_PENDING_PER_AUTHORITY
        given_up = tuple(of_authority[: max(excess, 0)])
    for old in given_up:
        store.clear_pending(old.identifier, old.authority, old.ticket)
    started_at = now if resumed is None else resumed.started_at
    record = PendingEnrollmentRecord(identifier, authority, ticket, address, started_at)
    store.put_pending(record)
    return Recorded(record, resumed, given_up)


def _of_authority(
    store: CredentialStore, pending: PendingEnrollmentRecord
) -> tuple[list[PendingEnrollmentRecord], int | None]:
    """The pending enrollments of `pending`'s identity with its authority, in the order
    recorded, and `pending`'s place among them (None when its record is gone)."""
    of_authority = [
        p for p in store.list_pending(pending.identifier) if p.authority == pending.authority
    ]
    tickets = [p.ticket for p in of_authority]
    return of_authority, tickets.index(pending.ticket) if pending.ticket in tickets else None


def superseded(
    store: CredentialStore, pending: PendingEnrollmentRecord
) -> list[PendingEnrollmentRecord]:
    """The pending enrollments of `pending`'s identity with its authority recorded before it
    (other tickets): given up when it completes, in that transaction. None when `pending`'s
    record is gone (completed, or refused, elsewhere)."""
    of_authority, place = _of_authority(store, pending)
    return [] if place is None else of_authority[:place]


def recorded_after(
    store: CredentialStore, pending: PendingEnrollmentRecord
) -> list[PendingEnrollmentRecord]:
    """The pending enrollments of `pending`'s identity with its authority recorded after it
    (other tickets: one of them completing clears `pending`). None when `pending`'s record is
    gone."""
    of_authority, place = _of_authority(store, pending)
    return [] if place is None else of_authority[place + 1 :]


def newest_first(
    store: CredentialStore, records: list[PendingEnrollmentRecord]
) -> list[PendingEnrollmentRecord]:
    """`records` with each identity's in the reverse of the order they were recorded (their
    starts may be equal, or out of order after the clock was set back): resumed so, the newest
    of an authority's that completes clears the older ones before they are sent."""
    place: dict[tuple[bytes, bytes, str], int] = {}
    for identifier in {p.identifier for p in records}:
        for i, p in enumerate(store.list_pending(identifier)):
            place[p.identifier, p.authority, p.ticket] = i
    return sorted(
        records, key=lambda p: place.get((p.identifier, p.authority, p.ticket), -1), reverse=True
    )
