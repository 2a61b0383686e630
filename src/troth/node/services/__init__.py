"""Node services as plug-ins (base: the protocol, the host and the client `call`; echo, sink,
relay, authority: the services a node composes from its configuration)."""

from troth.node.services.base import (
    DENIED,
    FAILED,
    NO_ROUTE,
    Calls,
    Handler,
    Method,
    NodeService,
    RequestContext,
    ServiceHost,
    call,
    error_response,
    service_address,
)

__all__ = [
    "DENIED",
    "FAILED",
    "NO_ROUTE",
    "Calls",
    "Handler",
    "Method",
    "NodeService",
    "RequestContext",
    "ServiceHost",
    "call",
    "error_response",
    "service_address",
]
