"""Review 59k (short adversarial review of review 59e's public API argument checks).

- api 1: docs/python.md ("Errors") promises an ArgumentError for text with a lone surrogate
  given to a call of `Authority` or `Verifier`; identifier text was passed on unchecked there
  and failed as MalformedText ("not an identifier"): `Authority.revoke_identity("\\ud800")`,
  `Verifier(trust=["\\ud800"])`, where `Node.delegate(to=)` and `Verifier.verify(presenter=)`
  with the same text were the ArgumentError (review 59e checked the names and other text).
- api 2: a timeout given as a whole number too large for a float (`Channel.call(timeout=10**400)`,
  checked by `check_seconds`) failed with a bare OverflowError ("int too large to convert to
  float") from the check itself, not the ArgumentError the check is for.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import troth
from tests.support.public_api import acme_and_agents
from troth._api.arguments import check_seconds

LONE = "\ud800"


@pytest.mark.parametrize("where", ["revoke_identity", "verifier_trust"])
def test_api1_identifier_text_with_a_lone_surrogate_is_an_argument_error(where: str) -> None:
    with acme_and_agents() as scene:
        calls: dict[str, Callable[[], object]] = {
            "revoke_identity": lambda: scene.acme.revoke_identity(LONE),
            "verifier_trust": lambda: troth.Verifier(trust=[LONE], feeds=scene.acme),
        }
        with pytest.raises(troth.ArgumentError) as caught:
            calls[where]()
        assert "lone surrogate" in str(caught.value)


def test_api2_a_timeout_too_large_for_a_float_is_an_argument_error() -> None:
    with pytest.raises(troth.ArgumentError, match=r"Channel\.call: timeout"):
        check_seconds("Channel.call", "timeout", 10**400)
