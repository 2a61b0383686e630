"""Review 62i, rekey 1: `troth vault rekey` replaces each seal key's value and re-seals the
broker's blobs under the new one (docs/vault.md, "Changing the vault key"; review 62d, vault
2: a kept old value let a stolen copy's holder seal blobs the recovered node took as its own,
`tests/test_review62d_vault.py`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import SoftHsm
from tests.test_vault_rekey import aad, copy_node, rows, troth
from troth.crypto import Aead, AeadAlgorithm
from troth.errors import CryptoError, VaultError
from troth.faults import CRASH_EXIT_CODE
from troth.node import open_node
from troth.node.node import init_node
from troth.node.rekey import rekey_vault
from troth.node.services.broker import open_broker
from troth.secrets import Broker
from troth.secrets.upstreams import secret_aad
from troth.storage import SqliteDatabase, SqliteKeyStore
from troth.vault import SealingVault, SealKey, SoftwareVault
from troth.vault.base import seal_aad
from troth.vault.reseal import Resealer

NOW = 1_780_000_000
CANARY = b"Bearer the owner's upstream token"
UPSTREAM = {
    "upstream": "http://127.0.0.1:9/api",
    "header": "Authorization",
    "rules": [{"methods": ["GET"], "path": "/orders/*"}],
    "scopes": ["read"],
}
_SEAL_ROW_AAD = b"troth.vault.seal-key/1\x00"


@contextmanager
def broker(name: str = "n") -> Iterator[Broker]:
    with open_node(name) as node:
        opened = open_broker(node, now=NOW)
        try:
            yield opened
        finally:
            opened.close()


def broker_node(home: Path, init: bool = True) -> Path:
    """Node `n` (made here unless not `init`) a broker with secret `orders-api` (CANARY)."""
    if init:
        init_node("n")
    with broker() as made:
        made.put_secret("orders-api", "http-inject", UPSTREAM, CANARY, now=NOW)
    return home / "nodes" / "n"


def seal_values(path: Path, kek: bytes) -> dict[str, list[bytes]]:
    """Each software seal key's values, as its row under `kek` holds them (key id: values)."""
    found = {}
    for number, key_type, _, sealed in rows(path):
        if key_type == 16:
            raw = Aead(AeadAlgorithm.AES_256_GCM, kek).decrypt(
                sealed[1:13], sealed[13:], aad(number, key_type, 0)
            )
            found[f"{number:016x}"] = [raw[at : at + 32] for at in range(0, len(raw), 32)]
    return found


def blobs(path: Path) -> tuple[SealKey, list[tuple[bytes, bytes]]]:
    """The broker's seal key and every (blob, caller AAD) it sealed in node.db."""
    db = SqliteDatabase(path / "node.db")
    try:
        key = SealKey.parse(
            bytes(db.fetch_one("SELECT value FROM secret_meta WHERE name = 'seal_key'")[0]).decode()
        )
        found = [
            (bytes(row[3]), secret_aad(row[0], row[1], row[2]))
            for row in db.fetch_all("SELECT name, engine, config, sealed FROM secret_store")
        ]
        for name, value in db.fetch_all("SELECT name, value FROM secret_meta"):
            if name == "audit_key":
                found.append((bytes(value), b"troth.secrets.audit-key/1"))
            elif name.startswith("token-key:"):
                found.append((bytes(value), b"troth.secrets.token-key/1\x00" + name[10:].encode()))
        return key, found
    finally:
        db.close()


def opens(value: bytes, key: SealKey, blob: bytes, caller_aad: bytes) -> bool:
    try:
        Aead(AeadAlgorithm.AES_256_GCM, value).decrypt(
            blob[1:13], blob[13:], seal_aad(key, caller_aad)
        )
    except CryptoError:
        return False
    return True


def works(home: Path, kid: str) -> None:
    """The broker opens (its audit key unseals), keeps token key `kid` as its own (the
    ownership tag opens: else it would have made another) and its secret unseals."""
    with broker() as opened:
        current = [k for k in opened.store.signing_keys() if k.retired_at is None]
        assert [k.kid for k in current] == [kid]
        record = opened.store.get_secret("orders-api")
        assert record is not None
        assert isinstance(opened.vault, SealingVault)
        aad_of = secret_aad(record.name, record.engine, record.config)
        assert opened.vault.unseal(opened.keys.seal_key, record.sealed, aad_of) == CANARY


def current_kid(home: Path) -> str:
    with broker() as opened:
        return next(k.kid for k in opened.store.signing_keys() if k.retired_at is None)


