"""Node services as plug-ins (plugin: what a service declares; protocol: the request/response
envelopes; host: `ServiceHost`, which decides and runs requests; calls: the client `call`; base:
all of these in one namespace; echo, sink, relay, authority: the services a node composes from
its configuration)."""

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
