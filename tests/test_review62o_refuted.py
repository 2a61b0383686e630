"""Review 62o, attacks on the rekey's re-seal of the broker's blobs (review 62i) that did not
work: a rekey beside an open broker, a scrub cut short, a second rekey, a PKCS#11 node whose
seal key is in its software part, a blob planted under a value a rekey replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SoftHsm
from tests.test_review62i_rekey import (
    UPSTREAM,
    blobs,
    broker,
    broker_node,
    current_kid,
    opens,
    seal_values,
    works,
)
from tests.test_vault_rekey import copy_node
from troth.errors import ConfigError, SecretError, StorageError, VaultError
from troth.node import open_node
from troth.node import rekey as node_rekey
from troth.node.rekey import PENDING_KEY_FILE, SCRUB_MARK, rekey_vault
from troth.secrets.upstreams import secret_aad
from troth.storage import SqliteDatabase, SqliteKeyStore
from troth.vault import CompositeVault, SealingVault, SealKey, SoftwareVault


def test_a_rekey_beside_an_open_broker_is_refused_and_changes_nothing(troth_home: Path) -> None:
    """A broker open in another open of the node (its seal key's value cached, as a running
    node's): the rekey is refused before it re-seals anything, so no blob is re-sealed under a
    value the open broker does not have, and it goes on sealing what opens afterwards."""
    path = broker_node(troth_home)
    before = blobs(path)
    with broker() as opened:
        with pytest.raises(ConfigError, match="another process has node"):
            rekey_vault("n", home=troth_home)
        assert blobs(path) == before
        opened.put_secret("other", "http-inject", UPSTREAM, b"sealed meanwhile", now=1)
    assert not (path / PENDING_KEY_FILE).exists()
    works(troth_home, current_kid(troth_home))


def test_a_rekey_whose_scrub_failed_leaves_no_old_blob_once_an_open_scrubs(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scrub after the re-seal fails (a busy log, a full disk): the blobs as they were
    before (sealed under the value the copy holds) are still in node.db's pages or log. The
    next open that has the node alone scrubs them out (the mark committed with the re-seal),
    then switches to the new key; the broker works on and the copy's value opens none."""
    path = broker_node(troth_home)
    kid = current_kid(troth_home)
    old = seal_values(path, (path / "vault.key").read_bytes())
    key, before = blobs(path)

    def busy(db: SqliteDatabase) -> None:
        raise StorageError("busy")

    with monkeypatch.context() as patched:
        patched.setattr(node_rekey, "_scrub", busy)
        assert not rekey_vault("n", home=troth_home).scrubbed  # owed (review 63h, rekey 1)
    db = SqliteDatabase(path / "node.db")
    try:
        assert SqliteKeyStore(db).get_vault_meta(SCRUB_MARK) is not None
    finally:
        db.close()
    works(troth_home, kid)  # the open scrubs (the rekey renamed vault.key.new)
    assert not (path / PENDING_KEY_FILE).exists()
    for file in path.iterdir():
        if file.is_file():
            data = file.read_bytes()
            assert all(blob[13:] not in data for blob, _ in before), file.name
    assert not any(opens(old[key.key_id][0], key, *blob) for blob in blobs(path)[1])


def test_a_second_rekey_right_after_the_first_reseals_every_blob_again(troth_home: Path) -> None:
    """Two rekeys in a row: the second re-seals the first's blobs under its own value, the
    first's value opens none of them, the audit key is fresh again, the broker works on."""
    path = broker_node(troth_home)
    kid = current_kid(troth_home)
    rekey_vault("n", home=troth_home)
    first = seal_values(path, (path / "vault.key").read_bytes())
    key, between = blobs(path)
    rekey_vault("n", home=troth_home)
    (value,) = seal_values(path, (path / "vault.key").read_bytes())[key.key_id]
    _, after = blobs(path)
    assert len(after) == len(between) == 3
    assert all(opens(value, key, *blob) for blob in after)
    assert not any(opens(first[key.key_id][0], key, *blob) for blob in after)
    works(troth_home, kid)


def test_a_pkcs11_nodes_seal_key_in_its_software_part_is_resealed(
    troth_home: Path, softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PKCS#11 node whose token makes no seal key (docs/vault.md: its software part holds
    them): the rekey (of the software part, the token not opened) re-seals the broker's blobs
    under the seal key's new value, nothing opens under the value a copy holds, and the
    broker, over the token and the software part, works on."""
    softhsm.init_node("n", monkeypatch)

    def fallback(self: CompositeVault) -> SealKey:
        vault = self._fallback
        assert isinstance(vault, SealingVault)
        return vault.generate_seal_key()

    monkeypatch.setattr(CompositeVault, "generate_seal_key", fallback)
    path = broker_node(troth_home, init=False)
    kid = current_kid(troth_home)
    key, before = blobs(path)
    assert key.vault == "software"
    old = seal_values(path, (path / "vault.key").read_bytes())
    rekey_vault("n", home=troth_home)
    (value,) = seal_values(path, (path / "vault.key").read_bytes())[key.key_id]
    _, after = blobs(path)
    assert len(after) == len(before)
    assert all(opens(value, key, *blob) for blob in after)
    assert not any(opens(old[key.key_id][0], key, *blob) for blob in after)
    works(troth_home, kid)


def test_a_blob_sealed_under_a_replaced_value_is_not_resealed_by_the_next_rekey(
    troth_home: Path,
) -> None:
    """The copy's holder, after the recovery's rekey, writes into node.db a secret sealed under
    the value they hold (its AAD from node.db), hoping a later rekey (the owner's routine one)
    re-seals it as the broker's: that rekey tries only the values the seal key has, the
    recovery's; the blob is left as it was and the broker refuses it."""
    path = broker_node(troth_home)
    stolen = copy_node(path, troth_home / "stolen")
    key, _ = blobs(stolen)
    rekey_vault("n", home=troth_home)
    config = '{"upstream":"http://127.0.0.1:9/api","header":"Authorization"}'
    aad = secret_aad("forged", "http-inject", config)
    db = SqliteDatabase(stolen / "node.db")
    try:
        vault = SoftwareVault(SqliteKeyStore(db), (stolen / "vault.key").read_bytes())
        forged = vault.seal(key, b"Bearer the thief's token", aad)
    finally:
        db.close()
    db = SqliteDatabase(path / "node.db")
    try:
        db.execute(
            "INSERT INTO secret_store VALUES ('forged', 'http-inject', ?, ?, 0)", (config, forged)
        )
    finally:
        db.close()
    rekey_vault("n", home=troth_home)
    db = SqliteDatabase(path / "node.db")
    try:
        row = db.fetch_one("SELECT sealed FROM secret_store WHERE name = 'forged'")
        assert bytes(row[0]) == forged
    finally:
        db.close()
    with broker() as opened, pytest.raises(SecretError):
        opened._sealed_upstream("forged", "http-inject", config).reveal()
    with open_node("n") as node:
        assert isinstance(node.vault, SealingVault)
        with pytest.raises(VaultError):
            node.vault.unseal(key, forged, aad)
