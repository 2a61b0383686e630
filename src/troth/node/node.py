"""A node: the named home of a vault, its database and its identities.

<home>/nodes/<name>/node.json   configuration (NodeConfig)
<home>/nodes/<name>/node.db     SQLite: sealed software keys, histories, local identities
<home>/nodes/<name>/vault.key   the software vault's KEK, unless TROTH_VAULT_KEY supplies it
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import os
from collections.abc import Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from troth.authority import Authority
from troth.authority.core import DEFAULT_CREDENTIAL_TTL, DEFAULT_DELEGATION_DEPTH
from troth.clock import SystemClock
from troth.credentials.wallet import CredentialWallet
from troth.crypto import KeyType
from troth.errors import ConfigError, NotFound
from troth.identity import Identifier, IdentityService, VerifiedIdentity
from troth.identity.known import Binds
from troth.limits import DEFAULT_REVOCATION_QUOTA
from troth.names import check_name
from troth.node.config import NodeConfig, VaultKind, check_module_path, update_config
from troth.node.copies import stored_binds
from troth.node.duetries import DueTries
from troth.node.home import (
    check_not_taken_over,
    read_private_file,
    secure_dir,
    troth_home,
    write_private_file,
)
from troth.storage import (
    SqliteAuthorityStore,
    SqliteCredentialStore,
    SqliteDatabase,
    SqliteIdentityStore,
    SqliteKeyStore,
    SqliteVoucherStore,
)
from troth.storage.peers import PeerLock
from troth.trace.outbox_rotation import resign_for_rotation
from troth.vault import CompositeVault, SoftwareVault, Vault
from troth.vault.software import KEK_SIZE

__all__ = [
    "DEFAULT_NODE",
    "Node",
    "NodeExists",
    "init_node",
    "list_nodes",
    "open_node",
    "open_software_vault",
]

DEFAULT_NODE: Final = "default"
DEFAULT_PKCS11_MODULE: Final = "/usr/lib/softhsm/libsofthsm2.so"
DEFAULT_PIN_ENV: Final = "TROTH_PKCS11_PIN"
_KEK_ENV: Final = "TROTH_VAULT_KEY"


def _nodes_dir(home: Path) -> Path:
    return home / "nodes"


def node_dir(home: Path, name: str) -> Path:
    """The directory of node `name` (ConfigError for a name that is not a valid node name)."""
    return _nodes_dir(home) / check_name(name, "node name")


@dataclass
class Node:
    """An open node: its configuration, directory, database, vault, identities and wallet."""

    config: NodeConfig
    path: Path
    db: SqliteDatabase
    vault: Vault
    identities: IdentityService
    wallet: CredentialWallet
    _vault_peers: PeerLock | None = field(default=None, init=False, repr=False, compare=False)
    """A shared hold on `node.db.vault` while open: `troth vault rekey` runs alone
    (troth.node.rekey)."""
    due_tries: DueTries = field(default_factory=DueTries, init=False, repr=False, compare=False)
    """The count of failed settling syncs of marked authorities in this process: handing out
    chains (`settle_due_bounded`; review 50k, due 1) and a running node's poll of its marks
    (troth.node.duewatch) spend it alike (troth.node.duetries; review 51h, due 1)."""

    @property
    def name(self) -> str:
        """The node's name."""
        return self.config.name

    def binds_over(self, identity: VerifiedIdentity, roots: Set[Identifier]) -> Binds:
        """Whether a stored copy from a checkpoint binds the full history `identity`, shown
        with the word of `roots` (authorities with standing over it now), read from this
        node's store (troth.node.copies; a running node's `NodeTrust` judges from memory)."""
        return stored_binds(self.wallet, SqliteVoucherStore(self.db), identity, roots)

    def settle_due(self, authority: Identifier, now: int) -> bool:
        """Sync this node's copy of `authority`'s feed that a link revocation made here left
        due, and forget the marks; whether it did (troth.node.syncdue)."""
        from troth.node.syncdue import settle_sync

        return settle_sync(self, authority, now)

    def settle_due_bounded(self, authority: Identifier, now: int) -> bool:
        """`settle_due` as handing out a chain tries it (`CredentialWallet.settle_due`): after
        `limits.DUE_TRIES` failed syncs in a row of `authority`'s feed, none until a newer mark
        of it is made; False meanwhile, its chains refused (review 50k, due 1: each try of an
        authority on no node here opened every node here)."""
        from troth.node.syncdue import settle_sync

        return settle_sync(self, authority, now, tries=self.due_tries)

    def authority(self) -> Authority:
        """The authority this node hosts (NotFound if none). A node.db restored from a copy is
        found here, before the authority serves (review 51d, rollback 1: its tickets are used
        up; docs/storage.md, "Rollback guard")."""
        store = SqliteAuthorityStore(self.db)
        config = store.get_config()
        if config is None:
            raise NotFound(f"node {self.name!r} hosts no authority (troth authority create)")
        store.check_restored(SystemClock().now())
        return self._judging(Authority(self.identities, store, config))

    def hosted_authority(self) -> Authority | None:
        """The authority this node hosts, or None (`authority()` without the NotFound)."""
        try:
            return self.authority()
        except NotFound:
            return None

    def create_authority(
        self,
        name: str,
        *,
        now: int,
        credential_ttl: int = DEFAULT_CREDENTIAL_TTL,
        delegation_depth: int = DEFAULT_DELEGATION_DEPTH,
        revocation_quota: int = DEFAULT_REVOCATION_QUOTA,
    ) -> Authority:
        """Create the authority this node hosts (named `name`)."""
        return self._judging(
            Authority.create(
                self.identities,
                SqliteAuthorityStore(self.db),
                name,
                now=now,
                credential_ttl=credential_ttl,
                delegation_depth=delegation_depth,
                revocation_quota=revocation_quota,
            )
        )

    def _judging(self, authority: Authority) -> Authority:
        """`authority` judging its requesters' histories by this node's rule on stored copies
        from a checkpoint, itself having standing over them (review 30a, enrollment 1)."""
        authority.binds = lambda identity: self.binds_over(identity, {authority.identifier})
        return authority

    def close(self) -> None:
        """Close the vault (a token session) and the database."""
        close = getattr(self.vault, "close", None)
        if close is not None:
            close()
        self.db.close()
        if self._vault_peers is not None:
            self._vault_peers.close()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NodeExists(ConfigError):
    """`init_node` found the node already there (another process may have just made it)."""


