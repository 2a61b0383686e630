"""Names on this machine: which local name an identifier has (to show `support-agent
(T4dfd…b2a1)` instead of 65 characters), and which identity or authority a name given on the
command line means.

The directory reads every node's database in $TROTH_HOME (local identities, the authority a
node hosts, the authorities it trusts at `node:NAME`) without opening any vault: a PKCS#11
node's token is not touched to find a name. A node that cannot be read is skipped, and
remembered: an authority looked up by the name of such a node is a ConfigError saying why, not
`no authority` (review 49g, cli 8).
"""

from __future__ import annotations

import contextlib
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from troth.errors import ConfigError, NotFound, TrothError
from troth.identity import Identifier
from troth.names import check_name
from troth.node import Node, NodeConfig
from troth.node.authorities import LOCAL_PREFIX
from troth.node.home import read_private_file
from troth.storage import (
    LocalIdentityRecord,
    SqliteAuthorityStore,
    SqliteCredentialStore,
    SqliteDatabase,
    SqliteIdentityStore,
)

__all__ = ["Directory", "LocalAuthority", "is_name", "short"]

_IDENTIFIER_TEXT = re.compile(r"T[0-9a-f]{64}")
LIST_HINT = "list them with: troth identity list --node NODE"


def is_name(text: str) -> bool:
    """Whether `text` is a valid node or identity name (else it is, say, a path)."""
    try:
        check_name(text)
    except ValueError:
        return False
    return True


def short(identifier: Identifier | str) -> str:
    """`T4dfd…b2a1`: enough to tell identifiers apart by eye, never to type."""
    text = str(identifier)
    return f"{text[:5]}…{text[-4:]}"


def _find(node: Node, ref: str) -> LocalIdentityRecord:
    """`node`'s local identity `ref` (a name or an identifier); NotFound without a look-up for
    text that is neither (argv's bytes that are not UTF-8 failed SQLite's encoding, the error
    Python's codec message; review 55g, cli 10)."""
    if not (is_name(ref) or Identifier.looks_like(ref)):
        raise NotFound(f"no identity {ref!r}")
    return node.identities.find(ref)


@dataclass(frozen=True, slots=True)
class LocalAuthority:
    """An authority hosted by a node on this machine."""

    name: str
    node: str
    identifier: Identifier


@dataclass
class _Entries:
    names: dict[Identifier, str]
    holders: dict[str, set[tuple[str, Identifier]]]  # identity name -> (node, identifier)
    locals_by_id: dict[Identifier, set[str]]  # identifier -> nodes holding its key
    authorities: list[LocalAuthority]
    unreadable: dict[str, str]  # node -> why it could not be read


def _node_configs(home: Path, unreadable: dict[str, str]) -> list[NodeConfig]:
    """The configurations of the nodes in `home`; each node whose node.json is there but cannot
    be read goes into `unreadable` with the reason."""
    base = home / "nodes"
    configs = []
    for path in sorted(base.iterdir()) if base.is_dir() else []:
        config_path = path / "node.json"
        try:
            configs.append(NodeConfig.from_json(read_private_file(config_path), config_path))
        except (TrothError, OSError) as exc:
            if config_path.exists():
                unreadable[path.name] = str(exc)
    return configs


