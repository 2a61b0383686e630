"""Review 63e, cli: attacks on the command line that did not work (each test fails if the
defence it names breaks).

- JSON nested past the decoder's depth in --context or --args (argv holds 50,000 brackets):
  a usage error (exit 2), never a RecursionError reported as an internal error (exit 70).
- A relative --pkcs11-module (a library looked up afresh in every command's working directory:
  code planted there would run with the PIN): refused when the node is made (exit 3).
- `--to NAME` where NAME is an identity on two other nodes of the machine: refused as
  ambiguous (exit 2), never a delegation to either one.
- A malformed TROTH_VAULT_KEY or an altered ticket on the command line: the error names the
  problem, never the secret's text.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.cli import run, run_json
from troth.cli.main import cli

DEEP = "[" * 50_000 + "]" * 50_000


def test_deep_json_context_is_a_usage_error_not_an_internal_one(troth_home: Path) -> None:
    chain = troth_home.parent / "none.chain"
    chain.write_bytes(b"\x80")
    error = run_json("credential", "verify", str(chain), "--trust", "T" + "0" * 64,
                     "--context", DEEP, code=2)  # fmt: skip
    assert "nested deeper" in error["message"], error


def test_deep_json_args_is_a_usage_error_not_an_internal_one(troth_home: Path) -> None:
    bundle = troth_home.parent / "x.bundle"
    bundle.write_bytes(b"\x80")
    error = run_json("policy", "test", "--bundle", str(bundle), "--chain", str(bundle),
                     "--authority", "T" + "0" * 64, "--tool", "t", "--args", DEEP,
                     code=2)  # fmt: skip
    assert "nested deeper" in error["message"], error


def test_a_relative_pkcs11_module_is_refused(troth_home: Path) -> None:
    error = run_json("node", "create", "hsm", "--vault", "pkcs11", "--pkcs11-module",
                     "lib/libsofthsm2.so", "--token-label", "t", code=3)  # fmt: skip
    assert "absolute path" in error["message"], error
    assert not (troth_home / "nodes" / "hsm" / "node.json").exists()


def test_a_name_on_two_other_nodes_is_never_delegated_to(troth_home: Path) -> None:
    run("authority", "create", "acme")
    run("node", "create", "customer")
    ticket = run("authority", "ticket", "create", "--authority", "acme", "--attr", "a.b=1")
    enrolled = CliRunner().invoke(
        cli, ["enroll", "-", "--as", "customer", "--node", "customer"], input=ticket.stdout
    )
    assert enrolled.exit_code == 0, enrolled.output
    for node in ("n1", "n2"):
        run("node", "create", node)
        run("identity", "create", "helper", "--node", node)
    out = troth_home.parent / "helper.chain"
    error = run_json("credential", "delegate", "--as", "customer", "--to", "helper",
                     "--node", "customer", "--attr", "a.b=1", "--ttl", "5m", "--purpose", "p",
                     "--out", str(out), code=2)  # fmt: skip
    assert "2 different identities" in error["message"], error
    assert not out.exists()


def test_a_malformed_vault_key_is_not_echoed(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TROTH_VAULT_KEY", "hunter2-SECRET-hunter2")
    error = run_json("node", "create", "kek", code=3)
    assert "TROTH_VAULT_KEY" in error["message"]
    assert "hunter2" not in str(error)


def test_an_altered_ticket_on_the_command_line_is_not_echoed(troth_home: Path) -> None:
    run("authority", "create", "acme")
    ticket = run("authority", "ticket", "create", "--authority", "acme", "--attr", "a.b=1")
    text = ticket.stdout.strip()
    altered = text[:-2]  # cut short
    error = run_json("authority", "ticket", "void", altered, "--authority", "acme", code=1)
    assert error["error"] == "DecodeError", error
    tail = altered[len("troth-ticket:") :]
    assert not any(tail[i : i + 12] in str(error) for i in range(0, len(tail) - 12, 6))
