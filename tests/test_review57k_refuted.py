"""Review 57k: attacks on this session's vault and CLI changes that did not work (each test
fails if the defence it names breaks)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import NOW, agent_node_fixture  # noqa: F401  (fixtures)
from tests.test_review35b_pkcs11 import _PLANT
from troth.errors import KeyNotFound
from troth.node import Node, open_node


def test_a_key_planted_without_the_pin_under_a_destroyed_keys_id_is_not_signed_with(
    node: Node, softhsm: SoftHsm
) -> None:
    """Review 57b's stale-object retry looks the key up again by its CKA_ID. A rotation in
    another process destroyed the held signer's key; an application without the PIN (its ID
    from a copy of node.db) then makes a private key object of its own with that ID. The
    retry finds only private objects (a PIN session's): KeyNotFound, nothing signed with the
    planted key, and the next signer is the rotated one."""
    held = node.identities.signer("agent", now=NOW)
    held.sign(b"before")  # its object cached
    with open_node("hsm") as other:
        other.identities.rotate("agent", now=NOW + 10, compromised=True)
    done = subprocess.run(
        [sys.executable, "-c", _PLANT, softhsm.module, softhsm.token_label, held.handle.key_id],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.strip() == "planted", done.stderr
    with pytest.raises(KeyNotFound, match="in the token"):
        held.sign(b"after")
    fresh = node.identities.signer("agent", now=NOW + 20)
    assert fresh.identity.change_count == 3
