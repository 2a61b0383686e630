"""The broker's sealed blobs, re-sealed when the node's vault is rekeyed (review 62i, rekey 1;
`troth.vault.reseal`): in the rekey's transaction, each is sealed again under its seal key's
new value, so none is left that only an old value (one a stolen copy holds) opens.

Every blob the broker seals is in node.db, with all the caller's AAD is made of:

    secret_store.sealed               AAD secret_aad(name, engine, config) (secrets.upstreams)
    secret_meta "audit_key"           AAD "troth.secrets.audit-key/1"
    secret_meta "token-key:<handle>"  AAD "troth.secrets.token-key/1" 0x00 ‖ handle (the tag)

all under the seal key `secret_meta` "seal_key" names (the secrets read a chunk at a time: their
number has no bound, review 63h, rekey 2). A blob no value opens is left as it is.
Two are not kept as they were:

- the audit key is replaced by a fresh one: the copy opened it, and the audit log (the node's
  trace) records every secret value as an HMAC under it, so the copy's holder tested guesses of
  an upstream password stored again after the recovery (review 62o, rekey 1). The records made
  before the rekey keep their HMACs under the old key (troth never checks one against another);
- a token key's tag is re-sealed only with the key's row in `secret_signing_keys` (a tag goes
  with its row, and out with it: `troth.secrets.keys`): a tag the copy's holder planted before
  the rekey for a key the vault had not made yet (its next row numbers), re-sealed, made a key
  the node made after the recovery (an identity's) the broker's own as soon as a writer of
  node.db pointed the token key's row at it (review 62o, rekey 2). Any other opens under nothing.
"""

from __future__ import annotations

import os
from typing import Any

from troth.errors import MalformedText
from troth.secrets.keys import _AUDIT_KEY_AAD, _AUDIT_KEY_SIZE, _OWNED_AAD, _OWNED_PREFIX
from troth.secrets.upstreams import secret_aad
from troth.storage import SqliteDatabase
from troth.vault import SealKey
from troth.vault.reseal import Resealer

__all__ = ["reseal_secrets"]


def reseal_secrets(db: SqliteDatabase, reseal: Resealer) -> None:
    """Re-seal the broker's blobs in `db` with `reseal` (a `ResealHook`: call it inside the
    rekey's transaction). Nothing for a node that never was a broker; a row of another shape
    than the broker writes (node.db written by hand) is left as it is."""
    if not _rows(db, _META, "1"):
        return
    named = db.fetch_one("SELECT value FROM secret_meta WHERE name = 'seal_key'")
    try:
        key = SealKey.parse(bytes(named[0]).decode())
    except (TypeError, MalformedText, UnicodeDecodeError):
        return  # no seal key (or not one): nothing opens under it
    made = {_OWNED_PREFIX + str(handle) for (handle,) in _rows(db, _KEYS, "handle")}
    for name, value in db.fetch_all("SELECT name, value FROM secret_meta"):
        if name == "audit_key":  # a fresh one (review 62o, rekey 1)
            fresh = os.urandom(_AUDIT_KEY_SIZE)
            _rewrite(
                db, "secret_meta", "value", name, reseal.renew(key, value, _AUDIT_KEY_AAD, fresh)
            )
        elif name in made:  # a tag, with its key's row (review 62o, rekey 2)
            aad = _OWNED_AAD + name.removeprefix(_OWNED_PREFIX).encode()
            _rewrite(db, "secret_meta", "value", name, reseal(key, value, aad))
    if not _has(db, _STORE):
        return
    after: object = ""  # by name, a chunk at a time: no bound on the secrets (review 63h, rekey 2)
    while found := db.fetch_all(_CHUNK_SQL, (after, _CHUNK)):
        for name, engine, config, value in found:
            if isinstance(name, str) and isinstance(engine, str) and isinstance(config, str):
                aad = secret_aad(name, engine, config)
                _rewrite(db, "secret_store", "sealed", name, reseal(key, value, aad))
        after = found[-1][0]


_META, _KEYS, _STORE = "secret_meta", "secret_signing_keys", "secret_store"
_CHUNK = 500
"""Upstream secrets read and re-sealed at a time (up to 32 KiB each: its configuration and
sealed value, MAX_SECRET_CONFIG_BYTES and MAX_SECRET_VALUE_BYTES)."""
_CHUNK_SQL = (
    "SELECT name, engine, config, sealed FROM secret_store WHERE name > ? ORDER BY name LIMIT ?"
)


def _rows(db: SqliteDatabase, table: str, columns: str) -> list[Any]:
    """`columns` of every row of the broker's `table` (troth's own names); none if node.db has
    no such table (an older broker, or one written by hand: nothing in it to re-seal)."""
    if not _has(db, table):
        return []
    return db.fetch_all(f"SELECT {columns} FROM {table}")  # noqa: S608


def _has(db: SqliteDatabase, table: str) -> bool:
    """Whether node.db has the broker's `table`."""
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return db.fetch_one(sql, (table,)) is not None


def _rewrite(
    db: SqliteDatabase, table: str, column: str, name: object, sealed: bytes | None
) -> None:
    """Row `name` of `table` (troth's own names: no text from node.db) holding `sealed`
    in `column`, unless None (left as it is)."""
    if sealed is not None:
        db.execute(f"UPDATE {table} SET {column} = ? WHERE name = ?", (sealed, name))  # noqa: S608
