"""The client of a secrets broker served by another node (troth.node.services.broker, which
re-exports every name here; docs/protocols.md "Broker service"): `BrokerClient` calls it over a
secure channel opened as the lease holder, and `RemoteLeases` is gate 3's lease source over it
(docs/secrets.md)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

from troth.credentials import VerifiedCredential
from troth.errors import ConfigError, DecodeError, RemoteError, SecretError, SecretFailure
from troth.identity import Identifier
from troth.node.services.base import call, service_address
from troth.routing import Route, parse_route
from troth.secrets import IssuedLease, Jwks, Lease, LeaseCredential, LeaseId
from troth.secrets.engines.http_inject import HttpRequest, HttpResponse, check_forward_size
from troth.secrets.lease import LeaseRequest
from troth.secrets.toolgate import SecretNeed
from troth.secrets.wire import (
    BROKER,
    ForwardArgs,
    IssueArgs,
    LeaseArgs,
    ListArgs,
    RevokeIdentityArgs,
    decode_credential,
    decode_issued,
    decode_lease,
    decode_leases,
    decode_response,
    decode_revoked,
    mapping_of,
    raise_refusal,
)

if TYPE_CHECKING:
    from troth.node.runtime import NodeRuntime

__all__ = [
    "BROKER_ADDRESS",
    "MAX_UNANSWERED_REQUESTS",
    "BrokerClient",
    "RemoteLeases",
    "broker_route",
]

T = TypeVar("T")

BROKER_ADDRESS: Final = service_address(BROKER)


def broker_route(text: str) -> Route:
    """The route to a broker node: `/tcp/h:p[/relay/x]`, optionally ending `/service/broker`."""
    route = parse_route(text)
    if route[-1].kind == "service":
        if route[-1] != BROKER_ADDRESS or len(route) < 2:
            raise ValueError(f"{text!r}: a broker route ends at a node or at /service/broker")
        route = route[:-1]
    return route


class BrokerClient:
    """Calls a broker on another node through a secure channel opened as local identity
    `identity` (the lease holder) by `runtime`."""

    def __init__(
        self,
        runtime: NodeRuntime,
        route: Route,
        identity: str,
        *,
        expect: Identifier | None = None,
    ) -> None:
        self.runtime = runtime
        self.route = route
        self.identity = identity
        self.expect = expect

    async def _call(self, method: str, arguments: Any) -> Any:
        end = await self.runtime.channel_to(self.route, identity=self.identity, expect=self.expect)
        answer = await call(self.runtime.router, (end.enc, BROKER_ADDRESS), method, arguments)
        try:
            return raise_refusal(answer)
        except DecodeError as exc:
            raise RemoteError(f"a malformed broker answer: {exc}") from None

    async def issue(
        self,
        secret: str,
        *,
        scope: tuple[str, ...] | None = None,
        ttl: int | None = None,
        request: LeaseRequest | None = None,
    ) -> IssuedLease:
        """A new lease of `secret` (SecretError when the broker refuses); `request` names the
        request and the attempt, so that a retry replaces what a lost answer's attempt was
        issued (docs/secrets.md, "Retried requests")."""
        answer = await self._call("issue", IssueArgs(secret, scope, ttl, request).to_wire())
        return _decoded(decode_issued, answer)

    async def renew(
        self, lease_id: LeaseId, *, ttl: int | None = None
    ) -> tuple[Lease, LeaseCredential]:
        """Extend a lease of ours from now; the lease and its new credential."""
        answer = _answer_map(await self._call("renew", LeaseArgs(lease_id, ttl).to_wire()))
        lease = _decoded(decode_lease, answer.get("lease"))
        return lease, _decoded(decode_credential, answer.get("credential"))

    async def revoke(self, lease_id: LeaseId) -> Lease:
        """Give a lease of ours back."""
        answer = _answer_map(await self._call("revoke", LeaseArgs(lease_id).to_wire()))
        return _decoded(decode_lease, answer.get("lease"))

    async def leases(self, *, ended: bool = False) -> list[Lease]:
        """Our leases at that broker."""
        return _decoded(decode_leases, await self._call("list", ListArgs(ended).to_wire()))

    async def revoke_identity(self, identity: Identifier) -> tuple[list[Lease], int]:
        """Revoke every lease of `identity` (a broker operator's call): those revoked, newest
        first, as many as a list answer holds, and how many it revoked."""
        answer = await self._call("revoke-identity", RevokeIdentityArgs(identity).to_wire())
        return _decoded(decode_revoked, answer)

    async def jwks(self) -> Jwks:
        """The broker's token keys."""
        answer = await self._call("jwks", {})
        try:
            return Jwks.parse(mapping_of(answer, "jwks"))
        except (DecodeError, SecretError) as exc:
            raise RemoteError(f"a malformed JWKS: {exc}") from None

    async def forward(self, lease_id: LeaseId, request: HttpRequest) -> HttpResponse:
        """Have the broker send `request` upstream under our http-inject lease (SecretError
        FORBIDDEN_REQUEST, nothing sent, when it is past a size the broker forwards)."""
        check_forward_size(request)
        answer = await self._call("forward", ForwardArgs(lease_id, request).to_wire())
        return _decoded(decode_response, answer)


def _answer_map(answer: Any) -> Mapping[str, Any]:
    """A renew or revoke answer, a map (a broker answering anything else: RemoteError, the
    layer's error, not the AttributeError of `.get`: review 53t, client 1)."""
    return _decoded(lambda value: mapping_of(value, "a broker answer"), answer)


def _decoded(decode: Callable[[Any], T], value: Any) -> T:
    try:
        return decode(value)
    except DecodeError as exc:
        raise RemoteError(f"a malformed broker answer: {exc}") from None


MAX_UNANSWERED_REQUESTS: Final = 64
"""Needs whose lease request got no answer a `RemoteLeases` remembers to retry (the oldest
forgotten first: its lease then lives until its TTL, as before requests were named)."""


class RemoteLeases:
    """Gate 3's `LeaseSource` over a broker on another node: the tool gate runs in a thread of
    its own and `loop` runs `client`'s node (a call from `loop`'s own thread is refused: it
    would wait on itself), at most `timeout` seconds: then its request is cancelled on the loop
    (one already sent may still be carried out at the broker) and TimeoutError raised. Leases
    are bound to the client's identity: a call by anyone else is refused. A held lease is
    reused until its expiry (its revocation shows at the service that validates it).

    Each issue names its request (`LeaseRequest`); a need whose request got no answer (timed
    out, the channel failed: the broker may have issued the lease anyway) is remembered, and
    its next issue is a retry of that request, which revokes the lease the lost answer
    carried (review 45i, secrets 2)."""

    def __init__(
        self,
        client: BrokerClient,
        holder: Identifier,
        loop: asyncio.AbstractEventLoop,
        *,
        timeout: float = 30.0,
    ) -> None:
        self.client = client
        self.holder = holder
        self.loop = loop
        self.timeout = timeout
        self._unanswered: dict[tuple[object, ...], LeaseRequest] = {}
        self._lock = threading.Lock()  # the gates of several tools' threads share a source

    def _wait(self, coroutine: Any) -> Any:
        with contextlib.suppress(RuntimeError):
            if asyncio.get_running_loop() is self.loop:
                coroutine.close()
                raise ConfigError("RemoteLeases is called from a thread other than its loop's")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(self.timeout)
        except BaseException:  # timed out (or interrupted): the request does not go on
            future.cancel()  # its task on the loop is cancelled (review 26c, gate 3)
            raise

    def _check(self, credential: VerifiedCredential) -> None:
        if credential.actor != self.holder:
            raise SecretError(
                SecretFailure.BAD_REQUEST,
                f"this source leases as {self.holder}, not as {credential.actor}",
            )

    def issue(self, credential: VerifiedCredential, need: SecretNeed, now: int) -> IssuedLease:
        self._check(credential)
        key = (need.secret, need.scope, need.ttl)
        with self._lock:
            earlier = self._unanswered.pop(key, None)
        request = LeaseRequest.new() if earlier is None else earlier.retry()
        try:
            issued: IssuedLease = self._wait(
                self.client.issue(need.secret, scope=need.scope, ttl=need.ttl, request=request)
            )
        except SecretError:  # the broker answered: this attempt leased nothing
            raise
        except BaseException:  # no answer: the broker may have issued it all the same
            with self._lock:
                self._unanswered[key] = request
                while len(self._unanswered) > MAX_UNANSWERED_REQUESTS:
                    del self._unanswered[next(iter(self._unanswered))]  # the oldest
            raise
        return issued

    def live(self, issued: IssuedLease, now: int) -> bool:
        return issued.lease.expires_at > now

    def forward(
        self, credential: VerifiedCredential, lease_id: LeaseId, request: HttpRequest, now: int
    ) -> HttpResponse:
        self._check(credential)
        response: HttpResponse = self._wait(self.client.forward(lease_id, request))
        return response
