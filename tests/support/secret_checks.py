"""Small checks the secrets broker tests share: the reason a call is refused with, a lease's
state, and a broker lending one token secret to some identities of a `LeaseWorld`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests.support.leases import open_broker
from troth.errors import SecretError, SecretFailure
from troth.identity import Identifier
from troth.secrets import AllowListPolicy, Broker
from troth.secrets.lease import LeaseHandle, LeaseState


def refusal(call: Callable[[], object]) -> SecretFailure:
    """The reason `call` is refused with (it must raise SecretError)."""
    with pytest.raises(SecretError) as caught:
        call()
    return caught.value.reason


def lease_state(broker: Broker, handle: LeaseHandle) -> LeaseState:
    """The state of a lease the broker holds."""
    lease = broker.book.lease(handle)
    assert lease is not None
    return lease.state


def token_broker(
    path: Path, holders: list[Identifier], config: Mapping[str, object], *, now: int
) -> Broker:
    """A broker at `path` holding token secret `payments` (`config`), which the allow list
    lends `holders` (every scope)."""
    policy = AllowListPolicy({holder: {"payments": None} for holder in holders})
    _db, broker = open_broker(path, now=now, policy=policy)
    if not broker.secrets():
        broker.put_secret("payments", "token", dict(config), b"", now=now)
    return broker
