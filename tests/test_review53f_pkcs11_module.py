"""Review 53f, pkcs11 2: a PKCS#11 node's module path (`--pkcs11-module`, node.json's
`pkcs11_module`) is a shared library every open of the node loads, into the process that then
logs in with the token's PIN.

A relative path was kept as given, so each open loaded whatever file of that name the working
directory of that process held: `troth node create hsm --vault pkcs11 --pkcs11-module
./libsofthsm2.so` worked where it was run, and any later `troth ... --node hsm` run from a
directory someone else can write (/tmp, a shared checkout) ran that someone's library with the
PIN in its environment. A relative path is refused now, at creation and in node.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import SoftHsm
from troth.errors import ConfigError
from troth.node.node import init_node, open_node


def test_a_relative_module_path_is_refused_at_creation(
    softhsm: SoftHsm, troth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkcs11 2: made from a directory holding the module, the node was made, and it then
    loaded the working directory's file of that name at every open (by hand: a library planted
    in another directory ran its constructor, the PIN in its environment, when `troth identity
    list --node hsm` was run there)."""
    made_in = tmp_path / "made-in"
    made_in.mkdir()
    (made_in / "libpkcs11.so").symlink_to(softhsm.module)
    monkeypatch.setenv("TEST_HSM_PIN", softhsm.pin)
    monkeypatch.chdir(made_in)
    with pytest.raises(ConfigError, match="absolute"):
        init_node(
            "hsm",
            vault="pkcs11",
            pkcs11_module="./libpkcs11.so",
            token_label=softhsm.token_label,
            pin_env="TEST_HSM_PIN",
        )
    assert not (troth_home / "nodes" / "hsm").exists()


@pytest.mark.parametrize("module", ["./libpkcs11.so", "lib/libpkcs11.so", "libpkcs11.so"])
def test_a_node_json_naming_a_relative_module_is_refused(troth_home: Path, module: str) -> None:
    """pkcs11 2: a node.json written before (or by hand) with a relative module path opens
    nothing: refused when read, before any library is loaded."""
    init_node("n1")
    path = troth_home / "nodes" / "n1" / "node.json"
    config = json.loads(path.read_bytes())
    config.update(vault="pkcs11", pkcs11_module=module, token_label="t", pin_env="TEST_53F_PIN")
    path.write_text(json.dumps(config))
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match="absolute"):
        open_node("n1").close()
