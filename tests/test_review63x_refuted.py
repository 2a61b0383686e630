"""Review 63x: attacks on 63q's CLI, limits and trace-export fixes and 63j's API argument
checks that did not work.

Each test is a real attempt; it fails if the defence it names breaks. Every file written lives
under tmp_path; a write that would replace a system name is guarded (`_never_replaced`).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import troth
from tests.support.cli import run, run_json
from tests.support.public_api import READ, acme_and_agents
from tests.test_review57h_cli import _hostile_record
from troth import limits
from troth.cli import common
from troth.cli.main import cli
from troth.cli.output import Reporter, json_command
from troth.errors import ConfigError, SecretError, SecretFailure
from troth.secrets.engines.http_inject import HttpRequest, check_forward_size
from troth.trace.otel import otlp_exporter


def _never_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    def replaced(target: Path, **_: object) -> None:
        raise AssertionError(f"{target} replaced by a file")

    monkeypatch.setattr(common, "private_file_writer", replaced)


# -- cli 1: descriptors by another name ----------------------------------------------------------


def test_a_name_up_from_a_link_to_an_ordinary_directory_is_a_file(
    tmp_path: Path, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No false refusal: `L/../stdout` and `L/../fd/1` for a link L into the user's own
    directories are files, written (only a directory that is /dev or this process's fd
    directory, resolved, names a descriptor)."""
    run("identity", "create", "agent")
    (tmp_path / "sub" / "fd").mkdir(parents=True)
    (tmp_path / "L").symlink_to(tmp_path / "sub" / "fd")
    for name in ("L/../stdout", "L/../fd/1"):
        out = f"{tmp_path}/{name}"
        assert common._descriptor(out) is None
        run_json("identity", "export", "agent", "--out", out)
    assert (tmp_path / "sub" / "stdout").is_file()
    assert (tmp_path / "sub" / "fd" / "1").is_file()


