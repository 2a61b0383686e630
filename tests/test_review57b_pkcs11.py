"""Review 57b, pkcs11 1: a token key another process destroyed (`troth identity rotate` in the
CLI beside a running node) failed through the vault's cached object as a VaultError
(`ObjectHandleInvalid`), not KeyNotFound, and for good: the object stayed cached. Every holder
of a signer takes KeyNotFound as "rotated elsewhere: ask again" (the trace recorder, the trace
outbox, docs/vault.md, "Keys deleted by another process"), so on a PKCS#11 node the running
node's recorder refused every record until its next look at its signer source (60 s), where
a software node's renews at once. Now a stale object is dropped and the key looked up again:
KeyNotFound when the token no longer holds it.

Review 57b, pkcs11 2: a vault used after its close (a signer kept past its node's close: a
script, a worker thread) found its session closed, marked it dead, and its next call logged in
again on a session of its own, registered nowhere and never closed: the closed vault signed on,
and every later vault on the token in the process (the node opened again) failed to open, the
token's login state being the process's (`UserAlreadyLoggedIn`). Now a closed vault does
nothing.

Review 57b, pkcs11 3 (fixed by review 57i): a PKCS#11 module named by two paths (a link and
its target: Debian's /usr/lib/softhsm/libsofthsm2.so and the multiarch path) is loaded twice in
one process, the second load's C_Initialize refused, so of two nodes made with the two paths
the second fails to open there. Resolving the path (os.path.realpath, in `_open_session` so
every load of the process agrees) fixes it, and a wrong PIN through the other path is then
refused by the shared session's PIN digest ("another PIN": tests/test_review55d_refuted.py,
`test_a_second_path_to_the_module_gets_no_session_with_a_wrong_pin`, matched "cannot load").

Review 57b, pkcs11 4: a PIN variable holding bytes that are not UTF-8 (os.environ gives them as
surrogates) failed as a bare UnicodeEncodeError (exit 2, "surrogates not allowed", no word of a
PIN); now ConfigError (exit 3): the PIN is not UTF-8 text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SoftHsm
from tests.support.cli import run
from tests.support.hsm import NOW, agent_node_fixture, token_vault  # noqa: F401  (fixtures)
from tests.support.traces import tool_call
from troth.clock import FixedClock
from troth.crypto import KeyType, verify_signature
from troth.errors import ConfigError, KeyNotFound, VaultError
from troth.node import Node, open_node
from troth.trace import TraceRecorder
from troth.trace.log import open_node_log
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault


def _rotate_elsewhere() -> None:
    """The recovery rotation by another opener of the node (the CLI beside a running node)."""
    with open_node("hsm") as other:
        other.identities.rotate("agent", now=NOW + 10, compromised=True)


def test_a_held_signer_whose_token_key_was_destroyed_elsewhere_is_key_not_found(
    node: Node,
) -> None:
    held = node.identities.signer("agent", now=NOW)
    held.sign(b"before")  # its object cached
    _rotate_elsewhere()
    for _ in range(2):  # the stale object dropped, not kept failing otherwise
        with pytest.raises(KeyNotFound, match="in the token"):
            held.sign(b"after")


def test_the_recorder_of_a_pkcs11_node_signs_on_after_a_rotation_elsewhere(node: Node) -> None:
    clock = FixedClock(NOW + 5)
    with open_node_log(node, clock=clock) as log:
        agent = TraceRecorder(log, lambda at: node.identities.signer("agent", now=at), clock=clock)
        first = agent.record(tool_call())
        _rotate_elsewhere()  # dated NOW + 10: after the first record (review 58c, trace 3)
        clock.advance(15)
        after = agent.record(tool_call())  # the new signing key, under the new history
    assert after.index == first.index + 1
    assert node.identities.get("agent", now=NOW + 20).identity.change_count == 3


def test_a_closed_vault_signs_nothing_and_leaves_the_token_to_the_next_opener(
    softhsm: SoftHsm,
) -> None:
    with token_vault(softhsm) as vault:
        handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
        vault.sign(handle, b"open")
    for _ in range(2):  # a signer kept past its node's close (a script, a worker thread)
        with pytest.raises(VaultError):
            vault.sign(handle, b"closed")
    with token_vault(softhsm) as reopened:  # the node opened again in the same process
        verify_signature(reopened.public_key(handle), reopened.sign(handle, b"x"), b"x")
        reopened.delete_retired(handle, reopened.retire(handle, KeyPurpose.SIGNING))


def test_two_nodes_naming_one_module_by_two_paths_open_in_one_process(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    """Debian's SoftHSM2 is /usr/lib/softhsm/libsofthsm2.so, a link to the multiarch path: a
    node made with one and a node made with the other, opened in one process (the Python API,
    a test suite), share the library."""
    link = tmp_path / "libsofthsm2.so"
    link.symlink_to(softhsm.module)
    with token_vault(softhsm) as vault:
        handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
        other = Pkcs11Vault(str(link), softhsm.token_label, softhsm.pin)
        try:
            verify_signature(vault.public_key(handle), other.sign(handle, b"x"), b"x")
        finally:
            other.close()
        vault.delete(handle)


def test_a_pin_that_is_not_utf8_text_is_a_config_error(
    softhsm: SoftHsm, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    softhsm.init_node("hsm", monkeypatch)
    run("identity", "create", "agent", "--node", "hsm")
    pin = os.fsdecode(b"\xff" + softhsm.pin.encode())  # as os.environ reads such bytes
    monkeypatch.setenv("TEST_HSM_PIN", pin)
    answer = json.loads(run("identity", "show", "agent", "--node", "hsm", "--json", code=3).stdout)
    assert answer["error"] == "ConfigError"
    assert "PIN" in answer["message"]
    assert "not UTF-8" in answer["message"]
    with pytest.raises(ConfigError, match="not UTF-8"):
        Pkcs11Vault(softhsm.module, softhsm.token_label, pin)


# another process on the node (a script, the CLI) holding the agent's signer across a rotation
_HOLDER = """
import sys
from troth.errors import KeyNotFound
from troth.identity import verify_signed_by
from troth.node import open_node
now = int(sys.argv[1])
with open_node("hsm") as node:
    held = node.identities.signer("agent", now=now)
    held.sign(b"before")
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        held.sign(b"after")
        print("signed", flush=True)
    except KeyNotFound:
        fresh = node.identities.signer("agent", now=now)
        verify_signed_by(fresh.identity, fresh.attestation, b"m", fresh.sign(b"m"), at=now)
        print("refused, then signed with", fresh.identity.change_count, flush=True)
"""


def test_a_process_holding_a_signer_across_a_rotation_in_another_signs_on_with_the_new_key(
    node: Node,
) -> None:
    """Pkcs11 1 across real processes (the token's objects are each process's own): the
    holder's retired key fails as KeyNotFound, and its next signer is the new one."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(NOW + 20)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline().strip() == "ready"
        node.identities.rotate("agent", now=NOW + 10, compromised=True)
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "refused, then signed with 3"
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=60)
