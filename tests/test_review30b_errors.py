"""Review 30b, errors: the broker's failures are the secrets layer's typed error, on every
engine path."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from tests.support.leases import make_world, open_broker
from troth.errors import SecretFailure
from troth.secrets import AllowListPolicy
from troth.secrets.endpoint import BrokerCaller, BrokerEndpoint
from troth.secrets.wire import IssueArgs
from troth.vault import KeyHandle

TOKEN = {"scopes": ["refunds"], "ttl": 60, "max_ttl": 600, "audience": "payments"}


def test_a_token_engine_failure_at_issue_is_a_typed_refusal(tmp_path: Path) -> None:
    """Review 30b, errors 1 (was a strict xfail until `Broker._mint_local` ran the engine
    through `_engine_call`). The token engine mints inside the lease's transaction, outside
    `_engine_call`: a vault that cannot sign (an HSM session lost; here the signing key
    deleted) made `issue` raise the vault's KeyNotFound, which the served endpoint does not
    answer (the node says "internal error"), where `renew` of the same lease answers
    `ENGINE_FAILED`."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_b.identifier: {"payments": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("payments", "token", TOKEN, b"", now=NOW)
    credential = world.credential_b()
    issued = broker.issue(credential, "payments", now=NOW)
    (record,) = broker.store.signing_keys()
    broker.vault.delete(KeyHandle.parse(record.handle))
    endpoint = BrokerEndpoint(broker)
    caller = BrokerCaller(world.agent_b.identifier, (credential,))
    answer = endpoint.handle("issue", IssueArgs("payments").to_wire(), caller, NOW + 1)
    assert answer["refused"] == SecretFailure.ENGINE_FAILED.name, answer
    assert answer["detail"] == "KeyNotFound"
    renewed = endpoint.handle(
        "renew", {"lease_id": issued.lease_id.text(), "ttl": None}, caller, NOW + 2
    )
    assert renewed == answer  # the same failure, the same answer
    assert len(broker.leases(credential)) == 1  # the refused issue left no lease
