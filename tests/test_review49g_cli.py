"""Review 49g, CLI: a security engineer's sweep of every command in docs/cli.md with bad input
(missing, directory, empty, truncated, wrong-format and non-UTF-8 files; malformed and
wrong-kind identifiers; names with separators, `..` and newlines; `--json` on every failure
path), looking for tracebacks, invalid JSON and untyped errors.

1. `troth mcp gate --upstream COMMAND` whose COMMAND does not exist, or is not executable (a
   typo, a script without its x bit), died in a traceback of the MCP SDK's exception group
   (FileNotFoundError / PermissionError from spawning it): exit 1, read as a verdict, and
   nothing on stdout with --json. Review 30c typed the SDK's own error (an upstream that exits
   at once) but not a spawn that fails; the node (`troth mcp serve`) answered the bare
   `[Errno 2] No such file or directory: 'nope'`, naming neither the server nor the upstream.
2. A stdout that cannot be written. Failing (a full disk; /dev/full): `--json` wrote the
   result, got ENOSPC, then wrote the error object to the same stdout and died in a traceback,
   exit 1. Closed (`troth ... >&-`): Python has no sys.stdout and click.echo writes nothing,
   silently, so `troth authority ticket create` made a ticket and lost it with exit 0, and
   `troth trace export` died in an AttributeError traceback. A closed stdout is now an I/O
   error (exit 4) before the command acts; a failing one is exit 4 naming stdout; either way
   with --json the error goes to stderr, where it can be written.
3. Ctrl-C while `troth node start` waited for the node it spawned: exit 130 `interrupted`, and
   the node (its own session, out of the terminal's Ctrl-C) came up and ran on. The start
   stops what it spawned before it reports the interrupt.
4. `troth node create NAME --vault pkcs11` whose vault did not open (module not loadable, PIN
   variable unset) failed (exit 3) and left NAME configured: listed by `troth node list`, and
   its re-creation with the right options refused as `already exists`. The failed create
   removes what it made.
5. A node's status.json naming a pid past what pid_t holds (a damaged file; the pid was
   checked to be a positive int, never bounded) failed os.kill with an OverflowError in every
   command asking whether the node runs (`node status`, `node list`, `node stop`, `node
   start`): tracebacks until the file was deleted by hand. Such a pid is no process.
6. A node.json whose `listen` is not host:port: `troth node start` spawned the node, which
   died in a RoutingError traceback, and quoted that traceback's last lines as its error. The
   configuration is checked when read (as its `traces` is): a ConfigError naming the field.
7. `--out` replaced whatever file it named, troth's own included: `--out
   $TROTH_HOME/nodes/default/vault.key` destroyed the node's key-encryption key, `--out
   node.db` in a node directory its database, exit 0. An output inside $TROTH_HOME/nodes is
   refused (the home itself holds nothing else of troth's: the README's story writes there).
8. An authority whose node cannot be read (node.json or database damaged) was reported as
   missing: `authority list` said `no authority on this machine`, `--authority acme` `no
   authority 'acme' ... create one with: troth authority create NAME` (exit 2). Now exit 3
   saying the node cannot be read and why; `authority list` says so on stderr.
9. One node whose node.json was damaged failed `troth node list` as a whole (exit 3), hiding
   every node. The others are listed, the damaged one with why (`error` with --json).
10. `troth node start` of a node whose node.db is damaged: the node process died in a
   StorageError traceback and the command quoted its last lines as the error. The node's
   entry point says why in one line (exit 4), which the command reports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from click.testing import CliRunner

from tests.support.cli import run
from troth.cli.common import home
from troth.cli.main import cli
from troth.integrations.mcp.local import serve_local_gate
from troth.node import DEFAULT_NODE, daemon, init_node
from troth.node.home import write_private_file
from troth.node.node import node_dir

SRC = str(Path(__file__).parents[1] / "src")


def _troth(*args: str) -> subprocess.CompletedProcess[str]:
    """`troth *args` in a process of its own (stdin empty): the stdio commands need real
    descriptors, which CliRunner does not give."""
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run(
        [sys.executable, "-m", "troth.cli.main", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=90,
        env=env,
    )


@pytest.mark.parametrize("upstream", ["no-such-upstream-49g", "/etc/hostname"])
def test_an_upstream_that_cannot_start_is_a_typed_error(upstream: str) -> None:
    """Cli 1, the library: the gate raises an OSError naming the upstream and why it did not
    start (not found; not executable), not the SDK's exception group."""
    if not Path("/etc/hostname").exists():
        pytest.skip("needs /etc/hostname")
    run("identity", "create", "someone")
    with pytest.raises(OSError, match=r"the upstream MCP server .* could not start: "):
        anyio.run(serve_local_gate, home(), DEFAULT_NODE, "someone", [upstream])


