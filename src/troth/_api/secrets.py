"""The public face of a node's leased secrets (`Node.secrets`): as a broker's operator, store an
upstream secret (the node becomes a broker), rotate the token key, read the JWKS, revoke every
lease of an identity; as an agent, lease a short-lived scoped secret of one's own from a broker
node over a secure channel, list, renew and give back one's leases.

The calls are the ones `troth secret put`, `rotate-key`, `jwks`, `secret lease` and `troth
lease list`, `renew`, `revoke` make (`troth.node.services.broker`, `BrokerClient`): the same
answers, the same refusals (docs/secrets.md).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from troth import limits
from troth._api.arguments import check_flag, check_identity, check_peer, check_text, check_whole
from troth.errors import ArgumentError, DecodeError, SecretError
from troth.identity import Identifier
from troth.kinds import check_kind, got
from troth.node.secret_api import ENGINES, broker_jwks, revoke_holder, trace_audit
from troth.secrets import IssuedLease, Lease, LeaseCredential, LeaseId
from troth.secrets.lease import check_scope, check_secret_name

if TYPE_CHECKING:
    from troth._api.node import IdentityRef, Node, PeerRef
    from troth.node.services.broker import BrokerClient

__all__ = ["Secrets", "StoredSecret", "TokenKeys"]


@dataclass(frozen=True, slots=True)
class StoredSecret:
    """An upstream secret a node stored (`Secrets.put`; never its value): its `engine`, the
    `scopes` it offers, its default and longest lease (`ttl`, `max_ttl`, seconds), the
    authorities whose bundles grant it (`grantable_by`; none: the node's default), and whether
    the node was made a broker now (`service_added`: a running daemon serves it once
    restarted)."""

    secret: str
    """The secret's name (`Secret::"<name>"` in Cedar)."""
    engine: str
    """How a lease is made: "token", "postgres" or "http-inject"."""
    scopes: tuple[str, ...]
    """The scopes a lease may ask for (sorted)."""
    ttl: int
    """A lease's default lifetime (seconds)."""
    max_ttl: int
    """The longest a lease lives, renewals included (seconds)."""
    grantable_by: tuple[Identifier, ...]
    """The authorities whose bundles may grant leases of it (none: the node's default)."""
    service_added: bool
    """Whether the node was made a broker now (a running daemon serves it once restarted)."""


@dataclass(frozen=True, slots=True)
class TokenKeys:
    """The broker's token signing keys after `Secrets.rotate_key`: the new key's `kid`, the
    kids withdrawn, and the kids the JWKS publishes now."""

    kid: str
    """The new signing key's id (RFC 7638 thumbprint)."""
    withdrawn: tuple[str, ...]
    """The ids of the keys withdrawn from the JWKS and the vault."""
    published: tuple[str, ...]
    """The ids of the keys the JWKS publishes now."""


class Secrets:
    """The node's leased secrets (`Node.secrets`): upstream secrets sealed by its vault, lent
    to agents as short-lived scoped leases that the node's policy bundles grant (Cedar action
    `lease` on `Secret::"<name>"`; no bundle, no lease), revoked when they end, when their
    holder's credential is revoked, or by the operator (docs/secrets.md)."""

    def __init__(self, node: Node) -> None:
        from troth._api.node import Node

        self._node = check_kind("Secrets", "node", node, Node, "a Node (use node.secrets)")

    # -- the broker's operator, on this node ------------------------------------------------

    def put(
        self,
        name: str,
        *,
        engine: str,
        config: Mapping[str, Any] | bytes,
        value: bytes = b"",
        grantable_by: Iterable[PeerRef] = (),
    ) -> StoredSecret:
        """Store upstream secret `name` on this node, sealed by its vault, and make the node a
        broker (it serves `broker` when it runs), as `troth secret put`: `engine` "token" (the
        broker mints JWTs; no `value`, one given an ArgumentError), "postgres" (a role per
        lease) or "http-inject" (the broker forwards requests adding the secret); `config` its
        JSON configuration (scopes, ttl, max_ttl and the engine's settings); `value` the
        upstream secret. `grantable_by`: the authorities whose bundles may grant leases of it
        (default: the authority the node hosts). SecretError when refused (a bad
        configuration: CONFIG_INVALID)."""
        call = "Secrets.put"
        _secret_name(call, "name", name)
        check_text(call, "engine", engine)
        if engine not in ENGINES:
            raise ArgumentError(call, "engine", " or ".join(ENGINES), repr(engine[:40]))
        if not isinstance(value, bytes):
            raise ArgumentError(call, "value", "the secret's bytes", got(value))
        if engine == "token" and value:  # never read: refused, as the CLI's --value-file
            raise ArgumentError(  # (review 66j, api 1: it was sealed into the store unused)
                call,
                "value",
                "empty for a token secret (the node signs its tokens)",
                f"{len(value)} bytes",
            )
        if len(value) > limits.MAX_SECRET_VALUE_BYTES:
            raise ArgumentError(
                call, "value", f"at most {limits.MAX_SECRET_VALUE_BYTES} bytes", "more"
            )
        data = _config(call, config)
        if isinstance(grantable_by, str) or not isinstance(grantable_by, Iterable):
            raise ArgumentError(
                call, "grantable_by", "an iterable of authorities", got(grantable_by)
            )
        node = self._node
        grantors = tuple(
            node._identifier_of(check_peer(call, "grantable_by", each)) for each in grantable_by
        )
        from troth.node.services.broker import put_secret

        done = put_secret(
            node._stored,
            name,
            engine,
            data,
            value,
            now=node._clock.now(),
            grantable_by=grantors,
        )
        return StoredSecret(
            secret=done["secret"],
            engine=done["engine"],
            scopes=tuple(done["scopes"]),
            ttl=done["ttl"],
            max_ttl=done["max_ttl"],
            grantable_by=tuple(Identifier.parse(a) for a in done["grantable_by"]),
            service_added=done["service_added"],
        )

    def rotate_key(self, *, compromised: bool = False) -> TokenKeys:
        """Rotate the broker's token signing key, as `troth secret rotate-key`: routinely the
        old key stays in the JWKS until the tokens it signed expire; `compromised` withdraws
        every older key at once (holders lease again)."""
        check_flag("Secrets.rotate_key", "compromised", compromised)
        from troth.node.services.broker import rotate_token_key

        node = self._node
        done = rotate_token_key(node._stored, compromised=compromised, now=node._clock.now())
        return TokenKeys(done["kid"], tuple(done["withdrawn"]), tuple(done["published"]))

    def jwks(self) -> dict[str, Any]:
        """The broker's token keys as a JWKS document (what a service validates the broker's
        tokens with; kid = RFC 7638 thumbprint), as `troth secret jwks`; SecretError
        NOT_CONFIGURED on a node that is no broker (none is made)."""
        return broker_jwks(self._node._stored, now=self._node._clock.now()).to_json()

    def revoke_holder(self, identity: PeerRef) -> list[Lease]:
        """Revoke every lease of `identity` at this node's broker, and those of the chains it
        delegated, as `troth lease revoke --holder`: their database sessions end, their
        tokens stop validating with the broker's state, each revocation a record signed into
        the node's trace log. The leases, newest first."""
        node = self._node
        who = node._identifier_of(check_peer("Secrets.revoke_holder", "identity", identity))
        from troth._api.network import runtimes_here

        # each revocation signed into the node's trace log, as its broker's (review 61j, api 6)
        served = runtimes_here(node)
        with (
            contextlib.nullcontext(served[0].traces.audit_sink())
            if served
            else trace_audit(node._stored, node._clock)
        ) as audit:
            return revoke_holder(node._stored, who, now=node._clock.now(), audit=audit)

    # -- an agent, at a broker node ---------------------------------------------------------

    async def lease(
        self,
        secret: str,
        *,
        holder: IdentityRef,
        broker: str,
        expect: PeerRef | None = None,
        scope: Sequence[str] | None = None,
        ttl: int | None = None,
    ) -> IssuedLease:
        """Lease `secret` from the broker node at route `broker` as local identity `holder`
        (it proves who it is over a secure channel), as `troth secret lease`: `scope` the
        scopes asked for (default: every scope the secret offers), `ttl` seconds (default: the
        secret's). The `IssuedLease`: its `lease_id` (shown only now: renewing and giving back
        need it), the `lease` and its `credential` (`reveal()`: the token, the login).
        SecretError when the broker refuses (DENIED: no bundle grants it)."""
        call = "Secrets.lease"
        _secret_name(call, "secret", secret)
        asked = None if scope is None else _scope(call, scope)
        seconds = _ttl(call, ttl)
        async with self._client(call, holder, broker, expect) as client:
            return await client.issue(secret, scope=asked, ttl=seconds)

    async def leases(
        self,
        *,
        holder: IdentityRef,
        broker: str,
        expect: PeerRef | None = None,
        ended: bool = False,
    ) -> list[Lease]:
        """`holder`'s own leases at the broker (nobody else's), newest first; with `ended`
        also those that ended, as `troth lease list`."""
        check_flag("Secrets.leases", "ended", ended)
        async with self._client("Secrets.leases", holder, broker, expect) as client:
            return await client.leases(ended=ended)

    async def renew(
        self,
        lease_id: str,
        *,
        holder: IdentityRef,
        broker: str,
        expect: PeerRef | None = None,
        ttl: int | None = None,
    ) -> tuple[Lease, LeaseCredential]:
        """Extend lease `lease_id` from now (never past its max ttl nor the credential that
        justified it), as `troth lease renew`: the lease and its new credential."""
        lease = _lease_id("Secrets.renew", lease_id)
        seconds = _ttl("Secrets.renew", ttl)
        async with self._client("Secrets.renew", holder, broker, expect) as client:
            return await client.renew(lease, ttl=seconds)

    async def give_back(
        self, lease_id: str, *, holder: IdentityRef, broker: str, expect: PeerRef | None = None
    ) -> Lease:
        """Revoke `holder`'s own lease `lease_id` at the broker, as `troth lease revoke`."""
        lease = _lease_id("Secrets.give_back", lease_id)
        async with self._client("Secrets.give_back", holder, broker, expect) as client:
            return await client.revoke(lease)

    @contextlib.asynccontextmanager
    async def _client(
        self, call: str, holder: IdentityRef, broker: str, expect: PeerRef | None
    ) -> AsyncIterator[BrokerClient]:
        """A broker client as `holder`, on the node's running runtime (outside `serve`, the
        node runs for the block's duration, as `Node.connect`)."""
        from troth._api.node import _ref
        from troth.node.services.broker import BrokerClient, broker_route

        node = self._node
        check_identity(call, "holder", holder)
        check_text(call, "broker", broker)
        if expect is not None:
            check_peer(call, "expect", expect)
        name = _ref(holder, node._stored, call, "holder")
        try:
            route = broker_route(broker)
        except ValueError as exc:  # a route to another service (a bad one: RoutingError)
            raise ArgumentError(
                call, "broker", "a route such as /tcp/HOST:PORT", str(exc)
            ) from None
        pinned = None if expect is None else node._identifier_of(expect)
        async with node._runner.running(node) as running:  # shared outside serve (review 62j)
            yield BrokerClient(running._on_loop(), route, name, expect=pinned)


def _config(call: str, config: Mapping[str, Any] | bytes) -> bytes:
    """A secret's JSON configuration as bytes (a mapping is written as JSON)."""
    if isinstance(config, bytes):
        data = config
    elif isinstance(config, Mapping):
        try:
            data = json.dumps(dict(config), allow_nan=False).encode()
        except (TypeError, ValueError, RecursionError):  # nested past json: (review 64n, api 2)
            raise ArgumentError(
                call, "config", "a JSON object", "values JSON cannot hold"
            ) from None
    else:
        raise ArgumentError(call, "config", "a mapping or JSON bytes", got(config))
    if len(data) > limits.MAX_SECRET_CONFIG_BYTES:
        raise ArgumentError(
            call, "config", f"at most {limits.MAX_SECRET_CONFIG_BYTES} bytes", "more"
        )
    return data


def _secret_name(call: str, parameter: str, name: object) -> str:
    """`name` if it is a secret's name, else an ArgumentError before anything is done (review
    63j, api 1: the broker's SecretError BAD_REQUEST, `lease`'s once its node ran)."""
    text = check_text(call, parameter, name)
    try:
        return check_secret_name(text)
    except SecretError as exc:
        raise ArgumentError(call, parameter, "a secret's name", exc.detail) from None


def _scope(call: str, scope: Sequence[str]) -> tuple[str, ...]:
    """The scopes asked for, each a scope token (RFC 6749 §3.3), at most
    `limits.MAX_LEASE_SCOPES`: else an ArgumentError before anything is sent (review 63j,
    api 1: the broker refused them, SecretError BAD_REQUEST, a round trip later); not none."""
    if isinstance(scope, str) or not isinstance(scope, Sequence):
        raise ArgumentError(call, "scope", "a sequence of scope names", got(scope))
    if not scope:  # the broker refuses it (review 65n, secrets 1)
        raise ArgumentError(
            call, "scope", "at least one scope (None: every scope the secret offers)", "none"
        )
    for each in scope:
        check_text(call, "scope", each)
    try:
        check_scope(list(scope))
    except SecretError as exc:
        raise ArgumentError(call, "scope", "scope tokens (no spaces)", exc.detail) from None
    return tuple(scope)


def _ttl(call: str, ttl: int | None) -> int | None:
    if ttl is None:
        return None
    return check_whole(call, "ttl", ttl, low=1, high=limits.MAX_TTL, unit=" of seconds")


def _lease_id(call: str, text: str) -> LeaseId:
    check_text(call, "lease_id", text)
    try:
        return LeaseId.parse(text.strip())
    except (SecretError, DecodeError, ValueError):
        raise ArgumentError(call, "lease_id", "a lease id (lease_...)", "another text") from None
