"""The broker's control operations (troth.node.control): `lease.*` at a broker on another node
for a local identity, `broker.*` on the broker this node serves (moved out of
troth.node.services.broker, review 49p)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from troth.errors import DecodeError, NotFound
from troth.identity import Identifier
from troth.node.services.broker import BrokerClient, broker_route, local_broker
from troth.secrets import LeaseId
from troth.secrets.wire import RevokeIdentityArgs

if TYPE_CHECKING:
    from troth.node.runtime import NodeRuntime

__all__ = ["broker_operation", "lease_operation"]


def _seconds(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit():
        raise DecodeError("ttl: whole seconds")
    return int(text)


def _required(args: Mapping[str, str | None], name: str, op: str) -> str:
    value = args.get(name)
    if value is None:
        raise DecodeError(f"lease.{op} needs {name}")
    return value


async def lease_operation(runtime: NodeRuntime, op: str, args: Mapping[str, str | None]) -> Any:
    """lease.issue / renew / revoke / list for a local identity, at a broker on another node
    (args: troth.node.control.LeaseArgs)."""
    expect = args.get("expect")
    client = BrokerClient(
        runtime,
        broker_route(_required(args, "broker", op)),
        _required(args, "identity", op),
        expect=None if expect is None else Identifier.parse(expect),
    )
    ttl = _seconds(args.get("ttl"))
    if op == "issue":
        scope = args.get("scope")
        issued = await client.issue(
            _required(args, "secret", op),
            scope=None if scope is None else tuple(scope.split()),
            ttl=ttl,
        )
        return issued.to_json()
    if op == "list":
        return {
            "leases": [
                lease.to_json() for lease in await client.leases(ended=bool(args.get("ended")))
            ]
        }
    lease_id = LeaseId.parse(_required(args, "lease", op))
    if op == "renew":
        lease, credential = await client.renew(lease_id, ttl=ttl)
        return {"lease": lease.to_json(), "credential": credential.reveal()}
    if op == "revoke":
        return {"lease": (await client.revoke(lease_id)).to_json()}
    raise NotFound(f"no lease operation {op!r}")


async def broker_operation(runtime: NodeRuntime, op: str, identity: str | None) -> Any:
    """broker.revoke-identity / jwks on the broker this node serves, as its operator."""
    service = local_broker(runtime)
    if op == "jwks":
        return await service.local("jwks", {})
    if op == "revoke-identity":
        if identity is None:
            raise DecodeError("broker.revoke-identity needs identity")
        arguments = RevokeIdentityArgs(Identifier.parse(identity)).to_wire()
        return await service.local("revoke-identity", arguments)
    raise NotFound(f"no broker operation {op!r}")
