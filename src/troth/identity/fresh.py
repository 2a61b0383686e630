"""The keys one write of a node's identities generates: deleted when it fails before it commits,
never once it did (docs/vault.md, "Keys of a failed write").

A vault that keeps its keys outside node.db (a PKCS#11 token) holds a key from the moment it is
generated: a creation, a rotation or a purpose key's renewal that then fails (a storage write,
the commit, the token failing the next call) left it there, usable by any session with the PIN
and named by no row, so nothing ever deleted it (review 53f, pkcs11 3; review 53k, pkcs11 1-2).
`new_keys` opens the write transaction and deletes, when anything in it or its commit fails,
every key generated through the `NewKeys` it yields or handed to `NewKeys.add`, and undoes the
retirements recorded through `NewKeys.retired` (review 53m, pkcs11 1: the token kept them, a
retirement of a key still in use). It deletes
nothing once the transaction committed (a callback raised after the commit is no failure of
the write) nor when it joined a caller's transaction (review 53k, pkcs11 3: that one may still
commit the rows naming the keys; it may also roll back, and the keys then stay, as after a
crash: an orphan key is the lesser harm, a row naming a deleted key loses the identity), unless
the database rolled that transaction back itself, so that nothing of it can commit (review
56p, identity 1).

Keys of the vaults whose keys are rows of node.db (`in_store`: the software vault's) go with the
rollback and are not deleted here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from troth.crypto import KeyType
from troth.errors import TrothError
from troth.storage import IdentityStore
from troth.vault import KeyHandle, KeyPurpose, Vault
from troth.vault.base import KeyBatch, RetiringVault

__all__ = ["NewKeys", "end_batch", "new_keys"]


class NewKeys:
    """A view of a vault that records the keys it generates (a `Vault` to the code that makes
    identities and attestations); `add` records keys generated otherwise."""

    __slots__ = (
        "_made",
        "_retired",
        "_store",
        "_vault",
        "delete",
        "dh",
        "joined",
        "name",
        "public_key",
        "sign",
    )

    def __init__(self, vault: Vault, store: IdentityStore | None = None) -> None:
        self._vault = vault
        self._store = store  # the write's: whether SQLite abandoned its transaction (`kept`)
        self._made: list[KeyHandle] = []
        self._retired: list[tuple[KeyHandle, str]] = []
        self.joined = False  # whether the write joined a caller's transaction (keep its keys)
        self.name = vault.name
        self.public_key = vault.public_key
        self.sign = vault.sign
        self.dh = vault.dh
        self.delete = vault.delete

    def generate(self, key_type: KeyType, purpose: KeyPurpose) -> KeyHandle:
        handle = self._vault.generate(key_type, purpose)
        self._made.append(handle)
        return handle

    def add(self, *handles: KeyHandle) -> None:
        self._made.extend(handles)

    def kept(self) -> bool:
        """Whether a failure of the write keeps its keys: it joined a caller's transaction that
        may still commit the rows naming them; not one the database rolled back itself, of
        which nothing can commit (review 56p, identity 1: they stayed in the token for good)."""
        return self.joined and not (self._store is not None and self._store.abandoned())

    def retired(self, handle: KeyHandle, proof: str) -> None:
        """Record a retirement the vault made (`RetiringVault.retire`) for this write."""
        self._retired.append((handle, proof))

    def discard(self, in_store: frozenset[str]) -> None:
        """Delete the recorded keys of vaults other than `in_store`'s and undo the recorded
        retirements (best effort: a token failing again keeps them, as a crash would)."""
        for handle in self._made:
            if handle.vault not in in_store:
                with contextlib.suppress(TrothError):
                    self._vault.delete(handle)
        vault = self._vault
        if isinstance(vault, RetiringVault):
            for handle, proof in self._retired:
                with contextlib.suppress(TrothError):
                    vault.unretire(handle, proof)
        self._made.clear()
        self._retired.clear()


@contextlib.contextmanager
def new_keys(store: IdentityStore, vault: Vault, in_store: frozenset[str]) -> Iterator[NewKeys]:
    """`store.transaction()`, yielding the `NewKeys` whose keys are deleted if it fails."""
    outside: list[bool] = []
    store.after_commit(lambda: outside.append(True))  # at once outside a transaction only
    committed: list[bool] = []
    keys = NewKeys(vault, store)
    keys.joined = not outside
    try:
        with store.transaction():
            store.after_commit(lambda: committed.append(True))  # the first to run after it
            yield keys
    except BaseException:
        if not committed and not keys.kept():
            keys.discard(in_store)
        raise


def end_batch(batch: KeyBatch, keys: NewKeys) -> None:
    """A failed write's `key_batch`: discarded (its keys deleted), unless the write joined a
    caller's transaction, which may commit the rows it inserted before it failed: stored
    then, the keys kept (review 53m, pkcs11 2: a batch whose second insert chunk failed
    there deleted the keys its first chunk's committed rows name). Discarded too when the
    caller's transaction was rolled back by the database itself (`NewKeys.kept`)."""
    if not keys.kept():
        batch.discard()
        return
    with contextlib.suppress(TrothError):
        batch.store()
