"""Re-sealing a node's software vault under a new key-encryption key (`troth vault rekey`;
docs/vault.md, "Changing the vault key").

A copy of the node directory (a stolen backup) holds the KEK; keys made afterwards, the
replacements `troth identity rotate --compromised` makes included, are sealed under it, so a
later copy of node.db alone yields them. `rekey_vault` re-seals every sealed row (private keys,
seal keys, the key check) under a fresh KEK and retires the old one, in steps a crash may cut
at any point (node with the KEK in `vault.key`):

1. the new KEK is written to `vault.key.new` (atomically, 0600);
2. every row and a new key check are re-sealed in one SQLite transaction, each seal key with
   a fresh value that replaces those it had, and every blob the broker sealed under one with
   it (`troth.secrets.reseal`: review 62i, rekey 1; a kept old value let a stolen copy's
   holder seal blobs the node took as its own); the transaction also records
   that a scrub is owed (the `vault_meta` row `SCRUB_MARK`: review 47c, rekey 1-2) and, for a
   node with `vault.key`, the new KEK's tag under the old one (`REKEY_TAG`: review 48d);
3. node.db is vacuumed and its write-ahead log truncated (no page sealed under the old KEK is
   left in the file's free space or the log), and only then the mark is deleted;
4. `vault.key.new` is renamed over `vault.key`.

A scrub that fails in step 3 (another process reads node.db: a backup tool keeps its log from
being emptied; a VACUUM finds the disk full) stays owed, as an open leaves it, and the rekey
goes on to step 4 and succeeds (`RekeyResult.scrubbed` False): the keys are sealed under the new
KEK alone since the commit. It raised StorageError before review 63h (rekey 1), and on a node
keyed by TROTH_VAULT_KEY nothing said the new key was now the only one: the operator, told the
rekey failed, kept the old key and could throw the new one, and every key with it, away.

Every open of the node finishes what a killed rekey left (`settle_rekey`), holding
`node.db.vault` shared. First step 3, if the mark is there and the open has the node alone
(`node.db.vault` held exclusively without waiting, as the rekey holds it): a kill during it
leaves the mark, and the next open scrubs again (a VACUUM is idempotent). An open that does
not have the node alone (another process has it open: its reads would keep the log from being
emptied, and a running node holds it open as long as it runs) or whose scrub fails (a full
disk) still opens: the scrub stays owed, made by the first open that has the node alone, or by
the next rekey. Then step 4 (`settle_pending_key`, for a `vault.key.new` it finds): if the key
check opens under `vault.key`, the transaction never committed and the pending key is removed;
if it opens under the pending key and `vault.key` authenticates it (the tag), the rename is
finished. The tag is what a writer of node.db cannot forge without the KEK: a key check of a key
of their own, beside that key planted as `vault.key.new`, made the open rename it over the
node's real KEK, which was lost with every key sealed under it, and every key made afterwards
was sealed under the planted one (review 48d, rekey 1). So an open that scrubs renames only
after the scrub, as the rekey; one that cannot scrub renames all the same (decided in review
47c): the owed scrub is recorded in node.db, not by the key files, and a node left opening
under `vault.key.new` would have its only working KEK in a file that looks left over. So the
node opens with exactly one working KEK and every key at each step, and no open that has the
node alone leaves a page sealed under the old KEK. A node whose KEK comes from TROTH_VAULT_KEY
takes the new key from its caller (no file is written: its owner sets the variable afterwards)
and is re-sealed in steps 2 and 3; its mark is all that records the scrub is owed.

The rekey runs alone: not while the node's daemon runs (its node.lock held here, the daemon
cannot start meanwhile), nor while another process has the node open (every open node holds
`node.db.vault` shared; the rekey holds it exclusively, and an open waits for it).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from troth.errors import ConfigError, NotFound, StorageError
from troth.faults import crash_point
from troth.node.config import NodeConfig
from troth.node.home import read_private_file, sync_dir, troth_home, write_private_file
from troth.storage import SqliteDatabase, SqliteKeyStore
from troth.storage.peers import PeerLock
from troth.vault.software import KEK_SIZE, SoftwareVault, kek_opens_check

__all__ = [
    "PENDING_KEY_FILE",
    "REKEY_TAG",
    "SCRUB_MARK",
    "RekeyResult",
    "rekey_vault",
    "settle_pending_key",
    "settle_rekey",
]

PENDING_KEY_FILE: Final = "vault.key.new"
"""The new KEK while a rekey switches over (beside `vault.key`)."""
_KEY_FILE: Final = "vault.key"
SCRUB_MARK: Final = "rekey_scrub"
"""The `vault_meta` row a rekey commits with its re-sealed rows and deletes once node.db is
scrubbed: while it is there, the scrub is owed (and every open that has the node alone makes
it)."""


REKEY_TAG: Final = "rekey_to"
"""The `vault_meta` row a rekey of a node with `vault.key` commits with its re-sealed rows:
HMAC-SHA-256, keyed by the old KEK, of `_TAG_LABEL` and the new KEK. An open renames
`vault.key.new` over `vault.key` only when the tag of that pair is this row (review 48d, rekey
1); it stays, harmless, until the next rekey replaces it."""
_TAG_LABEL: Final = b"troth.vault.rekey-to/1\x00"


@dataclass(frozen=True)
class RekeyResult:
    """What `rekey_vault` did: the node, how many keys it re-sealed, and where the new KEK is
    (`key_file`, or None: the caller's, for TROTH_VAULT_KEY)."""

    node: str
    keys: int
    kek_source: Literal["file", "env"]
    key_file: str | None
    scrubbed: bool = True
    """False: node.db still holds what the old KEK sealed (its scrub failed: another process
    read node.db, or the disk was full); the next open that has the node alone scrubs it."""


def rekey_vault(
    name: str, *, home: Path | None = None, new_kek: bytes | None = None
) -> RekeyResult:
    """Re-seal node `name`'s software vault under `new_kek` (default: 32 fresh random bytes;
    required for a node whose KEK is TROTH_VAULT_KEY, which must then be set to it). The old
    KEK opens nothing afterwards. ConfigError while the node runs or another process has it
    open, for a `new_kek` that is not 32 bytes or is the current KEK; VaultError (nothing
    changed) if a stored row does not unseal under the current KEK; a scrub that fails after the
    commit is owed, not raised (`scrubbed` False). A PKCS#11 node's software
    part (its X25519 keys and seal keys, if any) is re-sealed; the token is not opened."""
    from troth.node.daemon import _running_lock  # asyncio: on use only
    from troth.node.node import _check_database_kept, node_dir, open_software_vault

    home = home or troth_home()
    path = node_dir(home, name)
    config_path = path / "node.json"
    if not config_path.is_file():
        raise NotFound(f"no node {name!r} in {home} (create it with: troth node create {name})")
    config = NodeConfig.from_json(read_private_file(config_path), config_path)
    if config.kek_source == "env" and new_kek is None:
        raise ConfigError(
            f"node {name!r} takes its vault key from TROTH_VAULT_KEY: give the new key "
            "(--new-key-env VAR or --new-key-file PATH), then set TROTH_VAULT_KEY to it"
        )
    kek = os.urandom(KEK_SIZE) if new_kek is None else new_kek
    if len(kek) != KEK_SIZE:
        raise ConfigError(f"a vault key is {KEK_SIZE} bytes")
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(_running_lock(path, name))  # the daemon cannot start meanwhile
        except ConfigError:
            raise ConfigError(
                f"node {name!r} is running: stop it first (troth node stop {name}), then rekey"
            ) from None
        _check_database_kept(config, path)
        db = SqliteDatabase(path / "node.db", durability=config.durability)
        stack.callback(db.close)
        peers, vault = open_software_vault(config, path, db)
        stack.callback(peers.close)
        with peers.alone() as alone:
            if not alone:
                raise ConfigError(
                    f"another process has node {name!r} open: wait for it to end (or stop "
                    f"the node: troth node stop {name}), then rekey"
                )
            if kek_opens_check(SqliteKeyStore(db), kek):
                raise ConfigError("the new vault key is the current one")
            count, scrubbed = _switch(config, path, db, vault, kek)
    file_source = config.kek_source == "file"
    return RekeyResult(
        node=name,
        keys=count,
        kek_source="file" if file_source else "env",
        key_file=str(path / _KEY_FILE) if file_source else None,
        scrubbed=scrubbed,
    )


def _switch(
    config: NodeConfig,
    path: Path,
    db: SqliteDatabase,
    vault: SoftwareVault,
    kek: bytes,
) -> tuple[int, bool]:
    """The steps of the module docstring; the number of keys re-sealed, and whether the scrub
    was made (else it is owed: the mark stays)."""
    from troth.secrets.reseal import reseal_secrets  # on use only: every open imports this

    file_source = config.kek_source == "file"
    pending = path / PENDING_KEY_FILE
    tag = None
    if file_source:
        tag = _rekey_tag(read_private_file(path / _KEY_FILE), kek)  # the KEK the vault opened
        crash_point("vault.rekey.before-pending")
        write_private_file(pending, kek)
        crash_point("vault.rekey.after-pending")
    try:
        db.execute("PRAGMA secure_delete = ON")  # pages the rewrite frees are zeroed
        with db.transaction():
            # the broker's blobs sealed again under their seal key's new value (review 62i)
            count = vault.rekey(kek, reseal=lambda resealer: reseal_secrets(db, resealer))
            # committed with the rows: whatever cuts the rekey short, an open finishes it
            SqliteKeyStore(db).put_vault_meta(SCRUB_MARK, b"\x01")
            if tag is not None:  # what makes vault.key.new the key to switch to
                SqliteKeyStore(db).put_vault_meta(REKEY_TAG, tag)
            crash_point("vault.rekey.before-commit")
    except BaseException:
        if file_source:
            with contextlib.suppress(OSError):
                pending.unlink()  # nothing is sealed under it
        raise
    crash_point("vault.rekey.after-commit")
    # committed: a failed scrub stays owed, as an open leaves it, and no error may say the
    # rekey failed now that the new KEK alone opens the keys (review 63h, rekey 1)
    scrubbed = _scrub_kept_owed(db)
    if file_source:
        os.replace(pending, path / _KEY_FILE)
        sync_dir(path)
        crash_point("vault.rekey.after-rename")
    return count, scrubbed


def _scrub(db: SqliteDatabase) -> None:
    """Rewrite node.db without the pages the old KEK sealed (freed pages, rows deleted before
    the rekey) and empty its write-ahead log, which held the rows' older versions; then clear
    the mark that the scrub is owed (only now: a crash before redoes it, which is harmless).
    StorageError if it did not succeed (the mark kept)."""
    db.execute("VACUUM")
    if not db.truncate_wal():
        raise StorageError(f"{db.path}: its write-ahead log could not be emptied (busy)")
    crash_point("vault.rekey.after-vacuum")
    db.execute("DELETE FROM vault_meta WHERE name = ?", (SCRUB_MARK,))
    crash_point("vault.rekey.after-scrub")


def settle_rekey(config: NodeConfig, path: Path, db: SqliteDatabase, peers: PeerLock) -> None:
    """Finish what a killed rekey left undone (called by every open of node directory `path`,
    holding `node.db.vault` shared through `peers`; module docstring): the scrub it owes, if
    this open has the node alone; then, for a node with `vault.key`, the pending key's switch
    (`settle_pending_key`), so the rename follows the scrub as in the rekey itself. ConfigError
    as `settle_pending_key`; none from the scrub (it stays owed)."""
    # first: flock(2) converts a lock in two steps, and a refused attempt to hold it alone
    # holds nothing until the shared lock is back; the gate keeps any rekey out meanwhile
    # (troth.storage.peers, review 47j), and still nothing read before it decides what
    # `settle_pending_key` does after
    _scrub_owed(db, peers)
    if config.kek_source == "file":
        settle_pending_key(path, SqliteKeyStore(db))


def _scrub_owed(db: SqliteDatabase, peers: PeerLock) -> None:
    """The scrub a rekey owes, made if this open holds `node.db.vault` alone. Another process
    has the node open (its reads would keep the write-ahead log from being emptied, and a
    running node may hold the node open for days): the open goes on, the scrub stays owed. So
    does it when the scrub fails (a full disk, a busy database): the open does not need it."""
    if SqliteKeyStore(db).get_vault_meta(SCRUB_MARK) is None:
        return
    with peers.alone() as alone:
        if alone:
            _scrub_kept_owed(db)


def _scrub_kept_owed(db: SqliteDatabase) -> bool:
    """`_scrub`, True if it succeeded; False if it failed (the mark kept: still owed)."""
    try:
        _scrub(db)
    except StorageError:
        return False
    return True


def settle_pending_key(path: Path, keys: SqliteKeyStore) -> None:
    """Finish or undo the switch-over a killed rekey left in node directory `path` (called
    by every open, holding `node.db.vault` shared: no rekey runs meanwhile): the key check
    under `vault.key` means the re-seal never committed (the pending key is removed); under
    `vault.key.new`, it committed (the rename is finished). Neither: ConfigError, both kept;
    so too for a `vault.key.new` that is not a regular file (nothing a rekey writes)."""
    pending = path / PENDING_KEY_FILE
    try:
        info = os.lstat(pending)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"cannot read {pending}: {exc}") from exc
    if not stat.S_ISREG(info.st_mode):  # a rekey writes a regular file (review 46h, rekey 1)
        raise ConfigError(
            f"{pending} is not a regular file (a directory, link or device planted there, not "
            "a key a rekey left): remove it"
        )
    key_file = path / _KEY_FILE
    if keys.get_vault_meta("kek_check") is None:
        return  # nothing to judge by: the open's own checks decide, the file is kept
    # read once: the pending key's tag is judged by this very key, which another open settling
    # at once may replace with the pending key itself (review 63h, rekey 3)
    current = read_private_file(key_file) if key_file.exists() else None
    if current is not None and kek_opens_check(keys, current):
        with contextlib.suppress(FileNotFoundError):  # another open settled it first
            pending.unlink()
        return
    try:
        new = read_private_file(pending)
    except ConfigError:
        if not pending.exists():  # another open finished the rename meanwhile
            return
        raise
    if not kek_opens_check(keys, new):
        raise ConfigError(
            f"neither {key_file} nor {pending} opens this node's vault: restore vault.key "
            "from where the node was copied from"
        )
    if not _made_by_rekey(current, keys, new):
        raise ConfigError(
            f"{pending} opens this node's key check, but no rekey under {key_file} made it "
            "(node.db written by someone without the vault key?): both kept. Remove it; if "
            f"{key_file} then does not open the vault, delete node.db's key check (the "
            "vault_meta row 'kek_check': the next open checks the key against the newest "
            "sealed key). A rekey cut short by a troth before review 48d left no tag: if it "
            f"was yours, rename {pending} over {key_file}"
        )
    try:
        os.replace(pending, key_file)
    except FileNotFoundError:
        return  # another open finished it first
    sync_dir(path)


def _rekey_tag(old: bytes, new: bytes) -> bytes:
    """The tag (`REKEY_TAG`) of a switch from KEK `old` to KEK `new`."""
    return hmac.new(old, _TAG_LABEL + new, hashlib.sha256).digest()


def _made_by_rekey(current: bytes | None, keys: SqliteKeyStore, new: bytes) -> bool:
    """Whether a rekey under KEK `current` (vault.key's, None: none) committed the switch to
    `new`: node.db holds the tag of that pair, which only a holder of `current` could make."""
    tag = keys.get_vault_meta(REKEY_TAG)
    if tag is None or current is None:
        return False
    return hmac.compare_digest(tag, _rekey_tag(current, new))
