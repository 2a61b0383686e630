"""Review 63h, refuted: attacks on the rekey (troth.node.rekey, troth.secrets.reseal) and on the
admission re-check's taken-up byte checks (`ChainVerifier(checked_by=...)`) that did not work.

1. The thief of an old backup holds the old vault key, the one the switch's tag (`rekey_to`)
   is keyed by: after the rekey they plant a key of theirs as vault.key.new, its key check and
   the tag of that switch under the OLD key (which they can compute) into node.db. The open
   authenticates the pending key under vault.key as it is now (the new key): refused, both kept.
2. The same thief puts the old backup's own key check back into node.db, beside their old key
   as vault.key.new: the key check opens under it, but no rekey under the current vault.key
   made that switch: refused, vault.key kept.
3. A chain differing from the one the handshake verified (one byte appended) is not taken up by
   the re-check: it checks the bytes itself, and refuses them.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from tests.test_review38d_memory import World
from tests.test_review48d_rekey import _plant
from tests.test_review62q_refuted import _at, _pair, _refusal
from tests.test_vault_rekey import make_node, opened_under
from troth.errors import CredentialFailure
from troth.node.rekey import REKEY_TAG
from troth.storage import SqliteDatabase, SqliteKeyStore


def _tag(old: bytes, new: bytes) -> bytes:
    """A switch's tag as troth.node.rekey makes it (docs/vault.md): HMAC-SHA-256 keyed by the
    old key of the label and the new key."""
    return hmac.new(old, b"troth.vault.rekey-to/1\x00" + new, hashlib.sha256).digest()


def _meta(path: Path, name: str, value: bytes | None = None) -> bytes | None:
    db = SqliteDatabase(path / "node.db")
    try:
        store = SqliteKeyStore(db)
        if value is not None:
            store.put_vault_meta(name, value)
        return store.get_vault_meta(name)
    finally:
        db.close()


@pytest.mark.parametrize("planted", ["own key", "old key"])
def test_the_thiefs_old_vault_key_forges_no_switch_after_the_rekey(
    troth_home: Path, planted: str
) -> None:
    """Refuted 1 and 2."""
    path = make_node(troth_home)
    stolen = (path / "vault.key").read_bytes()
    stolen_check = _meta(path, "kek_check")
    assert stolen_check is not None
    run("vault", "rekey", "--node", "n")
    new = (path / "vault.key").read_bytes()
    assert _meta(path, REKEY_TAG) == _tag(stolen, new)
    if planted == "own key":
        theirs = bytes(range(32))
        _plant(path, theirs)  # its key check, and the key as vault.key.new
        _meta(path, REKEY_TAG, _tag(stolen, theirs))  # the tag under the key they hold
    else:
        theirs = stolen
        _plant(path, theirs)
        _meta(path, "kek_check", stolen_check)  # the backup's own check, byte for byte
    failed = run_json("identity", "list", "--node", "n", code=3)
    assert "no rekey" in failed["message"]
    assert (path / "vault.key").read_bytes() == new
    assert (path / "vault.key.new").read_bytes() == theirs
    assert opened_under(theirs, path) == []
    assert len(opened_under(new, path)) >= 2


def test_a_chain_one_byte_longer_than_the_handshakes_is_checked_again_and_refused() -> None:
    """Refuted 3."""
    world = World()
    handshake, recheck = _pair(world)
    chain = world.delegated(world.alice, world.bob)
    handshake.verify(chain, presenter=world.bob, **_at(world))
    longer = _refusal(lambda: recheck.verify(chain + b"\x00", presenter=world.bob, **_at(world)))
    assert longer.reason is CredentialFailure.TRAILING_BYTES
    recheck.verify(chain, presenter=world.bob, **_at(world))  # the chain itself still passes
