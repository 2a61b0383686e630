"""Review 49g, refuted: attacks on the CLI that failed, pinned. Every command of docs/cli.md
was run with hostile arguments (a harness: each file argument given every other command's
file, truncated, empty, a directory, not UTF-8; each name and identifier argument given
separators, `..`, newlines, bidi controls, 3000 characters, identifiers of the wrong kind),
with and without --json: no traceback, every --json failure one JSON object with `ok: false`
(or a verdict with `valid: false`) and a non-zero exit. The few tracebacks it found are
tests/test_review49g_cli.py; what held is here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.support.cli import run, run_json
from troth.cli.main import cli

SRC = str(Path(__file__).parents[1] / "src")


def _invoke(*args: str) -> Result:
    """`troth *args --json` in-process; a traceback (anything but SystemExit) fails the test."""
    return CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)


def _refused(result: Result) -> dict[str, object]:
    """The --json output of a command that failed: one JSON object saying so, nothing else."""
    assert result.exit_code in (1, 2, 3, 4), (result.exit_code, result.stdout)
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    assert data.get("ok") is False or data.get("valid") is False, data
    assert result.stderr == ""
    return data


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """One file of each kind the CLI writes: a history, a credential, a delegation chain, a
    VC, a trace export, a checkpoint, a revocation feed and a policy bundle."""
    run_json("identity", "create", "alice")
    run_json("identity", "create", "bob")
    run_json("authority", "create", "acme")
    ticket = run("authority", "ticket", "create", "--authority", "acme", "--attr", "a.b=c")
    run_json("enroll", ticket.stdout.strip(), "--as", "alice")
    out = {k: tmp_path / k for k in ("hist", "cred", "chain", "vc", "trace", "feed", "bundle")}
    run("identity", "export", "alice", "--out", str(out["hist"]))
    run("credential", "export", "alice", "--out", str(out["cred"]))
    run(
        "credential",
        "export",
        "alice",
        "--format",
        "vc",
        "--authority",
        "acme",
        "--out",
        str(out["vc"]),
    )
    delegate = ("credential", "delegate", "--as", "alice", "--to", "bob", "--ttl", "5m")
    run(*delegate, "--purpose", "p", "--out", str(out["chain"]))
    run("trace", "export", "--out", str(out["trace"]))
    out["checkpoint"] = tmp_path / "checkpoint"
    out["checkpoint"].write_text(run("trace", "checkpoint").stdout)
    run("revocations", "show", "--authority", "acme", "--out", str(out["feed"]))
    (tmp_path / "p.cedar").write_text('@id("a") permit(principal, action, resource);')
    (tmp_path / "tools.json").write_text('{"t": {"type": "object"}}')
    run(
        "policy",
        "bundle",
        "create",
        "--policies",
        str(tmp_path / "p.cedar"),
        "--tools",
        str(tmp_path / "tools.json"),
        "--revision",
        "1",
        "--as",
        "acme",
        "--authority",
        "acme",
        "--node",
        "acme",
        "--out",
        str(out["bundle"]),
    )
    for kind in list(out):
        data = out[kind].read_bytes()
        out[f"half {kind}"] = tmp_path / f"half-{kind}"
        out[f"half {kind}"].write_bytes(data[: len(data) // 2])
    return out


_READERS: dict[str, tuple[str, ...]] = {
    "identity verify": ("identity", "verify", "{}"),
    "identity import": ("identity", "import", "{}"),
    "credential verify": ("credential", "verify", "{}", "--trust", "acme"),
    "credential verify vc": ("credential", "verify", "{}", "--format", "vc", "--trust", "acme"),
    "credential verify --feed": (
        "credential",
        "verify",
        "{cred}",
        "--trust",
        "acme",
        "--feed",
        "{}",
    ),
    "credential show --file": ("credential", "show", "--file", "{}"),
    "credential import": ("credential", "import", "{}", "--as", "bob"),
    "enroll": ("enroll", "{}", "--as", "bob"),
    "trace verify --file": ("trace", "verify", "--file", "{}", "--require-anchor"),
    "policy push": ("policy", "push", "{}"),
    "policy test --bundle": (
        "policy",
        "test",
        "--bundle",
        "{}",
        "--chain",
        "{chain}",
        "--tool",
        "t",
    ),
    "policy test --chain": (
        "policy",
        "test",
        "--bundle",
        "{bundle}",
        "--chain",
        "{}",
        "--tool",
        "t",
    ),
    "revoke link --chain": (
        "revoke",
        "link",
        "0" * 64,
        "--chain",
        "{}",
        "--as",
        "alice",
        "--authority",
        "acme",
    ),
}
"""Each command reading a file, `{}` where the file goes (`{kind}`: a file of that kind)."""

_OWN = {
    "identity verify": "hist",
    "identity import": "hist",
    "credential verify": "cred",
    "credential verify vc": "vc",
    "credential verify --feed": "feed",
    "credential show --file": "cred",
    "credential import": "chain",
    "trace verify --file": "trace",
    "policy push": "bundle",
    "policy test --bundle": "bundle",
    "policy test --chain": "chain",
    "revoke link --chain": "chain",
}


def test_every_reader_refuses_every_other_file_as_one_json_error(files: dict[str, Path]) -> None:
    """A trace export given to `credential verify`, a bundle to `trace verify`, a chain to
    `identity verify`, half a file to each: exit 1, 2 or 4 and one JSON error object, never a
    traceback and never exit 0 (a VC is a credential too: `credential show --file` and a
    chain's `credential verify` may read what is theirs)."""
    for command, template in _READERS.items():
        for kind, path in files.items():
            if kind == _OWN.get(command) or (
                kind in ("cred", "chain", "vc")
                and command in ("credential show --file", "credential verify")
            ):
                continue
            args = [
                str(path) if word == "{}" else str(files[word[1:-1]]) if word[0] == "{" else word
                for word in template
            ]
            _refused(_invoke(*args))


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".", "a\nb", "a\u202eb", "", "x" * 65])
@pytest.mark.parametrize(
    "command",
    [
        ("identity", "create", "{}"),
        ("node", "create", "{}"),
        ("authority", "create", "{}"),
        ("identity", "list", "--node", "{}"),
        ("relay", "create", "{}", "--route", "/tcp/127.0.0.1:1"),
    ],
)
def test_a_name_cannot_leave_the_home_or_break_a_line(
    name: str, command: tuple[str, ...], troth_home: Path
) -> None:
    """A node, identity or authority name with a separator, `..`, a newline or a bidi control:
    a usage error (exit 2) naming what a name may hold, nothing made outside $TROTH_HOME; the
    name in the message is quoted with its newline escaped (one line on stderr)."""
    outside = sorted(troth_home.parent.iterdir())
    args = [name if word == "{}" else word for word in command]
    refused = _refused(_invoke(*args))
    assert refused["exit_code"] == 2, refused
    assert sorted(troth_home.parent.iterdir()) in (outside, sorted([*outside, troth_home]))
    plain = CliRunner().invoke(cli, args)
    assert plain.exit_code == 2
    assert plain.stderr.count("\n") == 1 or plain.stderr.startswith("Usage:"), plain.stderr


