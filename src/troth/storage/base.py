"""Repository interfaces. SQLite implements them today; a PostgreSQL backend implements the
same protocols, and nothing above this package changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import Enum
from typing import Final, Protocol

__all__ = [
    "RETIRED_PROOF_MARK",
    "REVOKE_AGAIN_KINDS",
    "AuthorityConfig",
    "AuthorityStore",
    "ChangeRow",
    "CredentialStore",
    "FeedRow",
    "FeedState",
    "ForkRecord",
    "HeldCredential",
    "HoldTime",
    "IdentityStore",
    "LocalIdentityRecord",
    "LocalIdentityRow",
    "MemberRecord",
    "PendingEnrollmentRecord",
    "PurposeKeyRecord",
    "RevocationRecord",
    "Transactional",
    "VoucherRow",
    "VoucherStore",
]


class HoldTime(Enum):
    """The time of a restore's hold when node.db holds it damaged (not a whole number, or
    NULL): a hold all the same, released on the same word as one well formed, its time unknown
    (review 72b, holds 1: a damaged authority hold could not be released)."""

    DAMAGED = "damaged"


RETIRED_PROOF_MARK: Final = "#"
"""Between a retired key's handle and its vault's proof in a `retired_keys` record (no key id
troth makes has one; review 48k, pkcs11 3)."""

REVOKE_AGAIN_KINDS: Final = ("identity", "credential", "supersession")
"""What a failed re-revoke kept with its hold (`AuthorityStore.hold`): an identity revoked, a
credential revoked (its hash), an identity's supersession published again (review 67d, hold
1)."""


class Transactional(Protocol):
    """A store whose writes group into units of work."""

    def transaction(self) -> AbstractContextManager[None]:
        """A unit of work: everything written inside commits together or not at all.
        Re-entrant: an inner `transaction()` joins the outer one."""
        ...


@dataclass(frozen=True, slots=True, init=False)
class LocalIdentityRecord:
    """An identity whose primary key this node holds, with its committed next primary key
    (None only for rows written before pre-rotation)."""

    identifier: bytes
    name: str | None
    primary_key: str
    created_at: int
    history: bytes
    changes: int
    next_key: str | None
    change_rows: int = 0  # how many of its changes are stored one row each (from index 0)

    def __init__(
        self,
        identifier: bytes,
        name: str | None,
        primary_key: str,
        created_at: int,
        history: bytes,
        changes: int,
        next_key: str | None,
        change_rows: int = 0,
    ) -> None:
        # frozen: the fields set through their slots (the generated __init__ goes through
        # object.__setattr__, ~7 k instructions a record; each rotation reads one: review
        # 59c, rotate 5), as troth.identity.history's VerifiedChange does
        _set_identifier(self, identifier)
        _set_name(self, name)
        _set_primary_key(self, primary_key)
        _set_created_at(self, created_at)
        _set_history(self, history)
        _set_changes(self, changes)
        _set_next_key(self, next_key)
        _set_change_rows(self, change_rows)


_set_identifier = vars(LocalIdentityRecord)["identifier"].__set__  # the slot descriptors
_set_name = vars(LocalIdentityRecord)["name"].__set__
_set_primary_key = vars(LocalIdentityRecord)["primary_key"].__set__
_set_created_at = vars(LocalIdentityRecord)["created_at"].__set__
_set_history = vars(LocalIdentityRecord)["history"].__set__
_set_changes = vars(LocalIdentityRecord)["changes"].__set__
_set_next_key = vars(LocalIdentityRecord)["next_key"].__set__
_set_change_rows = vars(LocalIdentityRecord)["change_rows"].__set__


@dataclass(frozen=True, slots=True)
class ForkRecord:
    """A verified history refused as a fork of the stored copy, kept as evidence (review 49c,
    forks 1): the index and hash of its first change the stored copy does not hold (signed
    by the key the change before it committed to, and by the one before), the history, and
    when it was seen."""

    index: int
    change_hash: bytes
    history: bytes
    seen_at: int


@dataclass(frozen=True, slots=True)
class PurposeKeyRecord:
    """A purpose key of a held identity: the identity, the purpose, the vault's handle of
    the key and its attestation."""

    identifier: bytes
    purpose: int
    key_handle: str
    attestation: bytes


class IdentityStore(Transactional, Protocol):
    """Known change histories (local and imported), local identities and their purpose keys."""

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the outermost transaction commits (at once outside one);
        dropped on a rollback (review 31a, requests 1)."""
        ...

    def abandoned(self) -> bool:
        """Whether this thread is inside a transaction the database rolled back itself when a
        statement in it failed (a full disk, an I/O error): nothing of it can commit any more
        (review 56d, storage 1), so the keys a write in it made name no row for good."""
        ...

    def get_history(self, identifier: bytes) -> tuple[bytes, int] | None:
        """The stored history and its change count."""
        ...

    def change_count(self, identifier: bytes) -> int | None:
        """The stored history's change count alone (None: none stored)."""
        ...

    def change_counts(self, identifiers: Sequence[bytes]) -> dict[bytes, int]:
        """`change_count` of several identities in one query (those stored)."""
        ...

    def insert_history(
        self, identifier: bytes, history: bytes, changes: int, now: int, *, linked: bool = True
    ) -> None:
        """Store the history of an identity this node does not hold (ConflictError if known);
        `linked`: its link to the identifier was checked here (a full history), not only a
        checkpoint's word (`history_linked`)."""
        ...

    def history_linked(self, identifier: bytes) -> bool:
        """Whether the stored copy's link to its identifier was checked by this node: it is a
        full history or extends one stored here (True too for a copy stored before this was
        recorded, and when none is stored); False for a copy only a checkpoint ties to it."""
        ...

    def history_checked(self, identifier: bytes) -> bool:
        """`history_linked`, False for a copy whose link was only review 27h's default for
        the rows before it (`identities.linked` = 2, not known: it binds as linked, but ties a
        ticket's checkpointed history only as a full history: review 69f, enroll 1)."""
        ...

    def add_locals(self, rows: Sequence[LocalIdentityRow]) -> None:
        """Store new identities whose primary key (and committed next key) this node holds
        (ConflictError on a taken name or identifier)."""
        ...

    def update_history(
        self,
        identifier: bytes,
        history: bytes,
        changes: int,
        expected_changes: int,
        now: int,
        primary_key: str | None = None,
        next_key: str | None = None,
        change_rows: int | None = None,
        linked: bool | None = None,
    ) -> None:
        """Replace a history only if the stored copy still has `expected_changes` changes
        (ConflictError otherwise); for a rotation, also record the new `primary_key`,
        `next_key` and how many changes now have their own rows; `linked` as for
        `insert_history` (None: unchanged)."""
        ...

    def find_local(
        self, *, name: str | None = None, identifier: bytes | None = None
    ) -> LocalIdentityRecord | None: ...

    def list_local(self) -> Iterator[LocalIdentityRecord]: ...

    def put_purpose_key(self, record: PurposeKeyRecord) -> None:
        """Insert or replace the identity's key for `record.purpose`."""
        ...

    def get_purpose_key(self, identifier: bytes, purpose: int) -> PurposeKeyRecord | None: ...

    def take_purpose_keys(self, identifier: bytes) -> list[PurposeKeyRecord]:
        """Remove and return every purpose key of the identity (a rotation retires them); a
        damaged row (node.db edited) is removed, not returned: it names no key (review 71k)."""
        ...

    def add_retired_keys(self, handles: Sequence[str]) -> None:
        """Record keys retired from a vault whose keys are not rows of this store (their
        handles), in the caller's transaction: to delete from that vault after the commit."""
        ...

    def retired_keys(self, limit: int) -> list[str]:
        """Up to `limit` handles of keys recorded as retired and not deleted yet (without
        the proof a record may carry after `RETIRED_PROOF_MARK`)."""
        ...

    def retired_key_records(self, limit: int, *, after: str = "") -> list[str]:
        """Up to `limit` records of retired keys as written: a handle, and after
        `RETIRED_PROOF_MARK` its vault's proof of the retirement when it gave one (review
        48k, pkcs11 3); what `drop_retired_keys` takes. In their order, those after `after`
        only (a page after the last one read: review 69v, wave4a 3)."""
        ...

    def retired_key_records_naming(self, text: str, *, after: str) -> list[str]:
        """Every record of a retired key after `after` that holds `text`, in their order, in
        one read (a rotation's kept channel keys, `text` naming its identity: review 70g,
        perf 2, where it read every identity's page by page)."""
        ...

    def drop_retired_keys(self, handles: Sequence[str]) -> None:
        """Forget the records of retired keys the vault deleted (or never held)."""
        ...

    def append_changes(self, identifier: bytes, rows: Sequence[ChangeRow]) -> None:
        """Add a local identity's changes, one row each (ConflictError if one is there
        already: another rotation won)."""
        ...

    def change_hash(self, identifier: bytes, index: int) -> bytes | None:
        """The hash of a local identity's change `index`, if its row is stored."""
        ...

    def add_refuted(self, identifier: bytes, changes: Sequence[tuple[int, bytes]]) -> None:
        """Record the (index, hash) of each change of a stored copy shown made up, in the
        transaction that replaces it (read by `VoucherStore.refuted`)."""
        ...

    def add_fork(
        self, identifier: bytes, index: int, change_hash: bytes, history: bytes, now: int
    ) -> bool:
        """Keep a verified history refused as a fork, its first change the stored copy does
        not hold being `index` (hash `change_hash`), unless that change is kept already or
        MAX_FORKS_PER_IDENTITY of the identity, or MAX_FORK_RECORDS_PER_SOURCE of its source
        (the member at the root of the first chain verified for it here, kept once: review
        54x, identity 1; else itself), are (the first ones stay); with MAX_FORK_RECORDS kept,
        only when the source holding the most holds two more than its own, whose newest goes
        (review 54m, identity 1: one member's delegates' forks crowded out every other's).
        A local identity's are kept past
        MAX_FORK_RECORDS and never go (the evidence that its keys leaked, which others' forks
        of identities minted for free must not crowd out, review 49c, forks 2). Whether it
        was kept."""
        ...

    def forks(self, identifier: bytes) -> list[ForkRecord]:
        """The forks of `identifier` kept (`add_fork`), in the order they were seen."""
        ...

    def drop_refuted(self, identifier: bytes, changes: Sequence[tuple[int, bytes]]) -> None:
        """Forget the recorded refutation of each of `changes` (index, hash): a history whose
        link to the identifier was checked here holds them, so they are real changes of it
        (review 29a, refuted 1), in the transaction that stores that history."""
        ...

    def change_index(self, identifier: bytes, change_hash: bytes) -> int | None:
        """The index of a local identity's stored change with hash `change_hash`, if any."""
        ...

    def change_rows(self, identifier: bytes, first: int, last: int) -> list[ChangeRow]:
        """A local identity's stored changes `first` to `last`, in order (those stored)."""
        ...

    def long_local(self, identifiers: Sequence[bytes], changes: int) -> list[bytes]:
        """Which of `identifiers` are local identities with more than `changes` changes (one
        query per batch, for a feed page's supersessions)."""
        ...

    def checkpoint(
        self, identifier: bytes, *, oldest_from: int | None = None
    ) -> tuple[bytes, int] | None:
        """(authority, change index) of the newest supersession that a feed this node holds
        (or the authority it hosts) published for the local identity, naming one of its own
        stored changes: the newest change an authority attests for it. With `oldest_from`: the
        oldest such supersession naming a change at or after that index instead."""
        ...


