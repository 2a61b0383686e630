"""Review 66s (secrets): findings.

secrets 1 (low; fixed) — review 66j, api 1 made `Secrets.put` refuse a value for a token secret
(the broker signs its tokens with a key of its own vault; the value was sealed into the store
and never read), but in the API layer only: `troth.secrets.Broker.put_secret`, public, still
took `b"sk-live-..."` for a token secret and sealed it at rest beside the secrets that are used.
The check is now the broker's own (`troth.secrets.upstreams.check_value`, where the other
engines' values are checked): SecretError CONFIG_INVALID, nothing stored, whoever calls it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import broker_at
from troth.errors import SecretError, SecretFailure

PAYMENTS = {"scopes": ["refunds"], "ttl": 120, "max_ttl": 600, "audience": "payments"}


def test_secrets1_the_broker_refuses_a_value_for_a_token_secret(tmp_path: Path) -> None:
    with broker_at(tmp_path / "node.db", now=NOW) as broker:
        with pytest.raises(SecretError) as refused:
            broker.put_secret("payments", "token", PAYMENTS, b"sk-live-1", now=NOW)
        assert refused.value.reason is SecretFailure.CONFIG_INVALID
        assert "sk-live-1" not in str(refused.value)
        assert broker.store.get_config("payments") is None  # nothing stored
        spec = broker.put_secret("payments", "token", PAYMENTS, b"", now=NOW)
        assert spec.scopes == ("refunds",)
