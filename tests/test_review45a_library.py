"""Review 45a, library 1: `troth revoke link` made the revoker's signed request and had the
authority take it, then recorded it, in the CLI (a second copy of what `Node.revoke` does);
`troth policy bundle create` picked the signer's policy-admin chain (`_admin_chain`) and
checked the revision held, in the CLI. Each command is one library call now:
`troth.node.traces.revoke_link_recorded` (which `Node.revoke` calls too, for an authority on
this machine: review 47k, revsync 1) and `troth.node.services.policy.sign_bundle_as` (the chain by
`CredentialWallet.best`, as a delegation's parent is picked). Review 48p, cligaps 1: `troth
revoke link` calls `troth._api.node.revoke_link`, `Node.revoke`'s own path (an authority here:
`revoke_link_recorded`; one over the network: `RunningNode.revoke`'s)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import troth
import troth._api.node
import troth.node.services.policy
from tests.support.cli import run, run_json
from tests.support.gates import POLICIES, TOOLS
from tests.test_cli_credentials import delegate, world  # noqa: F401 - the fixture


def _spy(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[Any]:
    """Wrap `module.name`, keeping its answer; the list of calls made."""
    real = getattr(module, name)  # AttributeError before the move: no such library call
    calls: list[Any] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


def test_revoke_link_is_one_library_call(
    world: dict[str, str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _spy(monkeypatch, troth._api.node, "revoke_link")  # the CLI's one call
    recorded = _spy(monkeypatch, troth._api.node, "revoke_link_recorded")  # Node.revoke's, here
    delegate(world, "customer", "support", "d1", "orders.customer=4471")
    chain = str(Path(world["dir"]) / "d1")
    link = run_json("credential", "show", chain)["chain"][1]["id"]
    done = run_json(
        "revoke", "link", link, "--chain", chain, "--as", "customer", "--authority", "acme"
    )
    assert (done["seq"], done["revoked"]) == (0, link)
    assert len(calls) == len(recorded) == 1
    assert run_json("trace", "show", "--agent", "customer")[-1]["kind"] == "revocation"


def test_the_api_revokes_through_the_same_request(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _spy(monkeypatch, troth._api.node, "revoke_link_recorded")  # the CLI's call
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        agents.identities.create("customer")
        sub = agents.identities.create("sub")
        agents.enroll(acme.ticket({"orders.access": "read"}), identity="customer")
        chain = agents.delegate(
            "customer", to=sub, attributes={"orders.access": "read"}, ttl=60, purpose="p"
        )
        assert agents.revoke(chain, by="customer") == 0
    assert len(calls) == 1


def test_bundle_create_is_one_library_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _spy(monkeypatch, troth.node.services.policy, "sign_bundle_as")
    run_json("authority", "create", "acme")
    run_json("identity", "create", "admin")
    run_json("identity", "create", "plain")
    for name, attribute in (("admin", "troth.role=policy-admin"), ("plain", "orders.access=read")):
        ticket = run("authority", "ticket", "create", "--authority", "acme", "--attr", attribute)
        run("enroll", ticket.stdout.strip(), "--as", name)
    (tmp_path / "policies").write_text(POLICIES)
    (tmp_path / "tools").write_text(json.dumps(TOOLS))

    def create(signer: str, revision: int, *extra: str, code: int = 0) -> Any:
        return run_json(
            "policy",
            "bundle",
            "create",
            "--policies",
            str(tmp_path / "policies"),
            "--tools",
            str(tmp_path / "tools"),
            "--revision",
            str(revision),
            "--ttl",
            "30m",  # inside the admin's 1 h credential, whatever second it is issued in
            "--authority",
            "acme",
            "--as",
            signer,
            "--out",
            str(tmp_path / f"{signer}.bundle"),
            *extra,
            code=code,
        )

    assert create("admin", 1)["revision"] == 1  # the admin's chain found and carried
    assert create("acme", 2, "--node", "acme")["revision"] == 2  # the authority itself: no chain
    refused = create("plain", 3, code=2)  # no policy-admin credential of acme: as before
    assert "holds no unexpired troth.role=policy-admin credential of" in refused["message"]
    assert len(calls) == 3
