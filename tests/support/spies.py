"""Spies on a function tests count the calls of: `recorded_calls` records what each call of an
attribute was given, the call still made."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

__all__ = ["recorded_calls"]


def recorded_calls(
    monkeypatch: pytest.MonkeyPatch,
    owner: object,
    name: str,
    key: Callable[[Any], Any] = lambda first: first,
) -> list[Any]:
    """`key` of the first argument of every call of `owner`'s attribute `name` from now on
    (each call then made as before)."""
    calls: list[Any] = []
    original = getattr(owner, name)

    def recording(first: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(key(first))
        return original(first, *args, **kwargs)

    monkeypatch.setattr(owner, name, recording)
    return calls
