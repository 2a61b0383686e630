"""Review 59g: what the issue path's cuts (tests/test_review59g_issue.py) were tried against
and still hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import make_world, open_broker
from tests.test_secrets_tokens import CONFIG
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy
from troth.secrets.lease import b64url_decode


def test_a_token_issue_without_the_upstream_look_up_still_reads_the_stored_secret(
    tmp_path: Path,
) -> None:
    """The token engine is handed no upstream value, but the issue still reads the secret as
    stored now: a re-stored audience is in the next token, a removed secret leases nothing."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    credential = world.credential_a()
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    broker.issue(credential, "payments", now=NOW)
    broker.put_secret("payments", "token", {**CONFIG, "audience": "elsewhere"}, b"", now=NOW)
    token = str(broker.issue(credential, "payments", now=NOW).credential.reveal()["token"])
    assert json.loads(b64url_decode(token.split(".")[1]))["aud"] == "elsewhere"
    broker.remove_secret("payments", now=NOW)
    with pytest.raises(SecretError) as raised:
        broker.issue(credential, "payments", now=NOW)
    assert raised.value.reason is SecretFailure.NOT_CONFIGURED
    broker.close()
