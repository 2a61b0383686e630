"""What a policy engine hands cedarpy's native call (review 61o, gates 1)."""

from __future__ import annotations

from typing import Any

import pytest

import troth.gates.cedar_call as cedar_call


def spy_native(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every request handed to cedarpy's native call from now on (the call still made)."""
    native = cedar_call._native
    assert native is not None  # cedarpy 4.12 has it (tests/test_gates_engine.py pins DIRECT)
    seen: list[dict[str, Any]] = []

    def spy(requests: list[dict[str, Any]], *args: Any) -> list[str]:
        seen.extend(requests)
        return native(requests, *args)

    monkeypatch.setattr(cedar_call, "_native", spy)
    return seen
