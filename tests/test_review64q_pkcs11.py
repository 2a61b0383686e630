"""Review 64q of review 64k's PKCS#11 twin fixes.

pkcs11 1 (low: a key kept in the token for good after the recovery meant to retire it, the
state review 64k, pkcs11 1 fixed for a twin labelled as the key). Review 64k made `retire`
take every private object under a key's CKA_ID, but it still refused the whole retirement
(KeyNotFound) when any one of them was labelled for another purpose: a session with the PIN
that generated a pair under an identity's key id labelled `troth:signing:<id>` (or any other
purpose) made `troth identity rotate --compromised` commit with the old key "not found"
(`retirement_record` reads KeyNotFound as nothing to delete): the identity key and its twin
stayed in the token for good, signing for any session with the PIN. The purpose check is there
so that a purpose key record pointed at an identity's key by a writer of node.db without the
PIN does not get it destroyed (review 48k): it asks whether the token holds a key of the
purpose under the id, which one object labelled for it answers; then every object under the id
is retired and destroyed, as review 64k does. Every object planted here is destroyed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.hsm import NOW, agent_node_fixture
from tests.test_review64k_pkcs11 import _objects_under, _pair
from troth.node import Node
from troth.vault import KeyHandle
from troth.vault.pkcs11 import Pkcs11Vault

__all__ = ["agent_node_fixture"]


def _destroy_under(vault: Pkcs11Vault, handle: KeyHandle) -> None:
    from pkcs11 import Attribute

    with vault._lock:
        for obj in list(vault._session.get_objects({Attribute.ID: bytes.fromhex(handle.key_id)})):
            obj.destroy()


@pytest.fixture
def planted(node: Node) -> Iterator[tuple[Node, Pkcs11Vault, KeyHandle]]:
    vault: Pkcs11Vault = node.vault._primary  # type: ignore[attr-defined]
    old = KeyHandle.parse(str(node.identities.find("agent").primary_key))
    try:
        yield node, vault, old
    finally:
        _destroy_under(vault, old)


@pytest.mark.parametrize("label", ["signing", "secure-channel"])
def test_pkcs11_1_a_twin_labelled_for_another_purpose_is_retired_with_the_key(
    planted: tuple[Node, Pkcs11Vault, KeyHandle], label: str
) -> None:
    node, vault, old = planted
    twin: Any = _pair(vault, old.key_id, f"troth:{label}:{old.key_id}")
    assert twin is not None
    assert _objects_under(vault, old) == 2
    node.identities.rotate("agent", now=NOW + 10, compromised=True)
    assert _objects_under(vault, old) == 0
