"""`troth policy bundle create` and `troth policy test`, in-process, on real nodes."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from tests.support.gates import POLICIES, TOOLS
from troth.crypto import sha256


@pytest.fixture
def desk(tmp_path: Path) -> dict[str, str]:
    """Authority acme; `admin` holds troth.role=policy-admin, `support` orders.access."""
    ids = {"authority": run_json("authority", "create", "acme")["identifier"]}
    for name, attrs in (
        ("admin", ["troth.role=policy-admin"]),
        ("support", ["orders.access=read", "orders.access=write"]),
    ):
        ids[name] = run_json("identity", "create", name)["identifier"]
        args = [f"--attr={a}" for a in attrs]
        ticket = run("authority", "ticket", "create", "--authority", "acme", *args).stdout.strip()
        run("enroll", ticket, "--as", name)
    files = {
        "policies": POLICIES,
        "tools": json.dumps(TOOLS),
        "schema": "entity Order;",
        "services": json.dumps({"orders": ["status", "cancel"]}),
        "bad": '@id("x") permit(principal, action == Action::"invoke:refund", resource) '
        'when { context.args.amount == "1" };',
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        ids[name] = str(tmp_path / name)
    ids["dir"] = str(tmp_path)
    run("credential", "export", "support", "--out", str(tmp_path / "chain"))
    ids["chain"] = str(tmp_path / "chain")
    return ids


def create(desk: dict[str, str], signer: str, out: str, *extra: str, code: int = 0) -> object:
    return run_json(
        "policy",
        "bundle",
        "create",
        "--policies",
        desk["policies"],
        "--schema",
        desk["schema"],
        "--tools",
        desk["tools"],
        "--authority",
        "acme",
        "--as",
        signer,
        "--out",
        str(Path(desk["dir"]) / out),
        *extra,
        code=code,
    )


def policy_test(desk: dict[str, str], bundle: str, args: str, *extra: str, code: int = 0) -> object:
    return run_json(
        "policy",
        "test",
        "--bundle",
        str(Path(desk["dir"]) / bundle),
        "--chain",
        desk["chain"],
        "--tool",
        "refund",
        "--args",
        args,
        "--authority",
        "acme",
        *extra,
        code=code,
    )


def test_admin_and_authority_create_bundles_that_decide(desk: dict[str, str]) -> None:
    made = create(desk, "admin", "b1", "--revision", "1", "--ttl", "30m")
    assert isinstance(made, dict)
    assert (made["signer"], made["revision"], made["tools"]) == (desk["admin"], 1, sorted(TOOLS))
    with_services = create(
        desk, "acme", "b2", "--revision", "2", "--node", "acme", "--services", desk["services"]
    )
    assert isinstance(with_services, dict)
    assert with_services["services"] == {"orders": ["cancel", "status"]}
    allowed = policy_test(desk, "b1", '{"order_id": "o1", "amount": 20}')
    assert allowed == {
        "allowed": True,
        "outcome": "allowed",
        "reason": "allowed by policy refund",
        "policies": ["refund"],
        "errors": [],
        "revision": 1,
        "digest": sha256((Path(desk["dir"]) / "b1").read_bytes()).hex(),
        "authority": {"identifier": desk["authority"], "trusted_by": "--authority"},
    }
    denied = policy_test(desk, "b2", '{"order_id": "o1", "amount": 5000}', code=1)
    assert isinstance(denied, dict)
    assert (denied["allowed"], denied["policies"], denied["revision"]) == (False, ["refund-cap"], 2)
    ill = policy_test(desk, "b1", '{"order_id": "o1", "amount": "secret-value"}', code=1)
    assert isinstance(ill, dict)
    assert "secret-value" not in json.dumps(ill)


def test_create_refuses_with_the_validators_messages(desk: dict[str, str]) -> None:
    desk = {**desk, "policies": desk["bad"]}
    refused = create(desk, "admin", "refused", "--revision", "1", "--ttl", "30m", code=1)
    assert isinstance(refused, dict)
    assert refused["reason"] == "policies invalid"
    assert refused["messages"]
    assert refused["messages"][0].startswith("[x]")
    assert not (Path(desk["dir"]) / "refused").exists()


def test_a_member_without_the_role_cannot_sign(desk: dict[str, str]) -> None:
    create(desk, "support", "b", "--revision", "1", code=2)  # it holds no such credential


def test_test_needs_a_feed_and_honours_at(desk: dict[str, str]) -> None:
    create(desk, "admin", "b1", "--revision", "1", "--ttl", "30m")
    run(
        "policy",
        "test",
        "--bundle",
        str(Path(desk["dir"]) / "b1"),
        "--chain",
        desk["chain"],
        "--tool",
        "refund",
        code=2,
    )
    args = '{"order_id": "o", "amount": 1}'
    at = str(int(time.time()) + 7200)
    assert isinstance(later := policy_test(desk, "b1", args, "--time", at, code=1), dict)
    assert later["reason"] == "the bundle expired"
    iso = datetime.datetime.fromtimestamp(int(at), datetime.UTC).isoformat()
    assert policy_test(desk, "b1", args, "--time", iso, code=1) == later