LocalIdentityRow = tuple[bytes, bytes, str | None, str, str, int]
"""A new local identity: (identifier, history, name, primary key handle, next key handle,
created_at)."""

ChangeRow = tuple[int, bytes, bytes, bytes | None, bytes]
"""One change of a local identity as stored: (index, body, signature, previous signature,
change hash)."""

FeedRow = tuple[int, int, bytes, int | None, bytes | None]
"""A verified feed entry as a holder keeps it: (seq, kind, target, changes, change hash)."""


@dataclass(frozen=True, slots=True)
class AuthorityConfig:
    """An authority's settings as stored: its identity, name, member credential TTL,
    delegation depth, creation time and per-member revocation quota."""

    identifier: bytes
    name: str
    credential_ttl: int
    delegation_depth: int
    created_at: int
    revocation_quota: int = 100  # feed entries one member may cause per hour


@dataclass(frozen=True, slots=True)
class RevocationRecord:
    """One feed entry as the authority stores it: its bytes, the head after it, and the fields
    it is looked up by (idempotence, quotas, supersessions)."""

    seq: int
    entry: bytes
    head: bytes
    kind: int
    target: bytes
    revoked_at: int
    charged_to: bytes | None  # the member whose quota it used (None: the authority's own)
    changes: int | None  # a supersession's change count
    change_hash: bytes | None  # and the hash of its last change


