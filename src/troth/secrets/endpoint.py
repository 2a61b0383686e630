"""The broker as a service answers requests (sans-IO): `BrokerEndpoint.handle(method, arguments,
caller, now)` decodes a request (troth.secrets.wire), calls the broker for the verified caller
and encodes the answer. The node's adapter (troth.node.services.broker) supplies the caller —
its identity and the credentials that verify *now* against the node's feeds — and runs this
off the event loop.

Which credential justifies a lease (docs/secrets.md, "The served broker"):
- issue: the caller's current credentials in turn, until the lease policy allows one (a denial
  of each is audited); the lease is bound to that chain;
- renew and forward: the credential whose chain issued the lease, still current; otherwise the
  lease cannot be renewed or used (a refreshed credential takes a new lease);
- revoke and list: the caller's identity alone (no credential needed to give a lease back).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from troth import limits
from troth.credentials import VerifiedCredential
from troth.crypto import sha256
from troth.encoding import cbor
from troth.errors import DecodeError, SecretError, SecretFailure
from troth.identity import Identifier
from troth.secrets.audit import UNCREDENTIALED
from troth.secrets.book import lease_account
from troth.secrets.broker import Broker
from troth.secrets.engines.http_inject import PreparedForward
from troth.secrets.lease import Lease, LeaseHandle, LeaseId
from troth.secrets.members import printable_name
from troth.secrets.wire import (
    ForwardArgs,
    IssueArgs,
    LeaseArgs,
    ListArgs,
    RevokeIdentityArgs,
    encode_lease,
    encode_response,
    refusal,
)

__all__ = ["BrokerCaller", "BrokerEndpoint"]

_F = SecretFailure


@dataclass(frozen=True, slots=True)
class BrokerCaller:
    """Who asks: a verified identity and its credentials current at the request (`operator`:
    a local caller or one the node's rules made a broker operator; None identity: local)."""

    identity: Identifier | None
    credentials: tuple[VerifiedCredential, ...] = ()
    operator: bool = False
    refused: str = ""
    """Why the caller holds no current credential (said when one is needed)."""
    operator_of: frozenset[Identifier] | None = None
    """The authorities whose members' leases an operator may revoke (None: every one, a local
    caller); an operator made by an authority's credential acts for that authority only."""

    def actor(self) -> Identifier:
        if self.identity is None:
            raise SecretError(_F.BAD_REQUEST, "a local caller holds no leases")
        return self.identity

    def credential_list(self) -> Sequence[VerifiedCredential]:
        """The caller's current credentials (SecretError DENIED if it has none)."""
        if not self.credentials:
            raise SecretError(_F.DENIED, self.refused or "the caller holds no current credential")
        return self.credentials


class BrokerEndpoint:
    """Serves one broker's methods (module docstring)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._methods: Mapping[str, Callable[[Any, BrokerCaller, int], Any]] = {
            "issue": self._issue,
            "renew": self._renew,
            "revoke": self._revoke,
            "list": self._list,
            "revoke-identity": self._revoke_identity,
            "jwks": self._jwks,
            "forward": self._forward,
        }

    def handle(self, method: str, arguments: Any, caller: BrokerCaller, now: int) -> Any:
        """The answer to `method(arguments)` by `caller` at `now`: its result, or the broker's
        refusal as a typed answer (troth.secrets.wire.refusal). DecodeError for a malformed
        request, which the node answers as a failure."""
        run = self._methods.get(method)
        if run is None:
            raise DecodeError(f"the broker has no method {method!r}")
        try:
            return run(arguments, caller, now)
        except SecretError as exc:
            return refusal(exc)

    # -- methods ------------------------------------------------------------------------------

    def _issue(self, arguments: Any, caller: BrokerCaller, now: int) -> Any:
        args = IssueArgs.from_wire(arguments)
        candidates = self._current(caller, now, secret=printable_name(args.secret))
        denials: list[str] = []
        for credential in candidates:
            try:
                issued = self.broker.issue(
                    credential,
                    args.secret,
                    scope=args.scope,
                    ttl=args.ttl,
                    now=now,
                    request=args.request,
                )
            except SecretError as exc:
                if exc.reason is not _F.DENIED:
                    raise
                denials.append(exc.detail)  # the next credential may be allowed
                continue
            return issued.to_json()
        if len(denials) <= 1:
            raise SecretError(_F.DENIED, denials[0] if denials else "no current credential")
        said = "; ".join(f"credential {n}: {why}" for n, why in enumerate(denials, 1))
        raise SecretError(
            _F.DENIED, f"none of the caller's {len(denials)} credentials may lease it ({said})"
        )

    def _renew(self, arguments: Any, caller: BrokerCaller, now: int) -> Any:
        args = LeaseArgs.from_wire(arguments)
        credential = self._justifying(caller, args.lease_id, now)
        lease, made = self.broker.renew(credential, args.lease_id, ttl=args.ttl, now=now)
        return {"lease": encode_lease(lease), "credential": made.reveal()}

    def _revoke(self, arguments: Any, caller: BrokerCaller, now: int) -> Any:
        args = LeaseArgs.from_wire(arguments)
        # counted for the member its credential names; callers without one share one share
        account = lease_account(caller.credentials[0]) if caller.credentials else UNCREDENTIALED
        lease = self.broker.revoke(caller.actor(), args.lease_id, now=now, account=account)
        return {"lease": encode_lease(lease)}

    def _list(self, arguments: Any, caller: BrokerCaller, now: int) -> Any:
        """The caller's leases, newest first: at most MAX_LEASE_LIST, and those that fit
        MAX_LEASE_LIST_BYTES (a service answer; review 47b, limits 3)."""
        args = ListArgs.from_wire(arguments)
        return {"leases": _fitting(self.broker.leases(caller.actor(), include_ended=args.ended))}

    def _revoke_identity(self, arguments: Any, caller: BrokerCaller, now: int) -> Any:
        args = RevokeIdentityArgs.from_wire(arguments)
        if not caller.operator:
            raise SecretError(_F.DENIED, "only the broker's operators revoke an identity's leases")
        leases = self.broker.revoke_identity(args.identity, now=now, authorities=caller.operator_of)
        leases.sort(key=lambda lease: (-lease.issued_at, lease.handle.digest))  # newest first
        shown = _fitting(leases)
        if len(shown) == len(leases):
            return {"leases": shown}
        return {"leases": shown, "revoked": len(leases)}  # (review 48f, revoke-identity 1)

    def _jwks(self, arguments: Any, caller: BrokerCaller, now: int) -> Any:
        if arguments is not None and arguments != {}:
            raise DecodeError("jwks takes no arguments")
        return self.broker.jwks(now).to_json()

    def prepare_forward(self, args: ForwardArgs, caller: BrokerCaller, now: int) -> PreparedForward:
        """A forward's checks and audit for `caller` (`Broker.prepare_forward` with the
        credential that issued the lease), its upstream call left to `send()` (SecretError
        when refused). The node calls this on the broker's thread and sends from its forward
        pool."""
        credential = self._justifying(caller, args.lease_id, now)
        return self.broker.prepare_forward(credential, args.lease_id, args.request, now=now)

    def _forward(self, arguments: Any, caller: BrokerCaller, now: int) -> Any:
        prepared = self.prepare_forward(ForwardArgs.from_wire(arguments), caller, now)
        return encode_response(prepared.send())

    # -- internals ----------------------------------------------------------------------------

    def _current(
        self,
        caller: BrokerCaller,
        now: int,
        *,
        secret: str | None = None,
        lease: LeaseHandle | None = None,
    ) -> Sequence[VerifiedCredential]:
        """The caller's current credentials; a caller holding none (its credential revoked or
        expired) is refused DENIED, audited as the book's refusals are, within the denial
        budget, all such callers sharing one account (review 61e, secrets 1: the refusal went
        unrecorded)."""
        try:
            return caller.credential_list()
        except SecretError as exc:
            if caller.identity is not None:
                self.broker.book.deny(exc, now, caller.identity, secret, lease, UNCREDENTIALED)
            raise

    def refuse_forward(
        self, args: ForwardArgs, caller: BrokerCaller, now: int
    ) -> tuple[Any, Callable[[], None] | None]:
        """The answer to a forward by a caller holding no current credential (no lease to
        forward under: refused DENIED before the forward pool), at once and without the
        broker's thread, and the write of its audit record (within the denial budget, as
        `_current`'s) for the broker's thread, or None (review 61e, secrets 1)."""
        try:
            caller.credential_list()
        except SecretError as exc:
            write = None
            if caller.identity is not None:
                book = self.broker.book
                handle = args.lease_id.handle
                write = book.admit_denial(exc, now, caller.identity, None, handle, UNCREDENTIALED)
            return refusal(exc), write
        return refusal(SecretError(_F.BAD_REQUEST, "a caller with a credential forwards")), None

    def _justifying(self, caller: BrokerCaller, lease_id: LeaseId, now: int) -> VerifiedCredential:
        """The caller's current credential whose chain issued its lease `lease_id`; without
        one, its first current credential, which the broker then refuses and audits (another
        identity's lease: NO_SUCH_LEASE; a lease issued under a credential no longer current:
        EXPIRED). Refusing here went unaudited (review 30b, leases 2)."""
        credentials = self._current(caller, now, lease=lease_id.handle)
        lease = self.broker.book.lease(lease_id.handle)
        if lease is not None and lease.identity == caller.actor():
            for credential in credentials:
                if sha256(credential.chain) == lease.chain_hash:
                    return credential
        return credentials[0]


def _fitting(leases: list[Lease]) -> list[dict[str, Any]]:
    """The first of `leases` a list answer holds: at most `limits.MAX_LEASE_LIST`, and those
    that fit `limits.MAX_LEASE_LIST_BYTES` (a service answer; review 47b, limits 3)."""
    shown: list[dict[str, Any]] = []
    size = 0
    for lease in leases[: limits.MAX_LEASE_LIST]:
        item = encode_lease(lease)
        size += len(cbor.encode(item))
        if size > limits.MAX_LEASE_LIST_BYTES:
            break
        shown.append(item)
    return shown
