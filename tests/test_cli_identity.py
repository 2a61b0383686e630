"""The CLI in-process: every identity and node command, `--json`, and the exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import run, run_json


def test_create_show_list_did() -> None:
    created = run_json("identity", "create", "alice")
    assert created["identifier"].startswith("T")
    assert len(created["identifier"]) == 65
    assert created["did"] == "did:troth:" + created["identifier"][1:]
    assert created["changes"] == 1
    assert created["key_type"] == "ed25519"
    shown = run_json("identity", "show", "alice")
    assert shown == created
    assert run_json("identity", "show", created["identifier"])["name"] == "alice"
    listed = run_json("identity", "list")
    assert [row["name"] for row in listed] == ["alice"]
    document = run_json("identity", "did", "alice")
    assert document["id"] == created["did"]
    assert document["verificationMethod"][0]["publicKeyMultibase"].startswith("z6Mk")
    assert "alice" in run("identity", "list").stdout


def test_p256_and_human_output() -> None:
    result = run("identity", "create", "p", "--key-type", "p256")
    assert "key type:" in result.stdout
    assert "p256" in result.stdout
    document = run_json("identity", "did", "p")
    assert document["verificationMethod"][0]["publicKeyMultibase"].startswith("zDna")


def test_rotate_keeps_identifier(tmp_path: Path) -> None:
    created = run_json("identity", "create", "bob")
    rotated = run_json("identity", "rotate", "bob")
    assert rotated["identifier"] == created["identifier"]
    assert rotated["changes"] == 2
    assert rotated["public_key"] != created["public_key"]


def test_export_verify_and_tamper(tmp_path: Path) -> None:
    run("identity", "create", "carol")
    run("identity", "rotate", "carol")
    out = tmp_path / "carol.troth"
    exported = run_json("identity", "export", "carol", "--out", str(out))
    assert exported["bytes"] == out.stat().st_size
    verified = run_json("identity", "verify", str(out))
    assert verified["valid"] is True
    assert verified["changes"] == 2
    said = run("identity", "verify", str(out)).stdout.splitlines()
    assert said[:2] == ["valid", f"identifier:  {verified['identifier']}"]  # not `valid: True`
    data = bytearray(out.read_bytes())
    data[-70] ^= 0x01  # inside the last signature
    bad = tmp_path / "bad.troth"
    bad.write_bytes(bytes(data))
    result = run("identity", "verify", str(bad), "--json", code=1)
    report = json.loads(result.stdout)
    assert report == {"valid": False, "reason": "bad signature", "change": 1, "detail": ""}
    assert result.stderr == ""  # --json: the JSON object only
    human = run("identity", "verify", str(bad), code=1)
    assert "change 1: bad signature" in human.stderr


def test_import_and_fork_detection(tmp_path: Path) -> None:
    run("node", "init", "other")
    run("identity", "create", "dave", "--node", "other")
    first = tmp_path / "dave1.troth"
    run("identity", "export", "dave", "--out", str(first), "--node", "other")
    run("identity", "rotate", "dave", "--node", "other")
    second = tmp_path / "dave2.troth"
    run("identity", "export", "dave", "--out", str(second), "--node", "other")
    assert run_json("identity", "import", str(second))["changes"] == 2
    assert run_json("identity", "verify", str(second), "--node", "default")["valid"] is True
    result = run("identity", "import", str(first), code=1)
    assert "older than the stored copy" in result.stderr
    result = run("identity", "verify", str(first), "--node", "default", code=1)
    assert "older than the stored copy" in result.stderr


def test_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, troth_home: Path) -> None:
    assert run_json("identity", "show", "nobody", code=2)["error"] == "NotFound"
    run("identity", "create", "BAD", code=2)
    run("identity", "create", "--key-type", "rsa", code=2)  # click usage error
    missing = tmp_path / "missing"
    run("identity", "verify", str(missing), code=4)  # I/O: the input could not be read
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\xff\x01")
    assert run_json("identity", "verify", str(garbage), code=1)["reason"] == "malformed"
    run("identity", "create", "x")
    run("identity", "create", "x", code=1)  # name taken
    (troth_home / "nodes" / "default" / "vault.key").chmod(0o644)
    run("identity", "list", code=3)  # configuration: a world-readable vault key
    (troth_home / "nodes" / "default" / "vault.key").chmod(0o600)
    run("identity", "export", "x", "--out", str(tmp_path / "no" / "dir" / "f"), code=4)


def test_create_many_with_progress() -> None:
    result = run("identity", "create", "swarm", "--count", "25", "--json")
    rows = json.loads(result.stdout)
    assert len(rows) == 25
    assert rows[3]["name"] == "swarm-3"
    lines = result.stderr.splitlines()  # progress never says "created" of what is not committed
    assert lines[-2:] == ["committing 25 identities ...", "committed 25 identities"]
    assert lines[:-2]
    assert all("(not yet committed)" in line for line in lines[:-2])


def test_node_commands(troth_home: Path) -> None:
    data = run_json("node", "init", "edge", "--durability", "full")
    assert data == {
        "name": "edge",
        "vault": "software",
        "durability": "full",
        "home": str(troth_home),
    }
    assert {n["name"] for n in run_json("node", "list")} == {"edge"}
    run("node", "init", "edge", code=3)
    run("node", "init", "hsm", "--vault", "pkcs11", code=3)  # no token label


def test_version_and_help() -> None:
    assert "troth" in run("--version").stdout
    assert "Exit codes" in run("--help").stdout
