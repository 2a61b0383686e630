"""Review 53t (secrets): attacks on the http-inject engine's answer cleaning that worked.

1. The secret in a response header's *name*: `_clean_response` redacted header values, the
   reason and the body, never the names, so an upstream that reflects what it was sent into a
   header name (`X-Seen-<token>: 1`, a debugging echo) handed the agent the secret whole,
   against docs/secrets.md, "http-inject" ("every occurrence of the secret ... in headers and
   body"). A header whose name carries the secret is now dropped (a name is not text to edit).
"""

from __future__ import annotations

import base64

import pytest

from troth.secrets.engines.http_inject import _clean_response

_TOKEN = "s3cr3tTokenValue0123456789"


@pytest.mark.parametrize(
    "secret",
    [f"Bearer {_TOKEN}", _TOKEN, "Basic " + base64.b64encode(f"user:{_TOKEN}".encode()).decode()],
)
def test_the_secret_in_a_response_header_name_is_not_returned(secret: str) -> None:
    """Review 53t, secrets 1: no header name of the cleaned answer carries the secret."""
    headers = [("X-Seen-" + _TOKEN, "1"), ("Content-Type", "text/plain")]
    cleaned = _clean_response(200, "OK", headers, b"ok", secret.encode())
    assert all(_TOKEN not in name for name, _ in cleaned.headers)
    assert ("Content-Type", "text/plain") in cleaned.headers
