"""Review 57k: attacks on this session's vault and CLI changes that did not work (each test
fails if the defence it names breaks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import SoftHsm
from tests.support.cli import run_json
from tests.support.hsm import NOW, agent_node_fixture  # noqa: F401  (fixtures)
from tests.test_review35b_pkcs11 import _PLANT
from tests.test_review57k_cli import close_fails_after_the_result
from troth.cli.main import cli
from troth.errors import KeyNotFound, StorageError, VaultError
from troth.node import Node, open_node


def test_a_key_planted_without_the_pin_under_a_destroyed_keys_id_is_not_signed_with(
    node: Node, softhsm: SoftHsm
) -> None:
    """Review 57b's stale-object retry looks the key up again by its CKA_ID. A rotation in
    another process destroyed the held signer's key; an application without the PIN (its ID
    from a copy of node.db) then makes a private key object of its own with that ID. The
    retry finds only private objects (a PIN session's): KeyNotFound, nothing signed with the
    planted key, and the next signer is the rotated one."""
    held = node.identities.signer("agent", now=NOW)
    held.sign(b"before")  # its object cached
    with open_node("hsm") as other:
        other.identities.rotate("agent", now=NOW + 10, compromised=True)
    done = subprocess.run(
        [sys.executable, "-c", _PLANT, softhsm.module, softhsm.token_label, held.handle.key_id],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.strip() == "planted", done.stderr
    with pytest.raises(KeyNotFound, match="in the token"):
        held.sign(b"after")
    fresh = node.identities.signer("agent", now=NOW + 20)
    assert fresh.identity.change_count == 3


_BLOCKED_WHILE_LOADING = """
import runpy, sys

missing = sys.argv[1]

class Missing:  # a module the CLI imports, missing (a broken install) or without an extra
    def find_spec(self, name, path=None, target=None):
        if name == missing:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Missing())
sys.argv = ["troth", *sys.argv[2:]]
runpy.run_module("troth.cli.main", run_name="__main__")
"""


def _without(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`troth *args` in a process where importing `module` fails."""
    return subprocess.run(
        [sys.executable, "-c", _BLOCKED_WHILE_LOADING, module, *args],
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_a_module_missing_as_the_cli_loads_is_not_reported_as_an_interruption() -> None:
    """Review 57d (cli 4) wrapped the CLI's imports to exit 130 on Ctrl-C: an ImportError
    there (a broken install) is not taken for one: it is raised, naming the module."""
    result = _without("troth.cli.output", "identity", "list", "--json")
    assert result.returncode == 1, result.stderr
    assert "No module named 'troth.cli.output'" in result.stderr
    assert "interrupted" not in result.stderr + result.stdout


def test_a_reported_error_after_the_result_is_not_lost(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 57d (cli 1) sends an error after a --json result to stderr: the exit code still
    says it (a failure closing the node after `identity create` printed, exit 4), and the
    message is on stderr, the result alone on stdout."""
    error = StorageError("injected: the disk failed closing the node")
    close_fails_after_the_result(monkeypatch, error)
    done = CliRunner().invoke(cli, ["identity", "create", "a", "--json"])
    assert done.exit_code == 4
    assert json.loads(done.stdout)["name"] == "a"
    assert "the disk failed closing the node" in done.stderr


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_a_pin_that_is_not_utf8_is_not_shown(
    softhsm: SoftHsm, troth_home: Path, monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    """Review 57b (pkcs11 4) reports a PIN variable that is not UTF-8 as a ConfigError: the
    message names the token, and no part of the PIN (its digits, its bad byte as `\\udcff` or
    `\\xff`), with TROTH_DEBUG set too."""
    softhsm.init_node("hsm", monkeypatch)
    monkeypatch.setenv("TEST_HSM_PIN", os.fsdecode(b"\xff" + softhsm.pin.encode()))
    monkeypatch.setenv("TROTH_DEBUG", "1")
    args = ["identity", "create", "agent", "--node", "hsm", *(["--json"] if as_json else [])]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 3, done.output
    shown = done.stdout + done.stderr
    assert "not UTF-8" in shown
    for leaked in (softhsm.pin, "udcff", "xff", "\udcff"):
        assert leaked not in shown


def test_a_pkcs11_node_without_the_hsm_extra_says_so(
    softhsm: SoftHsm, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The module the `hsm` extra brings, missing: a ConfigError naming the extra (exit 3, one
    JSON object), not an interruption nor an internal error."""
    softhsm.init_node("hsm", monkeypatch)
    done = _without("pkcs11", "identity", "create", "agent", "--node", "hsm", "--json")
    assert done.returncode == 3, done.stderr
    answer = json.loads(done.stdout)
    assert answer["error"] == "ConfigError"
    assert "troth[hsm]" in answer["message"]


def test_the_stale_object_retry_looks_once(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review 57b's retry of a stale object: a token that calls every object stale (the one
    found again too) is a VaultError after one more look, no loop."""
    from pkcs11.exceptions import ObjectHandleInvalid

    from troth.vault.pkcs11 import Pkcs11Vault

    held = node.identities.signer("agent", now=NOW)
    held.sign(b"before")
    calls: list[object] = []

    def stale(self: Pkcs11Vault, private: object, key_type: object, data: bytes) -> bytes:
        calls.append(private)
        raise VaultError("PKCS#11 sign failed: ObjectHandleInvalid") from ObjectHandleInvalid()

    monkeypatch.setattr(Pkcs11Vault, "_sign_with", stale)
    with pytest.raises(VaultError, match="ObjectHandleInvalid"):
        held.sign(b"after")
    assert len(calls) == 2


@pytest.mark.parametrize("value", ["not a key", None], ids=["bad-key", "unset"])
def test_a_key_variable_name_cannot_forge_a_line_of_vault_rekey_text(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    """Review 57d (cli 3) escaped --new-key-file's name in rekey's usage error; the other name
    it quotes, --new-key-env's, is escaped too, in that error and in the ConfigError for a
    variable not set."""
    run_json("identity", "create", "alice")
    name = "K\u202eYEK\nError: the vault key was rotated"
    if value is None:
        monkeypatch.delenv(name, raising=False)
    else:
        monkeypatch.setenv(name, value)
    done = CliRunner().invoke(cli, ["vault", "rekey", "--new-key-env", name])
    assert done.exit_code in (2, 3), done.stderr
    assert "\u202e" not in done.stderr
    assert "\nError: the vault key was rotated" not in done.stderr
