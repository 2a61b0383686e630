"""Review 48d, gates (found by the vault review): the Cedar validation child inherited the
node's whole environment, TROTH_VAULT_KEY and the PKCS#11 PIN included. It now keeps only
what it needs (`troth.gates.policies._child_environment`)."""

from __future__ import annotations

import pytest

from troth.gates import policies


def test_the_validation_child_gets_no_vault_key_or_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TROTH_VAULT_KEY", "00" * 32)
    monkeypatch.setenv("TROTH_PKCS11_PIN", "1234")
    monkeypatch.setenv("MY_PIN", "5678")
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    monkeypatch.setenv("PATH", "/usr/bin")
    environment = policies._child_environment()
    assert "TROTH_VAULT_KEY" not in environment
    assert "TROTH_PKCS11_PIN" not in environment
    assert "MY_PIN" not in environment
    assert environment["PYTHONPATH"] == "/somewhere"
    assert environment["PATH"] == "/usr/bin"
    assert policies.CHILD_MALLOC in environment["GLIBC_TUNABLES"]


_SCHEMA = 'entity User; action "read" appliesTo { principal: [User], resource: [User] };'


def test_the_child_still_validates_without_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    """The trimmed environment still runs the child: a good policy passes, one naming an
    undeclared action is refused with the validator's message (so the child really ran)."""
    monkeypatch.setenv("TROTH_VAULT_KEY", "00" * 32)
    good = policies._validate_in_child(
        '@id("p") permit(principal, action == Action::"read", resource);', _SCHEMA
    )
    assert good is None  # passed
    bad = policies._validate_in_child(
        '@id("p") permit(principal, action == Action::"write", resource);', _SCHEMA
    )
    assert bad is not None
    assert "unrecognized action" in bad[0][1]