@dataclass(frozen=True, slots=True)
class FeedState:
    """Where a holder's verified copy of an authority's feed ends."""

    authority: bytes
    count: int
    head: bytes
    latest: int
    issued_at: int


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """An authority's member as stored: its identifier, its encoded attributes, who added it
    when, and the code hash of the ticket of many uses whose revocation quota it shares with
    the other members that ticket enrolled (None: its own quota; review 71e, quota)."""

    identifier: bytes
    attributes: bytes
    added_by: bytes
    added_at: int
    quota_ticket: bytes | None = None


class AuthorityStore(Transactional, Protocol):
    """The state of an authority: members, tickets, issued credentials, revocations."""

    def get_config(self) -> AuthorityConfig | None: ...

    def put_config(self, config: AuthorityConfig) -> None: ...

    def count_irreversible(self) -> None:
        """Count a write a restored copy of the store must not undo (a ticket's use, a member
        removed, a feed entry), inside its transaction (docs/storage.md, "Rollback guard")."""
        ...

    def restore_held(self) -> int | None:
        """When a restore of the store found held the authority (review 65o, feed 2), or None;
        StorageError where node.db holds the hold's time damaged (`restore_hold` reads it)."""
        ...

    def restore_hold(self) -> int | HoldTime | None:
        """`restore_held`, a hold whose time node.db holds damaged `HoldTime.DAMAGED` (a hold
        all the same: review 72b, holds 1)."""
        ...

    def hold(self, now: int, again: Sequence[tuple[str, bytes]] = ()) -> None:
        """Hold the authority as a restore found does: a re-revoke after its store went back
        failed (review 65z, hold 1); `again`, what it would have revoked again, (kind,
        target), kind one of `REVOKE_AGAIN_KINDS`, kept until released (review 67d, hold 1)."""
        ...

    def revoke_again(self) -> list[tuple[str, bytes]]:
        """What the holds placed by a failed re-revoke would have revoked again (`hold`)."""
        ...

    def release_restore_hold(self) -> int | HoldTime | None:
        """Lift the hold of a restore found; when it was held (`restore_hold`: a damaged time
        too), or None (not held)."""
        ...

    def put_ticket(
        self,
        code_hash: bytes,
        attributes: bytes,
        uses: int,
        expires_at: int,
        created_by: bytes,
        now: int,
    ) -> None: ...

    def redeem_ticket(
        self, code_hash: bytes, now: int
    ) -> tuple[bytes, bytes, int, int | None] | None:
        """One atomic conditional write: take one use of an unexpired ticket with uses left.
        Returns (attributes, created_by, expires_at, uses it was made with: None for a ticket
        stored before schema 21), or None. Among N concurrent redeemers of a ticket with k
        uses, exactly min(N, k) win."""
        ...

    def forget_tickets(self, now: int, code_hash: bytes | None = None) -> int:
        """Delete the tickets that expired by `now` (and the one of `code_hash`, if given,
        expired or not): none is redeemed again, whatever a clock reads later (review 55c,
        tickets 1 and 2). How many were deleted."""
        ...

    def find_redemption(self, code_hash: bytes, member: bytes, now: int) -> bytes | None:
        """The chain issued when `member` redeemed the ticket, while the ticket's window lasts."""
        ...

    def redeemed(self, code_hash: bytes, member: bytes) -> bool:
        """Whether `member` ever redeemed the ticket (its window over or not)."""
        ...

    def record_redemption(
        self,
        code_hash: bytes,
        member: bytes,
        credential: bytes,
        chain: bytes,
        ticket_expires_at: int,
        now: int,
    ) -> None:
        """Record which credential (hash) and chain a redemption issued (in the transaction
        that took the ticket's use)."""
        ...

    def count_redemptions(self, member: bytes) -> int:
        """How many redemptions `member` made (each answered with one credential)."""
        ...

    def put_member(self, record: MemberRecord) -> None:
        """Insert or replace a member."""
        ...

    def get_member(self, identifier: bytes) -> MemberRecord | None: ...

    def list_members(self) -> list[MemberRecord]: ...

    def remove_member(self, identifier: bytes) -> bool: ...

    def record_issued(
        self,
        credential_id: bytes,
        subject: bytes,
        expires_at: int,
        now: int,
        credential: bytes | None = None,
    ) -> None:
        """Record a credential issued to `subject`, with its encoding (a SignedCredential's;
        None for one that went out otherwise: a VC)."""
        ...

    def forget_issued_before(self, subject: bytes, expired_by: int) -> int:
        """Delete the records of credentials issued to `subject` that expired by `expired_by`
        (none is read again: only unexpired ones are); how many went."""
        ...

    def issued_credential(self, credential_id: bytes) -> bytes | None:
        """The encoding `record_issued` stored with that credential, if any."""
        ...

    def unexpired_issued(self, subject: bytes, now: int) -> list[bytes]:
        """Ids of the credentials issued to `subject` that have not expired at `now`."""
        ...

    def live_issued(self, subject: bytes, now: int, since: int) -> list[bytes]:
        """Ids of the credentials issued to `subject` at or after `since` that have not expired
        at `now`, oldest first."""
        ...

    def revocation_tip(self) -> tuple[int, bytes | None]:
        """How many entries the feed has, and the head after the last (None when empty)."""
        ...

    def find_revocation(self, kind: int, target: bytes) -> int | None:
        """The sequence number of the credential or identity revocation of `target`, if any."""
        ...

    def latest_supersession(self, identifier: bytes) -> tuple[int, int] | None:
        """(seq, change count) of the newest supersession of `identifier` (the last written,
        as the feed's readers take it: not the one of the most changes), if any."""
        ...

    def supersession_hash(self, identifier: bytes, changes: int) -> bytes | None:
        """The change hash the newest supersession of `identifier` at `changes` changes named
        (the last written of that count), if any."""
        ...

    def charged_since(self, member: bytes, since: int) -> list[int]:
        """When each entry charged to `member` at or after `since` was appended (oldest first)."""
        ...

    def add_revocation(self, record: RevocationRecord) -> None:
        """Insert the next entry (the caller holds the transaction and computed seq and head)."""
        ...

    def revocation_page(self, start: int, budget: int, cost: Callable[[bytes], int]) -> list[bytes]:
        """Entries from `start` on, in order, while their summed `cost` stays within `budget`
        (always at least one when there is one)."""
        ...

    def head_at(self, count: int) -> bytes | None:
        """The head after the first `count` entries (None for 0 entries)."""
        ...

    def revocation_rows(self, start: int) -> Iterator[FeedRow]:
        """The entries from `start` on as rows (seq, kind, target, changes, change hash)."""
        ...


