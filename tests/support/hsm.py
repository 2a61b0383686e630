"""The SoftHSM2 token's vault, opened and closed for the PKCS#11 reviews (48d, 48k, 48r); a node
on the token with an agent, its objects counted, and storage failures injected (53k, 53m)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import SoftHsm
from troth.errors import StorageError
from troth.node import Node
from troth.node.node import open_node
from troth.storage.sqlite import SqliteDatabase
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault

NOW = 1_800_000_000
"""When `agent_node`'s agent and its signing key are made."""


@contextmanager
def token_vault(softhsm: SoftHsm) -> Iterator[Pkcs11Vault]:
    """A vault on the session's token, closed after."""
    vault = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
    try:
        yield vault
    finally:
        vault.close()


@pytest.fixture(name="vault")
def vault_fixture(softhsm: SoftHsm) -> Iterator[Pkcs11Vault]:
    """A vault on the session's token (import this as `vault_fixture` and ask for `vault`)."""
    with token_vault(softhsm) as vault:
        yield vault


@pytest.fixture(name="node")
def agent_node_fixture(
    softhsm: SoftHsm, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Node]:
    """A node `hsm` on the session's token holding identity `agent` and its signing key, made at
    NOW (import this as `agent_node_fixture` and ask for `node`)."""
    softhsm.init_node("hsm", monkeypatch)
    with open_node("hsm") as node:
        node.identities.create(now=NOW, name="agent")
        node.identities.purpose_key("agent", KeyPurpose.SIGNING, now=NOW)
        yield node


def token_keys(node: Node) -> int:
    """The private key objects troth made in the node's token."""
    from pkcs11 import Attribute, ObjectClass

    vault = node.vault._primary  # type: ignore[attr-defined]  # the CompositeVault's token
    with vault._lock:
        found = vault._session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
        return sum(1 for key in found if str(key[Attribute.LABEL]).startswith("troth:"))


def token_retirements(node: Node) -> list[str]:
    """The labels of the retirement objects in the node's token."""
    from pkcs11 import Attribute, ObjectClass

    vault = node.vault._primary  # type: ignore[attr-defined]  # the CompositeVault's token
    with vault._lock:
        found = vault._session.get_objects({Attribute.CLASS: ObjectClass.DATA})
        labels = [str(obj[Attribute.LABEL]) for obj in found]
    return sorted(label for label in labels if label.startswith("troth-retired:"))


def renew_at(node: Node) -> int:
    """A time at which the signing key made at NOW is renewed (within a day of expiry)."""
    return NOW + node.identities.purpose_key_ttl - 3600


def fail(*_args: object, **_kwargs: object) -> None:
    """A storage write that fails."""
    raise StorageError("injected: the disk failed")


def fail_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the next COMMIT fail (after its rollback), as a full disk or an I/O error does."""
    commit = SqliteDatabase._commit

    def failing(self: SqliteDatabase, conn: object) -> None:
        monkeypatch.setattr(SqliteDatabase, "_commit", commit)  # once
        conn.execute("ROLLBACK")  # type: ignore[attr-defined]
        raise StorageError("injected: commit failed")

    monkeypatch.setattr(SqliteDatabase, "_commit", failing)
