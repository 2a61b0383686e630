"""Review 62i, attacks on the rekey's re-seal of the broker's blobs that did not work."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_review62i_rekey import CANARY, blobs, broker, broker_node, current_kid, works
from tests.test_vault_rekey import copy_node
from troth.errors import SecretError, VaultError
from troth.node.rekey import rekey_vault
from troth.secrets import Broker
from troth.storage import SqliteDatabase


def _put_back(path: Path, stolen: Path, sql: str, read: str, *where: object) -> None:
    """Write into `path`'s node.db, by `sql`, the row of `stolen`'s node.db that `read` reads
    (both given `where` after the row's values)."""
    source, target = SqliteDatabase(stolen / "node.db"), SqliteDatabase(path / "node.db")
    try:
        target.execute(sql, (*source.fetch_one(read, where), *where))
    finally:
        source.close()
        target.close()


def test_the_copys_blobs_put_back_after_the_rekey_open_nothing(troth_home: Path) -> None:
    """The copy's holder writes back into the recovered node.db the broker's rows as the copy
    has them (sealed under the old value: the upstream secret, the token key's ownership tag),
    a replay rather than a forgery: neither opens. The secret is refused (its configuration no
    longer opens it), and the broker no longer takes its token key as its own."""
    path = broker_node(troth_home)
    kid = current_kid(troth_home)
    stolen = copy_node(path, troth_home / "stolen")
    rekey_vault("n", home=troth_home)
    _put_back(
        path,
        stolen,
        "UPDATE secret_store SET sealed = ? WHERE name = 'orders-api'",
        "SELECT sealed FROM secret_store WHERE name = 'orders-api'",
    )
    with broker() as opened, pytest.raises(SecretError):
        opened._sealed_upstream(*_place(opened)).reveal()
    _put_back(
        path,
        stolen,
        "UPDATE secret_meta SET value = ? WHERE name LIKE 'token-key:%'",
        "SELECT value FROM secret_meta WHERE name LIKE 'token-key:%'",
    )
    with broker() as opened:
        (handle,) = [k.handle for k in opened.store.signing_keys() if k.kid == kid]
        assert not opened.keys._owned(handle)


def _place(opened: Broker) -> tuple[str, str, str]:
    record = opened.store.get_secret("orders-api")
    assert record is not None
    return record.name, record.engine, record.config


def test_the_copys_seal_key_row_put_back_does_not_bring_back_its_value(troth_home: Path) -> None:
    """The copy's seal key row (its old value, sealed under the old KEK) written back over the
    recovered one: it does not unseal under the node's KEK, so no blob is sealed or opened
    under the old value; the broker fails to open (VaultError) rather than take it."""
    path = broker_node(troth_home)
    stolen = copy_node(path, troth_home / "stolen")
    key, _ = blobs(path)
    rekey_vault("n", home=troth_home)
    number = int(key.key_id, 16)
    _put_back(
        path,
        stolen,
        "UPDATE vault_keys SET sealed = ? WHERE key_id = ?",
        "SELECT sealed FROM vault_keys WHERE key_id = ?",
        number,
    )
    with pytest.raises(VaultError), broker():
        pass


def test_a_blob_moved_to_another_place_before_the_rekey_is_not_resealed_there(
    troth_home: Path,
) -> None:
    """A writer of node.db (no key) moves the broker's secret to another name and its
    ownership tag to another key's row before the rekey, hoping the re-seal opens each under
    its old place and seals it under the new one: the re-seal opens and seals under the same
    place, so neither opens there (left as it was), nor anywhere after the rekey."""
    path = broker_node(troth_home)
    kid = current_kid(troth_home)
    db = SqliteDatabase(path / "node.db")
    try:
        db.execute(
            "INSERT INTO secret_store SELECT 'prod-db', engine, config, sealed, updated_at "
            "FROM secret_store WHERE name = 'orders-api'"
        )
        db.execute(
            "INSERT INTO secret_meta SELECT 'token-key:software:ed25519:00000000000000ff', "
            "value FROM secret_meta WHERE name LIKE 'token-key:%'"
        )
    finally:
        db.close()
    _, before = blobs(path)
    rekey_vault("n", home=troth_home)
    moved = {aad for _, aad in before if _is_moved(aad)}
    assert len(moved) == 2
    _, after = blobs(path)
    assert [b for b, aad in after if aad in moved] == [b for b, aad in before if aad in moved]
    with broker() as opened:
        assert not opened.keys._owned("software:ed25519:00000000000000ff")
        with pytest.raises(SecretError):
            record = opened.store.get_secret("prod-db")
            assert record is not None
            opened._sealed_upstream(record.name, record.engine, record.config).reveal()
        assert opened._sealed_upstream(*_place(opened)).reveal() == CANARY
    works(troth_home, kid)


def _is_moved(aad: bytes) -> bool:
    return b"prod-db" in aad or aad.endswith(b"00000000000000ff")
