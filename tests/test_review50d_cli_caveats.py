"""Review 50d, caveats 1: `troth credential verify` printed a chain's caveats (Cedar conditions
delegators put on its links) and said "valid" without evaluating them, where the API
(`troth.Verifier.verify`) fails closed: a script reading exit 0 granted more than was
delegated. The command now evaluates them against --context JSON / --context-file FILE and,
with neither, refuses the chain (exit 1, CAVEAT_UNEVALUATED) unless --unevaluated-caveats;
--json says which caveats were evaluated and whether they held (`caveat_check`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from troth.errors import CredentialFailure

CAVEAT = 'context.complaint == "123"'
UNEVALUATED = CredentialFailure.CAVEAT_UNEVALUATED.value
UNSATISFIED = CredentialFailure.CAVEAT_UNSATISFIED.value


@pytest.fixture
def chain(tmp_path: Path) -> tuple[list[str], Path]:
    """A chain customer -> support with one caveat, and the verify command's arguments."""
    authority = run_json("authority", "create", "acme")["identifier"]
    run_json("identity", "create", "customer")
    support = run_json("identity", "create", "support")["identifier"]
    ticket = run("authority", "ticket", "create", "--authority", "acme").stdout.strip()
    run("enroll", ticket, "--as", "customer")
    path = tmp_path / "d1"
    run(
        *("credential", "delegate", "--as", "customer", "--to", support, "--ttl", "30m"),
        *("--purpose", "complaint 123"),
        *("--caveat", CAVEAT, "--out", str(path)),
    )
    return ["credential", "verify", str(path), "--trust", authority, "--authority", "acme"], path


def test_a_caveated_chain_with_no_context_is_invalid(chain: tuple[list[str], Path]) -> None:
    args, _ = chain
    report = run_json(*args, code=1)
    assert (report["valid"], report["reason"], report["link"]) == (False, UNEVALUATED, 1)
    assert report["detail"].startswith("caveat:1:0: no context given (give the request with")
    assert report["caveat_check"] == {
        "ids": ["caveat:1:0"],
        "evaluated": False,
        "failed": [],
        "held": False,
    }
    human = run(*args, code=1)
    assert "--unevaluated-caveats" in human.stderr
    assert not human.stdout


def test_a_context_the_caveat_holds_for_is_valid(chain: tuple[list[str], Path]) -> None:
    args, _ = chain
    report = run_json(*args, "--context", '{"complaint": "123"}')
    assert report["valid"] is True
    assert report["caveat_check"] == {
        "ids": ["caveat:1:0"],
        "evaluated": True,
        "failed": [],
        "held": True,
    }
    assert (
        "caveats: hold for the context given (caveat:1:0)"
        in run(*args, "--context", '{"complaint": "123"}').stdout
    )


def test_a_context_file(chain: tuple[list[str], Path], tmp_path: Path) -> None:
    args, _ = chain
    context = tmp_path / "context.json"
    context.write_text('{"complaint": "124"}')
    report = run_json(*args, "--context-file", str(context), code=1)
    assert (report["reason"], report["detail"]) == (
        UNSATISFIED,
        "caveat:1:0: false for this context",
    )
    assert report["caveat_check"]["failed"] == ["caveat:1:0"]
    assert report["caveat_check"]["evaluated"] is True


@pytest.mark.parametrize(
    ("context", "reason"),
    [
        ('{"complaint": 123}', UNSATISFIED),  # a Long is not the String
        ("{}", UNEVALUATED),  # no such attribute: an error, denied
        ('{"complaint": 1.5}', UNEVALUATED),  # no Cedar value
    ],
)
def test_contexts_that_do_not_pass(
    chain: tuple[list[str], Path], context: str, reason: str
) -> None:
    args, _ = chain
    report = run_json(*args, "--context", context, code=1)
    assert (report["valid"], report["reason"]) == (False, reason)


@pytest.mark.parametrize(
    "context",
    [
        "[]",
        '"x"',
        "not json",
        '{"complaint": NaN}',
        '{"complaint": "124", "complaint": "123"}',  # duplicate names: which one is judged?
        '{"now": 1}',  # troth's
        '{"complaint": "\\ud800"}',
        "[" * 100_000,
    ],
)
def test_contexts_that_are_refused_as_usage(chain: tuple[list[str], Path], context: str) -> None:
    args, _ = chain
    result = run(*args, "--context", context, code=2)
    assert "--context" in result.stderr
    assert "Traceback" not in result.stderr


def test_unevaluated_caveats_is_explicit(chain: tuple[list[str], Path]) -> None:
    args, _ = chain
    report = run_json(*args, "--unevaluated-caveats")
    assert report["valid"] is True
    assert report["caveats"] == [CAVEAT]
    assert report["caveat_check"] == {
        "ids": ["caveat:1:0"],
        "evaluated": False,
        "failed": [],
        "held": False,
    }
    human = run(*args, "--unevaluated-caveats").stdout
    assert "caveats: NOT evaluated: enforce them (caveat:1:0)" in human


@pytest.mark.parametrize(
    "extra",
    [
        ("--unevaluated-caveats", "--context", "{}"),
        ("--context", "{}", "--context-file", "x"),
        ("--format", "vc", "--context", "{}"),
    ],
)
def test_options_that_do_not_go_together(
    chain: tuple[list[str], Path], extra: tuple[str, ...]
) -> None:
    args, _ = chain
    assert run(*args, *extra, code=2).stderr


def test_a_chain_without_caveats_needs_no_context(tmp_path: Path) -> None:
    authority = run_json("authority", "create", "acme")["identifier"]
    customer = run_json("identity", "create", "customer")["identifier"]
    ticket = run("authority", "ticket", "create", "--authority", "acme").stdout.strip()
    run("enroll", ticket, "--as", "customer")
    path = tmp_path / "c"
    run("credential", "export", customer, "--out", str(path))
    args = ("credential", "verify", str(path), "--trust", authority, "--authority", "acme")
    report = run_json(*args)
    assert report["valid"] is True
    assert report["caveat_check"] == {"ids": [], "evaluated": False, "failed": [], "held": True}
    assert run_json(*args, "--context", '{"a": 1}')["valid"] is True
