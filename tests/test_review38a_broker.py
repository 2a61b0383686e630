"""Review 38a, broker: what `troth secret put` tells the operator about who grants a secret
on a node that hosts no authority (docs/secrets.md, "Whose bundles grant a secret")."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.brokers import PAYMENTS
from tests.test_cli_secrets import Session, session  # noqa: F401 (the fixture)


def test_secret_put_on_a_node_hosting_none_says_who_grants_it(
    session: Session,  # noqa: F811 - the fixture of tests/test_cli_secrets.py
    tmp_path: Path,
) -> None:
    """Broker 1. A node hosting no authority and trusting none yet stores a secret naming
    none: nothing is recorded (there is no authority to record), and the served broker then
    grants it under the bundles of the one authority the node trusts once it trusts exactly
    one (its first enrollment), else of none. `troth secret put` said "grantable by: the
    authority the node hosts", of a node that hosts none: the operator was told its own
    authority grants the secret, and nothing about the first enrollment. It now says so. Was a
    strict xfail until `troth secret put` said who grants it on a node hosting none
    (`_default_grantors`)."""
    session.run("node", "create", "desk")
    (tmp_path / "p.json").write_text(json.dumps(PAYMENTS))
    put = ("secret", "put", "keys", "--engine", "token", "--config", str(tmp_path / "p.json"))
    assert session.json(*put, "--node", "desk")["grantable_by"] == []
    said = session.run(*put, "--node", "desk").stdout
    assert "the authority the node hosts" not in said
    assert "the node hosts no authority and trusts none" in said
    assert "--grantable-by" in said