def test_the_brokers_blobs_are_resealed_and_no_old_value_is_left(troth_home: Path) -> None:
    """After the rekey each seal key holds one value, new; every blob the broker keeps in
    node.db (its secret, audit key, token key's ownership tag) opens under it and under no
    value a copy from before held, and no byte of those blobs is left in the node directory
    (the scrub). The broker works on: same token key, its secret unseals."""
    path = broker_node(troth_home)
    kid = current_kid(troth_home)
    old = seal_values(path, (path / "vault.key").read_bytes())
    key, before = blobs(path)
    assert len(before) == 3
    assert [len(v) for v in old.values()] == [1]
    assert all(opens(old[key.key_id][0], key, *blob) for blob in before)
    rekey_vault("n", home=troth_home)
    new = seal_values(path, (path / "vault.key").read_bytes())
    assert new.keys() == old.keys()
    assert all(len(values) == 1 and values[0] not in old[key_id] for key_id, values in new.items())
    _, after = blobs(path)
    assert len(after) == len(before)
    for blob in after:
        assert opens(new[key.key_id][0], key, *blob)
        assert not opens(old[key.key_id][0], key, *blob)
    for file in path.iterdir():
        if file.is_file():
            data = file.read_bytes()
            assert all(blob[13:] not in data for blob, _ in before), file.name
    works(troth_home, kid)


def test_blobs_planted_in_the_brokers_tables_do_not_stop_the_recovery(troth_home: Path) -> None:
    """Someone who can write node.db plants a tag no value opens, a secret sealed under no
    value, a row of another shape: the rekey goes on (refusing would let them keep the
    recovery from happening), re-seals the broker's own blobs and leaves those as they are."""
    path = broker_node(troth_home)
    kid = current_kid(troth_home)
    db = SqliteDatabase(path / "node.db")
    planted = [
        ("token-key:software:ed25519:00000000000000ff", b"\x01" + bytes(40)),
        ("token-key:", b"\x02"),
        ("no-blob", b"\x01" + bytes(40)),
    ]
    try:
        for name, value in planted:
            db.execute("INSERT INTO secret_meta VALUES (?, ?)", (name, value))
        db.execute(
            "INSERT INTO secret_store VALUES ('forged', 'http-inject', '{}', ?, 0)",
            (b"\x01" + bytes(60),),
        )
        db.execute("INSERT INTO secret_store VALUES (?, 'token', 'x', X'01', 0)", (b"blob-name",))
    finally:
        db.close()
    rekey_vault("n", home=troth_home)
    db = SqliteDatabase(path / "node.db")
    try:
        for name, value in planted:
            row = db.fetch_one("SELECT value FROM secret_meta WHERE name = ?", (name,))
            assert bytes(row[0]) == value
        row = db.fetch_one("SELECT sealed FROM secret_store WHERE name = 'forged'")
        assert bytes(row[0]) == b"\x01" + bytes(60)
    finally:
        db.close()
    works(troth_home, kid)


def test_a_row_from_before_with_several_values_is_resealed_under_one(tmp_path: Path) -> None:
    """A seal key row a pre-62i rekey wrote holds its value and those it replaced; blobs made
    under either are re-sealed by the hook, and the row then holds one new value. The
    `Resealer` leaves what it cannot re-seal: another vault's key, a blob under no value."""
    kek, db = os.urandom(32), SqliteDatabase(tmp_path / "v.db")
    try:
        store = SqliteKeyStore(db)
        vault = SoftwareVault(store, kek)
        key = vault.generate_seal_key()
        first = vault.seal(key, b"under the first value", b"a")
        number = int(key.key_id, 16)
        stored = store.get_sealed_key(number)
        assert stored is not None
        sealed = stored[2]
        aead = Aead(AeadAlgorithm.AES_256_GCM, kek)
        row_aad = _SEAL_ROW_AAD + key.key_id.encode()
        value = aead.decrypt(sealed[1:13], sealed[13:], row_aad)
        both = os.urandom(32) + value  # what a 55d rekey wrote: a fresh value, then the old
        nonce = os.urandom(12)
        store.replace_sealed_keys([(number, b"\x01" + nonce + aead.encrypt(nonce, both, row_aad))])
        vault = SoftwareVault(store, kek)
        second = vault.seal(key, b"under the second value", b"b")
        assert vault.unseal(key, first, b"a") == b"under the first value"
        with pytest.raises(VaultError):  # no value of the row opens it as another key's
            vault.unseal(vault.generate_seal_key(), first, b"a")
        other = SealKey("pkcs11", key.key_id)
        kept: list[bytes | None] = []

        def hook(reseal: Resealer) -> None:
            kept.extend(reseal(key, blob, aad) for blob, aad in [(first, b"a"), (second, b"b")])
            assert reseal(other, first, b"a") is None  # a token's key: not the rekey's
            assert reseal(key, first, b"moved") is None  # opens under no value
            assert reseal(key, first[:20], b"a") is None  # cut short
            assert reseal.resealed == 2

        new_kek = os.urandom(32)
        with db.transaction():
            vault.rekey(new_kek, reseal=hook)
        fresh = SoftwareVault(store, new_kek)
        resealed_first, resealed_second = kept
        assert resealed_first is not None
        assert resealed_second is not None
        assert fresh.unseal(key, resealed_first, b"a") == b"under the first value"
        assert fresh.unseal(key, resealed_second, b"b") == b"under the second value"
        for stale in (first, second):  # made under values the rekey replaced
            for opener in (vault, fresh):
                with pytest.raises(VaultError):
                    opener.unseal(key, stale, b"a" if stale is first else b"b")
        row = store.get_sealed_key(number)
        assert row is not None
        raw = Aead(AeadAlgorithm.AES_256_GCM, new_kek).decrypt(row[2][1:13], row[2][13:], row_aad)
        assert len(raw) == 32
        assert raw not in (both[:32], both[32:])
    finally:
        db.close()


