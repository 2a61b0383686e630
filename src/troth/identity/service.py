"""Identities of a node: create, rotate, look up, export, observe (store-or-extend), purpose keys.

Every method takes `now` (a rotation may take a Clock, read once the write lock is held);
storage and vault come from the node. Writes happen in one transaction each, so a crash leaves
either the old state or the new one; the keys a failed one generated are deleted (fresh.py).

A local identity rotates for years (docs/storage.md, "Identities"): each rotation adds one row
per change and rewrites only the history the node presents, which holds every change while
they fit the limits (64 changes, 32 KiB) and, beyond, the changes from the oldest checkpoint
within the last 64 changes that an authority published for it (docs/formats.md,
"Checkpointed histories"). A rotation that would make the presented history exceed the limits
is refused with what to do: the write refuses what every reader would refuse, so no rotation
can make an identity unusable.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Final, Literal

from troth import limits
from troth.clock import Clock, SystemClock
from troth.crypto import KeyType
from troth.errors import (
    ConflictError,
    DecodeError,
    IdentityError,
    IdentityFailure,
    KeyNotFound,
    NotFound,
    StorageError,
)
from troth.faults import crash_point
from troth.identity.attestation import VerifiedPurposeKey, attest_purpose_key, verify_attestation
from troth.identity.change import Checkpoint, SignedChange, UnverifiedHistory, encode_history
from troth.identity.create import (
    HeldIdentity,
    fits_limits,
    new_identities,
    presented_whole,
    rotate_identity,
)
from troth.identity.fresh import NewKeys, end_batch, new_keys
from troth.identity.history import Checkpoints, VerifiedIdentity, indexed_hashes, verify_history
from troth.identity.identifier import Identifier
from troth.identity.known import (
    KNOWN_CACHE_SECONDS,
    Binds,
    KnownHistories,
    Outranks,
    Refuted,
    StoredSpan,
)
from troth.identity.local import IdentityExists, LocalIdentity
from troth.identity.restored import RestoredIdentities
from troth.identity.retired_keys import RETIRED_KEYS_PER_CALL as RETIRED_KEYS_PER_CALL
from troth.identity.retired_keys import RetiredKeys
from troth.identity.retirement import owned_purpose_keys
from troth.identity.signer import Signer
from troth.names import check_name
from troth.storage import ForkRecord, IdentityStore, LocalIdentityRecord, PurposeKeyRecord
from troth.storage.base import LocalIdentityRow
from troth.storage.rollback import Restored
from troth.storage.sqlite import SqliteDatabase
from troth.vault import KeyHandle, KeyPurpose, Vault
from troth.vault.base import key_batch

__all__ = [
    "PRIMARY_KEY_TTL",
    "PURPOSE_KEY_TTL",
    "IdentityExists",
    "IdentityService",
    "LocalIdentity",
    "Progress",
]

PRIMARY_KEY_TTL: Final = 10 * 365 * 86_400
"""Default validity of a primary key: ten years (rotate sooner at will; an expired key can no
longer rotate, so the default is long)."""
PURPOSE_KEY_TTL: Final = 30 * 86_400
"""Default validity of a purpose-key attestation: thirty days."""
_RENEW_BEFORE: Final = 86_400
"""A purpose key within a day of expiry is replaced on next use."""
_VERIFIED_LOCAL_SIZE: Final = 4096
"""Local identities whose verified history is kept in memory at most."""
_UNDECODABLE: Final = frozenset({IdentityFailure.MALFORMED, IdentityFailure.TRAILING_BYTES})
"""A local identity's stored history failing so does not decode: node.db is damaged."""

Progress = Callable[[Literal["created", "committing"], int, int], None]
"""Told ("created", done, total) after each identity of a batch, then ("committing", total,
total) just before the batch commits (nothing is stored until that commit returns)."""


