"""A node's configuration: `<home>/nodes/<name>/node.json`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from troth.errors import ConfigError

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
            raw: dict[str, Any] = json.loads(data)
            config = cls(**raw)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path} is not a valid node configuration: {exc}") from exc
        if config.version != 1 or config.vault not in ("software", "pkcs11"):
            raise ConfigError(f"{path}: unsupported configuration (version {config.version})")
        if config.vault == "pkcs11" and not (
            config.pkcs11_module and config.token_label and config.pin_env
        ):
            raise ConfigError(
                f"{path}: a pkcs11 vault needs pkcs11_module, token_label and pin_env"
            )
        return config