@dataclass(frozen=True, slots=True)
class PendingEnrollmentRecord:
    """An enrollment a holder recorded before sending its request (cleared once the credential
    is stored): enough to send the same enrollment again."""

    identifier: bytes
    authority: bytes
    ticket: str = field(repr=False)  # its code: never in a repr, as `Ticket`'s (review 55c)
    address: str
    started_at: int


@dataclass(frozen=True, slots=True)
class HeldCredential:
    """A credential chain an identity holds: the holder, the credential's id, the chain's
    bytes, its root authority and when it expires."""

    identifier: bytes
    id: bytes
    chain: bytes
    authority: bytes
    expires_at: int


class CredentialStore(Transactional, Protocol):
    """Chains held by local identities, the verified revocation feed entries per authority,
    and how far each local identity's rotations were announced to each authority."""

    def put_held(self, held: HeldCredential, now: int) -> None:
        """Insert or replace."""
        ...

    def list_held(self, identifier: bytes) -> list[HeldCredential]:
        """Newest expiry first."""
        ...

    def forget_held(self, identifier: bytes, ids: Sequence[bytes]) -> int:
        """Delete `identifier`'s chains whose last credential's hash is in `ids`; how many
        went."""
        ...

    def feed_state(self, authority: bytes) -> FeedState | None: ...

    def extend_feed(self, state: FeedState, rows: list[FeedRow]) -> None:
        """Store the entries a verified page added and where the held feed now ends."""
        ...

    def feed_rows(self, authority: bytes, start: int) -> Iterator[FeedRow]:
        """The stored entries of `authority`'s feed from `start` on, in order."""
        ...

    def announced(self, identifier: bytes, authority: bytes) -> int:
        """Up to which change count `identifier`'s history was announced to `authority` (1 when
        never: a first change supersedes nothing)."""
        ...

    def set_announced(self, identifier: bytes, authority: bytes, changes: int) -> None: ...

    def trust_authority(self, identifier: bytes, address: str, now: int) -> None:
        """Insert or update an authority this node trusts, with the route to reach it."""
        ...

    def trusted_authorities(self) -> list[tuple[bytes, str]]: ...

    def put_pending(self, record: PendingEnrollmentRecord) -> None:
        """Insert the pending enrollment of (identifier, authority, ticket), or update its
        address and start (keeping its place in the order recorded: `list_pending`). One per
        ticket: an enrollment with another ticket for the same authority leaves this one
        (review 61l, enrollment 1)."""
        ...

    def list_pending(self, identifier: bytes) -> list[PendingEnrollmentRecord]:
        """The identity's pending enrollments in the order they were first recorded."""
        ...

    def every_pending(
        self, limit: int, after: tuple[int, bytes, bytes, str] | None = None
    ) -> list[PendingEnrollmentRecord]:
        """Up to `limit` pending enrollments of any local identity, oldest first (ordered by
        started_at, identifier, authority, ticket), those after the key `after` only if given
        (a node's maintenance goes round them all: review 39a, resume 1)."""
        ...

    def clear_pending(self, identifier: bytes, authority: bytes, ticket: str) -> bool:
        """Remove the pending enrollment of (identifier, authority, ticket): only this ticket's
        (review 39a, resume 4); whether there was one."""
        ...

    def mark_sync_due(self, authority: bytes, address: str, now: int) -> int:
        """Record that this node's copy of `authority`'s feed (reached at `address`) must be
        synced before a chain of that authority is handed out: a link revocation is under way
        with it (review 48m, revcrash 2); the mark's number (one per revocation, never given
        twice, so a newer mark has a larger one: review 53h, due 2)."""
        ...

    def syncs_due(self) -> list[tuple[bytes, str]]:
        """The authorities whose feeds must be synced first, each with an address: one on this
        machine ("" or node:NAME) when any of its marks has one, else the least."""
        ...

    def sync_due(self, authority: bytes) -> bool:
        """Whether `authority`'s feed must be synced first."""
        ...

    def marks_due(self, authority: bytes) -> list[int]:
        """The numbers of `authority`'s marks, oldest first."""
        ...

    def clear_sync_due(self, authority: bytes, mark: int | None = None) -> int:
        """Forget the marks of `authority` (only mark `mark`, when given: the revocation that
        made it is done); how many went."""
        ...