def test_a_link_chain_and_the_task_directory_name_stdout(
    tmp_path: Path, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory link to a directory link to /dev, /dev/fd reached through a link, and
    /proc/self/task/TID/fd/N (the thread's own): each the descriptor, never replaced."""
    run("identity", "create", "agent")
    _never_replaced(monkeypatch)
    (tmp_path / "a").symlink_to("/dev")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    (tmp_path / "f").symlink_to("/dev/fd")
    names = [
        f"{tmp_path}/b/stderr",
        f"{tmp_path}/f/2",
        f"/proc/self/task/{threading.get_native_id()}/fd/2",
    ]
    for out in names:
        assert run_json("identity", "export", "agent", "--out", out)["file"] == out


# -- cli 2: log records as a --json command's warnings --------------------------------------------


def _noisy(body: object) -> click.Command:
    @click.command()
    @json_command
    def noisy(reporter: Reporter) -> None:
        body()  # type: ignore[operator]
        reporter.result({"done": True})

    return noisy


def test_a_warning_with_terminal_controls_is_escaped_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A peer's text in a logged warning (an ESC sequence, a bidi override, a newline, a lone
    surrogate) reaches stdout as JSON escapes, never raw: one document, the text the same."""
    hostile = "peer said \x1b[2J\x1b]0;pwned\x07 \u202eevil\n\r next line \udcff"
    monkeypatch.setattr(logging.root, "handlers", [])
    command = _noisy(lambda: logging.getLogger("troth.test63x").warning("%s", hostile))
    result = CliRunner().invoke(command, ["--json"])
    assert result.exit_code == 0, result.output
    for raw in ("\x1b", "\x07", "\u202e", "\r"):
        assert raw not in result.stdout
    (warning,) = json.loads(result.stdout)["warnings"]  # one document: the lines its own
    assert warning == hostile.replace("\udcff", "\\udcff")  # (the surrogate as its text)


def test_the_handler_goes_with_an_interrupt_and_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C or an error in the command: the warnings handler is removed all the same."""
    monkeypatch.setattr(logging.root, "handlers", [])

    def interrupted() -> None:
        logging.getLogger("troth.test63x").warning("before")
        raise KeyboardInterrupt

    def failed() -> None:
        logging.getLogger("troth.test63x").warning("before")
        raise troth.ArgumentError("test", "x", "y", "z")

    for body in (interrupted, failed):
        CliRunner().invoke(_noisy(body), ["--json"])
        assert logging.root.handlers == []
    result = CliRunner().invoke(_noisy(failed), ["--json"])
    assert json.loads(result.stdout)["warnings"] == ["before"]


def test_warnings_from_many_threads_stay_within_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight threads logging at once: exactly MAX_LOGGED_WARNINGS kept and one 'dropped' (the
    count is taken under the handler's lock)."""
    monkeypatch.setattr(logging.root, "handlers", [])

    def storm() -> None:
        def log() -> None:
            for n in range(300):
                logging.getLogger("troth.test63x").warning("peer %d", n)

        threads = [threading.Thread(target=log) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    result = CliRunner().invoke(_noisy(storm), ["--json"])
    warnings = json.loads(result.stdout)["warnings"]
    assert len(warnings) == limits.MAX_LOGGED_WARNINGS + 1
    assert sum("dropped" in w for w in warnings) == 1
    assert logging.root.handlers == []


# -- cli 3: the OTLP endpoint; limits 1: the forwarded method -------------------------------------


def test_an_otlp_endpoint_check_keeps_its_query_unsaid_and_takes_ipv6() -> None:
    """A bad port or bracket: a ConfigError that never says the query (a collector's key);
    an IPv6 literal, an upper-case scheme: taken."""
    for bad in ("http://127.0.0.1:99999/v1?api_key=S3CRET", "http://[::1/v1?api_key=S3CRET"):
        with pytest.raises(ConfigError) as refused:
            otlp_exporter(bad)
        assert "S3CRET" not in str(refused.value)
    for good in ("http://[::1]:4318/v1/traces", "HTTPS://collector.example/v1/traces"):
        otlp_exporter(good).shutdown()


def test_an_otlp_export_failing_never_says_the_endpoints_query(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's retry records quote the URL with its query (`Transient error ... with url:
    /v1/traces?api_key=...`): under --json they are dropped (`logs_dropped("opentelemetry")`),
    not the result's warnings, so the collector's key stays unsaid."""
    _hostile_record(troth_home)  # a record to send
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1.6")  # (a retry: in 0.8-1.2 s)
    monkeypatch.setattr(logging.root, "handlers", [])
    endpoint = "http://127.0.0.1:1/v1/traces?api_key=S3CRET"
    args = ["trace", "export", "--format", "otel", "--endpoint", endpoint, "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 4, result.output
    assert "S3CRET" not in result.stdout + result.stderr
    assert logging.getLogger("opentelemetry").propagate  # (restored after the command)


def test_a_forwarded_method_of_another_type_or_case_is_a_forbidden_request() -> None:
    """bytes, None, lower case, a token past 16 letters, a CR LF: FORBIDDEN_REQUEST before it
    is sent, never a TypeError; GET passes."""
    for method in (b"GET", None, "get", "G" * 17, "GET\r\nX: y", "GET "):
        with pytest.raises(SecretError) as refused:
            check_forward_size(HttpRequest(method=method, target="/"))  # type: ignore[arg-type]
        assert refused.value.reason == SecretFailure.FORBIDDEN_REQUEST
    check_forward_size(HttpRequest(method="GET", target="/"))


# -- 63j api 1-4: the API's argument checks at their bounds ---------------------------------------


def test_api_checks_take_what_the_layers_take_at_their_limits() -> None:
    """Exactly at each limit, in characters that are four UTF-8 bytes each: a purpose, the
    caveats, a revocation reason and the scopes all taken by the API and by the layer (the API
    counts characters as the layer does; the scope and name checks are the broker's own)."""
    with acme_and_agents() as world:
        agents = world.agents
        chain = agents.delegate(
            world.support,
            to=world.sub,
            attributes=READ,
            ttl=60,
            purpose="\U0001f511" * limits.MAX_PURPOSE_TEXT,
            caveats=[f"context.n{n} == 1" for n in range(limits.MAX_CAVEATS)],
        )
        # a member's reason: MAX_MEMBER_REVOCATION_REASON_BYTES, not MAX_REVOCATION_REASON
        # characters of 4 bytes, which made its entry ten times larger (review 70q, feeds 1)
        member_reason = "\U0001f511" * (limits.MAX_MEMBER_REVOCATION_REASON_BYTES // 4)
        agents.revoke(chain, by=world.support, reason=member_reason)