def init_node(
    name: str,
    *,
    home: Path | None = None,
    vault: VaultKind = "software",
    pkcs11_module: str | None = None,
    token_label: str | None = None,
    pin_env: str | None = None,
    durability: str = "normal",
) -> NodeConfig:
    """Create a node directory and its configuration (NodeExists if it exists). Atomic: the
    configuration appears whole or not at all (an exclusive link of a complete file), and of
    processes racing to create the same node exactly one does; the others get NodeExists. A
    node whose vault does not open (a PKCS#11 module that does not load, its PIN variable
    unset) is not created: what this call made is removed, what the directory held before is
    kept (review 49g, cli 4: the node stayed, listed, and its re-creation was refused)."""
    home = home or troth_home()
    path = node_dir(home, name)
    if (path / "node.json").exists():
        raise NodeExists(f"node {name!r} already exists in {home}")
    if vault == "pkcs11" and not token_label:
        raise ConfigError("a pkcs11 node needs --token-label")
    if vault == "pkcs11" and pkcs11_module is not None:
        check_module_path(pkcs11_module, "--pkcs11-module")
    if durability not in ("normal", "full"):
        raise ConfigError(f"unknown durability {durability!r}")
    config = NodeConfig(
        name=name,
        vault=vault,
        kek_source="env" if os.environ.get(_KEK_ENV) else "file",
        durability="full" if durability == "full" else "normal",
        pkcs11_module=(pkcs11_module or DEFAULT_PKCS11_MODULE) if vault == "pkcs11" else None,
        token_label=token_label if vault == "pkcs11" else None,
        pin_env=(pin_env or DEFAULT_PIN_ENV) if vault == "pkcs11" else None,
    )
    if home.exists():
        check_not_taken_over(home)  # not `/` made 0700 (review 61n, cli 4)
    secure_dir(home)
    secure_dir(_nodes_dir(home))
    made_directory = not path.exists()
    secure_dir(path)
    before = {entry.name for entry in path.iterdir()}
    try:
        write_private_file(path / "node.json", config.to_json(), exclusive=True)
    except FileExistsError:
        raise NodeExists(f"node {name!r} already exists in {home}") from None
    try:
        node = open_node(name, home=home)  # creates the database and checks the vault opens
    except BaseException:
        _unmake(path, before, made_directory)
        raise
    node.close()
    return config


