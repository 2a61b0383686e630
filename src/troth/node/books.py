"""Identifier books: small files in a node's directory that remember an identity per name
across restarts: `{"version": 1, "<field>": {name: identifier}}`, written atomically with mode
0600 and read back refusing anything else (troth.node.home). The relay names a relay node holds
for their owners (`relays.json`, troth.node.services.relay) and the identities a node pinned at
the routes it sends to (`pins.json`, troth.node.pins) are kept this way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from troth.encoding.ijson import load_json
from troth.errors import ConfigError, DecodeError, RoutingError
from troth.identity import Identifier
from troth.node.home import read_private_file, write_private_file

__all__ = ["IdentifierBook"]

_VERSION: Final = 1


class IdentifierBook:
    """A map of names to identifiers in the file `path`, under `field`; at most `max_entries`
    names, at most `max_bytes` read; `key` checks and normalises each name read (ValueError,
    DecodeError or RoutingError for one that is not valid). `what` names the book in errors."""

    def __init__(
        self,
        path: Path,
        *,
        field: str,
        what: str,
        max_entries: int,
        max_bytes: int,
        key: Callable[[str], str] = str,
    ) -> None:
        self.path = path
        self.field = field
        self.what = what
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.key = key

    def load(self) -> dict[str, Identifier]:
        """The names and identifiers kept (none when there is no file; ConfigError when it is
        not a valid book)."""
        if not self.path.is_file():
            return {}
        data = read_private_file(self.path, self.max_bytes)
        try:
            raw = load_json(data, max_bytes=self.max_bytes, what=str(self.path))
            if not isinstance(raw, dict) or raw.get("version") != _VERSION:
                raise DecodeError(f"not a version {_VERSION} {self.what}")
            entries = raw.get(self.field)
            if not isinstance(entries, dict) or len(entries) > self.max_entries:
                raise DecodeError(f"{self.field}: a map of at most {self.max_entries} names")
            return {self.key(name): Identifier.parse(ident) for name, ident in entries.items()}
        except (DecodeError, RoutingError, ValueError, TypeError) as exc:
            raise ConfigError(f"{self.path} is not a valid {self.what}: {exc}") from None

    def save(self, entries: Mapping[str, Identifier]) -> None:
        """Replace the kept names and identifiers with `entries`."""
        document = {"version": _VERSION, self.field: {n: str(i) for n, i in entries.items()}}
        write_private_file(self.path, json.dumps(document, sort_keys=True).encode())