VoucherRow = tuple[bytes, bytes, int, bytes, tuple[int, bytes] | None]
"""(identifier, authority, expires_at, member, since): an authority whose chain a node verified
for an identity, when the newest such chain expires, the member at that chain's root, and the
oldest change (index, hash) of a history such a chain was verified with (the lowest index seen;
None: any history, e.g. a row written before this was recorded)."""


class VoucherStore(Transactional, Protocol):
    """The authorities whose chains a node verified for each identity (docs/storage.md,
    "Vouchers"): rows are added or extended when a chain verifies, and only a sweep that found
    them unable to change a judgment removes them, or the identity's stored history shown made
    up (`settle`, for the authorities that named a change of it: `refuted`)."""

    def vouchers(self) -> list[VoucherRow]:
        """Every row (a node holds them all in memory: bounded by MAX_VOUCHED_IDENTITIES)."""
        ...

    def vouchers_of(self, identifier: bytes) -> list[VoucherRow]:
        """The rows of `identifier` (read where a node judges without its memory of them)."""
        ...

    def vouch(
        self,
        identifier: bytes,
        authority: bytes,
        expires_at: int,
        member: bytes,
        since: tuple[int, bytes] | None = None,
    ) -> None:
        """Insert the row, or extend its expiry to `expires_at` (and its member to `member`)
        when that is later (a renewed chain: then a sweep judges it again), and its `since` to
        the given one when that is older (a lower index; None: any history, kept for good).
        The member of the identity's first row is kept as the source of its fork evidence
        (`IdentityStore.add_fork`), never moved by a later row, until its last row goes
        (`settle`; review 54x, identity 1)."""
        ...

    def lapsed(
        self, authority: bytes, until: int, limit: int, member: bytes | None = None
    ) -> list[tuple[bytes, int]]:
        """Up to `limit` (identifier, expires_at) of `authority`'s rows not kept for good whose
        expiry is at most `until` (and whose member is `member`, when given), the oldest
        first."""
        ...

    def refuted(self) -> list[tuple[bytes, int, bytes]]:
        """Every (identifier, index, hash) of a change of a stored copy shown made up
        (`IdentityStore.add_refuted`): an authority whose feed names one holds no row for that
        identifier."""
        ...

    def settle(
        self,
        authority: bytes,
        forget: Sequence[tuple[bytes, int]],
        keep: Sequence[tuple[bytes, int]],
    ) -> list[bytes]:
        """Remove the (identifier, expires_at) rows of `forget` and mark those of `keep` kept for
        good, in one transaction; a row whose expiry changed meanwhile (renewed) is left as is.
        The identifiers whose row was removed."""
        ...
