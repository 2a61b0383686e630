"""The leased-secret CLI against a running broker node: secret put (the value from stdin or a
file, never argv), secret lease over TCP as a local identity, lease list / renew / revoke,
lease revoke --holder on the broker node, secret jwks (validating the token in PyJWT), errors
that say what to do — and a canary upstream secret that appears in nothing any command prints,
nor in the node's log or files."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from click.testing import CliRunner, Result

from tests.support.brokers import POLICIES
from troth.cli.main import cli
from troth.gates import SqliteBundleTable
from troth.node import open_node

CANARY = "Bearer sk_live_CLI_CANARY_" + "5e1f0c9a7b"
PAYMENTS = {"audience": "payments", "scopes": ["refunds", "charges"], "ttl": 120}
UPSTREAM = {
    "upstream": "http://127.0.0.1:9/api",
    "header": "Authorization",
    "rules": [{"methods": ["GET"], "path": "/orders/*"}],
    "scopes": ["read"],
}


class Session:
    """Every command's output, kept for the canary scan."""

    def __init__(self) -> None:
        self.outputs: list[str] = []

    def run(self, *args: str, code: int = 0, stdin: str | None = None) -> Result:
        result = CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)
        self.outputs += [result.stdout, result.stderr]
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        return result

    def json(self, *args: str, code: int = 0, stdin: str | None = None) -> Any:
        return json.loads(self.run(*args, "--json", code=code, stdin=stdin).stdout)


@pytest.fixture
def session(troth_home: Path) -> Iterator[Session]:
    runs = Session()
    yield runs
    for name in ("hub",):
        if (troth_home / "nodes" / name).is_dir():
            CliRunner().invoke(cli, ["node", "stop", name])


def _store_bundle(tmp_path: Path, runs: Session) -> None:
    """A bundle signed by the hub's authority, stored on the hub before it starts (`troth
    policy push` distributes bundles; here the stored one is what the broker loads)."""
    (tmp_path / "p.cedar").write_text(POLICIES)
    (tmp_path / "tools.json").write_text("{}")
    bundle = tmp_path / "b.bundle"
    runs.run(
        "policy", "bundle", "create", "--policies", str(tmp_path / "p.cedar"),
        "--tools", str(tmp_path / "tools.json"), "--revision", "1", "--as", "hub",
        "--authority", "hub", "--out", str(bundle), "--node", "hub",
    )  # fmt: skip
    with open_node("hub") as node:
        authority = node.authority().identifier.digest
        assert SqliteBundleTable(node.db).save_if_newer(
            authority, 1, bundle.read_bytes(), int(time.time())
        )


def test_put_lease_list_renew_revoke_jwks(
    session: Session, troth_home: Path, tmp_path: Path
) -> None:
    runs = session
    runs.run("authority", "create", "hub")
    (tmp_path / "payments.json").write_text(json.dumps(PAYMENTS))
    put = runs.json(
        "secret", "put", "payments", "--engine", "token",
        "--config", str(tmp_path / "payments.json"), "--node", "hub",
    )  # fmt: skip
    assert put == {
        "secret": "payments",
        "engine": "token",
        "scopes": ["charges", "refunds"],
        "ttl": 120,
        "max_ttl": 3600,
        "grantable_by": [],  # the authority the node hosts (review 37c, broker 1)
        "service_added": True,
    }
    (tmp_path / "api.json").write_text(json.dumps(UPSTREAM))
    text = runs.run(
        "secret", "put", "orders-api", "--engine", "http-inject",
        "--config", str(tmp_path / "api.json"), "--node", "hub", stdin=CANARY + "\n",
    ).stdout  # fmt: skip
    assert "orders-api" in text
    _store_bundle(tmp_path, runs)
    route = "/tcp/" + runs.json("node", "start", "hub", "--tcp-listen", "127.0.0.1:0")["listening"]
    runs.run("node", "create", "desk")
    runs.run("identity", "create", "support-agent", "--node", "desk")
    ticket = runs.json(
        "authority", "ticket", "create", "--authority", "hub", "--attr", "agents.team=support"
    )["ticket"]
    runs.run("enroll", ticket, "--as", "support-agent", "--node", "desk")
    holder = ("--as", "support-agent", "--broker", route, "--node", "desk")

    issued = runs.json("secret", "lease", "payments", "--scope", "refunds", "--ttl", "2m", *holder)
    token = issued["credential"]["token"]
    assert issued["lease"]["scope"] == ["refunds"]
    assert issued["lease"]["expires_at"] - issued["lease"]["issued_at"] == 120
    keys = runs.json("secret", "jwks", "--node", "hub")
    claims = pyjwt.decode(
        token,
        key=pyjwt.PyJWKSet.from_dict(keys).keys[0].key,
        algorithms=["EdDSA"],
        audience="payments",
    )
    assert claims["jti"] == issued["lease"]["handle"]
    human = runs.run("secret", "lease", "payments", "--scope", "refunds", *holder).stdout
    assert "lease id: lease_" in human
    assert "token: ey" in human

    listed = runs.json("lease", "list", *holder)["leases"]
    assert {lease["handle"] for lease in listed} >= {issued["lease"]["handle"]}
    renewed = runs.json("lease", "renew", issued["lease_id"], "--ttl", "1m", *holder)
    assert renewed["lease"]["expires_at"] <= int(time.time()) + 61
    assert renewed["credential"]["token"] != token
    revoked = runs.json("lease", "revoke", "-", *holder, stdin=issued["lease_id"] + "\n")
    assert revoked["lease"]["state"] == "revoked"

    # refusals say why and what to do; the exit codes are the house's
    denied = runs.run("secret", "lease", "payments", "--scope", "charges", *holder, code=1)
    assert "no policy permits" in denied.stderr
    again = runs.json("lease", "renew", issued["lease_id"], *holder, code=1)
    assert "revoked" in again["message"]
    missing = runs.run("secret", "lease", "payments", "--as", "support-agent", code=2)
    assert "--broker ROUTE" in missing.stderr
    both = runs.run("lease", "revoke", issued["lease_id"], "--holder", "support-agent", code=2)
    assert "no LEASE" in both.stderr
    no_value = runs.run(
        "secret", "put", "x", "--engine", "postgres", "--config", str(tmp_path / "api.json"),
        "--value-file", str(tmp_path / "nope"), "--node", "hub", code=4,
    )  # fmt: skip
    assert "cannot read secret value" in no_value.stderr

    # the broker node's operator revokes every lease of the agent
    runs.json("secret", "lease", "payments", "--scope", "refunds", *holder)
    swept = runs.json("lease", "revoke", "--holder", "support-agent", "--node", "hub")
    assert [lease["state"] for lease in swept["leases"]] == ["revoked"] * len(swept["leases"])
    assert len(swept["leases"]) >= 2
    assert runs.json("lease", "list", *holder)["leases"] == []

    runs.run("node", "stop", "hub")
    scanned = [*runs.outputs, (troth_home / "nodes" / "hub" / "node.log").read_text()]
    for text in scanned:
        assert CANARY not in text
        assert CANARY.split()[1] not in text
    for path in (troth_home / "nodes" / "hub").iterdir():
        if path.is_file():
            assert CANARY.split()[1].encode() not in path.read_bytes(), path
