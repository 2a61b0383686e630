"""Review 60h: attacks on this session's new code that did not work (each a real attempt that
fails if the defence breaks): the rollback guard's version 3 (review 60a), trace.db's
`issued_links` (review 60b), the PKCS#11 vault's key look-up (review 60e)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from pkcs11.util.ec import encode_named_curve_parameters

from tests.conftest import SoftHsm
from tests.support.hsm import vault_fixture
from tests.support.traces import node_trace_db, under_chain
from tests.test_review59b_trace import _changes
from tests.test_review60b_rotation import boss_link, flood, issued_rows, rotate, start
from tests.test_review60e_pkcs11 import _swap
from troth.clock import FixedClock
from troth.credentials import CredentialChain
from troth.crypto import KeyType
from troth.crypto.private import load_private_key
from troth.errors import TraceError, TraceFailure, VaultError
from troth.identity.restored import RestoredIdentities
from troth.node import open_node, troth_home
from troth.storage import SqliteDatabase
from troth.storage.rollback import RollbackGuard, decode_raised, guard_path
from troth.trace import TraceRecorder, open_node_log
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault

__all__ = ["vault_fixture"]

T = 1_796_000_000


def test_two_processes_rotating_at_once_keep_the_later_date(tmp_path: Path) -> None:
    """Two processes' rotations (two connections, two guard objects), the later-dated one
    committed first: the guard keeps the later date and both counts, neither raise lowering
    the other's."""
    first, second = SqliteDatabase(tmp_path / "node.db"), SqliteDatabase(tmp_path / "node.db")
    with first.transaction():
        RestoredIdentities(first).count_rotation(T + 50)
    with second.transaction():
        RestoredIdentities(second).count_rotation(T)
    assert RollbackGuard(first, "identity").counter() == 2
    assert decode_raised(guard_path(first.path).read_bytes()) == {"identity": T + 50}
    assert not RollbackGuard(second, "identity").behind()
    first.close()
    second.close()


def _represented(clock: FixedClock) -> None:
    """boss's kept link (made under its change 0) presented again by "agent" in a chain that
    carries boss's current history (change 1): a history newer than the link's, as a member
    hoping to note the link under the newer change would."""
    with sqlite3.connect(node_trace_db(troth_home())) as conn:
        (kept,) = conn.execute("SELECT chain FROM chains ORDER BY rowid LIMIT 1").fetchone()
    with open_node("default", home=troth_home()) as node, open_node_log(node, clock=clock) as log:
        boss = node.identities.get("boss", now=clock.now()).identity
        chain = CredentialChain(CredentialChain.decode(kept).credentials, (boss.history,))
        signer = node.identities.signer
        recorder = TraceRecorder(log, lambda at: signer("agent", now=at), clock=clock)
        with pytest.raises(TraceError) as refused:
            recorder.record(under_chain(chain.encode()), chain=chain.encode())
    assert refused.value.reason is TraceFailure.CREDENTIAL_INVALID


def test_an_old_link_carried_with_a_newer_history_is_not_noted_under_the_newer_change() -> None:
    """A row of `issued_links` whose change is past the link's own would block the issuer's
    real links of that change (a row is replaced only by a later change, or a later link of
    it) and, failing to verify, send the dating back to the bounded search (the flood). The
    change is the carried history's newest, but a link verifies only under the change its key
    was attested under: the chain is refused at append, the row stays the link's change, and
    boss's first real link of change 1 dates its next rotation through a member's flood."""
    clock = start()
    now = clock.now()
    boss_link(now + 250, clock=clock)
    rotate(now)  # change 1, dated at the link
    _represented(clock)
    assert [row[1:] for row in issued_rows()] == [(0, now + 250)]
    boss_link(now + 260, clock=clock)  # under change 1
    flood(2, clock=clock)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("troth.limits.MAX_ROTATION_CHAINS", 1)  # the search alone misses it
        rotate(now)
    assert _changes("boss", now)[1:] == [now + 250, now + 260]


def test_a_running_vault_whose_p256_pair_was_swapped_signs_and_shows_nothing_of_it(
    vault: Pkcs11Vault, softhsm: SoftHsm
) -> None:
    """Review 60e checked an Ed25519 pair swapped, found anew by another vault; a running one
    has the key's objects cached (its signer, its public key read once). After a session with
    the PIN swaps a P-256 pair for one whose private scalar it chose, the running vault's next
    signature and public key come from no planted object: refused (VaultError), never the
    planter's."""
    handle = vault.generate(KeyType.P256, KeyPurpose.SIGNING)
    vault.sign(handle, b"warm")
    vault.public_key(handle)
    scalar = (int.from_bytes(os.urandom(32), "big") % (2**255)).to_bytes(32, "big")
    point = load_private_key(KeyType.P256, scalar).public_key.data
    p11 = vault._p11
    attr = p11.Attribute
    curve = {
        attr.KEY_TYPE: p11.KeyType.EC,
        attr.EC_PARAMS: encode_named_curve_parameters("secp256r1"),
    }
    planted_public = {attr.CLASS: p11.ObjectClass.PUBLIC_KEY, attr.EC_POINT: b"\x04A" + point}
    planted_private = {attr.CLASS: p11.ObjectClass.PRIVATE_KEY, attr.VALUE: scalar, attr.SIGN: True}
    _swap(vault, handle.key_id, [{**curve, **planted_public}, {**curve, **planted_private}])
    with pytest.raises(VaultError, match="not generated in the token"):
        vault.sign(handle, b"a token")
    with pytest.raises(VaultError, match="not generated in the token"):
        vault.public_key(handle)