@pytest.mark.parametrize("point", ["vault.rekey.before-commit", "vault.rekey.after-commit"])
def test_a_rekey_killed_with_the_blobs_resealed_leaves_every_blob_readable(
    troth_home: Path, point: str
) -> None:
    """Killed with every blob re-sealed, before its commit or after it: the next open has the
    node with one working KEK, each seal key with one value, and every blob of the broker
    opening under it: the broker works on. Committed, a copy's old value opens none."""
    path = broker_node(troth_home)
    kid = current_kid(troth_home)
    old = seal_values(path, (path / "vault.key").read_bytes())
    killed = troth("vault", "rekey", "--node", "n", crash=point)
    assert killed.returncode == CRASH_EXIT_CODE, killed
    works(troth_home, kid)  # the open settles vault.key.new
    assert not (path / "vault.key.new").exists()
    values = seal_values(path, (path / "vault.key").read_bytes())
    assert (values == old) is (point == "vault.rekey.before-commit")
    key, found = blobs(path)
    (value,) = values[key.key_id]
    assert all(opens(value, key, *blob) for blob in found)
    if values != old:
        assert not any(opens(old[key.key_id][0], key, *blob) for blob in found)


def test_a_pkcs11_nodes_token_seal_key_and_its_blobs_are_left_to_the_token(
    troth_home: Path, softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PKCS#11 node's seal key is in the token (never in the node directory: no copy holds
    its value), so the rekey gives it no value and re-seals nothing under it; the broker's
    blobs are left as they were and still open."""
    softhsm.init_node("n", monkeypatch)
    path = broker_node(troth_home, init=False)
    kid = current_kid(troth_home)
    key, before = blobs(path)
    assert key.vault != "software"
    rekey_vault("n", home=troth_home)
    assert blobs(path) == (key, before)
    works(troth_home, kid)


def test_the_stolen_copy_unseals_and_seals_nothing_new(troth_home: Path) -> None:
    """The copy's holder (node.db and vault.key from before the rekey) unseals none of the
    blobs re-sealed in a later node.db, and a tag they seal under the old value for a key of
    their choice is not taken as the broker's (its ownership tag: review 62d, vault 2)."""
    path = broker_node(troth_home)
    kid = current_kid(troth_home)
    stolen = copy_node(path, troth_home / "stolen")
    key, _ = blobs(path)
    rekey_vault("n", home=troth_home)
    db = SqliteDatabase(stolen / "node.db")
    try:
        thief = SoftwareVault(SqliteKeyStore(db), (stolen / "vault.key").read_bytes())
        for blob, caller_aad in blobs(path)[1]:
            with pytest.raises(VaultError):
                thief.unseal(key, blob, caller_aad)
        with broker() as opened:
            handle = next(k.handle for k in opened.store.signing_keys() if k.kid == kid)
        forged = thief.seal(key, b"", b"troth.secrets.token-key/1\x00" + handle.encode())
    finally:
        db.close()
    with broker() as opened:
        opened.store.drop_meta("token-key:" + handle)
        opened.store.put_meta("token-key:" + handle, forged)
        assert not opened.keys._owned(handle)
