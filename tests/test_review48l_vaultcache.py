"""Review 48l, vault cache: a second `SoftwareVault` over the same node.db (another process: the
daemon while the CLI rotates, or the reverse) kept using, from its in-memory cache of unsealed
keys, a key the first one deleted. After `troth identity rotate --compromised` in the CLI, a
running node went on signing (trace records, attestations) and showing its channel key with
the retired keys, under the history the rotation superseded: refused by every verifier that
holds the new history, accepted by those that do not. Rotation is real: a key deleted from the
vault is used by no process (docs/vault.md, "Keys deleted by another process")."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import troth
from tests.support.cli import troth_process
from troth.crypto import KeyType, PublicKey
from troth.crypto.private import generate_private_key
from troth.errors import KeyNotFound
from troth.identity import verify_signed_by
from troth.node.runtime import NodeRuntime
from troth.storage.sqlite import SqliteDatabase
from troth.storage.sqlite_stores import SqliteKeyStore
from troth.vault import KeyPurpose
from troth.vault.software import SoftwareVault

KEK = bytes(range(32))


def _vaults(tmp_path: Path) -> tuple[SoftwareVault, SoftwareVault]:
    """Two vaults over one node.db, each on a connection of its own (two processes)."""
    path = tmp_path / "node.db"
    first = SoftwareVault(SqliteKeyStore(SqliteDatabase(path)), KEK)
    second = SoftwareVault(SqliteKeyStore(SqliteDatabase(path)), KEK)
    return first, second


def _peer() -> PublicKey:
    return generate_private_key(KeyType.X25519).public_key


def test_a_signing_key_another_vault_deleted_signs_nothing(tmp_path: Path) -> None:
    first, second = _vaults(tmp_path)
    handle = first.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    second.sign(handle, b"before")  # unsealed and cached by the second vault
    first.delete(handle)
    with pytest.raises(KeyNotFound):
        second.sign(handle, b"after")
    with pytest.raises(KeyNotFound):
        second.public_key(handle)


def test_a_channel_key_another_vault_deleted_agrees_with_no_peer(tmp_path: Path) -> None:
    first, second = _vaults(tmp_path)
    handle = first.generate(KeyType.X25519, KeyPurpose.SECURE_CHANNEL)
    second.dh(handle, _peer())
    first.delete(handle)
    with pytest.raises(KeyNotFound):
        second.dh(handle, _peer())


def test_a_seal_key_another_vault_deleted_seals_nothing(tmp_path: Path) -> None:
    first, second = _vaults(tmp_path)
    key = first.generate_seal_key()
    sealed = second.seal(key, b"secret", b"aad")
    first.delete_seal_key(key)
    with pytest.raises(KeyNotFound):
        second.seal(key, b"secret", b"aad")
    with pytest.raises(KeyNotFound):
        second.unseal(key, sealed, b"aad")


def test_a_key_deleted_is_refused_on_every_thread_of_the_other_process(tmp_path: Path) -> None:
    """Each thread of a process reads node.db on a connection of its own: a delete seen on one
    thread's is seen on the others' too."""
    first, second = _vaults(tmp_path)
    handles = [first.generate(KeyType.ED25519, KeyPurpose.SIGNING) for _ in range(2)]
    for handle in handles:
        second.sign(handle, b"main thread")
    failures: list[BaseException] = []

    def sign_elsewhere(handle: object) -> None:
        try:
            second.sign(handle, b"worker thread")  # type: ignore[arg-type]
        except BaseException as exc:  # collected for the main thread
            failures.append(exc)

    for handle in handles:
        first.delete(handle)
        worker = threading.Thread(target=sign_elsewhere, args=(handle,))
        worker.start()
        worker.join()
    assert len(failures) == 2
    assert all(isinstance(exc, KeyNotFound) for exc in failures)


def test_a_key_the_vault_keeps_still_signs_after_another_process_wrote(tmp_path: Path) -> None:
    """Another connection's writes (a key made, another deleted) leave a key that stays usable."""
    first, second = _vaults(tmp_path)
    kept = first.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    gone = first.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    signature = second.sign(kept, b"x")
    first.generate(KeyType.P256, KeyPurpose.SIGNING)
    first.delete(gone)
    assert second.sign(kept, b"x") == signature  # Ed25519: deterministic, the same key


# -- real processes: the CLI rotates while a running node holds the old keys --------------------


def _rotate_in_cli(node: str) -> None:
    troth_process("identity", "rotate", node, "--compromised", "--node", node)


def test_a_signer_held_across_a_cli_compromised_rotation_signs_nothing() -> None:
    with troth.Node.open("agent") as node:
        node.identity  # noqa: B018  (created)
        identities = node._stored.identities
        now = node._clock.now()
        held = identities.signer("agent", now=now)
        held.sign(b"before")
        _rotate_in_cli("agent")
        with pytest.raises(KeyNotFound):
            held.sign(b"after")  # the retired signing key: deleted by the rotation
        fresh = identities.signer("agent", now=now)
        assert fresh.identity.change_count == held.identity.change_count + 2
        signature = fresh.sign(b"after")
        verify_signed_by(fresh.identity, fresh.attestation, b"after", signature, at=now)


def test_a_running_node_shows_the_rotated_history_after_a_cli_compromised_rotation() -> None:
    """The daemon's channel identity (cached up to 60 s): after the CLI's rotation it shows the
    new history and a channel key attested under it, never the deleted channel key."""
    with troth.Node.open("agent") as node:
        node.identity  # noqa: B018  (created)
        runtime = NodeRuntime(node._stored, clock=node._clock)
        before = runtime._me()
        before.static.dh(_peer())
        _rotate_in_cli("agent")
        with pytest.raises(KeyNotFound):
            before.static.dh(_peer())
        after = runtime._me()
        assert after.history != before.history
        assert after.history == node._stored.identities.export("agent")
        after.static.dh(_peer())


_HOLDER = textwrap.dedent(
    """
    import sys
    import troth
    from troth.errors import KeyNotFound

    with troth.Node.open("agent", create=False) as node:
        identities = node._stored.identities
        signer = identities.signer("agent", now=node._clock.now())
        signer.sign(b"before")
        print("ready", flush=True)
        sys.stdin.readline()
        try:
            signer.sign(b"after")
        except KeyNotFound:
            print("refused", flush=True)
        else:
            print("signed", flush=True)
    """
)


def test_a_cli_process_holding_a_signer_signs_nothing_after_the_node_rotated() -> None:
    """The reverse: the running node (here, this process) rotates; another process that held
    the signing key before (a CLI command, a script) signs nothing with it afterwards."""
    with troth.Node.open("agent") as node:
        node.identity  # noqa: B018  (created)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline().strip() == "ready"
        with troth.Node.open("agent") as node:
            node.identities.rotate("agent", compromised=True)
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "refused"
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=60)
