"""The keys a rotation or a purpose key's renewal retires, deleted (`IdentityService`'s part):
in the write transaction when their rows live in the store, else recorded as retired and
deleted once the outermost transaction commits (`forget_retired`; review 47f, rotate 1).
Which keys a record names, and each one's proof: troth.identity.retirement."""

from __future__ import annotations

import contextlib
from typing import Final

from troth.errors import KeyNotFound, MalformedText, TrothError
from troth.faults import crash_point
from troth.identity.fresh import NewKeys
from troth.identity.retirement import retirement_record
from troth.storage import IdentityStore
from troth.storage.base import RETIRED_PROOF_MARK
from troth.vault import KeyHandle, KeyPurpose, Vault
from troth.vault.base import RetiringVault

__all__ = ["RETIRED_KEYS_PER_CALL", "RetiredKeys"]

RETIRED_KEYS_PER_CALL: Final = 256
"""Retired keys one `IdentityService.forget_retired` deletes at most (the rest at the next)."""


class RetiredKeys:
    """`IdentityService`'s deletion of retired keys: over its `vault` and `store`."""

    vault: Vault
    store: IdentityStore
    _keys_in_store: frozenset[str]

    def _retire_keys(self, handles: list[tuple[KeyHandle, KeyPurpose]], fresh: NewKeys) -> None:
        """Inside a write transaction: delete the keys of `handles` whose rows live in the
        store (they come back if it rolls back); record the others as retired (`retired_keys`,
        in the same transaction), deleted once the outermost transaction commits
        (`forget_retired`; nothing on a rollback). Review 47f, rotate 1: they were deleted
        after the commit from memory only, so a process killed in between left a token's
        retired keys in it for good, signing. Each with its vault's proof (`retirement_record`)."""
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

    def forget_retired(self, limit: int = RETIRED_KEYS_PER_CALL) -> int:
        """Delete from the vault up to `limit` keys recorded as retired (by a rotation or a
        purpose key's renewal, in a vault whose keys are not rows of the store: a token's),
        then their records; a key the vault does not hold (deleted by another process) counts
        as deleted, one it failed to delete stays recorded for the next call. Runs after each
        commit that records some, and in a running node's maintenance round: a process killed
        after such a commit leaves them to the next. Returns how many records went."""
        done: list[str] = []
        recorded = self.store.retired_key_records(limit)
        if recorded:
            crash_point("identity.retired-keys.before-delete")
        vault = self.vault
        for text in recorded:
            named, marked, proof = text.partition(RETIRED_PROOF_MARK)
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
            self.forget_retired()

    def _forget_keys(self, handles: list[KeyHandle]) -> None:
        """Delete keys that no longer back anything (best effort: an orphan is harmless)."""
        for handle in handles:
            with contextlib.suppress(TrothError):
                self.vault.delete(handle)
