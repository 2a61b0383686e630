"""Review 71k (wave2d): attacks tried that did not work (kept as passing tests)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import NOW
from troth.errors import IdentityError, IdentityFailure, KeyNotFound, StorageError
from troth.identity import verify_attestation
from troth.node import init_node, open_node
from troth.storage.row_types import (
    blob_sql,
    stored_blob,
    stored_text,
    stored_whole,
    text_sql,
    whole_sql,
)
from troth.vault import KeyPurpose

_CHANNEL = KeyPurpose.SECURE_CHANNEL
_STOLEN_ROW = {  # what a node.db writer who stole the channel key does to its row
    "attestation text": "UPDATE purpose_keys SET attestation = 'abc'",
    "attestation not verifying": "UPDATE purpose_keys SET attestation = x'00'",
    "handle not utf-8": "UPDATE purpose_keys SET key_handle = CAST(x'ff' AS TEXT)",
    "row deleted": "DELETE FROM purpose_keys",
}


@pytest.mark.parametrize("edit", sorted(_STOLEN_ROW))
def test_a_damaged_purpose_key_row_keeps_no_stolen_key_accepted(edit: str) -> None:
    """71k wave2d refuted: a node.db writer who stole a channel key damages its row (review 71c
    rows 11: the rotation reads it as no record, its key not retired) to keep the key accepted
    past a compromised rotation. A damaged row is what a row whose attestation does not verify
    was before it, and what a row deleted is (which any writer of node.db can do): in each the
    key is left in the vault (an orphan, docs/vault.md) and nothing of the identity uses it
    again. What ends it is the rotation's new change: an attestation verifies only under the
    identity's latest change, so the stolen key's is refused wherever the new history is
    known (channels, signatures), whether or not the vault still holds the key."""
    init_node("n")
    with open_node("n") as node:
        service = node.identities
        service.create(now=NOW, name="a")
        stolen, attested = service.purpose_key("a", _CHANNEL, now=NOW)
        node.db.execute(_STOLEN_ROW[edit])
        rotated = service.rotate("a", now=NOW + 10, compromised=True)
        assert service.vault.public_key(stolen) == attested.key  # left, as for a row deleted
        with pytest.raises(IdentityError) as refused:
            verify_attestation(rotated.identity, attested.attestation, purpose=_CHANNEL, now=NOW)
        assert refused.value.reason is IdentityFailure.ATTESTATION_STALE
        fresh, _ = service.purpose_key("a", _CHANNEL, now=NOW + 20)
        assert fresh != stolen


def test_an_intact_purpose_key_row_has_its_key_retired() -> None:
    """71k wave2d refuted (the contrast): an intact row's key is deleted by the rotation."""
    init_node("n")
    with open_node("n") as node:
        service = node.identities
        service.create(now=NOW, name="a")
        handle, _ = service.purpose_key("a", _CHANNEL, now=NOW)
        service.rotate("a", now=NOW + 10, compromised=True)
        with pytest.raises(KeyNotFound):
            service.vault.public_key(handle)


_BOUND = 16
_VALUES = {  # what SQLite may hold in a column of no affinity
    "null": "NULL",
    "real": "1.0",
    "integer": "7",
    "huge integer": str((1 << 63) - 1),
    "huge text": "CAST(zeroblob(1 << 20) AS TEXT) || 'x'",
    "text": "'abc'",
    "text not utf-8": "CAST(x'ff' AS TEXT)",
    "text at the bound": f"'{'é' * (_BOUND // 2)}'",
    "text past the bound": f"'{'é' * (_BOUND // 2)}a'",
    "blob at the bound": f"zeroblob({_BOUND})",
    "blob past the bound": f"zeroblob({_BOUND + 1})",
    "empty blob": "x''",
}
_READS: dict[str, tuple[Callable[[str], str], Callable[[object], object]]] = {
    "whole": (whole_sql, lambda v: stored_whole(v, "w", Path("db"))),
    "blob": (lambda c: blob_sql(c, _BOUND), lambda v: stored_blob(v, "b", Path("db"), _BOUND)),
    "text": (lambda c: text_sql(c, _BOUND), lambda v: stored_text(v, "t", Path("db"), _BOUND)),
}
_TAKEN = {  # (read, value): what it gives; any other pair is StorageError
    ("whole", "integer"): 7,
    ("whole", "huge integer"): (1 << 63) - 1,
    ("blob", "blob at the bound"): bytes(_BOUND),
    ("blob", "empty blob"): b"",
    ("text", "text"): "abc",
    ("text", "text at the bound"): "é" * (_BOUND // 2),
}


@pytest.mark.parametrize("read", sorted(_READS))
def test_row_types_read_every_type_sqlite_holds(read: str) -> None:
    """71k wave2d refuted: `row_types`' reads on every type SQLite can hold (NULL, REAL, an
    INTEGER, TEXT huge, not UTF-8, at and past the bound in bytes, a BLOB at and past the
    bound, an empty one) give the value only when of their type and within the bound, else
    StorageError saying node.db is damaged: no bare error, nothing truncated, no huge value
    fetched (the SQL hands over its type's name)."""
    sql, stored = _READS[read]
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE TABLE t (name TEXT, v)")
        for name, value in _VALUES.items():
            conn.execute(f"INSERT INTO t VALUES (?, {value})", (name,))  # noqa: S608
        rows = conn.execute(f"SELECT name, {sql('v')} FROM t").fetchall()  # noqa: S608
    finally:
        conn.close()
    assert len(rows) == len(_VALUES)
    for name, value in rows:
        assert not (isinstance(value, bytes | str) and len(value) > 4 * _BOUND), name
        if (read, name) in _TAKEN:
            assert stored(value) == _TAKEN[read, name], name
        else:
            with pytest.raises(StorageError, match="is damaged: its"):
                stored(value)
