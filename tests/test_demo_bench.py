"""`troth demo` tells its chapters; `troth bench --json` reports figures beside their floors."""

from __future__ import annotations

import importlib.util
import json

import pytest
from click.testing import CliRunner

from troth.cli.main import cli

CHAPTERS = {
    1: [
        "created 1,000 agent identities",
        "identifier unchanged: True",
        "rejected: change 1: bad signature",
        '"id": "did:troth:',
        "refused: history is older than the stored copy",
        "refused: change 1: key does not match the pre-rotation commitment",
        "refused: change 1: history forks from the stored copy",
    ],
    2: [
        "enrolled 1,000 agents with one-time tickets",
        'only if:   context.complaint == "123"',
        "refused when issuing: link 3: delegation amplifies authority",
        "a hand-built chain is refused by the verifier: link 3: delegation amplifies",
        "sub-agent: link 1: revoked",
        "sibling (billing): still valid",
    ],
    3: [
        "agent-b has no listening port",
        "containing any plaintext: 0",
        "agent-b refused it: peer not allowed",
    ],
    5: [
        "billing-agent leased payments [charges]",
        "support-agent asks for payments [charges]: refused: denied by policy",
        "gate 3 leased a token for 120 s",
        "payments validated it on its own: accepted: refund 20.00 EUR on order 4471",
        "a second refund reuses the live lease: same token: True",
        "refused: the token's scope is charges, not refunds",
        "its refund token at payments: refused: revoked",
        "a new lease: hub refused support-agent: it is revoked by hub",
        "billing-agent's token: valid (scope charges",
    ],
    6: [
        "refund(order 4471, 20 EUR): allowed by policy refund",
        "acme's broker leased it a payments token for this call",
        "refund(order 9999, 20 EUR): denied by policy caveat:1:0",
        "alice resolves it: refused",
        "support-agent refund(20, 9999): forbidden by caveat:1:0, rev 1, under acme > customer",
        "verified: 9 signatures",
        "checkpoint: valid",
        "verification fails at record #6 (",
        "): bad signature",
    ],
}
NEVER = {
    1: "accepted (this must never happen)",
    2: "must never happen",
    3: "must never happen",
    5: "must never happen",
    6: "must never happen",
}
BENCH_EXTRA = ("biscuit_auth", "noise")
needs_bench_extra = pytest.mark.skipif(
    any(importlib.util.find_spec(module) is None for module in BENCH_EXTRA),
    reason="the bench extra is missing (biscuit-python, noiseprotocol): pip install -e '.[bench]'",
)


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_demo_chapter(chapter: int) -> None:
    result = CliRunner().invoke(cli, ["demo", "--chapter", str(chapter)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for line in CHAPTERS[chapter]:
        assert line in out
    assert NEVER[chapter] not in out


def test_demo_unknown_chapter() -> None:
    result = CliRunner().invoke(cli, ["demo", "--chapter", "99"])
    assert result.exit_code == 2


@needs_bench_extra
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
        "identity.rotate",
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
