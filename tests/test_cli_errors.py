"""Every error a newcomer met (issue 10) prints what failed, why and what to do next, with the
exit code of the table in `troth --help`; with `--json`, one JSON object and nothing else."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run, run_json
from troth.cli import common
from troth.cli.main import cli
from troth.cli.output import EXIT_CODES_HELP
from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    ChannelError,
    ChannelFailure,
    ConfigError,
    Denied,
    NotFound,
    RemoteError,
    Unreachable,
)
from troth.node.daemon import answer_error, error_answer


@pytest.fixture
def acme(tmp_path: Path) -> dict[str, str]:
    """Authority acme, member `customer` (orders.access read+write, 1 h), `support-agent`."""
    ids = {"authority": run_json("authority", "create", "acme")["identifier"]}
    for name in ("customer", "support-agent"):
        ids[name] = run_json("identity", "create", name)["identifier"]
    ticket = run(
        *("authority", "ticket", "create", "--authority", "acme"),
        *("--attr", "orders.access=read", "--attr", "orders.access=write"),
    ).stdout.strip()
    run("enroll", ticket, "--as", "customer")
    ids["dir"] = str(tmp_path)
    return ids


def delegate(acme: dict[str, str], *extra: str, code: int = 0) -> Any:
    out = str(Path(acme["dir"]) / "support.chain")
    return run(
        *("credential", "delegate", "--as", "customer", "--to", "support-agent"),
        *("--purpose", "resolve complaint 123", "--out", out),
        *extra,
        code=code,
    )


def test_enroll_names_the_missing_identity_and_how_to_create_it() -> None:
    run("authority", "create", "acme")
    ticket = run("authority", "ticket", "create", "--authority", "acme").stdout.strip()
    result = run("enroll", ticket, "--as", "customer", code=2)
    assert result.stderr == (
        "troth: node 'default' has no identity 'customer' (list them with: troth identity "
        "list); create it with: troth identity create customer\n"
    )
    run("identity", "create", "customer")
    assert run_json("enroll", ticket, "--as", "customer")["actor"].startswith("T")


def test_an_identity_of_another_node_says_which_node() -> None:
    run("node", "create", "agent-b")
    result = run("credential", "show", "agent-b", code=2)
    assert "agent-b is an identity of node 'agent-b', not of node 'default'" in result.stderr
    assert "add --node agent-b" in result.stderr


BROKER = ("--broker", "/tcp/127.0.0.1:9")


@pytest.mark.parametrize(
    "args",
    [
        (
            *("policy", "bundle", "create", "--policies", "p.cedar", "--tools", "t.json"),
            *("--revision", "1", "--authority", "acme", "--out", "b.bundle"),
        ),
        ("secret", "lease", "payments", *BROKER),
        ("lease", "list", *BROKER),
        ("lease", "renew", "lease_x", *BROKER),
        ("lease", "revoke", "lease_x", *BROKER),
        ("mcp", "gate", "--upstream", "python orders.py"),
        ("mcp", "connect", "/tcp/127.0.0.1:9/service/mcp.orders"),
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_as_an_identity_of_another_node_says_which_node(
    args: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The README's hub: `troth authority create acme` makes node acme; `--as acme` without
    # `--node acme` used to answer only "no local identity 'acme'".
    run("authority", "create", "acme")
    monkeypatch.chdir(tmp_path)
    Path("p.cedar").write_text('@id("p") permit(principal, action, resource);\n')
    Path("t.json").write_text("{}")
    result = run(*args, "--as", "acme", code=2)
    assert result.stderr == (
        "troth: acme is an identity of node 'acme', not of node 'default': add --node acme\n"
    )


def test_a_delegation_outliving_its_parent_says_which_ttl_fits(
    acme: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    parent_expires = run_json("credential", "show", "customer")[0]["window"]["expires_at"]
    monkeypatch.setattr(common.CLOCK, "now", lambda: parent_expires - 3570)  # 59 min 30 s left
    result = delegate(acme, "--attr", "orders.access=read", "--ttl", "1h", code=1)
    message = result.stderr
    assert message.startswith("troth: delegation expires after its parent (parent expires 20")
    assert "Z, in 59 min): use --ttl 59m or less\n" in message
    # the hint is right: that TTL is accepted
    delegate(acme, "--attr", "orders.access=read", "--ttl", "59m")
    report = json.loads(delegate(acme, "--ttl", "2h", "--json", code=1).stdout)
    assert report["reason"] == "delegation amplifies authority"
    assert report["link"] == 1
    assert "use --ttl 59m or less" in report["message"]


def test_an_amplifying_attribute_names_the_value_not_held(acme: dict[str, str]) -> None:
    result = delegate(acme, "--attr", "orders.access=delete", "--ttl", "10m", code=1)
    assert result.stderr == (
        "troth: delegation amplifies authority: orders.access={delete} is not held (the parent "
        "chain holds orders.access={read, write}): pass on only what is held\n"
    )


def test_json_errors_are_one_object_and_nothing_else() -> None:
    result = run("identity", "show", "nobody", "--json", code=2)
    assert result.stderr == ""
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["error"] == "NotFound"
    assert report["exit_code"] == 2
    # a usage error too (click's own), and a renamed option
    for args in (("identity", "create", "--key-type", "rsa"), ("enroll", "x", "--identity", "y")):
        result = run(*args, "--json", code=2)
        assert result.stderr == ""
        assert json.loads(result.stdout)["error"] in ("BadParameter", "UsageError")


def test_old_spellings_are_refused_with_the_new_one() -> None:
    for args, new in (
        (("identity", "create", "--name", "x"), "use troth identity create NAME"),
        (("credential", "delegate", "--from", "x"), "--from is gone: use --as IDENTITY"),
        (("message", "send", "--from", "a", "/tcp/h:1/service/echo", "t"), "use --node NODE"),
        (("revoke", "link", "00", "--by", "x"), "--by is gone: use --as IDENTITY"),
    ):
        assert new in run(*args, code=2).stderr


def test_control_answers_keep_their_class_and_are_never_prefixed_twice() -> None:
    for error, code in (
        (RemoteError("the relay is full"), 1),
        (Unreachable("cannot connect to 127.0.0.1:9: connection refused"), 4),
        (ConfigError("node 'b' is not running"), 3),
        (NotFound("no local identity 'x'"), 2),
        (ConnectionRefusedError("refused"), 4),
        (ChannelError(ChannelFailure.TIMEOUT, "no handshake from /tcp/h:1 within 10 s"), 4),
        (AuthorityError(AuthorityFailure.TICKET_UNKNOWN), 1),
        (Denied(("hub refused b: no",)), 1),
    ):
        back = answer_error(error_answer(error))
        assert str(back) == str(error)
        assert "RemoteError:" not in str(back)
        from troth.cli.output import exit_code

        assert exit_code(back) == code, error
        if isinstance(error, ChannelError | AuthorityError):
            assert isinstance(back, type(error))
            assert back.reason is error.reason


@pytest.mark.parametrize(
    "args",
    [
        ("message", "send", "tcp:127.0.0.1:4000", "hi"),
        ("channel", "create", "/bogus"),
        ("relay", "create", "a", "--at", "/bogus"),
        ("secret", "lease", "payments", "--as", "a", "--broker", "/bogus"),
        ("lease", "list", "--as", "a", "--broker", "/bogus"),
        ("mcp", "connect", "tcp:1", "--as", "a"),
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_a_route_that_does_not_parse_is_a_usage_error(args: tuple[str, ...]) -> None:
    # A typo in a route is a bad value (exit 2), checked before any node is asked: it was
    # exit 1 ("invalid or denied"), or for relay create, "node 'a' is not running".
    run("node", "create", "a")
    result = run(*args, "--node", "a", code=2)
    assert "a route is /kind/value pairs" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("identity", "verify", "{missing}"),
        ("identity", "import", "{missing}"),
        ("credential", "show", "{missing}"),
        ("credential", "verify", "{missing}", "--trust", "T" + "0" * 64),
        ("revoke", "link", "00" * 32, "--chain", "{missing}", "--as", "x", "--authority", "a"),
        ("enroll", "{missing}/ticket", "--as", "x"),
    ],
)
def test_a_missing_file_is_an_io_error(args: tuple[str, ...], tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    argv = [a.replace("{missing}", missing) for a in args]
    if argv[0] == "enroll":  # a missing ticket file is not echoed: it might be a ticket
        run("identity", "create", "x")
        assert "not a troth ticket" in run(*argv, code=1).stderr
        return
    result = run(*argv, code=4)
    assert missing in result.stderr
    assert "no such file" in result.stderr.lower()


def test_a_missing_feed_file_is_an_io_error(acme: dict[str, str], tmp_path: Path) -> None:
    chain = tmp_path / "own"
    run("credential", "export", "customer", "--out", str(chain))
    missing = str(tmp_path / "feed")
    result = run("credential", "verify", str(chain), "--trust", "acme", "--feed", missing, code=4)
    assert result.stderr == f"troth: cannot use {missing}: No such file or directory\n"


def test_connection_refused_is_an_io_error_that_says_what_to_check() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run("node", "create", "agent-a")
    route = f"/tcp/127.0.0.1:{port}/service/echo"
    result = run("message", "send", route, "hi", "--node", "agent-a", code=4)
    assert result.stderr == (
        f"troth: cannot connect to 127.0.0.1:{port}: connection refused: is a node listening "
        "there? (troth node start NAME --tcp-listen HOST:PORT)\n"
    )


def test_a_node_that_is_not_running_says_how_to_start_it() -> None:
    run("node", "create", "agent-b")
    result = run(
        "relay", "create", "agent-b", "--at", "/tcp/127.0.0.1:9", "--node", "agent-b", code=3
    )
    assert result.stderr == (
        "troth: node 'agent-b' is not running: start it with: troth node start agent-b\n"
    )


def test_an_unknown_authority_says_how_to_list_them() -> None:
    result = run("authority", "ticket", "create", "--authority", "nosuch", code=2)
    assert result.stderr == (
        "troth: no authority 'nosuch' on this machine (list them with: troth authority list; "
        "create one with: troth authority create NAME)\n"
    )
    assert "troth node create" not in result.stderr


def test_a_damaged_ticket_is_not_a_troth_ticket(acme: dict[str, str]) -> None:
    result = run("enroll", "troth-ticket:AAAA", "--as", "support-agent", code=1)
    assert result.stderr.startswith("troth: not a troth ticket (it is cut short or altered): ")
    assert "trailing bytes" not in result.stderr


def test_a_used_ticket_says_to_ask_for_a_new_one(acme: dict[str, str]) -> None:
    ticket = run("authority", "ticket", "create", "--authority", acme["authority"]).stdout
    run("enroll", ticket.strip(), "--as", "support-agent")
    # the same identity again is answered with its credential (issue 9: a retry is safe);
    # another identity finds the one-time ticket used up
    run("enroll", ticket.strip(), "--as", "support-agent")
    result = run("enroll", ticket.strip(), "--as", "customer", code=1)
    # after the warning of a ticket on the command line (review 55c, cli 1)
    assert result.stderr.splitlines()[-1] == (
        "troth: ticket unknown, used up or expired: ask the authority for a new ticket "
        "(troth authority ticket create)"
    )


def test_the_skew_allowance_is_printed_when_it_made_the_chain_valid(
    acme: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = str(Path(acme["dir"]) / "support.chain")
    delegate(acme, "--attr", "orders.access=read", "--ttl", "5m")
    expires = run_json("credential", "show", chain)["window"]["expires_at"]
    args = ("credential", "verify", chain, "--trust", "acme", "--authority", "acme")
    monkeypatch.setattr(common.CLOCK, "now", lambda: expires + 6)
    out = run(*args).stdout
    assert out.startswith(
        "valid (6 s past expiry, within the 60 s clock-skew allowance): support-agent ("
    )
    assert run_json(*args)["within_skew"] is True
    monkeypatch.setattr(common.CLOCK, "now", lambda: expires - 60)
    assert run(*args).stdout.startswith("valid: support-agent (")
    assert run_json(*args)["within_skew"] is False
    monkeypatch.setattr(common.CLOCK, "now", lambda: expires + 60)
    report = run_json(*args, code=1)
    assert report == {"valid": False, "reason": "expired", "link": 1, "detail": report["detail"]}
    assert "troth credential refresh" in run(*args, code=1).stderr


def test_verify_names_the_missing_feed_and_both_ways_to_give_one(acme: dict[str, str]) -> None:
    delegate(acme, "--attr", "orders.access=read", "--ttl", "5m")
    chain = str(Path(acme["dir"]) / "support.chain")
    result = run("credential", "verify", chain, "--trust", "acme", code=1)
    assert "no revocation feed for the authority (acme (T" in result.stderr
    assert "give --authority NAME (an authority on this machine) or --feed FILE" in result.stderr


def test_verify_prints_link_ids_that_revoke_link_takes(acme: dict[str, str]) -> None:
    delegate(acme, "--attr", "orders.access=read", "--ttl", "5m")
    chain = str(Path(acme["dir"]) / "support.chain")
    args = ("credential", "verify", chain, "--trust", "acme", "--authority", "acme")
    report = run_json(*args)
    text = run(*args).stdout
    for link in report["chain"]:
        assert f"          id: {link['id']}\n" in text
    link = report["chain"][1]["id"]
    run("revoke", "link", link, "--chain", chain, "--as", "customer", "--authority", "acme")
    assert run_json(*args, code=1)["reason"] == "revoked"


def test_a_bad_credential_id_says_what_an_id_is() -> None:
    result = run("revoke", "credential", "c7264548", "--authority", "acme", code=2)
    assert "a credential ID is 64 hex digits" in result.stderr


def test_a_cut_identifier_says_what_an_identifier_is() -> None:
    # It used to answer "create it with: troth identity create T1234", a name no identity can
    # have (names are lowercase).
    run("authority", "create", "acme")
    result = run("revoke", "identity", "T1234", "--authority", "acme", code=2)
    assert result.stderr == (
        "troth: 'T1234' is neither an identifier (T + 64 hex digits) nor an identity name "
        "(list them with: troth identity list --node NODE)\n"
    )


def test_exit_codes_are_documented_in_help() -> None:
    shown = [line.strip() for line in run("--help").stdout.splitlines()]
    for line in EXIT_CODES_HELP.splitlines()[1:]:
        assert line.strip() in shown
    assert cli.epilog is not None
    assert cli.epilog.startswith(EXIT_CODES_HELP)
