"""The control protocol of a running node (docs/protocols.md, "Node control"): a typed table
of operations, op name -> argument dataclass -> handler.

A request is {"op": text, "args": map}; the map must hold exactly the argument dataclass's
fields (text, or null where optional), else the request is refused before anything runs.
Every operation passes the node's access decision point as a local caller (service
"control", method = the op): the control socket is a 0600 socket in a 0700 directory, and
the node serves only its own user's (and root's) processes, as the kernel tells them
(SO_PEERCRED; review 53u, control 2).
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final, Generic, TypeVar

from troth.errors import DecodeError, NotFound
from troth.identity import Identifier
from troth.node.access import AccessRequest, LocalCaller, require
from troth.node.runtime import NodeRuntime
from troth.node.services.broker_control import broker_operation, lease_operation
from troth.routing import parse_route

__all__ = [
    "OPERATIONS",
    "AnnounceArgs",
    "BrokerArgs",
    "ChannelCreateArgs",
    "EnrollArgs",
    "FeedSyncArgs",
    "LeaseArgs",
    "McpServeArgs",
    "MessageSendArgs",
    "NoArgs",
    "Operation",
    "RelayCreateArgs",
    "perform",
]

A = TypeVar("A")


@dataclass(frozen=True, slots=True)
class NoArgs:
    """An operation without arguments."""


@dataclass(frozen=True, slots=True)
class ChannelCreateArgs:
    """channel.create: the route to a node; optionally the identifier expected there."""

    to: str
    expect: str | None = None


@dataclass(frozen=True, slots=True)
class MessageSendArgs:
    """message.send: a route ending at a service, the text, optionally the expected peer."""

    to: str
    text: str
    expect: str | None = None


@dataclass(frozen=True, slots=True)
class RelayCreateArgs:
    """relay.create: the relay name, and the route to the relay node."""

    name: str
    at: str


@dataclass(frozen=True, slots=True)
class EnrollArgs:
    """enroll: the ticket text, the local identity (default: the node's), the authority's
    pin confirmed out of band (`IDENTIFIER:KEY`; `check_ticket`), and the operator's word over
    a conflicting stored copy (`over_copy`: `check_ticket`; for this enrollment only, and only
    with the pin: review 68l, enroll 1)."""

    ticket: str = dataclasses.field(repr=False)  # its code: never in a repr (review 55c)
    identity: str | None = None
    authority_pin: str | None = None
    over_copy: bool = False


@dataclass(frozen=True, slots=True)
class FeedSyncArgs:
    """feed.sync: the authority (identifier) whose feed to sync."""

    authority: str


@dataclass(frozen=True, slots=True)
class AnnounceArgs:
    """announce: the identity whose rotation to announce (default: every local one)."""

    identity: str | None = None


@dataclass(frozen=True, slots=True)
class LeaseArgs:
    """lease.*: the local identity that holds the lease, the route to the broker node, and per
    operation: the secret (issue), scope (issue: space-separated), ttl (issue, renew: seconds),
    lease (renew, revoke: its lease id), ended (list: "yes" for the ended ones too), expect
    (the broker node's identifier)."""

    identity: str
    broker: str
    secret: str | None = None
    scope: str | None = None
    ttl: str | None = None
    lease: str | None = None
    ended: str | None = None
    expect: str | None = None


@dataclass(frozen=True, slots=True)
class BrokerArgs:
    """broker.*: on the broker node, as its operator: identity (revoke-identity)."""

    identity: str | None = None


@dataclass(frozen=True, slots=True)
class McpServeArgs:
    """mcp.serve: the MCP server's name, its upstream command line, the directory it runs in,
    the authorities whose bundles grant its tools (identifiers, space-separated; none: the
    node's own)."""

    name: str
    upstream: str
    cwd: str | None = None
    grantable_by: str | None = None


@dataclass(frozen=True, slots=True)
class Operation(Generic[A]):
    """One control operation: its argument type and its handler."""

    arguments: type[A]
    handler: Callable[[NodeRuntime, A], Awaitable[Any]]

    def parse(self, raw: Mapping[str, Any]) -> A:
        """The typed arguments from a request's map (DecodeError when they do not fit)."""
        names = {f.name: f for f in fields(self.arguments)}  # type: ignore[arg-type]
        unknown = set(raw) - set(names)
        if unknown:
            raise DecodeError(f"unknown arguments: {', '.join(sorted(map(str, unknown)))}")
        for name, field in names.items():
            value = raw.get(name)
            if str(field.type) == "bool":  # a flag: absent is its default, never read by truth
                if name in raw and not isinstance(value, bool):
                    raise DecodeError(f"argument {name!r} must be true or false")
                continue
            optional = "None" in str(field.type)
            if value is None and not optional:
                raise DecodeError(f"argument {name!r} is required")
            if value is not None and not isinstance(value, str):
                raise DecodeError(f"argument {name!r} must be text")
        return self.arguments(**raw)


def _expect(text: str | None) -> Identifier | None:
    return None if text is None else Identifier.parse(text)


async def _status(runtime: NodeRuntime, _: NoArgs) -> Any:
    return runtime.status()


async def _channel_create(runtime: NodeRuntime, args: ChannelCreateArgs) -> Any:
    end = await runtime.channel_to(parse_route(args.to), expect=_expect(args.expect))
    return {"id": end.id, "peer": str(end.peer.identifier) if end.peer else None}


async def _channel_list(runtime: NodeRuntime, _: NoArgs) -> Any:
    return runtime.channel_rows()


async def _message_send(runtime: NodeRuntime, args: MessageSendArgs) -> Any:
    return await runtime.send_message(args.to, args.text, expect=_expect(args.expect))


async def _relay_create(runtime: NodeRuntime, args: RelayCreateArgs) -> Any:
    return await runtime.create_relay(args.name, args.at)


async def _enroll(runtime: NodeRuntime, args: EnrollArgs) -> Any:
    ref = args.identity or runtime.name
    return await runtime.enroll(args.ticket, ref, args.authority_pin, over_copy=args.over_copy)


async def _announce(runtime: NodeRuntime, args: AnnounceArgs) -> Any:
    return await runtime.announce_rotations(args.identity)


async def _lease(runtime: NodeRuntime, args: LeaseArgs, op: str) -> Any:
    return await lease_operation(runtime, op, dataclasses.asdict(args))


async def _broker(runtime: NodeRuntime, args: BrokerArgs, op: str) -> Any:
    return await broker_operation(runtime, op, args.identity)


def _leases(op: str) -> Operation[LeaseArgs]:
    return Operation(LeaseArgs, lambda runtime, args: _lease(runtime, args, op))


async def _trust_reload(runtime: NodeRuntime, _: NoArgs) -> Any:
    """Re-read what the store trusts and holds (another process enrolled or resumed one)."""
    await runtime.reload()
    return sorted(str(authority) for authority in runtime.trust.routes)


async def _feed_sync(runtime: NodeRuntime, args: FeedSyncArgs) -> Any:
    """Sync a trusted authority's feed now (a revocation on this machine: review 48c,
    revocation 2); its entry count, null when the node does not trust it."""
    return await runtime.sync_trusted_feed(Identifier.parse(args.authority))


async def _policy_reload(runtime: NodeRuntime, _: NoArgs) -> Any:
    from troth.node.services.policy import PolicyService

    service = runtime.host.services.get("policy")
    if isinstance(service, PolicyService):
        return await service.installed()
    loaded = await runtime.worker.run(lambda: runtime.policies.reload(now=runtime.clock.now()))
    return [bundle.body.to_json() for bundle in loaded]


async def _mcp_serve(runtime: NodeRuntime, args: McpServeArgs) -> Any:
    from troth.node.services.mcp import publish  # the MCP SDK: on use only

    command = shlex.split(args.upstream)
    try:
        named = tuple(Identifier.parse(text) for text in (args.grantable_by or "").split())
    except ValueError as exc:
        raise DecodeError(f"grantable_by: {exc}") from None
    return await publish(runtime, args.name, command, cwd=args.cwd, grantable_by=named)


OPERATIONS: Final[Mapping[str, Operation[Any]]] = {
    "status": Operation(NoArgs, _status),
    "channel.create": Operation(ChannelCreateArgs, _channel_create),
    "channel.list": Operation(NoArgs, _channel_list),
    "message.send": Operation(MessageSendArgs, _message_send),
    "relay.create": Operation(RelayCreateArgs, _relay_create),
    "enroll": Operation(EnrollArgs, _enroll),
    "announce": Operation(AnnounceArgs, _announce),
    "lease.issue": _leases("issue"),
    "lease.renew": _leases("renew"),
    "lease.revoke": _leases("revoke"),
    "lease.list": _leases("list"),
    "broker.revoke-identity": Operation(
        BrokerArgs, lambda runtime, args: _broker(runtime, args, "revoke-identity")
    ),
    "broker.jwks": Operation(BrokerArgs, lambda runtime, args: _broker(runtime, args, "jwks")),
    "policy.reload": Operation(NoArgs, _policy_reload),
    "trust.reload": Operation(NoArgs, _trust_reload),
    "feed.sync": Operation(FeedSyncArgs, _feed_sync),
    "mcp.serve": Operation(McpServeArgs, _mcp_serve),
}
"""Every control operation, by name."""


async def perform(
    runtime: NodeRuntime, op: str, raw: Mapping[str, Any], *, via: str = "control socket"
) -> Any:
    """Run control operation `op` with arguments `raw` on `runtime`, as a local caller."""
    operation = OPERATIONS.get(op)
    if operation is None:
        raise NotFound(f"unknown control operation {op!r} (one of: {', '.join(OPERATIONS)})")
    arguments = operation.parse(raw)
    now = runtime.clock.now()
    require(runtime.decide(AccessRequest(LocalCaller(via), "control", op, arguments, now)))
    return await operation.handler(runtime, arguments)
