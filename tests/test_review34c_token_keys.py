"""Review 34c, token keys 1 (from review 34a's stolen-backup finding): a copy of a broker
node's vault holds the broker's token signing key. A routine rotation
(`BrokerKeys.rotate_signing_key`) keeps the old key published for `MAX_LEASE_TTL` so the tokens
it signed still validate; a relying party validates with that JWKS alone, so a thief holding
the key mints tokens dated before the rotation (any audience, subject, scope) that every
relying party accepts for up to 30 days, and troth had no way to withdraw it. A compromised
rotation (`rotate_signing_key(now, compromised=True)`, `troth secret rotate-key --compromised`)
takes every older key out of the JWKS at once and deletes it from the vault: the tokens it
signed, the thief's and the genuine ones, stop validating everywhere that refetches the JWKS.

Was a strict xfail until `rotate_signing_key(compromised=True)` withdrew the older keys
(`SqliteSecretStore.withdraw_signing_keys`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import NOW
from tests.support.leases import make_world, open_broker
from troth.cli.main import cli
from troth.errors import SecretError, SecretFailure
from troth.node import init_node, open_node
from troth.node.services.broker import open_broker as open_node_broker
from troth.secrets import AllowListPolicy
from troth.secrets.engines.token import claims_json
from troth.secrets.jwt import encoded_header, validate_token
from troth.secrets.lease import b64url
from troth.vault import KeyHandle

DAY = 86_400


def test_a_compromised_rotation_withdraws_the_stolen_key_at_once(tmp_path: Path) -> None:
    """The thief's backdated token validates at a relying party after a routine rotation (the
    old key is still published), and is refused once the operator rotates as compromised."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"reports": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    config = {"scopes": ["read"], "ttl": 300, "audience": "reports-api"}
    broker.put_secret("reports", "token", config, b"", now=NOW)
    genuine = str(
        broker.issue(world.credential_a(), "reports", now=NOW).credential.reveal()["token"]
    )
    (stolen,) = broker.store.signing_keys()
    claims = claims_json(  # what the thief signs with its copy of the key: dated before
        issuer=broker.issuer,
        subject=world.agent_b.identity.identifier.did,
        audience="payments-api",
        issued_at=NOW + 5,
        expires_at=NOW + 20 * DAY,
        jti="made-up",
        scope="payments:admin",
        act=None,
    )
    signing_input = f"{encoded_header('EdDSA', stolen.kid)}.{b64url(claims)}"
    signature = broker.vault.sign(KeyHandle.parse(stolen.handle), signing_input.encode())
    forged = f"{signing_input}.{b64url(signature)}"

    broker.keys.rotate_signing_key(NOW + 10)  # routine: the old key stays published
    validate_token(forged, broker.jwks(NOW + 20), audience="payments-api", now=NOW + 20)

    new_kid = broker.keys.rotate_signing_key(NOW + 30, compromised=True)
    jwks = broker.jwks(NOW + 40)
    assert set(jwks.keys) == {new_kid}
    for token, audience in ((forged, "payments-api"), (genuine, "reports-api")):
        with pytest.raises(SecretError) as refused:
            validate_token(token, jwks, audience=audience, now=NOW + 40)
        assert refused.value.reason is SecretFailure.JWT_UNKNOWN_KEY
        with pytest.raises(SecretError) as refused:
            broker.validate_token(token, audience=audience, now=NOW + 40)
        assert refused.value.reason is SecretFailure.JWT_UNKNOWN_KEY
    assert {k.kid for k in broker.store.signing_keys()} == {new_kid}
    fresh = broker.issue(world.credential_a(), "reports", now=NOW + 50).credential.reveal()
    broker.validate_token(str(fresh["token"]), audience="reports-api", now=NOW + 50)


def test_the_cli_rotates_a_nodes_token_key(troth_home: Path) -> None:
    """`troth secret rotate-key --node hub [--compromised] --json`: the new kid, and which
    keys are still published."""
    init_node("hub")
    with open_node("hub") as node:
        first = open_node_broker(node, now=NOW)
        (old,) = {k.kid for k in first.store.signing_keys()}
        first.close()
    runner = CliRunner()
    routine = runner.invoke(cli, ["secret", "rotate-key", "--node", "hub", "--json"])
    assert routine.exit_code == 0, routine.output
    data = json.loads(routine.stdout)
    assert data["kid"] != old
    assert data["withdrawn"] == []
    assert old in data["published"]
    compromised = runner.invoke(
        cli, ["secret", "rotate-key", "--node", "hub", "--compromised", "--json"]
    )
    assert compromised.exit_code == 0, compromised.output
    after = json.loads(compromised.stdout)
    assert set(after["withdrawn"]) == {old, data["kid"]}
    assert after["published"] == [after["kid"]]
