"""Review 55g, CLI: the command line as a security engineer scripts it (file inputs, `--json`
results, exit codes, errors), each attack a run of the real CLI in a process of its own.

1. `--json` results carried a lone surrogate as a `\\udcff` JSON escape: a file name or
   $TROTH_HOME whose bytes are not UTF-8 (`--out`'s `file`, `node init`'s `home`). JSON with
   such an escape is not text (RFC 8259 section 8.2: not interoperable; strict parsers, e.g.
   serde_json, refuse it), where the error objects already showed it as the text `\\udcff`
   (review 54v, errors 1). Every `--json` result is now written by one function that does
   the same, and refuses NaN and infinities (not JSON at all).
2. `troth message send`: a reply the peer's service answers with a byte string (CBOR has
   them, JSON has not) died in a TypeError traceback, exit 1 (read as a verdict), with
   `--json` nothing on stdout. The reply is checked to be JSON data: a DecodeError (exit 1,
   one JSON object with --json), saying what the peer answered.
3. `--feed -` (credential verify, policy test) opened a file named `-` in the working
   directory, where every other input reads `-` as stdin: a script piping the fresh feed in
   had the verifier read a file planted there instead, an older feed without the revocation,
   and a revoked chain verified (exit 0). `-` is refused for --feed (exit 2), as for --out,
   and so is a directory (it was an IsADirectoryError quoted raw, exit 4).
4. Warnings were dropped with `--json` (`Reporter.info` prints only without it, and the result
   did not carry them): `troth enroll FILE --json` with a ticket file others can read said
   nothing of it (review 53k, cli 1's warning: a copy may have been redeemed first). A
   warning is now in the result's `warnings` list with --json, on stderr without.
5. `troth policy test --time` took any integer and any ISO date: a time before 1970 or past
   what troth's times hold (2**64) was decided, and denied (exit 1, a verdict: "key used
   outside its validity"), where a script asked a question troth cannot answer. A time
   outside 1970 .. 9999-12-31T23:59:59Z (what the CLI shows) is a usage error (exit 2).
6. `troth enroll DIRECTORY`: an I/O error (exit 4, "cannot read ticket ...: Is a directory"),
   where a directory given as any other input file is a usage error (exit 2, click's check):
   now a usage error too.
7. `troth node start NAME --tcp-listen VALUE` with a VALUE that is not host:port (`garbage`,
   port 99999): a RoutingError, exit 1 (read as a verdict), where every route option is a
   usage error (exit 2, `route_value`). Checked as the option is read now.
8. A policy command's refusal with `--json` (`policy push`, `bundle create`, `bundle resign`,
   `test`) was an object without `message` and `exit_code`, the keys every other error object
   has (`error_object`): `jq -r .message` read null. It is an error object now, with the
   refusal's reason, detail and messages beside them.
9. A value given on the command line that the library refuses was judged (exit 1, "invalid
   or denied"), where a bad option value is a usage error (exit 2, as `--attr`'s is): a
   `--purpose` or `--reason` longer than troth carries or not valid Unicode (argv bytes that
   are not UTF-8), a `secret put NAME` that is no secret name. Each is checked as the option
   is read now.
10. A name on the command line whose bytes are not UTF-8 (`identity show`, `identity rotate`,
   `credential delegate --to`, `mcp forget`) failed with Python's codec message, `'utf-8'
   codec can't encode character '\\udcff' in position 1: surrogates not allowed` (SQLite's,
   looking it up), naming neither the option nor what was looked for. A name that is not a
   name is looked up nowhere now: `no identity ...`, and for `mcp forget` the name check
   `mcp serve` makes.
11. `stdin_once` (review 46b, cli 2) caught `-` given twice, not stdin under another name:
   `troth secret put NAME --config - --value-file /dev/stdin < config.json` read the
   configuration from stdin, then reopened the file behind /dev/stdin and stored the
   configuration itself as the secret's value (exit 0). /dev/stdin, /dev/fd/0 and
   /proc/self/fd/0 are stdin to it now.
12. A feed file (`--feed`) was verified page by page with no bound on its pages, and a page
   that adds no entry was taken again and again: the one page of an authority that revoked
   nothing, copied 5,000 times, took 9 s of signature checks (about 1.5 ms a page, memory
   flat), a 2 GiB file of copies hours, a FIFO fed copies forever. A page that adds no entry
   after another that added none is refused (troth.credentials.revocation.verify_pages,
   outside the CLI: the only place that sees what each page adds), so a file's pages are at
   most about twice the feed's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run, run_json, troth_process
from tests.test_review53k_cli import _ticket_file
from troth.node.daemon import node_status

BAD = os.fsdecode(b"\xff")  # a byte that is not UTF-8, as Python gives it: U+DCFF


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _strict_json(stdout: str) -> Any:
    """`stdout` parsed as JSON text that a strict parser takes: no NaN or infinity, and every
    string valid Unicode (no lone surrogate escape)."""

    def refuse(constant: str) -> Any:
        raise AssertionError(f"{constant} is not JSON")

    value = json.loads(stdout, parse_constant=refuse)
    for text in _strings(value):
        text.encode("utf-8")  # UnicodeEncodeError: a lone surrogate
    return value


# -- 1. lone surrogates in --json results ----------------------------------------------------


def test_a_json_result_naming_a_non_utf8_file_is_valid_unicode(tmp_path: Path) -> None:
    run("identity", "create", "alice")
    out = str(tmp_path / f"alice{BAD}.id")
    result = troth_process("identity", "export", "alice", "--out", out, "--json")
    assert _strict_json(result.stdout)["file"] == str(tmp_path / "alice\\udcff.id")
    assert Path(out).exists()


def test_a_json_result_naming_a_non_utf8_home_is_valid_unicode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / f"home{BAD}"
    monkeypatch.setenv("TROTH_HOME", str(home))
    result = troth_process("node", "init", "n1", "--json")
    assert _strict_json(result.stdout)["home"] == str(tmp_path / "home\\udcff")


# -- 2. a peer's reply that is not JSON data ---------------------------------------------------

_HOSTILE_HUB = """
from troth.node.services import echo

