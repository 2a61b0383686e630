"""Review 66j: the Python API as a user misuses it.

api 1: `Secrets.put(name, engine="token", value=...)` took the value and sealed it into the
broker's store, though a token secret has no upstream value (the broker signs its tokens with a
key of its own vault; docs/python.md: "no value") and nothing ever reads it: a user who passed
a real credential believing it needed was told nothing, and it sat at rest beside the
secrets that are used. `troth secret put --engine token --value-file` is a usage error (review
65m, cli 3); the call it maps to now refuses it too, an `ArgumentError`, nothing stored.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import troth

PAYMENTS = {"scopes": ["refunds"], "ttl": 120, "max_ttl": 600, "audience": "payments"}


def test_api1_a_token_secret_given_a_value_is_refused_and_nothing_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TROTH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TROTH_VAULT_KEY", raising=False)
    with troth.Node.open("acme") as hub:
        hub.create_authority()
        with pytest.raises(troth.ArgumentError, match="value") as refused:
            hub.secrets.put("payments", engine="token", config=PAYMENTS, value=b"sk-live-1")
        assert "sk-live-1" not in str(refused.value)
        with pytest.raises(troth.SecretError) as no_broker:  # nothing stored: no broker yet
            hub.secrets.jwks()
        assert no_broker.value.reason is troth.SecretFailure.NOT_CONFIGURED
        stored = hub.secrets.put("payments", engine="token", config=PAYMENTS)  # no value: taken
        assert stored.engine == "token"
