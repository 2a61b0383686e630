"""Review 62o, rekey: what the rekey's re-seal of the broker's blobs (review 62i, rekey 1) left
to the holder of a stolen copy (node.db and vault.key from before the recovery): the audit key
the copy opens, and ownership tags planted for keys the node had not made yet."""

from __future__ import annotations

import os
from pathlib import Path

from tests.test_review62i_rekey import UPSTREAM, blobs, broker, broker_node
from tests.test_vault_rekey import aad, copy_node, rows
from troth.crypto import Aead, AeadAlgorithm, KeyType
from troth.node import open_node
from troth.node.rekey import rekey_vault
from troth.secrets.audit import AuditHasher
from troth.storage import SqliteDatabase, SqliteKeyStore
from troth.vault import KeyPurpose, SoftwareVault

NOW = 1_780_000_000
_AUDIT_AAD = b"troth.secrets.audit-key/1"
_OWNED_AAD = b"troth.secrets.token-key/1\x00"


def _thief(stolen: Path) -> tuple[SoftwareVault, SqliteDatabase]:
    """The copy's holder: its vault (every seal key's value) over its node.db."""
    db = SqliteDatabase(stolen / "node.db")
    return SoftwareVault(SqliteKeyStore(db), (stolen / "vault.key").read_bytes()), db


def test_the_audit_key_of_a_stolen_copy_hashes_nothing_after_the_recovery(
    troth_home: Path,
) -> None:
    """Review 62o, rekey 1. The broker's audit key HMACs every secret value its audit log
    records (the upstream password a `put` stores, tokens, lease ids): "a reader of the log
    cannot recover one" (docs/secrets.md, "Audit"). The copy opens it (sealed under the seal
    key's value the copy holds), and the rekey re-sealed it, same bytes: the upstream password
    the owner puts again after the recovery (as docs/vault.md says) is recorded as an HMAC
    under a key the thief holds, so a later copy of node.db alone (or the node's trace, where
    the served broker audits) lets them test guesses of it offline, the very copy the rekey
    was to make useless (review 55d, vault 1). Fixed: the rekey gives the broker a fresh audit
    key, sealed under the seal key's new value (`troth.secrets.reseal`)."""
    path = broker_node(troth_home)
    stolen = copy_node(path, troth_home / "stolen")
    key, found = blobs(stolen)
    thief, db = _thief(stolen)
    try:
        (audit,) = [blob for blob, aad in found if aad == _AUDIT_AAD]
        hasher = AuditHasher(thief.unseal(key, audit, _AUDIT_AAD))
    finally:
        db.close()
    rekey_vault("n", home=troth_home)
    changed = b"the upstream password, changed since"
    with broker() as opened:
        opened.put_secret("orders-api", "http-inject", UPSTREAM, changed, now=NOW + 1)
        assert opened.keys.hasher.digest(changed) != hasher.digest(changed)
    later = SqliteDatabase(path / "node.db")  # a later copy of node.db alone
    try:
        digests = {bytes(row[0]) for row in later.fetch_all("SELECT digest FROM secret_audit")}
    finally:
        later.close()
    assert hasher.digest(changed) not in digests


def test_an_ownership_tag_planted_for_a_key_not_made_yet_opens_nothing_after_the_rekey(
    troth_home: Path,
) -> None:
    """Review 62o, rekey 2. Before the recovery the copy's holder (who holds the KEK and can
    write node.db) plants a vault row of their own at a high key number (a row the old KEK
    opens: the rekey re-seals it with the rest), so the vault numbers its next batch of keys
    (`key_batch`, as `IdentityService.create` of several identities) from there, and ownership
    tags, sealed under the seal key's value they hold, for those numbers: rows the broker never
    writes (a tag goes with its token key's row, and out with it). The rekey re-sealed every
    `token-key:` row under the new value, so after the recovery a writer of node.db without any
    key points the broker's token key row at one of the new keys (an identity's), and the
    broker takes it as its own: it publishes it and signs tokens with it (review 62d, vault 2:
    "an ownership tag for any key", not closed for a tag planted before the rekey). Fixed: the
    rekey re-seals a tag only for a key the broker has a row of; any other opens under nothing
    afterwards."""
    path = broker_node(troth_home)
    stolen = copy_node(path, troth_home / "stolen")
    key, _ = blobs(stolen)
    thief, db = _thief(stolen)
    try:
        planted = [f"software:ed25519:{_HIGH + n:016x}" for n in range(1, 4)]
        tags = [thief.seal(key, b"", _OWNED_AAD + handle.encode()) for handle in planted]
    finally:
        db.close()
    kek = Aead(AeadAlgorithm.AES_256_GCM, (stolen / "vault.key").read_bytes())
    number, key_type, purpose, sealed = next(row for row in rows(stolen) if row[1] != 16)
    raw = kek.decrypt(sealed[1:13], sealed[13:], aad(number, key_type, purpose))
    node_db = SqliteDatabase(path / "node.db")
    try:
        nonce = os.urandom(12)
        again = b"\x01" + nonce + kek.encrypt(nonce, raw, aad(_HIGH, key_type, purpose))
        SqliteKeyStore(node_db).put_sealed_key(_HIGH, key_type, purpose, again, 0)
        for handle, tag in zip(planted, tags, strict=True):
            node_db.execute("INSERT INTO secret_meta VALUES (?, ?)", ("token-key:" + handle, tag))
    finally:
        node_db.close()
    rekey_vault("n", home=troth_home)
    with open_node("n") as node, node.db.transaction():  # the recovery's new keys
        assert isinstance(node.vault, SoftwareVault)
        batch = node.vault.key_batch()
        made = str(batch.generate(KeyType.ED25519, KeyPurpose.SIGNING))
        batch.store()
    assert made in planted
    with broker() as opened:
        assert not opened.keys._owned(made)


_HIGH = 1 << 62
