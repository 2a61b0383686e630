"""Gate 3: a tool that needs a secret gets a lease of it at invocation (docs/secrets.md,
"Gate 3").

A tool function declares what it needs with `@needs_secret("payments", scope=["refunds"],
ttl=120)` and takes a keyword-only `lease` parameter; the `ToolGate` (troth.gates) decides the
call (gate 2), then `ToolLeases` — its `LeaseProvider` — leases the secret for the caller's
verified credential and hands the tool a `ToolLease`. A live lease is reused for the next call
when it is the same identity, the same credential chain, the same secret and scope, and it has
at least `min_left` seconds left (and, with an in-process broker, is still active). A lease the
broker refuses denies the call (`LeaseDenied`) with the broker's reason.

The broker is a `LeaseSource`: `LocalLeases` for a broker in this process; the node adapter
(troth.node.services.broker.RemoteLeases) for one served over a secure channel.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

from troth.clock import Clock, SystemClock
from troth.credentials import VerifiedCredential
from troth.crypto import sha256
from troth.errors import SecretError, SecretFailure
from troth.gates import (
    DecisionRecord,
    LeaseDenied,
    Outcome,
    PolicyDecision,
    Tool,
    ToolCall,
)
from troth.secrets.broker import Broker, IssuedLease
from troth.secrets.engines.http_inject import HttpRequest, HttpResponse
from troth.secrets.lease import LeaseCredential, LeaseId, check_scope, check_secret_name

__all__ = [
    "DEFAULT_MIN_LEFT",
    "LeaseSource",
    "LocalLeases",
    "SecretNeed",
    "ToolLease",
    "ToolLeases",
    "needs_secret",
    "secret_need",
]

DEFAULT_MIN_LEFT: Final = 30
"""Seconds a reused lease must still have (a shorter-lived lease is leased anew)."""
_NEED_ATTRIBUTE: Final = "__troth_secret_need__"
_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class SecretNeed:
    """What a tool needs: a lease of `secret` with `scope` (None: every scope the secret
    offers) for `ttl` seconds (None: the secret's default), reused while `min_left` seconds
    remain."""

    secret: str
    scope: tuple[str, ...] | None = None
    ttl: int | None = None
    min_left: int = DEFAULT_MIN_LEFT

    def __post_init__(self) -> None:
        check_secret_name(self.secret)
        if self.scope is not None:
            object.__setattr__(self, "scope", check_scope(list(self.scope)))
        if self.ttl is not None and self.ttl < 1:
            raise ValueError("a lease ttl is at least 1 second")
        if self.min_left < 0:
            raise ValueError("min_left is not negative")


def needs_secret(
    secret: str,
    *,
    scope: Iterable[str] | None = None,
    ttl: int | None = None,
    min_left: int = DEFAULT_MIN_LEFT,
) -> Callable[[_F], _F]:
    """Declare that a tool function needs a lease of `secret` (it receives a `ToolLease` as its
    keyword-only `lease` parameter)."""
    need = SecretNeed(secret, None if scope is None else tuple(scope), ttl, min_left)

    def mark(func: _F) -> _F:
        setattr(func, _NEED_ATTRIBUTE, need)
        return func

    return mark


def secret_need(func: Callable[..., Any] | None) -> SecretNeed | None:
    """What `func` declared with `needs_secret` (None: no secret)."""
    need = getattr(func, _NEED_ATTRIBUTE, None)
    return need if isinstance(need, SecretNeed) else None


class LeaseSource(Protocol):
    """A broker as gate 3 uses it."""

    def issue(self, credential: VerifiedCredential, need: SecretNeed, now: int) -> IssuedLease:
        """A new lease for `credential`'s actor (SecretError when refused)."""
        ...

    def live(self, issued: IssuedLease, now: int) -> bool:
        """Whether a lease handed out before may still be handed to a tool."""
        ...

    def forward(
        self, credential: VerifiedCredential, lease_id: LeaseId, request: HttpRequest, now: int
    ) -> HttpResponse:
        """Send `request` under an http-inject lease."""
        ...


class LocalLeases:
    """A `LeaseSource` over a broker in this process."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def issue(self, credential: VerifiedCredential, need: SecretNeed, now: int) -> IssuedLease:
        return self.broker.issue(credential, need.secret, scope=need.scope, ttl=need.ttl, now=now)

    def live(self, issued: IssuedLease, now: int) -> bool:
        lease = self.broker.book.lease(issued.lease.handle)
        return lease is not None and lease.live_at(now)

    def forward(
        self, credential: VerifiedCredential, lease_id: LeaseId, request: HttpRequest, now: int
    ) -> HttpResponse:
        return self.broker.forward(credential, lease_id, request, now=now)


class ToolLease:
    """What a tool receives: its lease (public facts) and the credential the engine made (the
    token, the database login), hidden from repr. `forward` sends a request under an
    http-inject lease."""

    __slots__ = ("_credential", "_forward", "expires_at", "handle", "scope", "secret")

    def __init__(
        self,
        issued: IssuedLease,
        forward: Callable[[HttpRequest], HttpResponse],
    ) -> None:
        self.secret = issued.lease.secret
        self.handle = str(issued.lease.handle)
        self.scope = issued.lease.scope
        self.expires_at = issued.lease.expires_at
        self._credential: LeaseCredential = issued.credential
        self._forward = forward

    @property
    def token(self) -> str:
        """The token of a `token` lease (SecretError BAD_REQUEST for another engine)."""
        token = self._credential.reveal().get("token")
        if not isinstance(token, str):
            raise SecretError(SecretFailure.BAD_REQUEST, f"{self.secret} is not a token secret")
        return token

    def reveal(self) -> dict[str, str | int]:
        """Every field of the credential (a database login's user, password, host, ...)."""
        return self._credential.reveal()

    def forward(self, request: HttpRequest) -> HttpResponse:
        """Send `request` upstream under this (http-inject) lease, the secret added there."""
        return self._forward(request)

    def __repr__(self) -> str:
        return f"ToolLease({self.secret}, {self.handle}, until {self.expires_at}, <hidden>)"

    __str__ = __repr__


class ToolLeases:
    """The `LeaseProvider` of gate 3 (module docstring): `needs` maps tool names to what they
    need; `for_tools` reads the needs the tools' functions declared."""

    def __init__(
        self,
        source: LeaseSource,
        needs: Mapping[str, SecretNeed],
        *,
        clock: Clock | None = None,
    ) -> None:
        self.source = source
        self.needs = dict(needs)
        self.clock: Clock = clock or SystemClock()
        self._held: dict[tuple[bytes, bytes, SecretNeed], IssuedLease] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_tools(
        cls, source: LeaseSource, tools: Iterable[Tool], *, clock: Clock | None = None
    ) -> ToolLeases:
        """Gate 3 for `tools`: each tool whose function was marked with `needs_secret`."""
        needs = {tool.name: need for tool in tools if (need := secret_need(tool.run)) is not None}
        return cls(source, needs, clock=clock)

    def lease(self, record: DecisionRecord) -> AbstractContextManager[object | None]:
        """The lease an allowed call's tool receives (None: its tool needs no secret);
        LeaseDenied when the broker refuses it."""
        request, credential = record.request, record.credential
        need = self.needs.get(request.tool) if isinstance(request, ToolCall) else None
        if need is None:
            return nullcontext(None)
        if credential is None:  # an allowed call always has one: refuse rather than guess
            raise LeaseDenied(_denied(need, "the call carries no verified credential"))
        return self._leased(credential, need, record.at)

    @contextmanager
    def _leased(
        self, credential: VerifiedCredential, need: SecretNeed, now: int
    ) -> Iterator[ToolLease]:
        issued = self._obtain(credential, need, now)
        source = self.source

        def forward(request: HttpRequest) -> HttpResponse:
            return source.forward(credential, issued.lease_id, request, self.clock.now())

        yield ToolLease(issued, forward)

    def _obtain(self, credential: VerifiedCredential, need: SecretNeed, now: int) -> IssuedLease:
        # by the chain's hash: a chain may be limits.MAX_CHAIN_BYTES, and _HELD_LIMIT of them
        # held 128 MiB (review 48f, gate 3 1)
        key = (credential.actor.digest, sha256(credential.chain), need)
        with self._lock:
            held = self._held.get(key)
        fresh = held is not None and held.lease.expires_at - now >= need.min_left
        if held is not None and fresh and self.source.live(held, now):
            return held
        try:
            issued = self.source.issue(credential, need, now)
        except SecretError as exc:
            raise LeaseDenied(_denied(need, str(exc))) from None
        with self._lock:
            if len(self._held) >= _HELD_LIMIT:  # keep the live ones; all, if that is room
                live = {k: v for k, v in self._held.items() if v.lease.expires_at > now}
                self._held = live if len(live) < _HELD_LIMIT else {}
            self._held[key] = issued
        return issued


_HELD_LIMIT: Final = 1024


def _denied(need: SecretNeed, why: str) -> PolicyDecision:
    return PolicyDecision.deny(
        Outcome.LEASE_DENIED, f"denied: no lease of secret {need.secret}: {why}"
    )
