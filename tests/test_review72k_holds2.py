"""Review 72k (area: holds2): 72b's restore-hold fixes (review 72b, holds 1-4, release 6)
attacked as a writer of node.db or a holder of a stolen backup put back.

1. (the refusal sent the operator to a release that could not work, low) A hold dated ahead
   of the clock (the copy's own hold, taken by a restore found while the clock was ahead,
   kept as the later time by 72b release 6; or a restore found so) or a restored copy's own
   feed of the authority dated ahead: no feed the node's rounds pull counts until that date
   (a feed counts only when issued after it, and a page counts as issued no later than its
   acceptance), yet the refusal told the operator to start the node and run the release
   again, refused the same way until then (review 60h, release 1 said so for a rotation dated
   ahead only). Now it names the date and what releases it before then: a pull from the node
   hosting the authority on this machine, or the vouch (the node's rounds after it).
2. (the same for a damaged hold, low) A local identity's hold whose time node.db holds
   damaged (71q wave3a 1: a hold all the same, after which no feed node.db holds is dated):
   the refusal said the feed held was issued "before the hold" and sent the operator to start
   the node and run the release again, which never releases it. Now it says no feed held
   counts (the hold's time is damaged) and names the pull or the vouch.
3. (a rekey read the vault's rows unbounded, low; out of the area, flagged by 72b) The rows
   a rekey re-seals were read untyped and unbounded (`SqliteKeyStore.sealed_keys_after`): a
   damaged row failed the rekey (VaultError: nothing skipped or lost), but a sealed value of
   any size was fetched whole, a thousand rows at a time, and TEXT that is not UTF-8 failed
   the statement naming no row. Now StorageError naming the key, nothing past the bound read.
4. (a copy's trigger undid the restore's holds, medium) A copy of node.db put back carrying
   a trigger (any process that wrote the copy, or the backup, before it was put back) ran in
   the restore's own transaction: one deleting each `identity_restore_holds` row as it was
   written left no identity held, and one rotated after the copy was taken signed with the
   keys its rotation retired; so for any scope's fail-closed writes. troth makes no trigger in
   node.db but the secrets audit log's two: a restore found on a copy holding another is
   refused (StorageError naming it, nothing recorded) until it is dropped.
5. (a copy's hold table made otherwise dropped holds, medium) So too a copy holding
   `identity_restore_holds` made with `held_at UNIQUE ON CONFLICT REPLACE`: the restore holds
   every identity at one time, so each row it wrote replaced the one before, one identity
   held of all (`voided` counting them all). A restore found on a copy holding a table the
   restores write made as troth never makes it (or a view of its name) is refused so too.
6. (a damaged vault row a bare TypeError, low; beside 3) A key cached by one thread, used
   from another after its row's sealed value became an INTEGER or REAL: the check that the
   cached key is still its row's sliced the value, a bare TypeError out of sign. Now no row
   of the key: loaded again, VaultError.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.backups import node_db, restores_found, thief_copy
from tests.test_review57i_restore import _refused, _restored_after_rotation
from tests.test_review58b_release import _release, _remote_acme
from tests.test_review72b_release import early_hold, edit, member_copied
from tests.test_review72v_planted import refused_until_fixed
from troth.crypto import KeyType
from troth.errors import StorageError, VaultError
from troth.node import open_node
from troth.storage import SqliteDatabase
from troth.storage.sqlite_stores import SqliteKeyStore
from troth.vault import KeyPurpose, SoftwareVault

DAY = 86_400


@pytest.mark.parametrize("dated", ["hold", "copy's feed"])
def test_a_date_ahead_of_the_clock_is_named_in_the_refusal(
    troth_home: Path, tmp_path: Path, dated: str
) -> None:
    """72k holds2 1: the copy holds `helper`'s hold (or its feed of acme) dated ten days
    ahead; put back (its guard lost: no rotation dated), the restore found at `now + 100`,
    acme's feed pulled at `now + 200` (where the copy's feed is not ahead: no page pulled
    before its date is taken). Refused, rightly; the refusal named no date and said to start
    the node and run the release again. Now it names the date ahead of the clock, the
    pull or the vouch until then, the node's rounds after; the vouch releases it."""
    helper, copy = member_copied(troth_home, tmp_path, rotated_after=False)
    now = int(time.time())
    far = now + 10 * DAY
    if dated == "hold":
        edit(copy, *early_hold(helper, far))
    else:
        edit(copy, ("UPDATE feed_state SET issued_at = ?", (far,)))
    thief_copy(node_db(troth_home, "agent"), copy)
    # (a copy's feed dated ahead takes no page pulled before then: none pulled)
    _remote_acme(held_at=now + 100, pulled_at=now + 200 if dated == "hold" else None)
    with open_node("agent") as agent:
        assert agent.identities.restore_held("helper") == (far if dated == "hold" else now + 100)
    refused = _release("helper", code=1)["message"]
    assert f"until after {far}, ahead of this clock" in refused, refused
    until = "until then only a pull from the node hosting the authority on this machine"
    assert until in refused, refused
    assert refused.index(until) < refused.index("after then, start the node"), refused
    assert _release("helper", "--vouch-not-rotated")["released"] is True


