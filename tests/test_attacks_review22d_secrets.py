"""Review 22d (secrets): http-inject's per-character redaction (2bdabd2, `_echoes`) builds the
`\\uXXXX` and HTML numeric forms from the decoded Basic `user:password` read as UTF-8 only;
bytes that are not UTF-8 are matched "as sent or percent-escaped". RFC 7617 section 2.1 leaves
the charset of a Basic credential unspecified unless `charset="UTF-8"` is announced, and the
historical default is ISO-8859-1: servers that decode it so (Java servlet containers'
default, for one) are common.

1. a secret whose password is ISO-8859-1 (`ü` the single byte 0xFC): the upstream decodes it
   as ISO-8859-1 and answers JSON the usual way (`\\u00fc`): not UTF-8, so no `\\u00fc` form
   is built, and the agent reads the password.
2. a UTF-8 password (`ü` = C3 BC) that the upstream decodes as ISO-8859-1 answers
   `\\u00c3\\u00bc`: the pattern knows `\\u00fc` only, and the agent re-reads the JSON string
   as ISO-8859-1 bytes, UTF-8 decoded: the password.

3. JavaScript string escaping: `_char_forms` knows JSON's short escapes (`\\"`, `\\\\`,
   `\\/`) but not `\\'`, which JavaScript-string escapers write for an apostrophe (Go's
   html/template and `template.JSEscapeString`, PHP's `addslashes`, Rails' `escape_javascript`,
   Node's `util.inspect`): an upstream answering an error page that embeds the token in a
   script (`var token = 'sk\\'live...'`) hands it to the agent.

Tests 1-2 assert the correct behaviour and were strict xfails until `_echoes` also builds the
forms of the decoded credential read as ISO-8859-1 (every byte a character U+0000-U+00FF);
test 3 until `'` also has the form `\\'` (`_SHORT_JSON`, with JavaScript's `\\xHH`).
"""

from __future__ import annotations

import base64
import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.support.leases import LeaseWorld
from tests.support.upstreams import answering, forward_once
from tests.test_secrets_postgres import now, world  # noqa: F401 - `world` is a fixture
from troth.secrets.engines.redaction import echo_pattern as _echo_pattern

_PASSWORD = "Geheimnis-für-den-Dienst-7f3a"
_CHARSETS = {"iso-8859-1 password": "latin-1", "utf-8 password": "utf-8"}


@pytest.mark.parametrize("charset", sorted(_CHARSETS))
def test_an_upstream_decoding_basic_as_latin1_echoes_no_password(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixture imported above
    charset: str,
) -> None:
    """The secret's password is written in `charset`; the upstream decodes it as ISO-8859-1
    and answers it as JSON (ensure_ascii). The agent, reading the answer either way, reads no
    password."""
    basic = "Basic " + base64.b64encode(f"svc:{_PASSWORD}".encode(_CHARSETS[charset])).decode()

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            _scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
            _user, _, password = base64.b64decode(encoded).decode("latin-1").partition(":")
            body = json.dumps({"password": password}).encode()
            self.send_response(401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    answer = forward_once(tmp_path, world, Echo, basic.encode("latin-1"), path="/whoami", now=now())
    assert answer.status == 401
    try:
        echoed = str(json.loads(answer.body).get("password", ""))
    except ValueError:  # what the redaction left is no longer JSON
        echoed = answer.body.decode("latin-1")
    readings = {echoed, echoed.encode("latin-1", "replace").decode("utf-8", "replace")}
    assert all(_PASSWORD not in reading for reading in readings)


_TOKEN = "Bearer sk'live'CANARY'7f3a9c2e"


def test_an_upstream_echoing_the_token_javascript_escaped_leaks_nothing(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixture imported above
) -> None:
    """An allowed path answers an HTML page whose script holds the Authorization header it got,
    escaped as a JavaScript string (`'` as `\\'`). The agent, reading the string, gets no
    token."""

    def page(authorization: str) -> bytes:
        escaped = authorization.replace("\\", "\\\\").replace("'", "\\'")
        return f"<script>var auth = '{escaped}';</script>".encode()

    Echo = answering(page)

    answer = forward_once(tmp_path, world, Echo, _TOKEN.encode(), path="/whoami", now=now())
    assert answer.status == 401
    script = answer.body.decode("latin-1")
    assert _TOKEN.split(" ")[1] not in script.replace("\\'", "'")  # the JavaScript string's value


def test_a_secret_of_semicolons_is_redacted_and_a_body_of_references_is_read_once() -> None:
    """An operator's secret with a run of `;` (each one's forms include `&#59;`, whose own `;`
    is optional in HTML): its echo, as sent, as references with or without their `;` and as
    `&semi;`, is redacted; and a body of `&#59;` that is no echo is no match. Before the
    references were made possessive the search of that body backtracked exponentially (the
    review measured 316 s for 40 `;`: this test did not end)."""
    secret = "Bearer " + ";" * 40 + "x" * 10
    pattern = _echo_pattern(secret.encode())
    for echo in (
        secret,
        secret.replace(";", "&#59;"),
        secret.replace(";", "&#59"),
        secret.replace(";", "&semi;"),
        secret.replace(";", "%3B"),
    ):
        assert pattern.search(echo.encode()) is not None, echo[:20]
    assert pattern.search(b"&#59;" * 40 + b"y") is None