_DAMAGE: dict[str, bytes | None] = {
    "empty": b"",
    "not UTF-8": b"\xff\xfe",
    "a list": b"[]",
    "garbage": b"\x8f" * 5000,
    "short": b"x" * 10,
    "missing": None,
}


@pytest.mark.parametrize(
    ("target", "how", "code"),
    [
        ("node.json", "empty", 3),
        ("node.json", "not UTF-8", 3),
        ("node.json", "a list", 3),
        ("node.db", "garbage", 4),
        ("vault.key", "short", 3),
        ("vault.key", "missing", 3),
        ("node.db", "missing", 3),
        ("trace.db", "garbage", 4),
    ],
)
def test_a_damaged_node_is_a_typed_error(
    target: str, how: str, code: int, troth_home: Path
) -> None:
    """A node whose files were damaged (emptied, garbled, cut short, deleted): exit 3
    (configuration) or 4 (I/O) and one JSON error naming the file, never a traceback."""
    run_json("identity", "create", "alice")
    run_json("trace", "show")
    path = troth_home / "nodes" / "default" / target
    damage = _DAMAGE[how]
    if damage is None:
        path.unlink()
    else:
        path.write_bytes(damage)
    commands = [("trace", "show")] if target == "trace.db" else [("identity", "list")]
    for args in [*commands, ("trace", "verify")]:
        refused = _refused(_invoke(*args))
        assert refused["exit_code"] == code, refused
        assert target in str(refused["message"])


def test_processes_racing_to_create_one_name_make_one(troth_home: Path) -> None:
    """Four `troth identity create same` at once on a home with no node yet: one makes it
    (exit 0), each other one gets IdentityExists (exit 1) as one JSON object; one identity."""
    command = [sys.executable, "-m", "troth.cli.main", "identity", "create", "same", "--json"]
    env = {"PYTHONPATH": SRC, "TROTH_HOME": str(troth_home), "PATH": "/usr/bin:/bin"}
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        for _ in range(4)
    ]
    results = [(p.wait(120), p.communicate()) for p in processes]
    assert sorted(code for code, _ in results) == [0, 1, 1, 1], results
    for code, (out, err) in results:
        assert err == b""
        assert ("identifier" if code == 0 else "error") in json.loads(out)
    assert len(run_json("identity", "list")) == 1
