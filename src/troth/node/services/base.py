"""Node services as plug-ins, and their one request/response protocol (docs/protocols.md,
"Services"), in one namespace: this module re-exports what its parts define.

- troth.node.services.plugin: what a service declares (`NodeService`, `Method`, `Handler`,
  `RequestContext`, `service_address`);
- troth.node.services.protocol: the request and response envelopes, their codec and the error
  answers (`encode_request`, `decode_response`, `result_of`, `error_response`, ...);
- troth.node.services.host: `ServiceHost`, which decides and runs the requests a node serves
  (and what runs concurrently), `to_the_end`;
- troth.node.services.calls: the client, `call` and the per-hop `Calls` (one reply worker,
  request ids, deadlines).

The names here are the objects of those modules: a test that patches one patches it where it is
defined (the module that uses it reads it there).
"""

from __future__ import annotations

from troth.node.services.calls import BUSY_BACKOFF, Calls, call, calls_through, forget_calls
from troth.node.services.host import (
    MAX_METHODS_DECIDED,
    MAX_NAME_SHOWN,
    RequestSource,
    ServiceHost,
    to_the_end,
)
from troth.node.services.plugin import (
    Handler,
    Method,
    NodeService,
    RequestContext,
    service_address,
)
from troth.node.services.protocol import (
    BUSY,
    DENIED,
    FAILED,
    LOG_LINES_PER_MINUTE,
    MAX_ERROR_REASONS,
    MAX_ERROR_TEXT,
    MAX_REQUEST_ID,
    NO_ROUTE,
    REQUEST,
    RESPONSE,
    VERSION,
    decode_request,
    decode_response,
    encode_request,
    error_response,
    request_id_of,
    result_of,
)

__all__ = [
    "BUSY",
    "BUSY_BACKOFF",
    "DENIED",
    "FAILED",
    "LOG_LINES_PER_MINUTE",
    "MAX_ERROR_REASONS",
    "MAX_ERROR_TEXT",
    "MAX_METHODS_DECIDED",
    "MAX_NAME_SHOWN",
    "MAX_REQUEST_ID",
    "NO_ROUTE",
    "REQUEST",
    "RESPONSE",
    "VERSION",
    "Calls",
    "Handler",
    "Method",
    "NodeService",
    "RequestContext",
    "RequestSource",
    "ServiceHost",
    "call",
    "calls_through",
    "decode_request",
    "decode_response",
    "encode_request",
    "error_response",
    "forget_calls",
    "request_id_of",
    "result_of",
    "service_address",
    "to_the_end",
]