def test_a_damaged_hold_is_not_sent_to_the_nodes_rounds(troth_home: Path, tmp_path: Path) -> None:
    """72k holds2 2: the copy holds `helper`'s hold with a TEXT time (kept by the restore:
    SQLite's max() of TEXT and a number is the TEXT); acme's feed pulled after the restore.
    Refused, rightly (no feed node.db holds is dated after a hold of no readable time); the
    refusal said the feed held was issued before the hold and to start the node and run the
    release again, which never releases it. Now it says the hold's time is damaged, so no
    feed held counts, and names the pull or the vouch; the vouch releases it."""
    helper, copy = member_copied(troth_home, tmp_path, rotated_after=False)
    edit(copy, *early_hold(helper, "x"))
    thief_copy(node_db(troth_home, "agent"), copy)
    now = int(time.time())
    _remote_acme(held_at=now + 100, pulled_at=now + 200)
    refused = _release("helper", code=1)["message"]
    assert "run this again" not in refused, refused
    assert "before the hold" not in refused, refused
    assert "no feed held counts" in refused, refused
    assert "a pull from the node hosting the authority on this machine" in refused, refused
    done = _release("helper", "--vouch-not-rotated")
    assert (done["released"], done["held_at"], done["held_at_damaged"]) == (True, None, True)


_KEY = 1 << 40  # a key number of no key the vault made ("0000010000000000")


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("sealed", "zeroblob(2048)"),  # past any sealed key (61 bytes): read whole
        ("sealed", "CAST(x'ff' AS TEXT)"),  # failed the statement, naming no key
        ("sealed", "'x'"),
        ("key_type", "'x'"),
        ("purpose", "2.5"),
    ],
)
def test_a_rekey_reads_a_damaged_vault_row_typed_and_bounded(
    tmp_path: Path, column: str, value: str
) -> None:
    """72k holds2 3: the rows a rekey re-seals (`SqliteKeyStore.sealed_keys_after`) were read
    untyped and unbounded: a sealed value of any size was fetched whole, a thousand rows a
    chunk (a 200 MB one took the rekey to 462 MB resident), TEXT that is not UTF-8 failed the
    statement naming no key, and a TEXT or REAL type or purpose was handed to the vault. The
    rekey failed on each, for good until the row goes (no key skipped or lost: its transaction
    rolled back), but not bounded nor naming the row. Now StorageError naming the key, nothing
    past the bound fetched."""
    db = SqliteDatabase(tmp_path / "node.db")
    row = {"key_type": "1", "purpose": "1", "sealed": "x'01'"} | {column: value}
    db.execute(
        "INSERT INTO vault_keys (key_id, key_type, purpose, sealed, created_at) "  # noqa: S608
        f"VALUES ({_KEY}, {row['key_type']}, {row['purpose']}, {row['sealed']}, 0)"
    )
    with pytest.raises(StorageError, match=f"damaged: its sealed key {_KEY:016x}'s"):
        SqliteKeyStore(db).sealed_keys_after(0, 10)
    db.close()


