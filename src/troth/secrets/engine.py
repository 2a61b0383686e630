"""The interface every secret engine implements, and the per-secret settings they share.

An engine turns a granted lease into an upstream credential (`issue`), extends it (`renew`) and
takes it back (`revoke`, idempotent: the broker repeats it after a crash until it succeeds).
`local` engines (token, http-inject) have no upstream side effect, so the broker issues inside
the transaction that writes the lease; the others (postgres) issue between a PENDING write and
the ACTIVE one, so a crash between the two leaves a record the sweep can clean up
(docs/secrets.md, "Crash safety").
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from troth import limits
from troth.dataclass_init import quick_init
from troth.errors import SecretError, SecretFailure
from troth.identity import Identifier
from troth.secrets.lease import LeaseCredential, LeaseHandle, SecretValue, check_scope

__all__ = ["Engine", "Grant", "LocalEngine", "SecretSpec", "config_error", "parse_spec"]

_COMMON_KEYS = frozenset({"scopes", "ttl", "max_ttl", "grantable_by"})


def config_error(detail: str) -> SecretError:
    return SecretError(SecretFailure.CONFIG_INVALID, detail)


@dataclass(frozen=True, slots=True)
class SecretSpec:
    """A secret's configuration (no value): the scopes it offers, its lease times, the
    authorities whose policy bundles may grant leases of it (`grantable_by`; empty: the
    broker's default, on a node the authority it hosts: docs/secrets.md, "Whose bundles grant
    a secret") and the engine's own settings (normalised by the engine)."""

    name: str
    engine: str
    scopes: tuple[str, ...]
    ttl: int
    max_ttl: int
    settings: Mapping[str, Any]
    grantable_by: tuple[Identifier, ...] = ()

    def to_json(self) -> dict[str, Any]:
        # `grantable_by` only when named: a secret stored before it existed keeps its stored
        # text (bound into its seal, docs/formats.md)
        named = {"grantable_by": [str(a) for a in self.grantable_by]} if self.grantable_by else {}
        return {
            "scopes": list(self.scopes),
            "ttl": self.ttl,
            "max_ttl": self.max_ttl,
            **named,
            **self.settings,
        }


@quick_init  # the issue path makes one per lease
@dataclass(frozen=True, slots=True)
class Grant:
    """A lease the book has granted, as an engine sees it."""

    handle: LeaseHandle
    identity: Identifier
    delegators: tuple[Identifier, ...]  # the nearest delegator first (RFC 8693 `act` order)
    spec: SecretSpec
    scope: tuple[str, ...]
    issued_at: int
    expires_at: int
    engine_ref: str | None


class Engine(Protocol):
    """One kind of secret: issue, renew, revoke (docs/secrets.md, "Engines")."""

    @property
    def kind(self) -> str: ...

    @property
    def local(self) -> bool:
        """True when issuing has no side effect outside the broker."""
        ...

    def check_settings(
        self, settings: Mapping[str, Any], scopes: tuple[str, ...]
    ) -> dict[str, Any]:
        """The engine's settings for a secret offering `scopes`, checked and normalised
        (SecretError CONFIG_INVALID)."""
        ...

    def engine_ref(self, spec: SecretSpec, handle: LeaseHandle) -> str | None:
        """The name of the upstream object a lease creates (a role), known before issuing."""
        ...

    def issue(self, grant: Grant, upstream: SecretValue) -> LeaseCredential: ...

    def renew(self, grant: Grant, upstream: SecretValue) -> LeaseCredential: ...

    def revoke(self, spec: SecretSpec, ref: str | None, upstream: SecretValue) -> None:
        """Take back what `issue` created; succeed when it is already gone."""
        ...

    def upstream_refs(self, spec: SecretSpec, upstream: SecretValue) -> set[str]:
        """The upstream objects this broker created for `spec` (for the orphan sweep)."""
        ...

    def location(self, settings: Mapping[str, Any]) -> tuple[object, ...]:
        """Where the objects a lease creates live, as far as revoking them goes (a server, its
        databases): a secret re-stored elsewhere first revokes its open leases. () for engines
        that create nothing upstream."""
        ...


class LocalEngine(abc.ABC):
    """The part shared by engines that create nothing upstream (token, http-inject): a renewal
    issues again, revocation has nothing to undo, there are no upstream objects to sweep."""

    local = True
    reads_upstream = True
    """Whether `issue` and `renew` use the upstream value (the token engine: no; the broker
    then hands it an empty one without looking the stored secret up)."""

    @abc.abstractmethod
    def issue(self, grant: Grant, upstream: SecretValue) -> LeaseCredential:
        """The credential for `grant`."""

    def engine_ref(self, spec: SecretSpec, handle: LeaseHandle) -> str | None:
        return None

    def renew(self, grant: Grant, upstream: SecretValue) -> LeaseCredential:
        return self.issue(grant, upstream)

    def revoke(self, spec: SecretSpec, ref: str | None, upstream: SecretValue) -> None:
        return None

    def upstream_refs(self, spec: SecretSpec, upstream: SecretValue) -> set[str]:
        return set()

    def location(self, settings: Mapping[str, Any]) -> tuple[object, ...]:
        return ()


def parse_spec(name: str, engine: Engine, config: Mapping[str, Any]) -> SecretSpec:
    """Split a secret's JSON config into the shared keys and the engine's settings."""
    if not isinstance(config, Mapping):
        raise config_error("the configuration is a JSON object")
    scopes_value = config.get("scopes", [])
    if not isinstance(scopes_value, list):
        raise config_error("scopes is a list of strings")
    try:
        scopes = check_scope(scopes_value)
    except SecretError as exc:
        raise config_error(exc.detail) from None
    max_ttl = _seconds(config, "max_ttl", 3600)
    ttl = _seconds(config, "ttl", min(300, max_ttl))
    if not limits.MIN_LEASE_TTL <= ttl <= max_ttl <= limits.MAX_LEASE_TTL:
        raise config_error(
            f"need {limits.MIN_LEASE_TTL} <= ttl <= max_ttl <= {limits.MAX_LEASE_TTL} seconds"
        )
    own = {k: v for k, v in config.items() if k not in _COMMON_KEYS}
    settings = engine.check_settings(own, scopes)
    grantors = _grantors(config.get("grantable_by", []))
    return SecretSpec(name, engine.kind, scopes, ttl, max_ttl, settings, grantors)


def _grantors(value: object) -> tuple[Identifier, ...]:
    """`grantable_by`: distinct authority identifiers, sorted (docs/secrets.md, "Whose bundles
    grant a secret")."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise config_error("grantable_by is a list of authority identifiers")
    if len(value) > limits.MAX_SECRET_GRANTORS:
        raise config_error(f"grantable_by names at most {limits.MAX_SECRET_GRANTORS} authorities")
    try:
        parsed = {Identifier.parse(item) for item in value}
    except ValueError as exc:
        raise config_error(f"grantable_by: {exc}") from None
    return tuple(sorted(parsed, key=lambda identifier: identifier.digest))


def _seconds(config: Mapping[str, Any], key: str, default: int) -> int:
    value = config.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise config_error(f"{key} is a whole number of seconds")
    return value
