"""Review 22's attacks on the newest secrets code (http-inject's redaction of encoded echoes):

1. http-inject redacts the secret as Python, PHP and Go JSON, Python's HTML escaping and
   percent-encoding write it, but two of the most common server stacks escape more: .NET's
   System.Text.Json (its default encoder) writes `+` as `\\u002B`, `'` as `\\u0027`, `"` as
   `\\u0022`, `<` `>` `&` as `\\u003C` `\\u003E` `\\u0026` (upper-case hex), and Go's
   html/template writes `+` as `&#43;`, `"` as `&#34;`, `'` as `&#39;`. A base64 credential
   holds `+`: an allowed path whose framework echoes the request's Authorization header that
   way hands the agent its secret (json.loads / html.unescape give it back whole). PHP's
   htmlspecialchars writes `'` as `&#039;` (zero-padded), which is missed too;
3. another agent's live lease keeps a lease's revocation failing for as long as it lives: a
   function (or a type) a lease makes is usable by PUBLIC by default (EXECUTE, USAGE), so a
   lease of another agent that may create in the same schema makes a column default (a view,
   a check) on it without any grant from its owner. `DROP OWNED BY` the revoked role then
   fails (DependentObjectsStillExist), and `_drop_owned` drops together only with roles of
   this broker being revoked (NOLOGIN): the live lease is not one, so the revocation fails
   at every sweep — the lease stays REVOKING, its role (NOLOGIN, no privilege) and its
   objects stay, and the secret cannot be removed — until the other agent's lease ends (it
   may renew it);
4. a `Basic` secret is redacted as its header value and its base64 credential part, but an
   upstream that answers what it decoded from the header (a debug or "whoami" endpoint, an
   error naming the user and password it was given) hands the agent the password itself.

Each test asserts the secure behaviour (each was a strict xfail until its fix).
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.leases import LeaseWorld
from tests.support.upstreams import answering, echoing, forward_once
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
    world,
)
from tests.test_secrets_postgres import setup as pg_setup
from troth.secrets import LeaseState

# -- 1. encoders that escape more than the redaction knows --------------------------------------

_SECRET = "Bearer sk/live+CANARY&7f<3a>9c\"2e'41=="  # review 21's: what encoders escape


def _dotnet_json(text: str) -> str:
    """System.Text.Json's JavaScriptEncoder.Default: HTML-sensitive characters and `+` as
    \\uXXXX, upper-case hex."""
    escaped = json.dumps(text)[1:-1].replace('\\"', '"')
    return '"' + re.sub(r"[+'\"<>&`]", lambda m: f"\\u{ord(m.group()):04X}", escaped) + '"'


def _go_html_template(text: str) -> str:
    """Go's html/template in HTML text (htmlEscaper: `&#34;` `&#39;` `&#43;` `&lt;` ...)."""
    table = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;", "+": "&#43;"}
    return "".join(table.get(c, c) for c in text)


def _php_htmlspecialchars(text: str) -> str:
    """PHP 8.1+'s htmlspecialchars (ENT_QUOTES | ENT_SUBSTITUTE | ENT_HTML401): `'` as
    `&#039;` (zero-padded)."""
    return html.escape(text).replace("&#x27;", "&#039;")


_ECHOES: dict[str, tuple[Callable[[str], str], Callable[[str], str]]] = {
    "dotnet-json": (_dotnet_json, json.loads),
    "go-html-template": (_go_html_template, html.unescape),
    "php-htmlspecialchars": (_php_htmlspecialchars, html.unescape),
}


@pytest.mark.parametrize("encoding", sorted(_ECHOES))
def test_an_upstream_echoing_the_secret_as_dotnet_or_go_templates_escape_it_leaks_nothing(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixture imported above
    encoding: str,
) -> None:
    """An allowed path echoes the request's Authorization header in its body and a header,
    escaped as .NET's JSON serializer or Go's html/template does. What the agent reads,
    decoded the same way, holds neither the secret nor its credential part."""
    encode, decode = _ECHOES[encoding]
    assert decode(encode(_SECRET)) == _SECRET  # the encoding is faithful (not a test of it)

    answer = forward_once(tmp_path, world, echoing(encode), _SECRET.encode(), now=now())
    assert answer.status == 200
    credential = _SECRET.partition(" ")[2]
    for seen in (answer.body.decode("latin-1"), dict(answer.headers)["X-Seen"]):
        try:
            plain = decode(seen)
        except ValueError:  # what the redaction left is no longer the encoding's text
            plain = seen
        assert credential not in plain


# -- 3. another agent's live lease depends on a revoked lease's function ------------------------


def test_another_agents_lease_cannot_keep_a_revocation_failing(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixture imported above
    orders: OrdersDb,  # noqa: F811 - the fixture imported above
) -> None:
    """Agent b's lease makes a function in its own schema and lets PUBLIC use the schema;
    agent a's lease (another agent) makes a table whose column default calls it — no other
    grant from b needed. Agent b's lease is revoked: after a sweep its role is gone and the
    lease is REVOKED, while agent a's lease is still active."""
    broker = pg_setup(tmp_path, world, orders)
    a_agent, b_agent = world.credential_a(), world.credential_b()
    a = broker.issue(a_agent, SECRET, scope=["orders:write"], now=now())
    b = broker.issue(b_agent, SECRET, scope=["orders:write"], now=now())
    with login(orders, b.credential.reveal()) as sb:
        sb.execute(
            "CREATE FUNCTION b_one() RETURNS int LANGUAGE sql AS 'SELECT 1'; "
            f'GRANT USAGE ON SCHEMA "{b.lease.engine_ref}" TO PUBLIC'
        )
    with login(orders, a.credential.reveal()) as sa:
        sa.execute(f'CREATE TABLE a_pins (x int DEFAULT "{b.lease.engine_ref}".b_one())')
    broker.revoke(b_agent, b.lease_id, now=now())  # one that fails stays REVOKING (retried)
    broker.sweep(now() + 1)
    lease = broker.book.lease(b.lease.handle)
    role = b.lease.engine_ref
    assert role is not None
    remaining = orders.roles(role)
    broker.revoke(a_agent, a.lease_id, now=now())  # cleans up either way
    broker.sweep(now() + 2)
    broker.close()
    assert lease is not None
    assert lease.state is LeaseState.REVOKED
    assert remaining == set()


# -- 4. a Basic credential echoed decoded ----------------------------------------------------------

_BASIC_PASSWORD = "CANARY-pw-7f3a9c2e41"
_BASIC = "Basic " + base64.b64encode(f"svc:{_BASIC_PASSWORD}".encode()).decode()


def test_an_upstream_echoing_a_basic_credential_decoded_leaks_no_password(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixture imported above
) -> None:
    """The secret is a `Basic` header. An allowed path answers what it decoded from it, as a
    framework's request.authorization does (`{"username": ..., "password": ...}`). The agent
    reads no password."""

    def whoami(authorization: str) -> bytes:
        scheme, _, encoded = authorization.partition(" ")
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        return json.dumps({"scheme": scheme, "username": user, "password": password}).encode()

    Echo = answering(whoami)

    answer = forward_once(tmp_path, world, Echo, _BASIC.encode(), path="/whoami", now=now())
    assert answer.status == 401
    assert _BASIC_PASSWORD.encode() not in answer.body