async def hostile(self, arguments, context):
    return b"\\x1b[2J" + arguments.encode()

echo.EchoService.echo = hostile
from troth.cli.main import cli

cli(["node", "start", "hub", "--foreground", "--tcp-listen", "127.0.0.1:0"], prog_name="troth")
"""


@pytest.fixture
def hostile_hub(troth_home: Path) -> Iterator[str]:
    """A hub whose echo service answers a byte string, and node `a`, a member: the route of
    the hub's echo service."""
    run("authority", "create", "hub")
    run("node", "create", "a")
    ticket = run_json("authority", "ticket", "create", "--authority", "hub")["ticket"]
    run("enroll", ticket, "--as", "a", "--node", "a")
    hub = subprocess.Popen(
        [sys.executable, "-c", _HOSTILE_HUB],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):  # up to 30 s for the node to listen
            status = node_status(troth_home, "hub")
            if status.get("running") and status.get("listening"):
                break
            if hub.poll() is not None:
                raise AssertionError(f"the hostile hub exited ({hub.returncode})")
            time.sleep(0.1)
        else:
            raise AssertionError("the hostile hub did not start")
        yield f"/tcp/{status['listening']}/service/echo"
    finally:
        run("node", "stop", "hub")
        try:
            hub.wait(timeout=30)
        except subprocess.TimeoutExpired:
            hub.kill()
            hub.wait()


def test_a_reply_of_bytes_is_one_json_error(hostile_hub: str) -> None:
    result = troth_process("message", "send", hostile_hub, "hi", "--node", "a", "--json", code=1)
    error = _strict_json(result.stdout)
    assert error["error"] == "DecodeError", error
    assert "byte string" in error["message"], error
    assert result.stderr == ""


