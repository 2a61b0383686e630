"""The secret engines: `token` (JWTs), `postgres` (dynamic roles), `http-inject` (a proxy that
adds the upstream secret to allowed requests)."""

from troth.secrets.engines.http_inject import HttpInjectEngine, HttpRequest, HttpResponse
from troth.secrets.engines.postgres import PostgresEngine
from troth.secrets.engines.token import TokenEngine, TokenSigner

__all__ = [
    "HttpInjectEngine",
    "HttpRequest",
    "HttpResponse",
    "PostgresEngine",
    "TokenEngine",
    "TokenSigner",
]