def _unmake(path: Path, before: Set[str], made_directory: bool) -> None:
    """Remove what a failed `init_node` made in node directory `path`: its node.json first (the
    node is gone for every other process), then each file that was not among `before`, and the
    directory when it made it. Best effort: what cannot be removed stays."""
    with contextlib.suppress(OSError):
        (path / "node.json").unlink()
    with contextlib.suppress(OSError):
        made = [e for e in path.iterdir() if e.name not in before and not e.is_dir()]
        for entry in made:
            with contextlib.suppress(OSError):
                entry.unlink()
    if made_directory:
        with contextlib.suppress(OSError):
            path.rmdir()


def list_nodes(
    home: Path | None = None, *, unreadable: dict[str, str] | None = None
) -> list[NodeConfig]:
    """The configurations of the nodes in `home` (default: troth_home()), by name. With
    `unreadable`, a node whose node.json cannot be read is put there (its name: why) and the
    others are listed; else its ConfigError is raised (review 49g, cli 9: one damaged node
    kept `troth node list` from listing any). A node directory this user cannot enter (root's,
    made under sudo) is one it cannot read: its OSError, raised untyped, blocked every
    revocation and rotation here (review 69k, wave1 2); the nodes directory itself that cannot
    be listed, a ConfigError."""
    base = _nodes_dir(home or troth_home())
    try:
        if not base.is_dir():
            return []
        paths = sorted(base.iterdir())
    except OSError as exc:
        raise ConfigError(f"the nodes in {base} cannot be listed: {exc}") from None
    configs = []
    for path in paths:
        config_path = path / "node.json"
        try:
            try:
                if not config_path.is_file():
                    continue
            except OSError as exc:
                raise ConfigError(f"{config_path} cannot be read: {exc}") from None
            configs.append(NodeConfig.from_json(read_private_file(config_path), config_path))
        except ConfigError as exc:
            if unreadable is None:
                raise
            unreadable[path.name] = str(exc)
    return configs