def test_a_reply_of_bytes_is_one_line_on_stderr(hostile_hub: str) -> None:
    result = troth_process("message", "send", hostile_hub, "hi", "--node", "a", code=1)
    assert result.stdout == ""
    assert result.stderr.startswith("troth: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "\x1b" not in result.stderr


# -- 3. --feed - -------------------------------------------------------------------------------


@pytest.fixture
def revoked(tmp_path: Path) -> tuple[Path, Path]:
    """A chain acme -> customer -> support whose second link is revoked, in `tmp_path`: the
    chain, and the feed from before the revocation."""
    run("authority", "create", "acme")
    run("identity", "create", "customer")
    support = run_json("identity", "create", "support")["identifier"]
    ticket = run_json("authority", "ticket", "create", "--authority", "acme")["ticket"]
    run("enroll", ticket, "--as", "customer")
    chain = tmp_path / "support.chain"
    delegate = ("credential", "delegate", "--as", "customer", "--to", support, "--ttl", "10m")
    run(*delegate, "--purpose", "test", "--out", str(chain))
    old = tmp_path / "old.feed"
    run("revocations", "show", "--authority", "acme", "--out", str(old))
    link = run_json("credential", "show", "--file", str(chain))["chain"][1]["id"]
    run("revoke", "link", link, "--chain", str(chain), "--as", "customer", "--authority", "acme")
    return chain, old


@pytest.mark.parametrize("command", ["credential verify", "policy test"])
def test_feed_dash_never_reads_a_file_planted_as_dash(
    revoked: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """A script pipes the fresh feed (naming the revocation) into `--feed -`; a file named `-`
    in its working directory holds the feed from before."""
    chain, old = revoked
    fresh = tmp_path / "fresh.feed"
    run("revocations", "show", "--authority", "acme", "--out", str(fresh))
    shutil.copy(old, tmp_path / "-")
    monkeypatch.chdir(tmp_path)
    args = (
        ("credential", "verify", str(chain))
        if command == "credential verify"
        else ("policy", "test", "--bundle", str(old), "--chain", str(chain), "--tool", "t")
    )
    result = troth_process(*args, "--trust", "acme", "--feed", "-", "--json", check=False)
    assert result.returncode == 2, (result.returncode, result.stdout)
    assert "--feed" in _strict_json(result.stdout)["message"]


def test_feed_naming_a_directory_is_a_usage_error(revoked: tuple[Path, Path]) -> None:
    chain, _ = revoked
    result = troth_process(
        "credential",
        "verify",
        str(chain),
        "--trust",
        "acme",
        "--feed",
        str(chain.parent),
        "--json",
        code=2,
    )
    assert "is a directory" in _strict_json(result.stdout)["message"]


# -- 4. warnings with --json -------------------------------------------------------------------


def test_a_ticket_file_others_can_read_is_warned_of_in_the_json_result(troth_home: Path) -> None:
    path = _ticket_file(troth_home, 0o644)
    result = troth_process("enroll", str(path), "--as", "agent", "--node", "agent", "--json")
    assert result.stderr == ""
    warnings = _strict_json(result.stdout).get("warnings", [])
    assert len(warnings) == 1, warnings
    assert "others can read" in warnings[0], warnings


def test_a_private_ticket_file_gives_no_warnings(troth_home: Path) -> None:
    path = _ticket_file(troth_home, 0o600)
    result = troth_process("enroll", str(path), "--as", "agent", "--node", "agent", "--json")
    assert "warnings" not in _strict_json(result.stdout)


# -- 5. policy test --time ---------------------------------------------------------------------


@pytest.mark.parametrize("moment", ["18446744073709551616", "0001-01-01T00:00:00", "1969-12-31"])
def test_a_policy_test_time_troth_cannot_hold_is_a_usage_error(
    revoked: tuple[Path, Path], moment: str
) -> None:
    chain, feed = revoked
    result = troth_process(
        "policy",
        "test",
        "--bundle",
        str(feed),
        "--chain",
        str(chain),
        "--tool",
        "t",
        "--authority",
        "acme",
        "--time",
        moment,
        "--json",
        code=2,
    )
    assert "--time" in _strict_json(result.stdout)["message"]


# -- 6. enroll DIRECTORY -----------------------------------------------------------------------


def test_enroll_of_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    run("identity", "create", "alice")
    result = troth_process("enroll", str(tmp_path), "--as", "alice", "--json", code=2)
    assert "is a directory" in _strict_json(result.stdout)["message"]


# -- 7. node start --tcp-listen ----------------------------------------------------------------


@pytest.mark.parametrize("listen", ["garbage", "127.0.0.1:99999", ":"])
def test_a_listen_address_that_is_not_host_port_is_a_usage_error(listen: str) -> None:
    run("node", "create", "n")
    result = troth_process("node", "start", "n", "--tcp-listen", listen, "--json", code=2)
    assert "--tcp-listen" in _strict_json(result.stdout)["message"]
    assert not node_status(Path(os.environ["TROTH_HOME"]), "n")["running"]


# -- 8. policy refusals as error objects -------------------------------------------------------


def test_a_policy_refusal_is_an_error_object(tmp_path: Path) -> None:
    run("authority", "create", "acme")
    garbage = tmp_path / "garbage.bundle"
    garbage.write_bytes(b"\x80")
    result = troth_process("policy", "push", str(garbage), "--node", "acme", "--json", code=1)
    refused = _strict_json(result.stdout)
    assert refused["ok"] is False
    assert refused["error"] == "PolicyError"
    assert refused["exit_code"] == 1
    assert refused["message"]
    assert refused["reason"] == "malformed", refused


# -- 9. bad option values judged ---------------------------------------------------------------


def _bad_values(support: str) -> list[tuple[str, ...]]:
    delegate = ("credential", "delegate", "--as", "customer", "--to", support, "--ttl", "10m")
    revoke = ("revoke", "credential", "ab" * 32, "--authority", "acme")
    return [
        (*delegate, "--purpose", f"p{BAD}", "--out", "x.chain"),
        (*delegate, "--purpose", "p" * 257, "--out", "x.chain"),
        (*delegate, "--purpose", "p", "--caveat", f'context.a == "{BAD}"', "--out", "x.chain"),
        (*revoke, "--reason", f"r{BAD}"),
        (*revoke, "--reason", "r" * 257),
        ("secret", "put", "Bad Name", "--engine", "token", "--config", "x.json"),
    ]


@pytest.mark.parametrize("case", range(6))
def test_a_bad_option_value_is_a_usage_error(
    revoked: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: int
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.json").write_text('{"audience": "a", "scopes": ["r"], "ttl": 60}')
    support = run_json("identity", "show", "support")["identifier"]
    args = _bad_values(support)[case]
    result = troth_process(*args, "--json", check=False)
    assert result.returncode == 2, (args, result.stdout)
    assert _strict_json(result.stdout)["exit_code"] == 2
    assert not (tmp_path / "x.chain").exists()


# -- 10. non-UTF-8 names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("identity", "show", f"x{BAD}"), "no identity"),
        (("identity", "rotate", f"x{BAD}"), "no identity"),
        (("mcp", "forget", f"x{BAD}"), "MCP server name"),
        (
            (
                *("credential", "delegate", "--as", "alice", "--to", f"x{BAD}", "--ttl", "1m"),
                *("--purpose", "p", "--out", "x.chain"),
            ),
            "identifier",
        ),
    ],
)
def test_a_non_utf8_name_is_said_to_name_nothing(args: tuple[str, ...], said: str) -> None:
    run("identity", "create", "alice")
    result = troth_process(*args, "--json", code=2)
    message = _strict_json(result.stdout)["message"]
    assert said in message, message
    assert "codec" not in message, message


# -- 11. stdin under another name --------------------------------------------------------------

_INJECT = {
    "scopes": ["read"],
    "upstream": "https://api.example",
    "header": "X-Key",
    "rules": [{"methods": ["GET"], "path": "/x", "scope": "read"}],
}


@pytest.mark.parametrize("alias", ["/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"])
def test_stdin_named_twice_is_a_usage_error(tmp_path: Path, alias: str) -> None:
    run("node", "create", "hub")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_INJECT))
    args = ("secret", "put", "s", "--engine", "http-inject", "--config", "-", "--node", "hub")
    with config.open("rb") as stdin:  # a file: /dev/stdin reopens it from its start
        result = subprocess.run(
            [sys.executable, "-m", "troth.cli.main", *args, "--value-file", alias, "--json"],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert result.returncode == 2, result.stdout
    assert "stdin" in _strict_json(result.stdout)["message"]


# -- 12. a feed of one page repeated ----------------------------------------------------------


def test_a_feed_repeating_a_page_without_new_entries_is_refused(tmp_path: Path) -> None:
    """An authority that revoked nothing: its feed is one page with no entry, and a file of
    50 copies of it verifies (each copy's signature checked), as would one of millions."""
    run("authority", "create", "acme")
    run("identity", "create", "customer")
    ticket = run_json("authority", "ticket", "create", "--authority", "acme")["ticket"]
    run("enroll", ticket, "--as", "customer")
    chain, fresh = tmp_path / "customer.chain", tmp_path / "fresh.feed"
    run("credential", "export", "customer", "--out", str(chain))
    run("revocations", "show", "--authority", "acme", "--out", str(fresh))
    repeated = tmp_path / "repeated.feed"
    repeated.write_bytes(fresh.read_bytes() * 50)
    args = ("credential", "verify", str(chain), "--trust", "acme", "--feed", str(repeated))
    result = troth_process(*args, "--json", code=1)
    assert _strict_json(result.stdout)["reason"] == "revocation feed invalid"
