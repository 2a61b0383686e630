"""Review 45a, bench 1: Ctrl-C during `troth bench` dropped every figure it had already
measured (minutes of them in a full run): the table, or with --json the document, came out
empty. The rows measured so far are printed now (with --json: the error object with them,
`interrupted`), and the command exits 130 as any interrupted command."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import troth.bench
from troth.bench import Case, Measurement
from troth.cli.main import cli


def _case(name: str) -> Case:
    def run(quick: bool) -> list[Measurement]:
        return [Measurement(name, 2.0, "us", "floor", 1.0, 2.0, "<= 3x", True)]

    return Case(name, run)


def _ctrl_c(quick: bool) -> list[Measurement]:
    raise KeyboardInterrupt


@pytest.fixture
def cases(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = [_case("first.case"), _case("second.case"), Case("third.case", _ctrl_c)]
    fake.append(_case("fourth.case"))
    monkeypatch.setattr(troth.bench, "ALL_CASES", fake)


def test_ctrl_c_keeps_the_rows_measured(cases: None) -> None:
    result = CliRunner().invoke(cli, ["bench"])
    assert result.exit_code == 130, (result.stdout, result.stderr)
    assert "first.case" in result.stdout
    assert "second.case" in result.stdout
    assert "fourth.case" not in result.stdout
    assert "interrupted: 2 of 4 case(s) measured" in result.stdout
    assert "interrupted" in result.stderr


def test_ctrl_c_with_json_is_one_document_with_the_rows(cases: None) -> None:
    result = CliRunner().invoke(cli, ["bench", "--json"])
    assert result.exit_code == 130, (result.stdout, result.stderr)
    document = json.loads(result.stdout)
    assert (document["error"], document["exit_code"]) == ("KeyboardInterrupt", 130)
    assert document["interrupted"] is True
    assert (document["cases_measured"], document["cases"]) == (2, 4)
    assert [row["name"] for row in document["results"]] == ["first.case", "second.case"]


def test_an_uninterrupted_run_is_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(troth.bench, "ALL_CASES", [_case("first.case")])
    result = CliRunner().invoke(cli, ["bench", "--json"])
    assert result.exit_code == 0
    assert [row["name"] for row in json.loads(result.stdout)] == ["first.case"]