def open_node(name: str, *, home: Path | None = None, create_default: bool = False) -> Node:
    """Open node `name`. With `create_default`, the default node is created on first use (the
    loser of a race to create it opens the winner's). Opening takes no write lock unless the
    database is new or its schema needs a migration (docs/storage.md, "Read-only opens")."""
    home = home or troth_home()
    path = node_dir(home, name)
    config_path = path / "node.json"
    if not config_path.is_file():
        if create_default and name == DEFAULT_NODE:
            with contextlib.suppress(NodeExists):
                init_node(name, home=home)
        else:
            raise NotFound(f"no node {name!r} in {home} (create it with: troth node create {name})")
    config = NodeConfig.from_json(read_private_file(config_path), config_path)
    _check_database_kept(config, path)
    db = SqliteDatabase(path / "node.db", durability=config.durability)
    peers: PeerLock | None = None
    try:
        peers, software = open_software_vault(config, path, db)
        vault: Vault = software
        if config.vault == "pkcs11":
            token = _open_pkcs11(config, config_path)
            vault = CompositeVault(token, software, frozenset({KeyType.X25519}))
    except BaseException:
        db.close()
        if peers is not None:
            peers.close()
        raise
    identities = IdentityService(
        vault, SqliteIdentityStore(db), keys_in_store=frozenset({software.name}), rollback=db
    )
    identities.rotated_hooks.append(functools.partial(_resign_outbox, db, identities))
    wallet = CredentialWallet(identities, SqliteCredentialStore(db), check_caveat=_check_caveat)
    wallet.check_chain_caveats = _check_chain_caveats  # together (review 55k, caveats 1)
    node = Node(config, path, db, vault, identities, wallet)
    node._vault_peers = peers
    wallet.binds_over = node.binds_over  # a ticket's authority history (review 30a)
    wallet.settle_due = node.settle_due_bounded  # review 48m, revcrash 2; 50k, due 1
    return node


def _resign_outbox(
    db: SqliteDatabase,
    identities: IdentityService,
    before: VerifiedIdentity,
    at: int,
    compromised: bool,
) -> None:
    """In a rotation's transaction: the agent's queued trace records signed again with its
    new key, or set aside when the rotation is `compromised` (troth.trace.outbox_rotation;
    reviews 69a, 69o)."""
    ref = str(before.identifier)
    signer = functools.partial(identities.signer, ref, now=at)  # asked only when needed
    resign_for_rotation(db, before, signer, at, compromised=compromised)


def open_software_vault(
    config: NodeConfig, path: Path, db: SqliteDatabase
) -> tuple[PeerLock, SoftwareVault]:
    """The node's software vault over `db` (its KEK checked), and the shared hold on
    `node.db.vault` every open node keeps: taken first, it waits while `troth vault rekey`
    runs, and what a killed rekey left is finished (or undone) under it: its scrub, its
    switch-over of vault.key (troth.node.rekey.settle_rekey)."""
    from troth.node.rekey import settle_rekey

    peers = db.peer_lock("vault")
    try:
        keys = SqliteKeyStore(db)
        settle_rekey(config, path, db, peers)
        # a key check, or keys without one (a restore without `vault_meta`: review 45d, vault
        # 1): a fresh vault.key beside either opens nothing (review 53f, node home 3)
        sealed = keys.get_vault_meta("kek_check") is not None or keys.max_key_number() > 0
        return peers, SoftwareVault(keys, _load_kek(config, path, sealed=sealed))
    except BaseException:
        peers.close()
        raise


def _check_caveat(condition: str) -> str:
    """troth.gates.check_caveat (Cedar: imported on the first delegation with a caveat)."""
    from troth.gates import check_caveat

    return check_caveat(condition)


def _check_chain_caveats(links: list[tuple[int, tuple[str, ...]]]) -> None:
    """PolicyError(CAVEAT_INVALID) unless a chain with these (link index, caveats) is within
    what the gates evaluate (troth.gates.caveats.caveat_fragment: MAX_CAVEAT_LIKE_WEIGHT and
    MAX_CHAIN_CAVEAT_TEXT together; review 55k, caveats 1)."""
    from troth.gates.caveats import caveat_fragment

    caveat_fragment(links)