def test_mcp_gate_with_a_missing_upstream_is_one_json_error() -> None:
    """Cli 1, the command: exit 4 (I/O) and one JSON error object naming the upstream, nothing
    on stderr; without --json one line on stderr, no traceback."""
    run("identity", "create", "someone")
    gate = ("mcp", "gate", "--as", "someone", "--upstream", "no-such-upstream-49g")
    result = _troth(*gate, "--json")
    assert result.returncode == 4, (result.stdout, result.stderr)
    error = json.loads(result.stdout)
    assert error["ok"] is False
    assert error["exit_code"] == 4
    assert "no-such-upstream-49g could not start" in error["message"]
    assert result.stderr == ""
    result = _troth(*gate)
    assert result.returncode == 4
    assert result.stderr.startswith("troth: the upstream MCP server no-such-upstream-49g")
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


def _troth_out(stdout: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`troth *args` with its stdout `closed` (`>&-`) or the file `stdout` (/dev/full)."""
    env = {**os.environ, "PYTHONPATH": SRC}
    redirect = ">&-" if stdout == "closed" else f"> {stdout}"
    return subprocess.run(
        ["sh", "-c", f'"$@" {redirect}', "sh", sys.executable, "-m", "troth.cli.main", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=90,
        env=env,
    )


_FULL = pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")


@_FULL
@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize("ref", ["someone", "nobody"])
def test_a_full_stdout_is_one_line_on_stderr(ref: str, as_json: bool) -> None:
    """Cli 2, a failing stdout (a full disk; /dev/full): `--json` wrote the result, failed
    (ENOSPC), then wrote the error object to the same stdout and died in a traceback, exit 1
    (read as a verdict). Now: the result's write failure is an I/O error (exit 4), a failure's
    own error keeps its code (2: no identity `nobody`), and either is one line on stderr."""
    run("identity", "create", "someone")
    result = _troth_out("/dev/full", "identity", "show", ref, *(["--json"] if as_json else []))
    assert result.returncode == (4 if ref == "someone" else 2), result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("troth: ")
    assert result.stderr.count("\n") == 1
    if ref == "someone":
        assert "cannot write the result to stdout: No space left on device" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("authority", "ticket", "create", "--authority", "acme", "--attr", "a.b=c"),
        ("trace", "export"),
        ("identity", "list", "--json"),
        ("identity", "list", "--nope", "--json"),
    ],
)
def test_a_closed_stdout_is_an_io_error_before_the_command_acts(args: tuple[str, ...]) -> None:
    """Cli 2, stdout closed (`troth ... >&-`): Python has no sys.stdout and click.echo writes
    nothing, silently: `authority ticket create` made a ticket (a use of the authority's) and
    lost it with exit 0; `trace export` died in an AttributeError traceback, exit 1. Now exit
    4 before the command acts (no ticket made), saying so on stderr; a usage error with --json
    (its error object printed nowhere) keeps its code (2), on stderr."""
    run("authority", "create", "acme")
    result = _troth_out("closed", *args)
    assert "Traceback" not in result.stderr
    if "--nope" in args:  # click's usage text, on stderr as without --json
        assert result.returncode == 2
        assert "No such option '--nope'" in result.stderr
        return
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.returncode == 4, result.stderr
    assert "stdout is closed" in result.stderr
    members = run("authority", "members", "list", "--authority", "acme", "--json")
    assert "a.b" not in members.stdout


def test_an_interrupted_node_start_leaves_no_node_running(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cli 3: Ctrl-C while `troth node start` waits for the node it spawned to come up: the
    command said `interrupted` (exit 130), and the node (its own session: the terminal's
    Ctrl-C never reaches it) came up and ran on, where a script reads 130 as "not started"
    and its retry is refused as already running. The start stops what it spawned now."""
    monkeypatch.setenv("PYTHONPATH", SRC)
    init_node("n", home=troth_home)
    spawned: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        spawned.append(real_popen(*args, **kwargs))
        return spawned[-1]

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(subprocess, "Popen", popen)
    clock = SimpleNamespace(monotonic=time.monotonic, sleep=interrupted)  # the start's wait
    monkeypatch.setattr(daemon, "time", clock)
    try:
        result = CliRunner().invoke(cli, ["node", "start", "n", "--json"])
        assert result.exit_code == 130, (result.stdout, result.stderr)
        assert json.loads(result.stdout)["error"] == "KeyboardInterrupt"
        assert len(spawned) == 1
        assert spawned[0].poll() is not None, "the spawned node runs on"
        assert not daemon.node_status(troth_home, "n")["running"]
    finally:
        for process in spawned:
            if process.poll() is None:
                process.kill()
                process.wait(30)


@pytest.mark.parametrize(
    "options",
    [
        ("--pkcs11-module", "/nonexistent/libpkcs11-49g.so", "--pin-env", "HOME"),
        ("--pin-env", "TROTH_49G_UNSET_PIN"),
    ],
)
def test_a_node_create_that_fails_leaves_no_node(
    troth_home: Path, options: tuple[str, ...]
) -> None:
    """Cli 4: `troth node create NAME --vault pkcs11` whose vault does not open (its module
    cannot load, its PIN variable is unset) said so (exit 3) and left node NAME configured: a
    node.json, a database and a vault.key, listed by `troth node list` as a pkcs11 node, and
    the retry with the right options refused (`node 'hsm' already exists`) until the
    directory was found and deleted by hand. The failed create removes what it made; what
    the directory held before is left as it was."""
    os.environ.pop("TROTH_49G_UNSET_PIN", None)
    (troth_home / "nodes" / "hsm").mkdir(parents=True)
    (troth_home / "nodes" / "hsm" / "notes.txt").write_text("kept")
    create = ("node", "create", "hsm", "--vault", "pkcs11", "--token-label", "t", *options)
    first = CliRunner().invoke(cli, [*create, "--json"])
    assert first.exit_code == 3, first.stdout
    assert not (troth_home / "nodes" / "hsm" / "node.json").exists()
    assert sorted(p.name for p in (troth_home / "nodes" / "hsm").iterdir()) == ["notes.txt"]
    listed = CliRunner().invoke(cli, ["node", "list", "--json"])
    assert "hsm" not in listed.stdout
    again = CliRunner().invoke(cli, [*create, "--json"])
    assert json.loads(again.stdout)["message"] == json.loads(first.stdout)["message"]


def test_a_node_create_that_fails_removes_the_directory_it_made(troth_home: Path) -> None:
    """Cli 4: with no directory before, none after."""
    create = ("node", "create", "hsm", "--vault", "pkcs11", "--token-label", "t")
    result = CliRunner().invoke(cli, [*create, "--pin-env", "TROTH_49G_UNSET_PIN"])
    assert result.exit_code == 3
    assert not (troth_home / "nodes" / "hsm").exists()


@pytest.mark.parametrize("pid", [2**31, 2**40, 2**53 - 1])
def test_a_status_file_naming_an_impossible_pid_is_not_running(troth_home: Path, pid: int) -> None:
    """Cli 5: a node's status.json whose pid is past what a pid can be (a damaged file: it
    is checked to be a positive int, never bounded) failed os.kill with an OverflowError in
    every command asking whether the node runs: `node status`, `node list`, `node stop`,
    `channel list` and `node start` itself died in a traceback, exit 1, until the file was
    found and deleted by hand. Such a pid is no process: the node is not running."""
    init_node("n", home=troth_home)
    write_private_file(node_dir(troth_home, "n") / "status.json", b'{"pid": %d}' % pid)
    assert daemon.node_status(troth_home, "n")["running"] is False
    for args in (("node", "status", "n"), ("node", "list"), ("node", "stop", "n")):
        result = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
        assert result.exit_code == 0, result.stdout
        assert '"running": true' not in result.stdout


@pytest.mark.parametrize("listen", ["127.0.0.1:99999999999", "no-port", "[::1]:-1"])
def test_a_node_json_listening_nowhere_is_a_configuration_error(
    troth_home: Path, listen: str
) -> None:
    """Cli 6: a node.json whose `listen` is not host:port (hand-edited, damaged) was taken as
    it was: `troth node start` spawned the node, which died in a RoutingError traceback, and
    the command's error (exit 3) was that traceback's last lines (`return Address("tcp",
    text).host_port() | ^^^^ | File ".../address.py"`). node.json is checked when read, as
    its `traces` is: a ConfigError naming the file and the field, before anything starts."""
    init_node("n", home=troth_home)
    path = node_dir(troth_home, "n") / "node.json"
    config = json.loads(path.read_bytes())
    config["listen"] = listen
    write_private_file(path, json.dumps(config).encode())
    result = CliRunner().invoke(cli, ["node", "start", "n", "--json"])
    assert result.exit_code == 3, result.stdout
    message = json.loads(result.stdout)["message"]
    assert "node.json: listen is host:port" in message
    assert "File " not in message
    assert not daemon.node_status(troth_home, "n")["running"]


@pytest.mark.parametrize("target", ["default/vault.key", "acme/node.db", "link/node.json"])
def test_out_never_replaces_a_file_troth_keeps(
    troth_home: Path, tmp_path: Path, target: str
) -> None:
    """Cli 7: `--out` wrote over whatever file it named, troth's own included: `troth identity
    export alice --out .../nodes/default/vault.key` replaced the node's key-encryption key
    (every key sealed under it unrecoverable) and `revocations show --out node.db` in an
    authority's node directory replaced its database (the authority gone), both with exit 0.
    An output inside $TROTH_HOME/nodes, through a symlinked directory too, is refused (exit 2)
    and nothing is written; one in the home itself is written (the README's story does it)."""
    run("identity", "create", "alice")
    run("authority", "create", "acme")
    (tmp_path / "link").symlink_to(troth_home / "nodes" / "default")
    node, name = target.split("/")
    path = (tmp_path if node == "link" else troth_home / "nodes") / node / name
    before = path.read_bytes()
    exports = {
        "vault.key": ("identity", "export", "alice"),
        "node.db": ("revocations", "show", "--authority", "acme"),
        "node.json": ("trace", "export"),
    }
    result = CliRunner().invoke(cli, [*exports[name], "--out", str(path), "--json"])
    assert result.exit_code == 2, result.stdout
    assert "inside troth's home" in json.loads(result.stdout)["message"]
    if name == "node.db":  # the feed's own pages may be stored there: still the database
        assert path.read_bytes()[:16] == before[:16] == b"SQLite format 3\x00"
    else:
        assert path.read_bytes() == before
    run("identity", "show", "alice")
    run("authority", "list")


def test_out_in_the_home_itself_is_written(troth_home: Path) -> None:
    """Cli 7's refusal covers $TROTH_HOME/nodes, where troth keeps its files, not the home
    itself: the README's story (`cd "$TROTH_HOME"`) writes its chains and exports there."""
    run("identity", "create", "alice")
    path = troth_home / "alice.id"
    result = CliRunner().invoke(cli, ["identity", "export", "alice", "--out", str(path), "--json"])
    assert result.exit_code == 0, result.stdout
    assert path.read_bytes()


@pytest.mark.parametrize("damaged", ["node.json", "node.db"])
def test_an_authority_whose_node_cannot_be_read_is_not_said_to_be_missing(
    troth_home: Path, damaged: str
) -> None:
    """Cli 8: with authority acme's node damaged (its node.json or database unreadable),
    `troth authority list` said `no authority on this machine` and every `--authority acme`
    `no authority 'acme' on this machine (... create one with: troth authority create NAME)`,
    exit 2: the authority silently gone, and the advice to create another one in its place.
    Now --authority acme is a configuration error (exit 3) saying the node cannot be read and
    why, and `authority list` says so on stderr beside what it lists."""
    run("authority", "create", "acme")
    (troth_home / "nodes" / "acme" / damaged).write_bytes(b"{damaged" * 600)
    ticket = ("authority", "ticket", "create", "--authority", "acme", "--attr", "a.b=c")
    result = CliRunner().invoke(cli, [*ticket, "--json"])
    assert result.exit_code == 3, result.stdout
    message = json.loads(result.stdout)["message"]
    assert "node 'acme'" in message
    assert "cannot be read" in message
    assert damaged in message
    listed = CliRunner().invoke(cli, ["authority", "list"])
    assert listed.exit_code == 0
    assert "node 'acme'" in listed.stderr
    assert "cannot be read" in listed.stderr


def test_node_list_lists_the_nodes_beside_one_that_cannot_be_read(troth_home: Path) -> None:
    """Cli 9: one node whose node.json was damaged failed `troth node list` as a whole (exit
    3): no node of the machine could be listed, the way to find which one to repair. The
    others are listed now, the damaged one with why it cannot be read."""
    init_node("a", home=troth_home)
    init_node("b", home=troth_home)
    (node_dir(troth_home, "b") / "node.json").write_bytes(b"{damaged")
    result = CliRunner().invoke(cli, ["node", "list", "--json"])
    assert result.exit_code == 0, result.stdout
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["a"]["vault"] == "software"
    assert "node.json" in rows["b"]["error"]
    plain = CliRunner().invoke(cli, ["node", "list"])
    assert plain.exit_code == 0
    assert "cannot be read" in plain.stdout


def test_a_node_whose_database_is_damaged_starts_with_a_one_line_error(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cli 10: `troth node start` of a node whose node.db is damaged: the node process died in
    a StorageError traceback (its entry point turned only NotFound and ConfigError into a
    line), and the command's error was that traceback's last lines (`conn = self.connection()
    | ^^^^ | File ".../sqlite.py", line 298 ...`). The node says why in one line (exit 4, I/O),
    and that line is the command's error."""
    monkeypatch.setenv("PYTHONPATH", SRC)
    init_node("n", home=troth_home)
    (node_dir(troth_home, "n") / "node.db").write_bytes(b"\x8f" * 5000)
    result = CliRunner().invoke(cli, ["node", "start", "n", "--json"])
    assert result.exit_code == 3, result.stdout
    message = json.loads(result.stdout)["message"]
    assert "cannot open" in message
    assert "node.db" in message
    assert "File " not in message
    assert "Traceback" not in (node_dir(troth_home, "n") / "node.log").read_text()
