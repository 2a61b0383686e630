"""Nodes: state under $TROTH_HOME with private modes, the vault key from env or file."""

from __future__ import annotations

import base64
import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import NOW
from troth.errors import ConfigError, NotFound
from troth.node import init_node, list_nodes, open_node
from troth.node import troth_home as resolve_home
from troth.node.authorities import ticket_address
from troth.node.config import DEFAULT_SERVICES
from troth.node.daemon import record_listen
from troth.node.node import parse_kek


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_home_from_environment(troth_home: Path) -> None:
    assert resolve_home() == troth_home == Path(os.environ["TROTH_HOME"])


def test_init_creates_private_state(troth_home: Path) -> None:
    config = init_node("alpha")
    assert config.vault == "software"
    node_dir = troth_home / "nodes" / "alpha"
    for directory in (troth_home, troth_home / "nodes", node_dir):
        assert mode(directory) == 0o700, directory
    for name in ("node.json", "node.db", "vault.key"):
        assert mode(node_dir / name) == 0o600, name
    assert [c.name for c in list_nodes()] == ["alpha"]
    with pytest.raises(ConfigError, match="already exists"):
        init_node("alpha")


def test_names_are_checked() -> None:
    for bad in ("", "Alpha", "../x", "a/b", "-x", "x" * 65):
        with pytest.raises(ValueError, match="invalid node name"):
            init_node(bad)


def test_unknown_node_and_default_node(troth_home: Path) -> None:
    with pytest.raises(NotFound, match="no node 'nope'"):
        open_node("nope")
    with open_node("default", create_default=True) as node:
        assert node.name == "default"
    assert [c.name for c in list_nodes()] == ["default"]


def test_vault_key_from_environment(monkeypatch: pytest.MonkeyPatch, troth_home: Path) -> None:
    monkeypatch.setenv("TROTH_VAULT_KEY", "ab" * 32)
    init_node("env")
    assert not (troth_home / "nodes" / "env" / "vault.key").exists()
    with open_node("env") as node:
        node.identities.create(now=NOW, name="a")
    monkeypatch.setenv("TROTH_VAULT_KEY", base64.b64encode(bytes.fromhex("ab" * 32)).decode())
    with open_node("env") as node:  # the same key in base64
        node.identities.get("a", now=NOW)
    monkeypatch.setenv("TROTH_VAULT_KEY", "cd" * 32)
    with pytest.raises(ConfigError, match="does not open"):
        open_node("env")
    monkeypatch.delenv("TROTH_VAULT_KEY")
    with pytest.raises(ConfigError, match="TROTH_VAULT_KEY"):
        open_node("env")


def test_parse_kek() -> None:
    assert parse_kek("00" * 32) == bytes(32)
    for bad in ("00" * 31, "zz" * 32, "c2hvcnQ="):
        with pytest.raises(ConfigError, match="64 hex digits or base64 of 32 bytes"):
            parse_kek(bad)


def test_loose_key_file_is_refused(troth_home: Path) -> None:
    init_node("loose")
    os.chmod(troth_home / "nodes" / "loose" / "vault.key", 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        open_node("loose")


def test_corrupt_config(troth_home: Path) -> None:
    init_node("bad")
    (troth_home / "nodes" / "bad" / "node.json").write_text("{not json")
    with pytest.raises(ConfigError, match="is not a valid node configuration"):
        open_node("bad")


def test_pkcs11_node_needs_a_token_label() -> None:
    with pytest.raises(ConfigError, match="token-label"):
        init_node("hsm", vault="pkcs11")


def test_platform_default_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TROTH_HOME")
    assert "troth" in str(resolve_home())


def test_tickets_carry_the_configured_address(troth_home: Path) -> None:
    """Not whether a daemon happens to run: node:NAME until a fixed listening address is
    recorded, then /tcp/HOST:PORT; `advertise` wins over both."""
    init_node("hub")
    assert ticket_address(troth_home, "hub") == "node:hub"
    record_listen(troth_home, "hub", "127.0.0.1:0")  # any port: not an address to advertise
    assert ticket_address(troth_home, "hub") == "node:hub"
    config = record_listen(troth_home, "hub", "127.0.0.1:4100")
    assert config.listen == "127.0.0.1:4100"
    assert ticket_address(troth_home, "hub") == "/tcp/127.0.0.1:4100"
    assert replace(config, advertise="/tcp/hub.example:4100").address() == "/tcp/hub.example:4100"
    with open_node("hub") as node:  # the recorded configuration opens as it was written
        assert node.config.listen == "127.0.0.1:4100"
    with pytest.raises(NotFound, match="no node 'nope'"):
        ticket_address(troth_home, "nope")


def test_the_service_list_is_checked(troth_home: Path) -> None:
    config = init_node("svc")
    assert config.services == DEFAULT_SERVICES
    path = troth_home / "nodes" / "svc" / "node.json"
    for bad in (["echo", "echo"], ["telnet"], "echo", [1]):
        data = json.loads(path.read_text())
        data["services"] = bad
        path.write_text(json.dumps(data))
        with pytest.raises(ConfigError, match=r"services|wrong fields or types"):
            open_node("svc")
    data["services"] = ["echo"]
    path.write_text(json.dumps(data))
    with open_node("svc") as node:
        assert node.config.services == ("echo",)
