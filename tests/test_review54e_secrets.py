"""Review 54e (secrets): what the last review left in the secrets layer.

1. A standalone validator (`validate_token(..., revoked=broker.revoked_leases())`, without
   `Broker.validate_token`) kept accepting a lease's earlier tokens after the lease was renewed
   for a *shorter* time (their `exp` past the lease's new end), where the broker refused them:
   the published lease states said only "revoked or not". They now carry each live lease's
   not-after (`LeaseStates.not_after`), which `validate_token` checks.
2. The http-inject engine refused an answer *labelled* UTF-16 or UTF-32 (its `Content-Type`
   charset), but one in UTF-16 with a byte order mark and no charset passed the redaction: the
   secret echoed two bytes a character went to the agent, whose decoder (a browser, fetch,
   Python's `json.loads`) reads the BOM. An answer a reader would take for UTF-16 or UTF-32 (a
   BOM, or the NUL bytes of RFC 4627 section 3's detection) is refused.
3. The node's clock set back: a lease that had expired, not yet swept, was live again (its
   tokens valid, forwards served) until the clock passed its end once more. The broker keeps
   the latest `now` it was given (persisted: a restart keeps it) and judges expiry at
   max(now, that).

Each test asserts the correct behaviour and was a strict xfail until its fix.
"""

from __future__ import annotations

import pytest

from troth.errors import SecretError, SecretFailure
from troth.secrets.engines.http_inject import _clean_response

_TOKEN = "s3cr3tTokenValue0123456789"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-be"])
@pytest.mark.parametrize("content_type", [None, "text/plain", "text/plain; charset=utf-8"])
def test_an_unlabelled_wide_answer_is_refused(encoding: str, content_type: str | None) -> None:
    """Review 54e, secrets 2: a body in UTF-16 or UTF-32 — with its BOM (which a WHATWG
    decoder obeys over any label) or, BOM-less, as RFC 4627's detection reads it — holds the
    secret two or four bytes a character, unseen by the redaction: refused."""
    secret = f"Bearer {_TOKEN}".encode()
    text = '{"you sent": "' + secret.decode() + '"}'
    body = text.encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be", "utf-32-be"):  # BOM-less, and with one
        bodies = [
            body,
            {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}.get(encoding, b"\x00\x00\xfe\xff")
            + body,
        ]
    else:
        bodies = [body]
    headers = [] if content_type is None else [("Content-Type", content_type)]
    for each in bodies:
        with pytest.raises(SecretError) as caught:
            _clean_response(200, "OK", headers, each, secret)
        assert caught.value.reason is SecretFailure.UPSTREAM_FAILED
