"""The keys a rotation or a purpose key's renewal retires, deleted (`IdentityService`'s part):
in the write transaction when their rows live in the store, else recorded as retired and
deleted once the outermost transaction commits (`forget_retired`; review 47f, rotate 1).
A channel key its renewal replaced is kept `limits.RETIRED_CHANNEL_KEY_GRACE` first: recorded
with the time it is due and its identity (`~<due>.<identifier hex>~` before the handle),
deleted by the first `forget_retired` at or past it, or in its identity's rotation (review 69t,
chkeys 1). Which keys a record names, and each one's proof:
troth.identity.retirement."""

from __future__ import annotations

import contextlib
from typing import Final

from troth import limits
from troth.clock import Clock
from troth.errors import KeyNotFound, MalformedText, TrothError
from troth.faults import crash_point
from troth.identity.fresh import NewKeys
from troth.identity.retirement import retirement_record
from troth.storage import IdentityStore
from troth.storage.base import RETIRED_PROOF_MARK
from troth.vault import KeyHandle, KeyPurpose, Vault
from troth.vault.base import RetiringVault

__all__ = ["RETIRED_DUE_MARK", "RETIRED_KEYS_PER_CALL", "RetiredKeys"]

RETIRED_DUE_MARK: Final = "~"
"""Around the time a `retired_keys` record's key is due for deletion, before its handle (a
kept channel key's; no handle begins with it, and these records sort after the others, the
earliest due first)."""

RETIRED_KEYS_PER_CALL: Final = 256
"""Retired keys one `IdentityService.forget_retired` deletes at most (the rest at the next)."""


