"""A node's configuration: `<home>/nodes/<name>/node.json`.

Besides the vault, it names the services the node runs (`services`, default: all it can) and
where it is reached: `listen` (host:port the node listens on when started without
--tcp-listen; recorded by `troth node start --tcp-listen` with a fixed port) and `advertise`
(the route tickets carry, when it differs from `/tcp/<listen>`). A node with neither issues
`node:NAME` tickets (enrollment on this machine). `traces` names the trace service the running
node sends the records its own identity signs to (a route ending in `/service/trace`); without
it, records go to the node's own log (docs/traces.md, "Where records go"). `traces_expect` (an
identifier) is the identity expected there; without it, the identity that answers there first
is pinned (troth.node.pins).

`update_config` is the one way to change a node.json that exists: a read-modify-write under
an flock on `node.json.lock` beside it (review 44d, config 1: two processes' updates, e.g.
`troth node start --tcp-listen` and the first `troth secrets put`, each dropped the other's).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Final, Literal

from troth import limits
from troth.encoding.ijson import load_json
from troth.errors import ConfigError, DecodeError
from troth.identity import Identifier
from troth.names import check_name
from troth.node.home import read_private_file, write_private_file

__all__ = [
    "DEFAULT_SERVICES",
    "KNOWN_SERVICES",
    "NodeConfig",
    "VaultKind",
    "check_module_path",
    "update_config",
]

VaultKind = Literal["software", "pkcs11"]
KNOWN_SERVICES: Final = ("echo", "sink", "relay", "authority", "policy", "trace", "broker")
"""The services a node can run (`authority` only when it hosts one; `broker` once
`troth secret put` stored a secret on it)."""
DEFAULT_SERVICES: Final = ("echo", "sink", "relay", "authority", "policy", "trace")
"""The services of a node whose configuration names none."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """A node's configuration (node.json)."""

    name: str
    vault: VaultKind = "software"
    kek_source: Literal["env", "file"] = "file"
    durability: Literal["normal", "full"] = "normal"
    pkcs11_module: str | None = None
    token_label: str | None = None
    pin_env: str | None = None
    version: int = 1
    services: tuple[str, ...] = DEFAULT_SERVICES
    listen: str | None = None
    advertise: str | None = None
    traces: str | None = None
    traces_expect: str | None = None
    token_serial: str | None = None

    def to_json(self) -> bytes:
        """The configuration as node.json bytes (no `token_serial` when none is recorded: a
        node.json troth before review 67j reads)."""
        data = asdict(self)
        data["services"] = list(self.services)
        if self.token_serial is None:
            del data["token_serial"]
        return json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"

    def address(self) -> str:
        """The route this node is reached at (what its authority's tickets carry): `advertise`,
        else `/tcp/<listen>` for a fixed port, else `node:NAME` (this machine only)."""
        if self.advertise:
            return self.advertise
        if self.listen and not self.listen.endswith(":0"):
            return f"/tcp/{self.listen}"
        return f"node:{self.name}"

    def with_token_serial(self, serial: str) -> NodeConfig:
        """This configuration recording `serial` (hex) as its token's, unless it records one."""
        return self if self.token_serial is not None else replace(self, token_serial=serial)

    def with_listen(self, listen: str | None) -> NodeConfig:
        """This configuration listening on `listen` (host:port)."""
        return replace(self, listen=listen)

    @classmethod
    def from_json(cls, data: bytes, path: Path) -> NodeConfig:
        """The configuration in node.json bytes read from `path` (ConfigError if invalid)."""
        try:
            raw = load_json(data, max_bytes=limits.MAX_NODE_FILE_BYTES, what=str(path))
        except DecodeError as exc:
            raise ConfigError(f"{path} is not a valid node configuration: {exc}") from None
        if not isinstance(raw, dict) or "name" not in raw or not _typed_as_declared(raw):
            raise ConfigError(f"{path} is not a valid node configuration: wrong fields or types")
        if "services" in raw:
            raw["services"] = tuple(raw["services"])
        config = cls(**raw)
        try:
            check_name(config.name, "node name")  # it names the node's directory
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        if config.version != 1 or config.vault not in ("software", "pkcs11"):
            raise ConfigError(f"{path}: unsupported configuration (version {config.version})")
        if config.kek_source not in ("env", "file"):
            # read two ways before: the key file by `_load_kek`, the environment by the check
            # of a kept node.db and by `troth vault rekey` (review 53f, node home 1)
            raise ConfigError(f'{path}: kek_source is "file" or "env"')
        unknown = set(config.services) - set(KNOWN_SERVICES)
        if unknown or len(set(config.services)) != len(config.services):
            raise ConfigError(
                f"{path}: services must be distinct names among {', '.join(KNOWN_SERVICES)}"
            )
        if config.listen is not None and not _host_port(config.listen):
            # the node died on it in a traceback, `troth node start` quoting its last lines
            raise ConfigError(f"{path}: listen is host:port (review 49g, cli 6)")
        if config.advertise is not None and not _reachable(config.advertise):
            # tickets carried it, and enrollments failed only when sent (review 49m, cli 3)
            raise ConfigError(f"{path}: advertise is node:NAME or a route (/tcp/HOST:PORT...)")
        if config.traces is not None and not config.traces.endswith("/service/trace"):
            raise ConfigError(f"{path}: traces is a route ending in /service/trace")
        if config.traces_expect is not None:
            try:
                Identifier.parse(config.traces_expect)
            except ValueError:
                raise ConfigError(f"{path}: traces_expect is an identifier (T...)") from None
        if config.token_serial is not None and not _TOKEN_SERIAL.fullmatch(config.token_serial):
            raise ConfigError(f"{path}: token_serial is up to 32 hex digits (16 bytes)")
        if config.pkcs11_module is not None:
            check_module_path(config.pkcs11_module, str(path))
        if config.vault == "pkcs11" and not (
            config.pkcs11_module and config.token_label and config.pin_env
        ):
            raise ConfigError(
                f"{path}: a pkcs11 vault needs pkcs11_module, token_label and pin_env"
            )
        return config


