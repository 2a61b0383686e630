"""`troth policy push` / `troth policy show` on a node, caveats checked at delegation (the CLI
and the Python API, one library check), chapter 4 of the demo, and the MCP gate's bench row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import troth
from tests.support.cli import run, run_json
from tests.support.gates import POLICIES, TOOLS
from troth.cli.main import cli
from troth.clock import FixedClock
from troth.errors import PolicyError, PolicyFailure

BAD_CAVEAT = "context.args.amount <="
INJECTION = (
    "true }; permit(principal, action, resource); forbid(principal, action, resource) unless { true"
)


@pytest.fixture
def desk(tmp_path: Path, troth_home: Path) -> dict[str, str]:
    """Authority acme (its own node); `support` enrolled on the default node with
    orders.access; the policy files; bundles of revisions 1 and 2 signed by acme."""
    run("authority", "create", "acme")
    run("identity", "create", "support")
    ticket = run(
        "authority", "ticket", "create", "--authority", "acme", "--attr", "orders.access=write"
    ).stdout.strip()
    run("enroll", ticket, "--as", "support")
    files = {"policies": POLICIES, "tools": json.dumps(TOOLS)}
    paths = {}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        paths[name] = str(tmp_path / name)
    for revision in (1, 2):
        out = str(tmp_path / f"r{revision}.bundle")
        run_json(
            "policy", "bundle", "create", "--policies", paths["policies"], "--tools",
            paths["tools"], "--authority", "acme", "--as", "acme", "--revision", str(revision),
            "--out", out, "--node", "acme",
        )  # fmt: skip
        paths[f"r{revision}"] = out
    return paths


def test_push_installs_a_bundle_and_show_lists_it(desk: dict[str, str]) -> None:
    pushed = run_json("policy", "push", desk["r1"])
    assert (pushed["revision"], pushed["new"], pushed["node_running"]) == (1, True, False)
    again = run_json("policy", "push", desk["r1"])
    assert (again["revision"], again["new"]) == (1, False)
    (shown,) = run_json("policy", "show")
    assert shown["revision"] == 1
    assert shown["in_force"] is True
    assert shown["tools"] == ["export_customers", "lookup_order", "refund"]
    assert shown["policies"] == ["lookup", "refund", "refund-cap", "export"]  # in order
    text = run("policy", "show").stdout
    assert "in force:  yes" in text
    assert "revision:  1" in text


def test_push_refuses_a_rollback_and_a_tampered_bundle(desk: dict[str, str]) -> None:
    run_json("policy", "push", desk["r2"])
    refused = run_json("policy", "push", desk["r1"], code=1)
    assert refused["reason"] == PolicyFailure.ROLLBACK.value
    tampered = Path(desk["r1"]).read_bytes()
    tampered = tampered[:-80] + bytes([tampered[-80] ^ 1]) + tampered[-79:]
    Path(desk["r1"]).write_bytes(tampered)
    assert run_json("policy", "push", desk["r1"], code=1)["ok"] is False
    (shown,) = run_json("policy", "show")
    assert shown["revision"] == 2


def test_an_authority_that_rotates_re_signs_the_bundle_it_checked(desk: dict[str, str]) -> None:
    """Its rotation puts what its older key signed out of force (the feed supersedes it). The
    rotation says so, and never re-signs on its own (the held bundle may be a thief's): the
    operator checks the held bundle and re-signs it by its digest, one revision up, same
    policies — in force at once. Another digest, or none held, is refused."""
    run_json("policy", "push", desk["r1"], "--node", "acme")
    (held,) = run_json("policy", "show", "--node", "acme")
    rotated = run("identity", "rotate", "acme", "--node", "acme")
    assert f"digest {held['digest']}" in rotated.stderr
    assert "policy_bundle" not in json.loads(
        run("identity", "rotate", "acme", "--node", "acme", "--json").stdout
    )
    (after,) = run_json("policy", "show", "--node", "acme")
    assert (after["revision"], after["in_force"]) == (1, False)  # nothing re-signed by itself
    refused = run_json(
        "policy", "bundle", "resign", "--digest", "00" * 32, "--node", "acme", code=1
    )
    assert "check it" in refused["detail"]
    resigned = run_json("policy", "bundle", "resign", "--digest", held["digest"], "--node", "acme")
    assert resigned["revision"] == 2
    (shown,) = run_json("policy", "show", "--node", "acme")
    assert (shown["revision"], shown["in_force"]) == (2, True)
    assert shown["policies"] == ["lookup", "refund", "refund-cap", "export"]
    none = run_json("policy", "bundle", "resign", "--digest", held["digest"], code=1)  # default
    assert none["reason"] == "no policy bundle"


def test_show_with_no_bundle() -> None:
    run("node", "create", "empty")
    assert run_json("policy", "show", "--node", "empty") == []
    assert "holds no policy bundle" in run("policy", "show", "--node", "empty").stdout


@pytest.mark.parametrize("caveat", [BAD_CAVEAT, INJECTION, ""])
def test_delegate_refuses_a_caveat_that_is_not_a_cedar_condition(
    desk: dict[str, str], caveat: str
) -> None:
    run("identity", "create", "helper")
    refused = run_json(
        "credential", "delegate", "--as", "support", "--to", "helper", "--ttl", "10m",
        "--purpose", "p", "--caveat", caveat, "--out", "/dev/null", code=1,
    )  # fmt: skip
    assert refused["error"] == "PolicyError"
    assert "caveat is not a single Cedar condition" in refused["message"]
    if caveat == BAD_CAVEAT:
        assert "does not parse" in refused["message"]  # the parser's own message follows
    held = run_json(
        "credential", "delegate", "--as", "support", "--to", "helper", "--ttl", "10m",
        "--purpose", "p", "--caveat", "context.args.amount <= 100", "--out", "/dev/null",
    )  # fmt: skip
    assert held["caveats"] == ["context.args.amount <= 100"]


def test_the_python_api_checks_caveats_the_same_way(clock: FixedClock) -> None:
    hub = troth.Node.open("acme", clock=clock)
    agents = troth.Node.open("agents", clock=clock)
    try:
        acme = hub.create_authority()
        customer = agents.identities.create("customer")
        support = agents.identities.create("support-agent")
        agents.enroll(acme.ticket({"orders.access": "write"}), identity=customer)
        with pytest.raises(PolicyError) as refused:
            agents.delegate(
                customer, to=support, attributes={}, ttl=60, purpose="p", caveats=[INJECTION]
            )
        assert refused.value.reason is PolicyFailure.CAVEAT_INVALID
        fine = agents.delegate(
            customer, to=support, attributes={}, ttl=60, purpose="p", caveats=["context.now > 0"]
        )
        assert fine.chain
    finally:
        agents.close()
        hub.close()


def test_demo_chapter_4() -> None:
    result = CliRunner().invoke(cli, ["demo", "--chapter", "4"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for line in (
        "the agents' node pulled revision 1 over a secure channel",
        "support-agent sees: lookup_order, refund",
        "support-agent: refund  20 -> allowed: refunded 20 on order 4471",
        "support-agent: refund 500 -> denied by policy caveat:1:0",
        "sub-agent sees: lookup_order",
        "sub-agent: refund  20 -> denied: the policy bundle declares no such tool",
        "support-agent: refund  20 -> denied: the caller's credential is revoked",
        "support-agent: refund 500 -> 'troth: denied by policy caveat:1:0'",
        "sub-agent: refund  20 -> 'troth: denied: the policy bundle declares no such tool'",
    ):
        assert line in out
    after_mcp = out[out.index("the same story through MCP") :]
    assert after_mcp.count("-> allowed") == 1  # only the refund of 20 before the revocation
    assert "must never happen" not in out


def test_bench_reports_the_mcp_gate() -> None:
    result = CliRunner().invoke(
        cli, ["bench", "--only", "gates.mcp", "--quick", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["name"] == "gates.mcp.call"
    assert row["unit"] == "us/call"
    assert set(row["extra"]) == {"added_us", "decision_us"}
    assert row["target"] == "added <= 500 us + one decision"


def test_mcp_serve_refuses_a_bad_server_name_before_asking_the_node() -> None:
    refused = run("mcp", "serve", "bad/name", "--upstream", "python orders.py", code=2)
    assert "MCP server name 'bad/name'" in refused.stderr
