"""The broker's sealed blobs, re-sealed when the node's vault is rekeyed (review 62i, rekey 1;
`troth.vault.reseal`): in the rekey's transaction, each is sealed again under its seal key's
new value, so none is left that only an old value (one a stolen copy holds) opens.

Every blob the broker seals is in node.db, with all the caller's AAD is made of:

    secret_store.sealed               AAD secret_aad(name, engine, config) (secrets.upstreams)
    secret_meta "audit_key"           AAD "troth.secrets.audit-key/1"
    secret_meta "token-key:<handle>"  AAD "troth.secrets.token-key/1" 0x00 ‖ handle (the tag)

all under the seal key `secret_meta` "seal_key" names. A blob no value opens is left as it is.
"""

from __future__ import annotations

from troth.errors import MalformedText
from troth.secrets.keys import _AUDIT_KEY_AAD, _OWNED_AAD, _OWNED_PREFIX
from troth.secrets.upstreams import secret_aad
from troth.storage import SqliteDatabase
from troth.vault import SealKey
from troth.vault.reseal import Resealer

__all__ = ["reseal_secrets"]


def reseal_secrets(db: SqliteDatabase, reseal: Resealer) -> None:
    """Re-seal the broker's blobs in `db` with `reseal` (a `ResealHook`: call it inside the
    rekey's transaction). Nothing for a node that never was a broker; a row of another shape
    than the broker writes (node.db written by hand) is left as it is."""
    if not db.fetch_one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_META,)):
        return
    named = db.fetch_one("SELECT value FROM secret_meta WHERE name = 'seal_key'")
    try:
        key = SealKey.parse(bytes(named[0]).decode())
    except (TypeError, MalformedText, UnicodeDecodeError):
        return  # no seal key (or not one): nothing opens under it
    for name, value in db.fetch_all("SELECT name, value FROM secret_meta"):
        if name == "audit_key":
            aad = _AUDIT_KEY_AAD
        elif isinstance(name, str) and name.startswith(_OWNED_PREFIX):
            aad = _OWNED_AAD + name.removeprefix(_OWNED_PREFIX).encode()
        else:
            continue
        _rewrite(db, "secret_meta", "value", name, reseal(key, value, aad))
    for name, engine, config, value in db.fetch_all(
        "SELECT name, engine, config, sealed FROM secret_store"
    ):
        if isinstance(name, str) and isinstance(engine, str) and isinstance(config, str):
            aad = secret_aad(name, engine, config)
            _rewrite(db, "secret_store", "sealed", name, reseal(key, value, aad))


_META = "secret_meta"


def _rewrite(
    db: SqliteDatabase, table: str, column: str, name: object, sealed: bytes | None
) -> None:
    """Row `name` of `table` (troth's own names: no text from node.db) holding `sealed`
    in `column`, unless None (left as it is)."""
    if sealed is not None:
        db.execute(f"UPDATE {table} SET {column} = ? WHERE name = ?", (sealed, name))  # noqa: S608
