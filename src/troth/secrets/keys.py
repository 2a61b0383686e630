"""The broker's own keys, all inside or sealed by the node's vault:

- the seal key (AES-256 in the vault) that seals every upstream secret and the audit key;
- the audit key (32 random bytes, stored only sealed) for the audit log's HMACs;
- the token signing keys (Ed25519 or P-256 in the vault), published as a JWKS by their RFC 7638
  thumbprint, each only with its ownership tag (review 50i, jwks 1); a retired key stays
  published for `limits.MAX_LEASE_TTL` so tokens it signed still validate until they expire,
  unless it was withdrawn by a compromised rotation; then, `RETIRED_KEY_GRACE` later, the
  broker's prune deletes it (`forget_retired`).

A token key is retired (withdrawn, pruned) as the identity service retires its keys: in the
retiring transaction the vault records the retirement (`RetiringVault.retire`, a PKCS#11
token's private object) and the proof it returns is recorded with the handle
(`retired_keys`), which the deletion after the commit needs. Only a key the broker made is
retired: its ownership tag, sealed under the broker's seal key when it was made (a
`secret_meta` row `token-key:<handle>`), names it; a row of node.db pointed at another key
(an identity's current signing key) retires nothing (review 48r, pkcs11 1; docs/vault.md).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator
from typing import Final

from troth import limits
from troth.crypto import KeyType
from troth.errors import KeyNotFound, SecretError, SecretFailure, TrothError
from troth.faults import crash_point
from troth.secrets.audit import AuditHasher
from troth.secrets.engines.token import TokenSigner
from troth.secrets.jwt import ALGORITHMS, Jwk, Jwks, jwk_of, thumbprint
from troth.secrets.store import SigningKeyRecord, SqliteSecretStore
from troth.storage import SqliteIdentityStore
from troth.storage.base import RETIRED_PROOF_MARK
from troth.storage.rollback import RollbackGuard
from troth.vault import KeyHandle, KeyPurpose, SealingVault, SealKey
from troth.vault.base import RetiringVault

__all__ = ["RETIRED_KEY_GRACE", "BrokerKeys"]

_AUDIT_KEY_AAD: Final = b"troth.secrets.audit-key/1"
_AUDIT_KEY_SIZE: Final = 32
_OWNED_AAD: Final = b"troth.secrets.token-key/1\x00"  # then the handle: the tag names it
_OWNED_PREFIX: Final = "token-key:"  # the `secret_meta` row of a token key's ownership tag

RETIRED_KEY_GRACE: Final = 86_400
"""Seconds a retired token key is kept after it stopped being published (`limits.MAX_LEASE_TTL`
after its retirement) before `BrokerKeys.forget_retired` deletes it, row and vault key: a
process whose clock lags (another broker on the database, a CLI command) may still publish it
that much later (review 47d, signing keys 2: retired keys were kept for good)."""


class BrokerKeys:
    """Creates the broker's keys on first use and finds them again afterwards."""

    def __init__(
        self, store: SqliteSecretStore, vault: SealingVault, *, key_type: KeyType, now: int
    ) -> None:
        if key_type not in ALGORITHMS:
            raise SecretError(
                SecretFailure.CONFIG_INVALID, f"tokens cannot be signed with {key_type.label}"
            )
        self._store = store
        self._vault = vault
        self._key_type = key_type
        self._lock = threading.Lock()
        with store.transaction():
            broker_id = store.get_meta("broker_id")
            if broker_id is None:
                broker_id = os.urandom(4).hex().encode()
                store.put_meta("broker_id", broker_id)
            seal_text = store.get_meta("seal_key")
            if seal_text is None:
                seal_key = vault.generate_seal_key()
                store.put_meta("seal_key", str(seal_key).encode())
            else:
                seal_key = SealKey.parse(seal_text.decode())
            sealed_audit = store.get_meta("audit_key")
            if sealed_audit is None:
                sealed_audit = vault.seal(seal_key, os.urandom(_AUDIT_KEY_SIZE), _AUDIT_KEY_AAD)
                store.put_meta("audit_key", sealed_audit)
            self.seal_key = seal_key
            current = [k for k in store.signing_keys() if k.retired_at is None]
            if not current:
                self._add_signing_key(now)
            elif not self._owned(current[-1].handle) and self._room(now):
                # a key made before review 48r (no tag), or a record pointed at another key:
                # a routine rotation, the old one published for the tokens it signed
                store.retire_signing_keys(now)
                self._add_signing_key(now)
        self.broker_id = broker_id.decode()
        self.hasher = AuditHasher(vault.unseal(seal_key, sealed_audit, _AUDIT_KEY_AAD))
        self._signer: TokenSigner | None = None
        self._published: tuple[tuple[SigningKeyRecord, ...], Jwks] | None = None
        self._retired: dict[str, int] = {}  # kid -> retired_at, of the keys `jwks` published

    def rotate_signing_key(
        self, now: int, *, compromised: bool = False, counted: bool = True
    ) -> str:
        """Retire the current token key and make a new one; returns the new kid. Routine: the
        retired key stays published for `limits.MAX_LEASE_TTL`, so the tokens it signed still
        validate. `compromised` (a copy of the vault, a leaked key: docs/secrets.md,
        "Keys"): every older key is withdrawn at once, out of the JWKS and deleted from the
        vault, so nothing it signed validates any more, the thief's backdated tokens included
        (review 34c, token keys 1).

        The withdrawn keys are recorded as retired (`retired_keys`) in the commit that
        withdraws them and deleted from the vault after it, their records then dropped; one
        the vault fails to delete, or a process killed before, stays recorded, and the node
        deletes it later (`IdentityService.forget_retired`: a running node's maintenance, the
        next rotation). Review 47f, token keys 1: they were deleted from memory only, and a
        process killed after the commit left them in the vault for good.

        A routine rotation that would publish more than `limits.MAX_JWKS_KEYS` keys (the
        current one and those retired in the last `MAX_LEASE_TTL`) is refused, SecretError
        CONFIG_INVALID, nothing changed: a JWKS of more is one `Jwks.parse` refuses, and no
        token of the broker would validate where it is parsed (review 48f, jwks 1).

        A compromised rotation is counted by the rollback guard (troth.storage.rollback): a
        copy of node.db from before it holds the withdrawn keys, and is found as restored
        (review 52c, rollback 1). `counted=False`: the rotation a restored broker makes at
        open (counted, it could raise the copy's count to its guard's, the copy then read as
        current, its leases left open)."""
        with self._lock, self._retiring("secrets.rotate-key.after-commit") as retire:
            if not compromised:
                self._check_room(now)
            self._store.retire_signing_keys(now)
            kid = self._add_signing_key(now)
            gone = self._store.withdraw_signing_keys(kid) if compromised else []
            if compromised and counted:
                RollbackGuard(self._store.db, "broker").bump()
            retire(gone)
            self._signer = None
            self._published = None
            crash_point("secrets.rotate-key.before-commit")
        return kid

    @contextlib.contextmanager
    def _retiring(
        self, after_commit: str | None = None
    ) -> Iterator[Callable[[list[SigningKeyRecord]], None]]:
        """The transaction of a write taking token keys out of the store; yields the function
        that retires them in it (`_retire`, their `retired_keys` records). Their keys are
        deleted from the vault once the outermost transaction committed (inside a caller's,
        the end of this one is no commit: review 53q, broker keys 2, a caller rolling back
        was left naming a deleted key as the current one), after crash point `after_commit`.
        A write failing before its commit undoes its retirements (`RetiringVault.unretire`:
        review 53q, broker keys 1, as identity/fresh.py's `NewKeys.discard` since review 53m,
        pkcs11 1), never after the commit nor inside a caller's transaction, which may commit
        what it wrote (the token left as a crash leaves it)."""
        db = self._store.db
        joined = db.in_transaction
        retired = SqliteIdentityStore(db)
        records: list[str] = []
        committed: list[bool] = []

        def retire(gone: list[SigningKeyRecord]) -> None:
            made = self._retire(gone)
            records.extend(made)
            retired.add_retired_keys(made)

        try:
            with self._store.transaction():
                db.after_commit(lambda: committed.append(True))  # the first to run after it
                yield retire
                if after_commit is not None:
                    point = after_commit
                    db.after_commit(lambda: crash_point(point))
                db.after_commit(lambda: self._delete_committed(records, retired))
        except BaseException:
            if not joined and not committed:
                self._unretire(records)
            raise

    def _unretire(self, records: list[str]) -> None:
        """Undo the token's retirements of `records`, whose write failed (best effort: a token
        failing again keeps them, as a crash would)."""
        vault = self._vault
        if not isinstance(vault, RetiringVault):
            return
        for text in records:
            named, marked, proof = text.partition(RETIRED_PROOF_MARK)
            if marked:
                with contextlib.suppress(TrothError):
                    vault.unretire(KeyHandle.parse(named), proof)

    def _room(self, now: int) -> bool:
        """Whether one more published key stays within the JWKS bound."""
        published = sum(1 for record in self._store.signing_keys() if _published(record, now))
        return published < limits.MAX_JWKS_KEYS

    def _check_room(self, now: int) -> None:
        """SecretError CONFIG_INVALID if one more published key would be over the JWKS bound."""
        if not self._room(now):
            raise SecretError(
                SecretFailure.CONFIG_INVALID,
                f"the JWKS publishes {limits.MAX_JWKS_KEYS} token keys, its most: "
                "a retired key stays published until the tokens it signed expired (30 days); "
                "rotate again later, or as compromised (every older key withdrawn)",
            )

    def _retire(self, gone: list[SigningKeyRecord]) -> list[str]:
        """Inside the transaction that takes `gone` out of the store: the `retired_keys`
        records of their vault keys, each the handle and, from a vault that records
        retirements (a token's), its proof (`RetiringVault.retire`). There, only a key whose
        ownership tag names it is retired (review 48r, pkcs11 1): a row pointed at another key
        (an identity's current signing key: a writer of node.db without the PIN), or at a key
        made before that review (no tag), retires nothing, and the key stays in the token (an
        orphan: docs/secrets.md, "`token`"). The tags go with the rows."""
        records = []
        for record in gone:
            owned = self._owned(record.handle)
            self._store.drop_meta(_OWNED_PREFIX + record.handle)
            vault = self._vault
            if not isinstance(vault, RetiringVault):  # its keys are rows of node.db
                records.append(record.handle)
                continue
            if not owned:
                continue
            try:
                proof = vault.retire(KeyHandle.parse(record.handle), KeyPurpose.SIGNING)
            except KeyNotFound:  # not in the vault (any more), or no signing key there
                continue
            records.append(
                record.handle if proof is None else f"{record.handle}{RETIRED_PROOF_MARK}{proof}"
            )
        return records

    def _owned(self, handle: str) -> bool:
        """Whether the ownership tag of `handle` opens under the seal key: the broker made
        the key (a tag only a user of the vault makes)."""
        tag = self._store.get_meta(_OWNED_PREFIX + handle)
        if tag is None:
            return False
        try:
            self._vault.unseal(self.seal_key, tag, _OWNED_AAD + handle.encode())
        except TrothError:
            return False
        return True

    def _delete_committed(self, records: list[str], retired: SqliteIdentityStore) -> None:
        """Delete from the vault the keys of `records`, retired by a commit just made (with
        their proofs), then drop the records; one the vault fails to delete stays recorded
        (`IdentityService.forget_retired` deletes it later)."""
        deleted = []
        vault = self._vault
        for text in records:  # out of the store: their vault keys are no one's now
            named, marked, proof = text.partition(RETIRED_PROOF_MARK)
            try:
                handle = KeyHandle.parse(named)
                if isinstance(vault, RetiringVault):
                    vault.delete_retired(handle, proof if marked else None)
                else:
                    vault.delete(handle)
            except KeyNotFound:
                pass
            except TrothError:  # left recorded: deleted later
                continue
            deleted.append(text)
        if deleted:
            with contextlib.suppress(TrothError), self._store.transaction():
                retired.drop_retired_keys(deleted)

    def forget_retired(self, now: int) -> int:
        """Delete the token keys retired more than `limits.MAX_LEASE_TTL` +
        `RETIRED_KEY_GRACE` before `now` (no longer published: nothing they signed validates),
        their rows in one transaction that records their vault keys as retired, then those
        keys (as a compromised rotation's: one left, by a failure or a process killed, the
        node deletes later); never the current key. Each routine rotation left one more for
        good (review 47d, signing keys 2). Returns how many."""
        before = now - limits.MAX_LEASE_TTL - RETIRED_KEY_GRACE
        if not any(
            k.retired_at is not None and k.retired_at < before for k in self._store.signing_keys()
        ):
            return 0  # (a read: no write transaction in a round with nothing to forget)
        with self._lock, self._retiring() as retire:
            gone = self._store.forget_signing_keys(retired_before=before)
            retire(gone)  # as a rotation's
            self._published = None
        return len(gone)

    def token_signer(self, issuer: str) -> TokenSigner:
        """The current signing key as the token engine uses it: the store's current kid as the
        transaction minting the token reads it (`SqliteSecretStore.signing_kid_now`: the
        issue's own query, a renewal's one more), so a rotation another process made over the
        same database (another broker, the CLI) is in force here at the next token: a retired
        key signs nothing after its retirement's commit. Review 48f, tokens 1: it was read
        again only every 10 s, and the tokens the retired key signed meanwhile, dated after
        its retirement, were refused by `Broker.validate_token` (after a compromised rotation,
        by everyone: a key withdrawn from the JWKS).

        The key is checked as the broker's own when it is taken up (its ownership tag,
        `_owned`): a record of node.db pointed at another key of the vault (an identity's
        signing key: a writer of node.db without the vault key) signed every token with it
        (review 50c, token keys 1); it signs nothing now (CONFIG_INVALID), and a broker
        opening over such a record (or a key made before review 48r, with no tag) rotates."""
        current = self._signer
        if (
            current is not None
            and current.issuer == issuer
            and self._store.signing_kid_now() == current.kid
        ):
            return current
        records = [k for k in self._store.signing_keys() if k.retired_at is None]
        if not records:
            raise SecretError(SecretFailure.CONFIG_INVALID, "the broker has no signing key")
        if not self._owned(records[-1].handle):  # review 50c, token keys 1 (`token_signer`)
            raise SecretError(
                SecretFailure.CONFIG_INVALID,
                "the current token key is not one this broker made (no ownership tag opens "
                "for it): rotate it (`troth secret rotate-key --compromised`)",
            )
        kid, handle = records[-1].kid, KeyHandle.parse(records[-1].handle)
        sign = functools.partial(self._vault.sign, handle)
        current = self._signer = TokenSigner(kid, ALGORITHMS[handle.key_type], issuer, sign)
        return current

    def jwks(self, now: int) -> Jwks:
        """The published token keys: the current one and those retired at most
        `limits.MAX_LEASE_TTL` ago, each only if its ownership tag opens (`_owned`, checked
        when the rows change). A row of node.db pointed at another key of the vault (an
        identity's), retired or current (a broker opening over one retires it), was published,
        and what that key signed validated (review 50i, jwks 1); an unowned key, one made
        before review 48r included (its tokens are refused: its holders lease again), signs
        nothing and is published for nothing."""
        records = tuple(record for record in self._store.signing_keys() if _published(record, now))
        published = self._published
        if published is not None and published[0] == records:
            return published[1]
        owned = [record for record in records if self._owned(record.handle)]
        self._retired = {r.kid: r.retired_at for r in owned if r.retired_at is not None}
        keys = []
        for record in owned:
            handle = KeyHandle.parse(record.handle)
            keys.append(
                Jwk(record.kid, ALGORITHMS[handle.key_type], self._vault.public_key(handle))
            )
        jwks = Jwks.of(keys)
        self._published = (records, jwks)
        return jwks

    def _add_signing_key(self, now: int) -> str:
        """A new current token key, in the caller's transaction, with its ownership tag
        (`_owned`: what `_retire` wants)."""
        handle = self._vault.generate(self._key_type, KeyPurpose.SIGNING)
        kid = thumbprint(jwk_of(self._vault.public_key(handle)))
        self._store.add_signing_key(SigningKeyRecord(kid, str(handle), now, None))
        tag = self._vault.seal(self.seal_key, b"", _OWNED_AAD + str(handle).encode())
        self._store.put_meta(_OWNED_PREFIX + str(handle), tag)
        return kid

    def retired_at(self, kid: str) -> int | None:
        """When the published key `kid` was retired (None: current, or not published); as of
        the last `jwks()`."""
        return self._retired.get(kid)


def _published(record: SigningKeyRecord, now: int) -> bool:
    """Whether the JWKS at `now` publishes the key: current, or retired at most
    `limits.MAX_LEASE_TTL` ago (what it signed may not have expired)."""
    return record.retired_at is None or now <= record.retired_at + limits.MAX_LEASE_TTL
