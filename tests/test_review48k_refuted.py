"""Review 48k: attacks on the PKCS#11 node's key retirement that the code already refused
(docs/vault.md, "PKCS#11 vault")."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import SoftHsm
from tests.test_review48k_pkcs11 import still_signs, write_node_db
from troth.errors import IdentityError
from troth.node import open_node

pytestmark = pytest.mark.hsm

_POINT = {
    "primary_key": "UPDATE identities SET primary_key = ? WHERE name = 'agent'",
    "next_key": "UPDATE identities SET next_key = ? WHERE name = 'agent'",
}


@pytest.mark.parametrize("column", ["primary_key", "next_key"])
def test_an_identity_row_pointed_at_another_identitys_key_retires_nothing(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, troth_home: Path, column: str
) -> None:
    """A writer of node.db without the PIN points an identity's `primary_key` (or
    `next_key`) at another identity's current key, and waits for a rotation of the first to
    retire it. Refused before anything is retired: the rotation checks in the token that the
    handle's public key is the history's current key (or that the next key's digest is the
    committed one), so the rotation fails, nothing is recorded and the key stays."""
    softhsm.init_node("hsm", monkeypatch)
    now = int(time.time())
    with open_node("hsm") as node:
        victim = node.identities.create(now=now, name="victim").primary_key
        node.identities.create(now=now, name="agent")
    write_node_db(troth_home, _POINT[column], (str(victim),))
    with open_node("hsm") as node:
        with pytest.raises(IdentityError):
            node.identities.rotate("agent", now=now + 1)
        assert node.identities.store.retired_key_records(16) == []
        node.identities.forget_retired()
    assert still_signs(victim)
