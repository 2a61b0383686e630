"""Review 34a, pkcs11: what a session on the token without the user PIN can do to troth's keys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import NOW, SoftHsm
from troth.identity import verify_history
from troth.node import open_node

# A PKCS#11 application that opens a read-write session on the token without logging in (a
# public session: PKCS#11 v3.0 §5.6, public objects only), finds the objects with the given
# CKA_IDs and destroys what it can. Its own process: login state belongs to an application.
_PUBLIC_SESSION = """
import sys
import pkcs11
lib = pkcs11.lib(sys.argv[1])
token = lib.get_token(token_label=sys.argv[2])
seen = destroyed = 0
with token.open(rw=True) as session:
    for key_id in sys.argv[3:]:
        for found in list(session.get_objects({pkcs11.Attribute.ID: bytes.fromhex(key_id)})):
            seen += 1
            try:
                found.destroy()
                destroyed += 1
            except pkcs11.exceptions.PKCS11Error:
                pass
print(seen, destroyed)
"""


def _public_session(softhsm: SoftHsm, key_ids: list[str]) -> tuple[int, int]:
    """(objects seen, objects destroyed) by a session on the token without the PIN."""
    done = subprocess.run(
        [sys.executable, "-c", _PUBLIC_SESSION, softhsm.module, softhsm.token_label, *key_ids],
        check=True,
        capture_output=True,
        text=True,
    )
    seen, destroyed = done.stdout.split()
    return int(seen), int(destroyed)


def test_a_session_without_the_pin_cannot_strand_an_identity(
    softhsm: SoftHsm, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 34a, pkcs11 1. A node keeps its identity keys in a token; another application
    that can open a session on the token but does not know the user PIN (PKCS#11 v3.0 §5.6:
    a public session reads, creates and destroys public objects) finds troth's public key
    objects (CKA_PRIVATE was not set: SoftHSM2 makes them public; their labels say
    `troth:<key id>`) and destroys them. The private keys stay, but a rotation must reveal the
    committed next key, whose public value only that object held (the history holds its
    digest; a sensitive private key gives no public value): `troth identity rotate` fails for
    good, and the owner can never retire a stolen key. Made private objects, they are visible
    to logged-in sessions only.

    Was a strict xfail until `Pkcs11Vault.generate` made the public key object private
    (CKA_PRIVATE) and not modifiable."""
    softhsm.init_node("hsm", monkeypatch)
    with open_node("hsm") as node:
        local = node.identities.create(now=NOW, name="agent")
        ids = [local.primary_key.key_id, local.next_key.key_id]
    seen, destroyed = _public_session(softhsm, ids)
    with open_node("hsm") as node:
        rotated = node.identities.rotate("agent", now=NOW + 60)  # reveals the next key
        history = node.identities.export("agent")
    assert verify_history(history, now=NOW + 60).current_key == rotated.identity.current_key
    assert (seen, destroyed) == (0, 0)  # it sees none of them
