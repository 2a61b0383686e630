"""Review 57o, the http-inject forward path after review 57f (a member's request as the
upstream's body parser reads it).

1. A parameter name's leading brackets are dropped by Express's extended urlencoded parser
   (qs: `[_method]=DELETE` is `{_method: "DELETE"}`, its "no parent" case) and by Rack 2's
   nested-query parser (`name =~ /\\A[\\[\\]]*([^\\[\\]]+)\\]*/`, which Rack::MethodOverride's
   `req.POST` goes through): `[_method]=DELETE` and `%5B_method%5D=DELETE` ran DELETE on
   Express 4.22 with method-override's README getter (`req.body._method`) here, and the
   broker forwarded them under a rule allowing `POST /orders`. Was a strict xfail (each).
2. Express's body parsers inflate a request body sent with `Content-Encoding: gzip` or
   `deflate` (body-parser's `inflate: true`, the default): a gzipped `_method=DELETE`, or a
   gzipped `{"_method": "DELETE"}`, ran DELETE there; the broker read only the compressed
   bytes, and forwarded the header and the body as they were.
3. `express.json()` decodes a body in any `utf-` charset its Content-Type names (iconv-lite):
   `{"_method": "DELETE"}` in UTF-16LE, declared `charset=utf-16le`, ran DELETE there; the
   broker's check read its bytes as ASCII (a NUL after each letter) and forwarded it.
"""

from __future__ import annotations

import gzip
import zlib

import pytest

from tests.test_review57f_forwards import _inject_spec
from troth.errors import SecretError
from troth.secrets import HttpRequest
from troth.secrets.engines.http_inject import HttpInjectEngine

_FORM = ("Content-Type", "application/x-www-form-urlencoded")
_JSON = ("Content-Type", "application/json")


def _check(headers: tuple[tuple[str, str], ...], body: bytes, target: str = "/orders") -> None:
    request = HttpRequest("POST", target, headers, body)
    HttpInjectEngine().check_request(_inject_spec(), ("write",), request)


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("/orders", b"[_method]=DELETE"),
        ("/orders", b"amount=1&%5B_method%5D=DELETE"),
        ("/orders", b"amount=1&]_method=DELETE"),
        ("/orders", b"amount=1&[[_method]]=DELETE"),
        ("/orders?%5B_method%5D=DELETE", b"amount=1"),
    ],
)
def test_a_method_parameter_behind_leading_brackets_is_refused(target: str, body: bytes) -> None:
    """1: qs and Rack 2 drop a name's leading brackets: `[_method]` is their `_method`."""
    with pytest.raises(SecretError, match="method-override"):
        _check((_FORM,), body, target)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ((_FORM, ("Content-Encoding", "gzip")), gzip.compress(b"_method=DELETE", mtime=0)),
        ((_JSON, ("Content-Encoding", "gzip")), gzip.compress(b'{"_method": "DELETE"}', mtime=0)),
        ((_FORM, ("content-encoding", "deflate")), zlib.compress(b"_method=DELETE")),
        ((_FORM, ("Content_Encoding", "GZIP")), gzip.compress(b"_method=DELETE", mtime=0)),
        (
            (_FORM, ("Content-Encoding", "identity, gzip")),
            gzip.compress(b"_method=DELETE", mtime=0),
        ),
    ],
)
def test_a_compressed_request_body_is_refused(
    headers: tuple[tuple[str, str], ...], body: bytes
) -> None:
    """2: a body the upstream inflates cannot be read here: refused, whatever it holds."""
    with pytest.raises(SecretError, match="content-coding"):
        _check(headers, body)


_JSON_OVERRIDE = '{"_method": "DELETE"}'


@pytest.mark.parametrize(
    ("charset", "body"),
    [
        ("utf-16le", _JSON_OVERRIDE.encode("utf-16-le")),
        ("UTF-16", _JSON_OVERRIDE.encode("utf-16")),
        ('"utf-32be"', _JSON_OVERRIDE.encode("utf-32-be")),
        ("utf-7", b'{"+AF8-method": "DELETE"}'),
    ],
)
def test_a_body_in_a_charset_that_is_not_ascii_is_refused(charset: str, body: bytes) -> None:
    """3: `_method` in UTF-16, UTF-32 or UTF-7 (`+AF8-method`, which express.json() read as
    `_method` too) is not its ASCII bytes: refused unread."""
    with pytest.raises(SecretError, match="charset"):
        _check((("Content-Type", f"application/json; charset={charset}"),), body)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ((_FORM,), b"order[_method]=card&amount=1"),
        ((("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8"),), b"amount=1"),
        ((("Content-Type", 'application/json; charset="utf-8"'),), b'{"amount": 1}'),
        ((("Content-Type", "text/plain; charset=iso-8859-1"),), b"caf\xe9"),
        ((("Content-Type", "text/plain; charset=Shift_JIS"),), b"amount"),
        ((_JSON, ("Content-Encoding", "identity")), b'{"amount": 1}'),
    ],
)
def test_what_the_fixes_keep_passes(headers: tuple[tuple[str, str], ...], body: bytes) -> None:
    """A nested `order[_method]` is another name (qs: `{order: {_method}}`, Rack alike); an
    identity coding and charsets that keep ASCII as its bytes pass."""
    _check(headers, body)