class Directory:
    """The names this machine knows (read on first use, once per command)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._entries: _Entries | None = None

    def _load(self) -> _Entries:
        if self._entries is not None:
            return self._entries
        entries = _Entries({}, defaultdict(set), defaultdict(set), [], {})
        for config in _node_configs(self.home, entries.unreadable):
            path = self.home / "nodes" / config.name / "node.db"
            if path.is_file():
                try:
                    self._read_node(config.name, path, entries)
                except (TrothError, OSError) as exc:
                    entries.unreadable[config.name] = f"{path}: {exc}"
        self._entries = entries
        return entries

    @staticmethod
    def _read_node(node: str, path: Path, entries: _Entries) -> None:
        db = SqliteDatabase(path)
        try:
            for record in SqliteIdentityStore(db).list_local():
                identifier = Identifier(record.identifier)
                entries.locals_by_id[identifier].add(node)
                if record.name:
                    entries.names.setdefault(identifier, record.name)
                    entries.holders[record.name].add((node, identifier))
            config = SqliteAuthorityStore(db).get_config()
            if config is not None:
                identifier = Identifier(config.identifier)
                entries.authorities.append(LocalAuthority(config.name, node, identifier))
                entries.names[identifier] = config.name
            for digest, address in SqliteCredentialStore(db).trusted_authorities():
                if address.startswith(LOCAL_PREFIX):
                    entries.names.setdefault(Identifier(digest), address[len(LOCAL_PREFIX) :])
        finally:
            db.close()

    # -- showing identifiers ---------------------------------------------------------------------

    def name_of(self, identifier: Identifier | str) -> str | None:
        """The local name of `identifier`, if this machine knows one."""
        if isinstance(identifier, str):
            try:
                identifier = Identifier.parse(identifier)
            except ValueError:
                return None
        return self._load().names.get(identifier)

    def label(self, identifier: Identifier | str | None) -> str:
        """`support-agent (T4dfd…b2a1)` when a name is known, else the whole identifier."""
        if identifier is None:
            return "(none)"
        name = self.name_of(identifier)
        return f"{name} ({short(identifier)})" if name else str(identifier)

    def brief_text(self, text: str) -> str:
        """`text` with every identifier in it shown briefly: its local name, else `T4dfd…b2a1`
        (views where the full identifier is in the --json output)."""
        if not _IDENTIFIER_TEXT.search(text):
            return text
        return _IDENTIFIER_TEXT.sub(lambda m: self.name_of(m.group(0)) or short(m.group(0)), text)

    def label_text(self, text: str) -> str:
        """`text` with every identifier in it labelled (error messages, reasons)."""
        if not _IDENTIFIER_TEXT.search(text):
            return text
        return _IDENTIFIER_TEXT.sub(lambda m: self.label(m.group(0)), text)

    # -- reading names given on the command line -------------------------------------------------

    def identifier(self, ref: str, node: Node | None = None) -> Identifier:
        """The identifier `ref` means: an identifier as it is, else a local identity of `node`
        by that name, else the one identity of that name on this machine."""
        if Identifier.looks_like(ref):
            return Identifier.parse(ref)
        if node is not None:
            with contextlib.suppress(NotFound):
                return Identifier(_find(node, ref).identifier)
        entries = self._load()
        found = {identifier for _, identifier in entries.holders.get(ref, ())}
        found |= {a.identifier for a in entries.authorities if ref in (a.name, a.node)}
        if len(found) == 1:
            return found.pop()
        if found:
            nodes = sorted(n for n, _ in entries.holders.get(ref, ()))
            raise ValueError(
                f"{ref!r} names {len(found)} different identities on this machine (nodes "
                f"{', '.join(nodes)}): give the identifier instead ({LIST_HINT})"
            )
        if not is_name(ref):  # `T1234`, a cut identifier: no name could be created for it
            raise NotFound(
                f"{ref!r} is neither an identifier (T + 64 hex digits) nor an identity name "
                f"({LIST_HINT})"
            )
        raise NotFound(
            f"no identity named {ref!r} on this machine: give its identifier (T…), or create "
            f"it with: troth identity create {ref}"
        )

    def local(self, ref: str, node: Node) -> str:
        """`ref` when it names a local identity of `node` (one whose key the node holds), else
        NotFound saying which node holds it, or how to create it."""
        with contextlib.suppress(NotFound):
            _find(node, ref)
            return ref
        entries = self._load()
        if Identifier.looks_like(ref):
            elsewhere = entries.locals_by_id.get(Identifier.parse(ref), set())
        else:
            elsewhere = {n for n, _ in entries.holders.get(ref, ())}
        elsewhere.discard(node.name)
        if elsewhere:
            other = sorted(elsewhere)[0]
            raise NotFound(
                f"{ref} is an identity of node {other!r}, not of node {node.name!r}: "
                f"add --node {other}"
            )
        option = "" if node.name == "default" else f" --node {node.name}"
        create = f"; create it with: troth identity create {ref}{option}" if is_name(ref) else ""
        raise NotFound(
            f"node {node.name!r} has no identity {ref!r} (list them with: troth identity list"
            f"{option}){create}"
        )

    def authorities(self) -> list[LocalAuthority]:
        """The authorities hosted by nodes on this machine, by name."""
        return sorted(self._load().authorities, key=lambda a: a.name)

    def unreadable(self) -> dict[str, str]:
        """The nodes on this machine that could not be read (their authorities and identities
        unknown here), each with why."""
        return dict(self._load().unreadable)

    def authority(self, ref: str) -> LocalAuthority:
        """The local authority `ref` names (its name, its node's name, or its identifier);
        ConfigError when `ref` names a node that cannot be read (where it would live)."""
        wanted = Identifier.parse(ref) if Identifier.looks_like(ref) else None
        for authority in self.authorities():
            if ref in (authority.name, authority.node) or authority.identifier == wanted:
                return authority
        why = self._load().unreadable.get(ref)
        if why is not None:  # it said `no authority`, and to create one (review 49g, cli 8)
            raise ConfigError(f"node {ref!r}, where authority {ref!r} lives, cannot be read: {why}")
        where = "hosted on this machine" if wanted else "on this machine"
        raise NotFound(
            f"no authority {ref!r} {where} (list them with: troth authority list; create one "
            "with: troth authority create NAME)"
        )

    def anchor(self, ref: str) -> Identifier:
        """A trust anchor: an identifier as it is, else the local authority of that name."""
        if Identifier.looks_like(ref):
            return Identifier.parse(ref)
        return self.authority(ref).identifier
