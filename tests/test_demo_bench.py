"""`troth demo` tells chapter 1; `troth bench --json` reports figures beside their floors."""

from __future__ import annotations

import json

from click.testing import CliRunner

from troth.cli.main import cli


def test_demo_chapter_1() -> None:
    result = CliRunner().invoke(cli, ["demo", "--chapter", "1"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "created 1,000 agent identities" in out
    assert "identifier unchanged: True" in out
    assert "rejected: change 1: bad signature" in out
    assert '"id": "did:troth:' in out
    assert "accepted (this must never happen)" not in out


def test_demo_chapter_2() -> None:
    result = CliRunner().invoke(cli, ["demo", "--chapter", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "enrolled 1,000 agents with one-time tickets" in out
    assert 'only if:   context.complaint == "123"' in out
    assert "refused when issuing: link 3: delegation amplifies authority" in out
    assert "a hand-built chain is refused by the verifier: link 3: delegation amplifies" in out
    assert "sub-agent: link 1: revoked" in out
    assert "sibling (billing): still valid" in out
    assert "must never happen" not in out


def test_demo_chapter_3() -> None:
    result = CliRunner().invoke(cli, ["demo", "--chapter", "3"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "agent-b has no listening port" in out
    assert "containing any plaintext: 0" in out
    assert "agent-b refused it: peer not allowed" in out
    assert "must never happen" not in out


def test_demo_unknown_chapter() -> None:
    result = CliRunner().invoke(cli, ["demo", "--chapter", "99"])
    assert result.exit_code == 2


def test_bench_json_shape() -> None:
    result = CliRunner().invoke(cli, ["bench", "--quick", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    names = {row["name"] for row in rows}
    assert {
        "identity.create.memory",
        "identity.create.persisted",
        "identity.create.persisted.single",
        "identity.verify.1",
        "identity.verify.5",
        "credential.issue",
        "credential.verify",
        "chain.verify.2.cold.floor",
        "chain.verify.5.cold.floor",
        "chain.verify.2.warm.biscuit",
        "enroll.200",
    } <= names
    for row in rows:
        assert {"name", "value", "unit", "baseline", "ratio"} <= row.keys()
        assert row["value"] > 0
        assert row["baseline_value"] > 0
        assert abs(row["ratio"] - row["value"] / row["baseline_value"]) < 1e-9


def test_bench_only_filters_and_rejects_unknown() -> None:
    result = CliRunner().invoke(cli, ["bench", "--quick", "--json", "--only", "identity.verify"])
    assert {row["name"] for row in json.loads(result.stdout)} == {
        "identity.verify.1",
        "identity.verify.5",
    }
    result = CliRunner().invoke(cli, ["bench", "--only", "no-such-bench"])
    assert result.exit_code == 2
