"""Review 59g (performance of secrets.token.issue, benchmarks/README.md "Pass 59g"): waste cut
from the issue path, every check kept.

1. `Broker._mint_local` looked the secret's stored upstream value up (`_upstream`: the parsed
   spec's stored text, a key of three strings, a dict look-up) for every token issue, and the
   token engine never reads it: a token is signed by the broker's own key. An engine that
   reads no upstream value (`reads_upstream = False`: the token engine) is handed an empty
   one instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import make_world, open_broker
from tests.support.spies import recorded_calls
from tests.test_secrets_tokens import CONFIG
from troth.secrets import AllowListPolicy, Broker


def _counting_upstream(broker: Broker, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The secrets whose upstream value `broker` looks up from now on."""
    return recorded_calls(monkeypatch, broker, "_upstream", lambda spec: spec.name)


def test_a_token_issue_does_not_look_up_an_upstream_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    looked = _counting_upstream(broker, monkeypatch)
    issued = broker.issue(world.credential_a(), "payments", now=NOW)
    assert str(issued.credential.reveal()["token"]).count(".") == 2  # a JWT, signed
    assert looked == []
    broker.close()
