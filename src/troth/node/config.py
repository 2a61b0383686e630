"""A node's configuration: `<home>/nodes/<name>/node.json`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from troth import limits
from troth.encoding.ijson import load_json
from troth.errors import ConfigError, DecodeError

__all__ = ["NodeConfig", "VaultKind"]

VaultKind = Literal["software", "pkcs11"]


@dataclass(frozen=True, slots=True)
class NodeConfig:
    name: str
    vault: VaultKind = "software"
    kek_source: Literal["env", "file"] = "file"
    durability: Literal["normal", "full"] = "normal"
    pkcs11_module: str | None = None
    token_label: str | None = None
    pin_env: str | None = None
    version: int = 1

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes, path: Path) -> NodeConfig:
        try:
            raw = load_json(data, max_bytes=limits.MAX_NODE_FILE_BYTES, what=str(path))
        except DecodeError as exc:
            raise ConfigError(f"{path} is not a valid node configuration: {exc}") from None
        if not isinstance(raw, dict) or not _typed_as_declared(raw):
            raise ConfigError(f"{path} is not a valid node configuration: wrong fields or types")
        config = cls(**raw)
        if config.version != 1 or config.vault not in ("software", "pkcs11"):
            raise ConfigError(f"{path}: unsupported configuration (version {config.version})")
        if config.vault == "pkcs11" and not (
            config.pkcs11_module and config.token_label and config.pin_env
        ):
            raise ConfigError(
                f"{path}: a pkcs11 vault needs pkcs11_module, token_label and pin_env"
            )
        return config


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    field.name: (int,) if field.name == "version" else (str, type(None))
    for field in fields(NodeConfig)
}


def _typed_as_declared(raw: dict[str, Any]) -> bool:
    """Whether `raw` names only NodeConfig's fields, each of its type (version an int, not a
    bool or a float; the others text or null)."""
    return all(
        name in _FIELD_TYPES and type(value) in _FIELD_TYPES[name] for name, value in raw.items()
    )
