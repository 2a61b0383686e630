"""Review 22c (secrets): http-inject's redaction of a `Basic` secret's decoded password
(review 22, finding 4's fix, `_echo_pattern`) handles each character of the password as a byte:
letters and digits as themselves, ASCII punctuation also as its JSON, HTML or percent escape,
any byte of 0x80 and above only as itself or percent-escaped. RFC 7617 (charset="UTF-8")
lets a password hold any character; an upstream that answers what it decoded as JSON the usual
way (Python's json, and every serializer that escapes non-ASCII: `\\u00fc`) or as HTML
(`&#252;`) hands the agent the password of a non-ASCII secret.

2. HTML's named references: `_char_forms` knows the names of `& < > " '` only, while HTML5
   names nearly every ASCII punctuation character (`&sol;` `/`, `&plus;` `+`, `&equals;` `=`,
   `&colon;`, `&period;`, ...; html.entities.html5), which every HTML reader decodes. An
   upstream whose escaper writes named references where they exist (an "encode all entities"
   HTML5 encoder) echoes `Bearer sk&sol;live&plus;...&equals;&equals;` unredacted.

Each test asserts the correct behaviour and was a strict xfail until its fix
(troth/secrets/engines/http_inject.py `_char_forms`/`_echoes`: 1. the decoded forms are
characters, so a non-ASCII character needs its `\\uXXXX` (and surrogate pair) and HTML
numeric forms too, in the decoded user:password and password patterns; 2. every HTML5 name of
the character, from html.entities.html5).
"""

from __future__ import annotations

import base64
import html
import html.entities
import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.support.leases import LeaseWorld
from tests.support.upstreams import answering, forward_once
from tests.test_secrets_postgres import now, world  # noqa: F401 - `world` is a fixture

_PASSWORD = "Geheimnis-für-den-Dienst-7f3a"
_BASIC = "Basic " + base64.b64encode(f"svc:{_PASSWORD}".encode()).decode()

_ENCODINGS: dict[str, Callable[[str], bytes]] = {
    "json": lambda password: json.dumps({"password": password}).encode(),
    "html": lambda password: (
        "<td>" + "".join(c if c.isascii() else f"&#{ord(c)};" for c in password) + "</td>"
    ).encode(),
}
_DECODE: dict[str, Callable[[bytes], str]] = {
    "json": lambda body: str(json.loads(body).get("password", "")),
    "html": lambda body: html.unescape(body.decode()),
}


@pytest.mark.parametrize("encoding", sorted(_ENCODINGS))
def test_an_upstream_echoing_a_non_ascii_basic_password_escaped_leaks_nothing(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixture imported above
    encoding: str,
) -> None:
    """The secret is a `Basic` header whose password has a non-ASCII letter. An allowed path
    answers the password it decoded, as JSON (ensure_ascii) or HTML numeric references. The
    agent, decoding the answer, reads no password."""
    encode = _ENCODINGS[encoding]

    def whoami(authorization: str) -> bytes:
        _scheme, _, encoded = authorization.partition(" ")
        return encode(base64.b64decode(encoded).decode().partition(":")[2])

    Echo = answering(whoami)

    answer = forward_once(tmp_path, world, Echo, _BASIC.encode(), path="/whoami", now=now())
    assert answer.status == 401
    try:
        plain = _DECODE[encoding](answer.body)
    except ValueError:  # what the redaction left is no longer the encoding's text
        plain = answer.body.decode("latin-1")
    assert _PASSWORD not in plain


# -- 2. HTML5 named references ----------------------------------------------------------------

_SECRET = "Bearer sk/live+CANARY.7f3a:9c2e=="


def _html5_named(text: str) -> str:
    """`text` with each character that has an HTML5 name written as that name."""
    names: dict[str, str] = {}
    for name, char in sorted(html.entities.html5.items()):
        if name.endswith(";") and len(char) == 1 and char.isascii() and not char.isalnum():
            names.setdefault(char, "&" + name)
    return "".join(names.get(c, c) for c in text)


def test_an_upstream_echoing_the_secret_as_html5_named_references_leaks_nothing(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixture imported above
) -> None:
    """An allowed path echoes the request's Authorization header with HTML5 named references.
    What the agent reads, HTML-decoded, holds neither the secret nor its credential part."""
    assert html.unescape(_html5_named(_SECRET)) == _SECRET  # faithful (not a test of it)

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = _html5_named(self.headers.get("Authorization", "")).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    answer = forward_once(tmp_path, world, Echo, _SECRET.encode(), now=now())
    assert answer.status == 200
    assert _SECRET.partition(" ")[2] not in html.unescape(answer.body.decode("latin-1"))