class RetiredKeys:
    """`IdentityService`'s deletion of retired keys: over its `vault` and `store`."""

    vault: Vault
    store: IdentityStore
    _keys_in_store: frozenset[str]
    _clock: Clock

    def _retire_keys(
        self,
        handles: list[tuple[KeyHandle, KeyPurpose]],
        fresh: NewKeys,
        *,
        keep_until: int | None = None,
        owner: bytes = b"",
    ) -> None:
        """Inside a write transaction: delete the keys of `handles` whose rows live in the
        store (they come back if it rolls back); record the others as retired (`retired_keys`,
        in the same transaction), deleted once the outermost transaction commits
        (`forget_retired`; nothing on a rollback). Review 47f, rotate 1: they were deleted
        after the commit from memory only, so a process killed in between left a token's
        retired keys in it for good, signing. Each with its vault's proof (`retirement_record`).
        With `keep_until` (a replaced channel key of identity `owner`), none is deleted now,
        each is recorded retired until then, whichever vault: a handshake that took it before
        still does its DH (review 69t, chkeys 1); the record commits with the replacement, so a
        crash orphans nothing and a rollback keeps the key in use (a rotation of `owner` ends
        it: `_kept_keys`)."""
        if keep_until is not None:
            kept = [
                f"{RETIRED_DUE_MARK}{keep_until}.{owner.hex()}{RETIRED_DUE_MARK}{text}"
                for handle, purpose in handles
                if (text := retirement_record(self.vault, handle, purpose, fresh)) is not None
            ]
            if kept:
                self.store.add_retired_keys(kept)
            return
        inside = self._keys_in_store
        self._forget_keys([h for h, _ in handles if h.vault in inside])
        outside = [
            text
            for handle, purpose in handles
            if handle.vault not in inside
            and (text := retirement_record(self.vault, handle, purpose, fresh)) is not None
        ]
        if outside:
            self.store.add_retired_keys(outside)
            self.store.after_commit(self._forget_retired_after_commit)

    def forget_retired(self, limit: int = RETIRED_KEYS_PER_CALL, *, now: int | None = None) -> int:
        """Delete from the vault up to `limit` keys recorded as retired (by a rotation or a
        purpose key's renewal, in a vault whose keys are not rows of the store: a token's),
        then their records; a key the vault does not hold (deleted by another process) counts
        as deleted, one it failed to delete stays recorded for the next call. Runs after each
        commit that records some, and in a running node's maintenance round: a process killed
        after such a commit leaves them to the next. A key kept until a time (a replaced
        channel key's grace) stays until then, `now` (default the service's clock). Returns how
        many records went."""
        return self._forget(limit, self._clock.now() if now is None else now)

    def _forget(self, limit: int, now: int | None) -> int:
        """`forget_retired` at `now`; None: no kept key (the time is the caller's to give: a
        node's clock need not be the service's)."""
        done: list[str] = []
        recorded = [r for r in self.store.retired_key_records(limit) if _due(r, now)]
        if recorded:
            crash_point("identity.retired-keys.before-delete")
        vault = self.vault
        for text in recorded:
            named, marked, proof = _named(text).partition(RETIRED_PROOF_MARK)
            try:
                handle = KeyHandle.parse(named)
            except MalformedText:  # names no key: nothing to delete
                done.append(text)
                continue
            try:
                if isinstance(vault, RetiringVault):  # only what the vault says was retired
                    vault.delete_retired(handle, proof if marked else None)
                else:
                    vault.delete(handle)
            except KeyNotFound:
                pass  # gone already (another process's call), or its retirement unproven
            except TrothError:
                continue  # kept: tried again at the next call
            done.append(text)
        if done:
            with self.store.transaction():
                self.store.drop_retired_keys(done)
        return len(done)

    def _forget_retired_after_commit(self) -> None:
        """`forget_retired` once a commit that retired keys is done: best effort (what it
        leaves stays recorded for the next call), so the committed operation is never reported
        as failed."""
        with contextlib.suppress(TrothError):
            self._forget(RETIRED_KEYS_PER_CALL, None)  # no kept key: the round's, at its time

    def _kept_keys(self, owner: bytes) -> list[tuple[KeyHandle, KeyPurpose]]:
        """Inside a rotation of identity `owner`'s write transaction: the channel keys its
        renewals replaced and kept for their grace, their records dropped, for the rotation to
        retire now with its others (none of the old history's stays in the vault). Every kept
        record of `owner` is read, in one statement that picks them out of every identity's
        (review 69v, wave4a 3: only the first page of 256 was read, so one behind other
        identities' kept keys stayed usable after a compromised rotation; review 70g, perf 2:
        then every identity's were read, page by page, and picked out here)."""
        mine = f".{owner.hex()}{RETIRED_DUE_MARK}"
        kept = [
            r
            for r in self.store.retired_key_records_naming(mine, after=RETIRED_DUE_MARK)
            if r.startswith(RETIRED_DUE_MARK)  # kept ones sort last
        ]
        handles = []
        for record in kept:
            named = _named(record).partition(RETIRED_PROOF_MARK)[0]
            with contextlib.suppress(MalformedText):
                handles.append((KeyHandle.parse(named), KeyPurpose.SECURE_CHANNEL))
        if kept:
            self.store.drop_retired_keys(kept)
        return handles

    def _forget_keys(self, handles: list[KeyHandle]) -> None:
        """Delete keys that no longer back anything (best effort: an orphan is harmless)."""
        for handle in handles:
            with contextlib.suppress(TrothError):
                self.vault.delete(handle)


def _named(record: str) -> str:
    """What a `retired_keys` record names after its time, if kept until one (a record of the
    kept mark but not its form names nothing: it raised IndexError, failing every call before
    any record went, so no kept key was deleted again: review 69v, wave4a 1)."""
    if not record.startswith(RETIRED_DUE_MARK):
        return record
    parts = record.split(RETIRED_DUE_MARK, 2)
    return parts[2] if len(parts) == 3 else ""


def _due(record: str, now: int | None) -> bool:
    """Whether the key of a `retired_keys` record is due for deletion at `now`: a record kept
    until a time (`RETIRED_DUE_MARK`) from then on, or once that time is further off than a
    grace (the clock set back since, or a record made up: no key is kept for good), never at
    no time (None); any other (or one whose time does not read) now."""
    if not record.startswith(RETIRED_DUE_MARK):
        return True
    if now is None:
        return False
    due = record.split(RETIRED_DUE_MARK, 2)[1].partition(".")[0]
    # ASCII digits only: `isdigit` alone took `²`, which `int` refused (ValueError: every
    # call failed before any record went, review 70a, chkeys 1)
    if not (due.isascii() and due.isdigit() and len(due) < 20):
        return True
    return not 0 < int(due) - now <= limits.RETIRED_CHANNEL_KEY_GRACE