def test_a_trigger_in_the_copy_does_not_undo_the_restores_holds(troth_home: Path) -> None:
    """72k holds2 4: a copy put back carrying a trigger that deletes each hold as the restore
    writes it (`identity_restore_holds` made in the copy, with it): the restore was found
    and recorded, no identity held, and `courier`, rotated after the copy was taken, signed
    with the keys its rotation retired. A copy of node.db made by troth holds no trigger but
    the audit log's: now a restore found on a copy holding another refuses it (StorageError
    naming the trigger, nothing recorded: found again once it is dropped, then held)."""
    path = _restored_after_rotation(troth_home)
    edit(
        path,
        *early_hold(b"\x00")[:1],
        (
            "CREATE TRIGGER gone AFTER INSERT ON identity_restore_holds "
            "BEGIN DELETE FROM identity_restore_holds WHERE identifier = new.identifier; END",
            (),
        ),
    )
    with open_node("laptop") as node, pytest.raises(StorageError, match="trigger 'gone'"):
        node.identities.signer("courier", now=NOW + 30)
    assert restores_found(path) == []
    edit(path, ("DROP TRIGGER gone", ()))
    with open_node("laptop") as node:
        _refused(lambda: node.identities.signer("courier", now=NOW + 30))


def test_a_hold_table_made_otherwise_in_the_copy_does_not_drop_holds(troth_home: Path) -> None:
    """72k holds2 5: a copy put back holding `identity_restore_holds` made with `held_at
    UNIQUE ON CONFLICT REPLACE`: the restore holds every identity at one time, so each row it
    wrote replaced the one before, one identity held of two (`voided` 2 all the same), and
    `courier`, rotated after the copy was taken, signed with the keys its rotation retired.
    Now a restore found on a copy holding one of the tables the restores write made as troth
    never makes it is refused (StorageError naming it, nothing recorded) until it is dropped
    (the restore makes it again and holds every identity)."""
    path = _restored_after_rotation(troth_home)
    replacing = "held_at INTEGER NOT NULL UNIQUE ON CONFLICT REPLACE"
    made = early_hold(b"\x00")[0][0].replace("held_at INTEGER NOT NULL", replacing)
    edit(path, (made, ()))
    refused_until_fixed(path, "'identity_restore_holds'", ("DROP TABLE identity_restore_holds", ()))


@pytest.mark.parametrize("sealed", [7, 2.5])
def test_a_cached_keys_row_damaged_is_a_vault_error_in_another_thread(
    tmp_path: Path, sealed: object
) -> None:
    """72k holds2 6: a key cached by one thread, its row's sealed value then an INTEGER or REAL
    in node.db (written by another connection), used from another thread: whether the cached
    key was still its row's (`SoftwareVault._live`, the look-up by key number) sliced the
    stored value: a bare TypeError ('int' object is not subscriptable) out of sign (a TEXT one
    sliced, compared as no nonce: VaultError). Now a row whose sealed value is not bytes is
    not the cached key's: loaded again, refused VaultError (its record does not match)."""
    path = tmp_path / "node.db"
    db = SqliteDatabase(path)
    vault = SoftwareVault(SqliteKeyStore(db), bytes(range(32)))
    handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    vault.sign(handle, b"cached")
    edit(path, ("UPDATE vault_keys SET sealed = ?", (sealed,)))
    with ThreadPoolExecutor(1) as other, pytest.raises(VaultError):
        other.submit(vault.sign, handle, b"data").result()
    db.close()