class IdentityService(RetiredKeys):
    """A node's local identities (keys in its vault) and the histories it has observed."""

    def __init__(
        self,
        vault: Vault,
        store: IdentityStore,
        *,
        primary_key_ttl: int = PRIMARY_KEY_TTL,
        purpose_key_ttl: int = PURPOSE_KEY_TTL,
        clock: Clock | None = None,
        known_cache_seconds: float = KNOWN_CACHE_SECONDS,
        keys_in_store: frozenset[str] = frozenset(),
        rollback: SqliteDatabase | None = None,
    ) -> None:
        self.vault = vault
        self.store = store
        # node.db's rollback guard, `identity` scope: each rotation counted, a restored copy
        # found holds its identities (troth.identity.restored; review 57b, restore 1)
        self._restores = None if rollback is None else RestoredIdentities(rollback)
        # vaults whose key rows live in `store`'s database: the keys a rotation retires are
        # deleted in its transaction (a rollback keeps them); other vaults' after the commit
        self._keys_in_store = keys_in_store
        self.primary_key_ttl = primary_key_ttl
        self.purpose_key_ttl = purpose_key_ttl
        self._clock = clock or SystemClock()
        self._known = KnownHistories(
            store, self._clock, cache_seconds=known_cache_seconds, refuted=self._refuted
        )
        self.rotated_hooks: list[Callable[[VerifiedIdentity, int, bool], None]] = []
        """Called inside each rotation's transaction, after its changes are stored, with the
        identity as it was before, the rotation's time and whether it is `compromised`: what
        must commit with it (the trace outbox's rows signed again, or set aside after a
        compromised one: troth.trace.outbox_rotation, reviews 69a, 69o)."""
        self.refuted_hooks: list[Refuted] = []
        """Called with each stored copy shown made up, or replaced by an admitted peer's full
        history it did not bind (troth.identity.known, `Binds`): e.g. a node forgets the word
        of the authorities that attested it (troth.node.vouchers)."""
        # local histories this process verified or rotated, reused while the stored bytes are
        # the same (a rotation or a signer then re-checks only what depends on the time); not
        # filled by creation, which would keep every identity of a batch alive for nothing
        self._verified_local: dict[bytes, VerifiedIdentity] = {}

    @property
    def keys_in_store(self) -> frozenset[str]:
        """The vaults whose keys are rows of the store's database (a rollback undoes them)."""
        return self._keys_in_store

    # -- creation -----------------------------------------------------------------------------

    def create(
        self, *, now: int, name: str | None = None, key_type: KeyType = KeyType.ED25519
    ) -> LocalIdentity:
        if name is not None:
            check_name(name, "identity name")
        with new_keys(self.store, self.vault, self._keys_in_store) as fresh:
            (created,) = self._create([name], key_type, now, None, fresh)
            fresh.add(created.primary_key, created.next_key)  # until the commit (fresh.py)
            crash_point("identity.create.before-commit")
        crash_point("identity.create.after-commit")
        return created

    def create_many(
        self,
        count: int,
        *,
        now: int,
        key_type: KeyType = KeyType.ED25519,
        name_prefix: str | None = None,
        progress: Progress | None = None,
    ) -> list[LocalIdentity]:
        """Create `count` identities in one transaction: all of them, or none on failure.
        `progress` hears of each, then of the commit about to happen."""
        if name_prefix is not None:
            check_name(f"{name_prefix}-{count}", "identity name")
        names: Sequence[str | None] = (
            [None] * count
            if name_prefix is None
            else [f"{name_prefix}-{number}" for number in range(count)]
        )
        with new_keys(self.store, self.vault, self._keys_in_store) as fresh:
            created = self._create(names, key_type, now, progress, fresh)
            fresh.add(*(k for c in created for k in (c.primary_key, c.next_key)))
            crash_point("identity.create.before-commit")
        crash_point("identity.create.after-commit")
        return created

    def _create(
        self,
        names: Sequence[str | None],
        key_type: KeyType,
        now: int,
        progress: Progress | None,
        fresh: NewKeys,
    ) -> list[LocalIdentity]:
        """Make an identity per name (inside `fresh`'s transaction); their keys and rows are
        written together at the end (one multi-row insert per table and chunk). On a failure
        the keys are discarded unless the write joined a caller's transaction, which may
        commit the rows of the chunks inserted before it: they are stored then (review 53m,
        pkcs11 2; fresh.py's rule)."""
        # inside the transaction (see BatchingVault.key_batch); one identity's two keys are
        # stored as they are made, which spares the batch's query
        keys = key_batch(self.vault, deferred=len(names) > 1)
        created: list[LocalIdentity] = []
        count = len(names)
        ttl = self.primary_key_ttl
        try:
            made = new_identities(keys, key_type, count, now=now, valid_for=ttl)
            for name, (handle, identity, next_key) in zip(names, made, strict=True):
                created.append(LocalIdentity(name, identity, handle, next_key))
                if progress is not None:
                    progress("created", len(created), count)
            if progress is not None:
                progress("committing", count, count)
            rows: list[LocalIdentityRow] = [
                (
                    c.identity.identifier.digest,
                    c.identity.history,
                    c.name,
                    str(c.primary_key),
                    str(c.next_key),
                    now,
                )
                for c in created
            ]
            self.store.add_locals(rows)
            keys.store()  # after the rows: a name taken, `discard` deletes them (53f, pkcs11 3)
        except ConflictError:
            end_batch(keys, fresh)
            for name in names:  # the first name taken (only names and identifiers are unique)
                existing = None if name is None else self.store.find_local(name=name)
                if existing is not None and name is not None:
                    raise IdentityExists(name, Identifier(existing.identifier)) from None
            raise
        except BaseException:
            end_batch(keys, fresh)
            raise
        return created

    # -- lookup -------------------------------------------------------------------------------

    def find(self, ref: str) -> LocalIdentityRecord:
        """The local identity named `ref`, or whose identifier (text or DID form) is `ref`."""
        if Identifier.looks_like(ref):
            record = self.store.find_local(identifier=Identifier.parse(ref).digest)
        else:
            record = self.store.find_local(name=ref)
        if record is None:
            raise NotFound(f"no local identity {ref!r}")
        return record

    def get(self, ref: str, *, now: int) -> LocalIdentity:
        """The local identity `ref`, its stored history verified at `now`."""
        return self._local(self.find(ref), now)

    def _local(self, record: LocalIdentityRecord, now: int) -> LocalIdentity:
        identity = self._verified_local.get(record.identifier)
        try:  # a row that does not decode is node.db damaged, no input judged (53k, cli 2)
            if identity is not None and identity.history == record.history:
                identity.check_valid_at(now)
            else:  # a checkpointed history: its first change is one of this node's own rows
                history = record.history
                identity = verify_history(history, now=now, checkpoints=self.attested_by_store)
                self._keep_verified(identity)
            if record.next_key is None:  # unreachable for version-2 histories (verified above)
                raise NotFound(f"local identity {record.name or ''!r} has no committed next key")
            handles = KeyHandle.parse(record.primary_key), KeyHandle.parse(record.next_key)
        except (DecodeError, IdentityError) as exc:
            if isinstance(exc, IdentityError) and exc.reason not in _UNDECODABLE:
                raise  # judged (an expired key): not the row's bytes
            raise StorageError(f"node.db: local identity {record.name or ''!r}: {exc}") from exc
        return LocalIdentity(record.name, identity, *handles)

    def list_local(self) -> Iterator[LocalIdentityRecord]:
        return self.store.list_local()

    def export(self, ref: str) -> bytes:
        return self.find(ref).history

    # -- rotation -----------------------------------------------------------------------------

    def rotate(
        self,
        ref: str,
        *,
        now: int | Clock,
        key_type: KeyType | None = None,
        compromised: bool = False,
    ) -> LocalIdentity:
        """Reveal the committed next key as the new primary key, commit to a freshly generated
        next key, and retire the old primary key and every purpose key.

        `compromised`: the vault's keys may have been copied (a stolen backup of the node, a
        token used by someone else). Every copy holds the committed next key too, which a
        rotation reveals as the new primary key, so the thief would sign under the new history
        (review 34a, identity 1): two changes are appended in the same transaction, the
        second revealing a key generated by the first, so the new primary key is one no copy
        holds (docs/vault.md, "Recovering from a stolen backup").

        Pass a Clock as `now` to have the time read after the write lock is taken (a rotation
        waiting on another one then never dates itself before it). A `key_type` other than the
        committed key's appends two changes in the same transaction: the first reveals the
        committed key while committing to a key of `key_type`, the second reveals that one (so
        `troth identity rotate X --key-type p256` works although the commitment names another
        type). The intermediate key is deleted with the old primary key.

        The new changes are stored one row each; the presented history is every change while
        they fit the limits, else the changes from a checkpoint (`_presentable`). Refused
        (IdentityError OVER_LIMIT, nothing written) when even that would exceed them.
        """
        generated: list[KeyHandle] = []
        self.check_restored(now)
        with new_keys(self.store, self.vault, self._keys_in_store) as fresh:
            at = now if isinstance(now, int) else now.now()
            record = self.find(ref)
            self._check_held(record.identifier, record.name, at)
            local = self._local(record, at)
            digest = local.identifier.digest
            wanted = key_type or local.next_key.key_type
            held = HeldIdentity(local.primary_key, local.identity, local.next_key)
            retired: list[KeyHandle] = []
            while True:  # one change, or two when the committed key is of another type
                retired.append(held.primary)
                held = rotate_identity(
                    fresh,
                    held.identity,
                    held.primary,
                    held.next_key,
                    now=at,
                    valid_for=self.primary_key_ttl,
                    next_type=wanted,
                )
                generated.append(held.next_key)
                # a compromised vault: not the committed key, which a copy holds, but one
                # generated here (review 34a, identity 1)
                if held.primary.key_type is wanted and (
                    not compromised or held.primary in generated
                ):
                    break
            archived = bool(record.change_rows) or not presented_whole(held.identity)
            if archived:
                self._archive(local.identity, held.identity, record.change_rows)
            presented = self._presentable(held.identity)
            self.store.update_history(
                digest,
                presented.history,
                presented.change_count,
                local.identity.change_count,
                at,
                primary_key=str(held.primary),
                next_key=str(held.next_key),
                change_rows=presented.change_count if archived else 0,
            )
            retired_purpose = self.store.take_purpose_keys(digest)
            self._retire_keys(
                [
                    *((h, KeyPurpose.PRIMARY) for h in retired),
                    *owned_purpose_keys(self.vault, local.identity, retired_purpose),
                    *self._kept_keys(digest),  # replaced channel keys in their grace
                ],
                fresh,
            )
            if self._restores is not None:  # a copy from before it holds the retired keys
                self._restores.count_rotation()
            for hook in self.rotated_hooks:
                hook(local.identity, at, compromised)
            crash_point("identity.rotate.before-commit")
        crash_point("identity.rotate.after-commit")
        self._keep_verified(presented)
        self._known.remember_identity(presented)
        return LocalIdentity(local.name, presented, held.primary, held.next_key)

    def _archive(self, before: VerifiedIdentity, after: VerifiedIdentity, rows: int) -> None:
        """Store the changes `after` added to `before` one row each, and, when `before`'s
        changes have no rows yet (`rows`, how many have: 0 while the presented history holds
        every change), those too: until then they lived in the identity's history row, which
        is whole until the first rotation whose history is not (`presented_whole`). Rows exist
        for every local identity whose presented history is cut (what the checkpoint queries of
        `_presentable` and the windows of `history_window` read); a whole one is read from its
        history row (`attested_by_store`, `window_around`)."""
        start = before.change_count if rows == before.change_count else before.first_index
        self.store.append_changes(
            before.identifier.digest,
            [
                (
                    c.index,
                    c.signed.body,
                    c.signed.signature,
                    c.signed.previous_signature,
                    c.change_hash,
                )
                for c in after.changes
                if c.index >= start
            ],
        )

    def _presentable(self, identity: VerifiedIdentity) -> VerifiedIdentity:
        """`identity` as its node presents it: every change while they fit the limits, else
        the most changes that fit from a checkpoint an authority it holds a credential from
        (or the hosted one) published for it, never another's (review 34a, presented 1) — the
        oldest within the last 64 changes, or else the newest — so that a verifier whose
        stored copy is up to 63 changes old still sees a history that overlaps it (a gap is
        refused: docs/formats.md, "Stored copies"). IdentityError OVER_LIMIT when none fits."""
        if presented_whole(identity):
            return identity
        digest = identity.identifier.digest
        floor = identity.current.index - limits.MAX_IDENTITY_CHANGES + 1

        def cut(found: tuple[bytes, int] | None) -> VerifiedIdentity:
            if found is None or found[1] <= identity.first_index:
                return identity
            return identity.from_checkpoint(Checkpoint(digest, found[0], found[1]))

        found = self.store.checkpoint(digest, oldest_from=max(floor, 0))
        presented = cut(found)
        if not fits_limits(presented):  # rarely: the newest checkpoint, read only then
            found = self.store.checkpoint(digest)
            presented = cut(found)
        if fits_limits(presented):
            return presented
        raise IdentityError(
            IdentityFailure.OVER_LIMIT,
            f"{identity.identifier} would present {len(presented.changes)} changes "
            f"({len(presented.history)} bytes), over the limit of "
            f"{limits.MAX_IDENTITY_CHANGES} changes and {limits.MAX_IDENTITY_HISTORY_BYTES} "
            "bytes that every verifier enforces; "
            + (
                "no authority has checkpointed it: enroll it with an authority, whose feed "
                "then attests its recent changes, before rotating again"
                if found is None
                else f"its newest checkpoint is change {found[1]} (by authority "
                f"{Identifier(found[0])}): announce the rotations to that authority and sync "
                "its feed (troth credential refresh) before rotating again"
            ),
        )

    def refresh_presented(self, identifiers: Sequence[bytes], *, now: int) -> int:
        """Present the local identities among `identifiers` (a feed page's supersessions) from
        the checkpoints their authorities published (`_presentable`); a history that fits
        whole stays whole. Returns how many presented histories changed."""
        changed = 0
        with self.store.transaction():
            for digest in self.store.long_local(identifiers, limits.MAX_IDENTITY_CHANGES):
                record = self.store.find_local(identifier=digest)
                if record is None:
                    continue
                presented = self._presentable(self._local(record, now).identity)
                if presented.history != record.history:
                    self.store.update_history(
                        digest, presented.history, record.changes, record.changes, now
                    )
                    self._keep_verified(presented)
                    changed += 1
        return changed

    def attested_by_store(
        self,
        checkpoint: Checkpoint,
        change_hash: bytes,
        *,
        own_word: Callable[[StoredSpan], bool] | None = None,
    ) -> bool:
        """Whether this node's own copy of the identity holds change `checkpoint.index` with
        hash `change_hash` (a local identity's rows, or a stored observed copy): this node's
        store attests a checkpointed history that continues what it knows, whoever the
        checkpoint names. Usable as `verify_history(checkpoints=...)`. With `own_word`, a
        stored copy from a checkpoint (which the node may have stored on any trusted
        authority's word) counts only when `own_word` takes it: an authority publishes its own
        word only (review 26b, authority store 1); a full copy verified from change 0 alone."""
        stored = self.store.change_hash(checkpoint.identifier, checkpoint.index)
        if stored is None:
            span = self._known.stored(checkpoint.identifier)
            if span is None or (span.first > 0 and own_word is not None and not own_word(span)):
                return False
            stored = span.hash_at(checkpoint.index)
        return stored == change_hash

    def history_window(self, identifier: bytes, first: int, last: int) -> bytes | None:
        """A local identity's changes `first` to `last` from its stored rows, as a history (from
        a checkpoint when `first` > 0: `attested_by_store` attests it); None unless every row
        is stored (at most MAX_IDENTITY_CHANGES)."""
        if not 0 <= last - first < limits.MAX_IDENTITY_CHANGES:
            return None
        rows = self.store.change_rows(identifier, first, last)
        if len(rows) != last - first + 1:
            return None
        changes = [
            SignedChange(body, signature, previous) for _, body, signature, previous, _ in rows
        ]
        return encode_history(changes, Checkpoint(identifier, identifier, first) if first else None)

    def newest_changes(self, identifiers: Collection[bytes]) -> dict[bytes, int]:
        """The index of the newest change of each of `identifiers` in the store, read afresh
        in one query (another process may have rotated them); those stored only."""
        counts = self.store.change_counts(list(identifiers))
        return {identifier: changes - 1 for identifier, changes in counts.items()}

    def window_around(self, identifier: bytes, change_hash: bytes) -> bytes | None:
        """The stored change `change_hash` of an identity and the one after it (which says when
        its keys retired), as a history: from a local identity's rows (`history_window`), else
        from the stored copy of its history; None when neither holds that change."""
        index = self.store.change_index(identifier, change_hash)
        if index is not None:
            return self.history_window(identifier, index, index + 1) or self.history_window(
                identifier, index, index
            )
        stored = self.store.get_history(identifier)
        if stored is None:
            return None
        try:
            copy = UnverifiedHistory.decode(stored[0])
            first, hashes = indexed_hashes(stored[0])
        except DecodeError:
            return None
        # the cache steps forward to what was read, so `attested_by_store` judges the window
        # by this same copy (another process may have extended it since the cache was filled)
        self._known.remember(identifier, StoredSpan(first, tuple(hashes)))
        if change_hash not in hashes:
            return None
        position = hashes.index(change_hash)
        checkpoint = (
            Checkpoint(identifier, identifier, first + position) if position or first else None
        )
        return encode_history(copy.changes[position : position + 2], checkpoint)

    # -- observed identities (store-or-extend) -------------------------------------------------

    def observe(
        self,
        identity: VerifiedIdentity,
        *,
        binds: Binds | None = None,
        outranks: Outranks | None = None,
    ) -> None:
        """Record a verified history: the first one of an identifier is stored, a later one
        must equal or extend the stored copy (then it replaces it), or show it made up (a copy
        from a checkpoint whose first change does not follow the change it names: replaced too,
        and `refuted_hooks` told), or be a full history of an admitted peer that a copy from a
        checkpoint does not bind (`binds`, troth.identity.known: replaced and told too),
        or be a full history whose authorities' word supersedes the full copy it forks from
        (`outranks`: replaced, the copy kept as fork evidence), anything else raises
        IdentityError (FORK, ROLLBACK, IDENTIFIER_MISMATCH). Atomic: of two concurrent
        observations of different extensions exactly one is stored, the other is a fork. A
        local identity is never replaced by an observed copy. The known-peer hot path touches
        no database within `known_cache_seconds` (troth.identity.known)."""
        self._known.observe(identity, binds=binds, outranks=outranks)

    def _refuted(self, identifier: Identifier, copy: UnverifiedHistory) -> None:
        for hook in self.refuted_hooks:
            hook(identifier, copy)

    def forks(self, identifier: Identifier) -> list[ForkRecord]:
        """The verified histories of `identifier` refused as forks, kept as evidence that their
        two rotations were signed with its keys, one by someone holding a copy of them
        (troth.identity.known; review 49c, forks 1)."""
        return self.store.forks(identifier.digest)

    def stored_changes(self, identifier: Identifier) -> int | None:
        """How many changes the stored copy of `identifier` says it has (None: none stored)."""
        span = self._known.stored(identifier.digest)
        return None if span is None else span.last + 1

    def outgrown(self, identity: VerifiedIdentity) -> bool:
        """Whether a copy of `identity`'s history this process stored or read ends after it
        and holds its current change (an older prefix: a rotation since). Memory only, no
        database (troth.identity.known)."""
        return self._known.outgrown(identity)

    def pin(self, digest: bytes) -> None:
        """Keep what `outgrown` knows of `digest` while an open channel depends on it, until
        as many `unpin`s (troth.identity.known; review 55q, pins)."""
        self._known.pin(digest)

    def unpin(self, digest: bytes) -> None:
        """Release one `pin` of `digest`."""
        self._known.unpin(digest)

    def linked(self, identifier: Identifier) -> bool:
        """Whether this node stores a copy of `identifier`'s history whose link to it was
        checked here (a full history, or one extending such a copy; a local identity's):
        False for none stored, or a copy only a checkpoint ties to it (its attesters' word),
        or a copy from a checkpoint stored before review 27h's migration (its link not known:
        review 31a, enrollment 4; review 69f, enroll 1)."""
        span = self._known.stored(identifier.digest)
        if span is None:
            return False
        return self.store.history_checked(identifier.digest) or (
            span.first == 0 and self.store.history_linked(identifier.digest)
        )

    def check_known(
        self,
        identity: VerifiedIdentity,
        *,
        binds: Binds | None = None,
        outranks: Outranks | None = None,
    ) -> None:
        """Raise IdentityError as `observe` would, without storing anything: for a requester
        that is not yet authorised (observe it once it is, with the same `binds`)."""
        self._known.check(identity, binds=binds, outranks=outranks)

    def check_no_fork(self, identity: VerifiedIdentity) -> None:
        """Raise IdentityError if `identity` forks from the stored copy; an older prefix of it
        passes (a trace record keeps the history its signer had when it signed: docs/formats.md,
        "Signatures outlive rotations"). Stores nothing."""
        self._known.check_no_fork(identity)

    def import_history(
        self,
        data: bytes | VerifiedIdentity,
        *,
        now: int,
        checkpoints: Checkpoints | None = None,
        binds: Callable[[VerifiedIdentity], Binds | None] | None = None,
        linked: bool = False,
    ) -> VerifiedIdentity:
        """Verify `data` at `now` (unless it already is verified) and observe it. A
        checkpointed history is accepted when this node's stored copy holds its first change,
        or, for an identity of which no copy is stored (a first sight), when `checkpoints`
        attests it: whoever vouches (a ticket for its authority) never overrides a stored
        copy, whose rules (store-or-extend, attested checkpoints) stand. `binds`, given the
        verified history, says which stored copy from a checkpoint binds it (`observe`; None:
        every copy); `linked`: the caller checked its link to the identifier (an authority pin
        confirmed out of band), so a history from a checkpoint is stored linked, and over a copy
        only a checkpoint ties (`linked`), `checkpoints` attests it too (review 66g, enroll 1)."""

        identity = self._verify_seen(data, now, checkpoints, tied=linked)
        self._known.observe(
            identity, binds=None if binds is None else binds(identity), linked=linked
        )
        return identity

    def check_history(
        self,
        data: bytes,
        *,
        now: int,
        checkpoints: Checkpoints | None = None,
        binds: Callable[[VerifiedIdentity], Binds | None] | None = None,
        linked: bool = False,
    ) -> VerifiedIdentity:
        """`import_history`'s checks, storing nothing: for what is trusted only once an exchange
        it starts succeeds (a ticket's authority, stored when the enrollment completes)."""
        identity = self._verify_seen(data, now, checkpoints, tied=linked)
        self._known.check(identity, binds=None if binds is None else binds(identity))
        return identity

    def _verify_seen(
        self,
        data: bytes | VerifiedIdentity,
        now: int,
        checkpoints: Checkpoints | None,
        *,
        tied: bool = False,
    ) -> VerifiedIdentity:
        """`data` verified at `now`, a checkpointed history attested by the stored copy, or on a
        first sight (no stored copy) by `checkpoints`; `tied` (the caller ties it to the
        identifier: an authority's pin), by `checkpoints` over a copy that is only its
        attesters' word too (not linked, not a local identity's): judged against it after."""
        if isinstance(data, VerifiedIdentity):
            return data

        def attested(checkpoint: Checkpoint, change_hash: bytes) -> bool:
            if self.attested_by_store(checkpoint, change_hash):
                return True
            if checkpoints is None:
                return False
            if self._known.stored(checkpoint.identifier) is not None and not (
                tied and not self.store.history_linked(checkpoint.identifier)
            ):
                return False
            return checkpoints(checkpoint, change_hash)

        return verify_history(data, now=now, checkpoints=attested)

    # -- purpose keys ------------------------------------------------------------------------

    def purpose_key(
        self, ref: str, purpose: KeyPurpose, *, now: int
    ) -> tuple[KeyHandle, VerifiedPurposeKey]:
        """The identity's key for `purpose`, attested under its current change; created (or
        replaced when it nears expiry or was made under an older change) on demand."""
        _local, handle, verified = self._purpose_key(ref, purpose, now=now)
        return handle, verified

    def _purpose_key(
        self, ref: str, purpose: KeyPurpose, *, now: int
    ) -> tuple[LocalIdentity, KeyHandle, VerifiedPurposeKey]:
        self.check_restored(now)
        with new_keys(self.store, self.vault, self._keys_in_store) as fresh:
            local = self.get(ref, now=now)
            digest = local.identifier.digest
            self._check_held(digest, local.name, now)
            record = self.store.get_purpose_key(digest, int(purpose))
            if record is not None:
                try:
                    verified = verify_attestation(
                        local.identity, record.attestation, purpose=purpose, now=now
                    )
                    if verified.expires_at - now > _RENEW_BEFORE:
                        handle = KeyHandle.parse(record.key_handle)
                        # the key under the handle must be the one attested: a writer of
                        # node.db pointed alice's record at bob's key, and alice signed with
                        # it, as bob (review 55d, lifecycle 1); such a record is renewed
                        if self.vault.public_key(handle) == verified.key:
                            return local, handle, verified
                except (IdentityError, KeyNotFound):
                    pass  # stale, expired or not its key: replace it below
            key_type = (
                KeyType.X25519
                if purpose is KeyPurpose.SECURE_CHANNEL
                else local.primary_key.key_type
            )
            handle = fresh.generate(key_type, purpose)
            attestation = attest_purpose_key(
                self.vault,
                local.primary_key,
                local.identity,
                purpose,
                self.vault.public_key(handle),
                now=now,
                expires_at=now + self.purpose_key_ttl,
            )
            self.store.put_purpose_key(
                PurposeKeyRecord(digest, int(purpose), str(handle), attestation)
            )
            verified = verify_attestation(local.identity, attestation, purpose=purpose, now=now)
            replaced = (
                [] if record is None else owned_purpose_keys(self.vault, local.identity, [record])
            )
            # a replaced channel key is kept a while: handshakes that took it before still run
            # (review 69t, chkeys 1); its attestation is shown to no new one
            channel = purpose is KeyPurpose.SECURE_CHANNEL
            keep = now + limits.RETIRED_CHANNEL_KEY_GRACE if channel else None
            self._retire_keys(replaced, fresh, keep_until=keep, owner=digest)
        return local, handle, verified

    def signer(self, ref: str, *, now: int) -> Signer:
        """Sign as local identity `ref` with its (created or renewed on demand) signing key."""
        local, handle, key = self._purpose_key(ref, KeyPurpose.SIGNING, now=now)
        return Signer(local.identity, self.vault, handle, key.attestation, key.expires_at)

    # -- a node.db restored from a copy (troth.identity.restored) ----------------------------

    def check_restored(self, now: int | Clock) -> Restored | None:
        """Whether node.db is a copy restored from before a rotation (found once: every local
        identity it holds is held then, signing nothing, opening no channel, not rotating,
        until `release_restored`); run before any of those, and by a node as it starts."""
        return None if self._restores is None else self._restores.check(now)

    def _check_held(self, identifier: bytes, name: str | None, now: int) -> None:
        if self._restores is not None:
            self._restores.check_usable(identifier, name, now)

    def restore_held(self, ref: str) -> int | None:
        """When local identity `ref` was held by a restore of node.db found (`check_restored`
        first), or None."""
        if self._restores is None:
            return None
        return self._restores.held(self.find(ref).identifier)

    def release_restored(self, ref: str, *, now: int | Clock | None = None) -> bool:
        """Let local identity `ref`, held by a restore of node.db found, sign, open channels and
        rotate again: only one the operator knows was not rotated after the copy was taken
        (docs/vault.md, "A node.db restored from before a rotation"). Whether it was held. A
        restore not found yet is found first (`now`, default the system clock, dates it). The
        bare release, on the caller's word: `troth.node.release.release_restored` first asks
        for feeds issued after the hold (review 58b, release 1)."""
        record = self.find(ref)
        if self._restores is None:
            return False
        # review 57r, release 1: released before anything found the restore, it was "not held",
        # and held at its next use
        self.check_restored(SystemClock() if now is None else now)
        return self._restores.release(record.identifier)

    def _keep_verified(self, identity: VerifiedIdentity) -> None:
        verified = self._verified_local
        if len(verified) >= _VERIFIED_LOCAL_SIZE:  # drop the older half (amortised O(1))
            verified = self._verified_local = dict(
                itertools.islice(verified.items(), _VERIFIED_LOCAL_SIZE // 2, None)
            )
        verified[identity.identifier.digest] = identity