def _check_database_kept(config: NodeConfig, path: Path) -> None:
    """Refuse to make a fresh `node.db` beside a `vault.key`. SQLite takes a missing or empty
    file for a new database; the key file is written only after the database was made (see
    `open_node`), so a key file beside a missing or empty database (with no write-ahead log
    holding its pages) is damage — a restore killed half-way, a file deleted by mistake —
    never a node to start afresh (review 44d, node home 1; the mirror of review 38c, vault 1).
    """
    if config.kek_source != "file" or not (path / "vault.key").exists():
        return
    db = path / "node.db"
    try:
        size = db.stat().st_size
    except FileNotFoundError:
        state = "is missing"
    except OSError as exc:
        raise ConfigError(f"cannot read {db}: {exc}") from exc
    else:
        if size > 0 or _has_pages(path / "node.db-wal"):
            return
        state = "is empty"
    raise ConfigError(
        f"{db} {state}, and this node's vault.key was made with it: restore it from where the "
        "node was copied from (a new database would hold none of its identities); to start the "
        "node afresh, remove vault.key too"
    )


def _has_pages(wal: Path) -> bool:
    try:
        return wal.stat().st_size > 0
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ConfigError(f"cannot read {wal}: {exc}") from exc


def _load_kek(config: NodeConfig, path: Path, *, sealed: bool = False) -> bytes:
    """The software vault's KEK: from TROTH_VAULT_KEY, or `vault.key` (made on first use).
    `sealed`: the database already holds a key check made under a KEK, or sealed keys (review
    53f, node home 3), so a missing
    `vault.key` is damage (a restore killed half-way, a partial copy) reported as such, never
    replaced by a fresh key that opens nothing (review 38c, vault 1; docs/vault.md)."""
    text = os.environ.get(_KEK_ENV)
    if config.kek_source == "env":
        if not text:
            raise ConfigError(
                f"node {config.name!r} takes its vault key from {_KEK_ENV}, which is not set"
            )
        return parse_kek(text)
    key_file = path / "vault.key"
    if sealed and not key_file.exists():
        raise ConfigError(
            f"{key_file} is missing, and this node's vault holds keys sealed under it: "
            "restore it from where the node was copied from (a new key would open none of them)"
        )
    if not key_file.exists():
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            write_private_file(key_file, os.urandom(KEK_SIZE), exclusive=True)
    kek = read_private_file(key_file)
    if len(kek) != KEK_SIZE:
        raise ConfigError(f"{key_file} must hold exactly {KEK_SIZE} bytes")
    return kek


def parse_kek(text: str) -> bytes:
    """A KEK given as 64 hex digits or base64 of 32 bytes."""
    text = text.strip()
    try:
        kek = (
            bytes.fromhex(text)
            if len(text) == 2 * KEK_SIZE
            else base64.b64decode(text, validate=True)
        )
    except (ValueError, binascii.Error):
        kek = b""
    if len(kek) != KEK_SIZE:
        raise ConfigError(f"{_KEK_ENV} must be 64 hex digits or base64 of {KEK_SIZE} bytes")
    return kek


def _open_pkcs11(config: NodeConfig, config_path: Path) -> Vault:
    """The node's PKCS#11 vault, on the token whose serial number node.json records; a node.json
    that records none (made before review 67j) records the token's at this open."""
    from troth.vault.pkcs11 import Pkcs11Vault
    from troth.vault.pkcs11_session import serial_mismatch

    pin_env = config.pin_env or DEFAULT_PIN_ENV
    pin = os.environ.get(pin_env)
    if not pin:
        raise ConfigError(
            f"node {config.name!r} reads its token PIN from ${pin_env}, which is not set"
        )
    module, label = config.pkcs11_module or DEFAULT_PKCS11_MODULE, config.token_label or ""
    recorded = bytes.fromhex(config.token_serial) if config.token_serial else None
    vault = Pkcs11Vault(module, label, pin, serial=recorded)
    serial = vault.token_serial
    if recorded is None and serial:
        try:  # best effort: a node.json not written now is recorded at a later open
            with contextlib.suppress(OSError):
                config = update_config(config_path, lambda c: c.with_token_serial(serial.hex()))
            if config.token_serial not in (None, serial.hex()):  # another process's, first
                raise serial_mismatch(label, serial, bytes.fromhex(config.token_serial))
        except BaseException:
            vault.close()
            raise
    return vault
