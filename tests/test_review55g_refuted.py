"""Review 55g, CLI: attacks on the command line's file inputs and outputs that did not work,
each run against the real CLI in a process of its own; each test fails if its defence breaks."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from tests.support.cli import run, troth_process
from troth import limits

SECRET = "hunter2-review55g"  # in the environment of every command run here


@pytest.fixture(autouse=True)
def secret_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TROTH_REVIEW55G_SECRET", SECRET)


INPUTS = [
    ("identity", "verify", "{f}"),
    ("identity", "import", "{f}"),
    ("credential", "show", "--file", "{f}"),
    ("credential", "import", "{f}", "--as", "alice"),
    ("credential", "verify", "{f}", "--trust", "T" + "0" * 64),
    ("enroll", "{f}", "--as", "alice"),  # TICKET: the ticket, -, or a file holding it
    ("policy", "push", "{f}"),
    (
        *("policy", "bundle", "create", "--policies", "{f}", "--tools", "{f}", "--revision", "1"),
        *("--as", "alice", "--authority", "T" + "0" * 64, "--out", "{out}"),
    ),
    ("secret", "put", "s", "--engine", "token", "--config", "{f}"),
    ("revoke", "link", "00" * 32, "--chain", "{f}", "--as", "alice", "--authority", "acme"),
]


def _args(command: tuple[str, ...], path: Path, tmp_path: Path) -> list[str]:
    return [a.format(f=path, out=tmp_path / "out") for a in command]


@pytest.mark.parametrize("command", INPUTS, ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize("as_json", [False, True])
def test_an_input_linked_to_the_environment_is_never_echoed(
    tmp_path: Path, command: tuple[str, ...], as_json: bool
) -> None:
    """An input file that is a symlink to /proc/self/environ (planted where a script reads
    its inputs): troth reads its own environment, refuses it as the input it is not, and no
    error quotes it."""
    run("identity", "create", "alice")
    link = tmp_path / "input"
    link.symlink_to("/proc/self/environ")
    args = _args(command, link, tmp_path) + (["--json"] if as_json else [])
    result = troth_process(*args, check=False)
    assert result.returncode in (1, 2, 4), (result.returncode, result.stdout, result.stderr)
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "command", [c for c in INPUTS if c[0] != "enroll"], ids=lambda c: " ".join(c[:2])
)  # enroll: test_review55g_cli.py, cli 6
def test_a_directory_as_an_input_is_a_usage_error(tmp_path: Path, command: tuple[str, ...]) -> None:
    result = troth_process(*_args(command, tmp_path, tmp_path), "--json", code=2)
    assert "is a directory" in json.loads(result.stdout)["message"]


def test_a_sparse_2_gib_input_is_refused_after_its_limit(tmp_path: Path) -> None:
    """A 2 GiB sparse file: refused after reading the limit + 1 bytes, an I/O error (the file
    was not read whole: no verdict on it)."""
    sparse = tmp_path / "sparse"
    with sparse.open("wb") as file:
        file.truncate(2 << 30)
    result = troth_process("identity", "verify", str(sparse), "--json", code=4)
    message = json.loads(result.stdout)["message"]
    assert f"larger than {limits.MAX_IDENTITY_HISTORY_BYTES} bytes" in message


def test_a_fifo_fed_without_end_is_read_only_to_its_limit(tmp_path: Path) -> None:
    """A FIFO whose writer never stops: the command reads the limit + 1 bytes and exits (4),
    and the writer's next writes fail (EPIPE) long before 64 MiB."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    written = [0]

    def feed() -> None:
        chunk = b"\0" * 65536
        with fifo.open("wb") as file:
            try:
                while written[0] < 64 << 20:
                    file.write(chunk)
                    written[0] += len(chunk)
            except BrokenPipeError:  # the command stopped reading and closed its end
                return

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        result = troth_process("credential", "show", "--file", str(fifo), "--json", code=4)
    finally:
        writer.join(timeout=60)
    assert "larger than" in json.loads(result.stdout)["message"]
    assert written[0] < 64 << 20


def test_a_secret_value_is_never_echoed(tmp_path: Path) -> None:
    """`secret put` refusing the configuration, and refusing the value itself (an http-inject
    value is a printable header value: this one ends in a control character): the value read
    from --value-file appears in no output."""
    run("identity", "create", "alice")
    value = tmp_path / "value"
    value.write_text(SECRET + "\x01")
    config = tmp_path / "config.json"
    for settings in ({"scopes": ["read"], "ttl": "x"}, {"scopes": ["read"], "upstream": 1}):
        config.write_text(json.dumps(settings))
        for as_json in ([], ["--json"]):
            args = ("secret", "put", "s", "--engine", "http-inject", "--config", str(config))
            refused = troth_process(*args, "--value-file", str(value), *as_json, check=False)
            assert refused.returncode in (1, 2, 3), (refused.stdout, refused.stderr)
            assert SECRET not in refused.stdout + refused.stderr


def test_a_lease_id_is_never_echoed_in_an_error() -> None:
    """A lease id is the holder's secret: a renewal that fails (no broker there) does not
    quote it."""
    run("identity", "create", "alice")
    lease = "lease_" + "A" * 43
    for as_json in ([], ["--json"]):
        args = ("lease", "renew", lease, "--as", "alice", "--broker", "/tcp/127.0.0.1:1")
        result = troth_process(*args, *as_json, check=False)
        assert result.returncode != 0
        assert lease not in result.stdout + result.stderr
        assert "A" * 43 not in result.stdout + result.stderr