_TOKEN_SERIAL: Final = re.compile(r"(?:[0-9a-f]{2}){1,16}")
"""node.json's `token_serial`: the token's CK_TOKEN_INFO serialNumber (16 bytes), in hex,
recorded at the node's first open (review 67j, pkcs11 1)."""


def check_module_path(module: str, where: str) -> None:
    """ConfigError unless `module`, a PKCS#11 library every open of the node loads into the
    process that logs in with the PIN, is an absolute path: a relative one was loaded from the
    working directory of each process (or the loader's search path), so a command run where
    someone else can write ran that someone's library (review 53f, pkcs11 2)."""
    if not os.path.isabs(module):
        raise ConfigError(
            f"{where}: the PKCS#11 module is an absolute path, not {module!r} (a relative one "
            "is looked up afresh by every process, in its working directory)"
        )


def _host_port(text: str) -> bool:
    """Whether `text` is host:port, as `troth node start --tcp-listen` takes it."""
    from troth.errors import RoutingError
    from troth.routing import Address  # on use: routing imports much a CLI start does not need

    try:
        Address("tcp", text).host_port()
    except (RoutingError, ValueError):
        return False
    return True


def _reachable(text: str) -> bool:
    """Whether `text` is an address a ticket may carry (`troth.authority.tickets.check_address`:
    node:NAME or a route)."""
    from troth.authority.tickets import check_address  # on use, as _host_port's import

    try:
        check_address(text)
    except DecodeError:
        return False
    return True


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    field.name: (int,)
    if field.name == "version"
    else (list,)
    if field.name == "services"
    else (str,)
    if field.name == "name"
    else (str, type(None))
    for field in fields(NodeConfig)
}


def _typed_as_declared(raw: dict[str, Any]) -> bool:
    """Whether `raw` names only NodeConfig's fields, each of its type (version an int, not a
    bool or a float; services a list of text; name text; the others text or null)."""
    return all(
        name in _FIELD_TYPES
        and type(value) in _FIELD_TYPES[name]
        and (name != "services" or all(type(item) is str for item in value))
        for name, value in raw.items()
    )


def update_config(path: Path, change: Callable[[NodeConfig], NodeConfig]) -> NodeConfig:
    """Read the node.json at `path`, apply `change` and write what it returns (when it differs),
    holding an flock on `node.json.lock` beside it from the read to the rename, so that of two
    processes updating it at once the later reads what the earlier wrote (review 44d, config
    1: each read, then wrote its own change over what it read). The configuration now."""
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when the descriptor closes
        config = NodeConfig.from_json(read_private_file(path), path)
        updated = change(config)
        if updated != config:
            write_private_file(path, updated.to_json())
        return updated
    finally:
        os.close(fd)
