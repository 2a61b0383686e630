"""Review 65h, CLI: attacks on the command line that did not work, each kept as a test that
fails if the defence it names breaks.

- a secret's configuration or value that is refused is never echoed in the error (text or
  --json): the password a configuration holds stays off the terminal and the logs;
- JSON nested 200,000 deep in --args-file, --context-file and --tools is refused with a usage
  or invalid exit code, never an internal error (RecursionError);
- a symlink loop, a dangling symlink and /dev/zero given as a chain to verify are an I/O
  failure (exit 4), a directory a usage error (exit 2), never "invalid" (exit 1) nor a
  traceback;
- an authority cannot revoke its own identity from the command line (it would sign its feed
  dead);
- a vault rekey with the key the node already uses is refused (after a stolen backup the old
  key would still open every key);
- a usage error with --json is one JSON object on stdout and nothing on stderr.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.cli import run, run_json
from troth.cli.main import cli

_MARKER = "hunter2-SECRET-65h"


def _world(tmp_path: Path) -> dict[str, Path]:
    """acme, a member `customer` delegating to `support`, and a bundle of acme's."""
    run_json("authority", "create", "acme")
    for name in ("customer", "support"):
        run_json("identity", "create", name)
    ticket = run("authority", "ticket", "create", "--authority", "acme").stdout.strip()
    run("enroll", ticket, "--as", "customer")
    chain = tmp_path / "support.chain"
    run("credential", "delegate", "--as", "customer", "--to", "support", "--ttl", "5m",
        "--purpose", "p", "--out", str(chain))  # fmt: skip
    policies, tools = tmp_path / "p.cedar", tmp_path / "t.json"
    policies.write_text('@id("a") permit(principal, action, resource);\n')
    tools.write_text('{"lookup": {"type": "object"}}')
    bundle = tmp_path / "b.bundle"
    run("policy", "bundle", "create", "--policies", str(policies), "--tools", str(tools),
        "--revision", "1", "--as", "acme", "--authority", "acme", "--node", "acme",
        "--out", str(bundle))  # fmt: skip
    return {"chain": chain, "bundle": bundle, "policies": policies}


def test_a_refused_secret_configuration_or_value_is_never_echoed(tmp_path: Path) -> None:
    run_json("node", "create", "hub")
    value = tmp_path / "value"
    value.write_text(_MARKER)
    for config in (
        {"password": _MARKER, "scopes": 5},  # a setting's value
        {"audience": 5, "header": _MARKER, "dsn": _MARKER},  # (a setting's name is said)
    ):
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config))
        for engine in ("http-inject", "postgres", "token"):
            args: tuple[str, ...] = ("secret", "put", "s", "--engine", engine)
            args += ("--config", str(path))
            args += (
                ("--node", "hub")
                if engine == "token"
                else ("--value-file", str(value), "--node", "hub")
            )
            text = run(*args, code=1)
            assert _MARKER not in text.stdout + text.stderr
            data = run(*args, "--json", code=1)
            assert _MARKER not in data.stdout + data.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"password": "' + _MARKER + '", oops}')
    result = run(
        "secret", "put", "s", "--engine", "token", "--config", str(broken), "--node", "hub", code=1
    )
    assert _MARKER not in result.stdout + result.stderr


def test_deeply_nested_json_inputs_are_refused_without_an_internal_error(tmp_path: Path) -> None:
    world = _world(tmp_path)
    deep = tmp_path / "deep.json"
    deep.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    deep_object = tmp_path / "deep_object.json"
    deep_object.write_bytes(b'{"a":' * 100_000 + b"1" + b"}" * 100_000)
    for path in (deep, deep_object):
        test = ("policy", "test", "--bundle", str(world["bundle"]), "--chain", str(world["chain"]))
        refused = run_json(
            *test, "--authority", "acme", "--tool", "lookup", "--args-file", str(path), code=2
        )
        assert "nested deeper" in refused["message"]
        verify = (
            "credential",
            "verify",
            str(world["chain"]),
            "--trust",
            "acme",
            "--authority",
            "acme",
        )
        run_json(*verify, "--context-file", str(path), code=2)
        create: tuple[str, ...] = ("policy", "bundle", "create")
        create += ("--policies", str(world["policies"]))
        create += ("--tools", str(path), "--revision", "2", "--as", "acme", "--authority", "acme")
        refused = run_json(*create, "--node", "acme", "--out", str(tmp_path / "o.bundle"), code=1)
        assert "nested deeper" in refused["message"]


def test_unreadable_chains_are_io_failures(tmp_path: Path) -> None:
    run_json("authority", "create", "acme")
    loop, dangling, directory = tmp_path / "loop1", tmp_path / "dangling", tmp_path / "dir"
    os.symlink("loop2", loop)
    os.symlink("loop1", tmp_path / "loop2")
    os.symlink("nowhere", dangling)
    directory.mkdir()
    names = [loop, dangling]
    if Path("/dev/zero").exists():
        names.append(Path("/dev/zero"))
    for name in names:
        failed = run_json("credential", "verify", str(name), "--trust", "acme", code=4)
        assert failed["error"] == "OSError"
    failed = run_json("credential", "verify", str(directory), "--trust", "acme", code=2)
    assert "is a directory" in failed["message"]


def test_an_authority_cannot_revoke_itself() -> None:
    run_json("authority", "create", "acme")
    refused = run_json("revoke", "identity", "acme", "--authority", "acme", "--reason", "x", code=1)
    assert refused["detail"] == "an authority cannot revoke itself"
    assert run_json("revocations", "show", "--authority", "acme")["entries"] == []


def test_a_rekey_to_the_current_vault_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    key = os.urandom(32).hex()
    monkeypatch.setenv("TROTH_VAULT_KEY", key)
    monkeypatch.setenv("NEW_KEY_65H", key)
    run_json("node", "create", "envnode")
    refused = run_json(
        "vault", "rekey", "--new-key-env", "NEW_KEY_65H", "--node", "envnode", code=3
    )
    assert "the new vault key is the current one" in refused["message"]


def test_a_usage_error_with_json_is_one_object_on_stdout() -> None:
    for args in (
        ["credential", "verify", "x.chain", "--json"],  # --trust missing
        ["policy", "test", "--json", "--bundle", "b", "--chain", "c", "--tool", "t", "--args", "{"],
        ["lease", "revoke", "--holder", "a", "--as", "b", "--json"],
    ):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2
        assert json.loads(result.stdout)["exit_code"] == 2
        assert result.stderr == ""
