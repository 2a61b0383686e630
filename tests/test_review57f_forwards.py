"""Review 57f, the http-inject forward path (a member's request as the upstream reads it).

1. The broker drops the headers an upstream may honour as another method, path or host than
   the rule allowed (`X-HTTP-Method-Override`, `X-Forwarded-*`, `X-Original-URL`, ...) and the
   agent's own copy of the injected header, by name, compared case-insensitively. A CGI-style
   server (WSGI, Rack, PHP's CGI family) reads each header from its environment variable,
   `HTTP_` and the name upper-cased with `-` turned into `_`: `X_HTTP_Method_Override` and
   `X-HTTP-Method-Override` are the same variable. CPython's own WSGI server (wsgiref, below)
   maps both there, as did Puma before 6.4.3 (CVE-2024-45614: a client's `X_Forwarded_For`
   clobbered its proxy's `X-Forwarded-For`); nginx and Apache drop underscored names for that
   reason. So an agent whose rule allows only `POST /orders` had the upstream's method-override
   middleware (werkzeug's `HTTPMethodOverrideMiddleware`, Rack::MethodOverride: each reads
   `HTTP_X_HTTP_METHOD_OVERRIDE`) run a DELETE, set the `X-Forwarded-Host` the upstream builds
   its links from, and had its own value put before the secret in the injected header's
   variable. A header is now dropped when its name with `_` read as `-` is one the broker drops
   (the injected header and the `strip` list compared the same way).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from tests.conftest import NOW
from tests.support.leases import make_world, open_broker
from troth.credentials import VerifiedCredential
from troth.errors import SecretError
from troth.secrets import AllowListPolicy, Broker, HttpRequest
from troth.secrets.broker import IssuedLease
from troth.secrets.engine import SecretSpec, parse_spec
from troth.secrets.engines.http_inject import HttpInjectEngine

SECRET = b"sk_upstream_57f_" + b"4c1d9e"


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def wsgi_upstream() -> Iterator[tuple[str, list[Mapping[str, Any]]]]:
    """A WSGI app on CPython's wsgiref server behind a method-override middleware (as
    werkzeug's `HTTPMethodOverrideMiddleware`: a POST's `X-HTTP-Method-Override` is the
    method); its base URL and the environ of each request, the method as the app ran it."""
    seen: list[Mapping[str, Any]] = []

    def app(environ: dict[str, Any], start: Callable[..., Any]) -> list[bytes]:
        override = environ.get("HTTP_X_HTTP_METHOD_OVERRIDE", "").upper()
        if environ["REQUEST_METHOD"] == "POST" and override in ("DELETE", "PUT", "PATCH"):
            environ["REQUEST_METHOD"] = override
        seen.append(dict(environ))
        start("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def orders_lease(
    tmp_path: Path, upstream: str, **settings: Any
) -> Iterator[tuple[Broker, VerifiedCredential, IssuedLease]]:
    """Agent A's lease of an http-inject secret to `upstream`, injected as `X-Api-Key`, whose
    one rule allows `POST /orders` (`settings`: more of its configuration): the broker, A's
    credential and the lease."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"orders": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    try:
        config = {
            "scopes": ["write"],
            "upstream": upstream,
            "header": "X-Api-Key",
            "rules": [{"methods": ["POST"], "path": "/orders"}],
            **settings,
        }
        broker.put_secret("orders", "http-inject", config, SECRET, now=NOW)
        agent = world.credential_a()
        yield broker, agent, broker.issue(agent, "orders", now=NOW)
    finally:
        broker.close()


def _forwarded(tmp_path: Path, headers: tuple[tuple[str, str], ...]) -> Mapping[str, Any]:
    """Agent A (`orders_lease`, `X-Tenant` stripped too) forwards one POST with `headers`
    to a WSGI app: the environ the app ran with."""
    with (
        wsgi_upstream() as (base, seen),
        orders_lease(tmp_path, base + "/api", strip=["X-Tenant"]) as (broker, agent, issued),
    ):
        request = HttpRequest("POST", "/orders", headers, b"{}")
        answer = broker.forward(agent, issued.lease_id, request, now=NOW)
        assert answer.status == 200
        (environ,) = seen
        return environ


def test_an_underscored_method_override_is_dropped(tmp_path: Path) -> None:
    """1: a rule allowing `POST /orders` only; the agent adds `X_HTTP_Method_Override: DELETE`.
    Was a strict xfail: the app ran DELETE /orders (the dropped header's underscored spelling
    reached the same environ variable)."""
    environ = _forwarded(tmp_path, (("X_HTTP_Method_Override", "DELETE"),))
    assert (environ["REQUEST_METHOD"], environ["PATH_INFO"]) == ("POST", "/api/orders")
    assert "HTTP_X_HTTP_METHOD_OVERRIDE" not in environ


@pytest.mark.parametrize(
    "name",
    ["X_Forwarded_Host", "x_forwarded-proto", "X_Original_URL", "X_Host", "Accept_Encoding"],
)
def test_underscored_spellings_of_dropped_headers_are_dropped(tmp_path: Path, name: str) -> None:
    """1: each underscored spelling of a header the broker drops reaches the upstream as the
    header itself (a WSGI app's `HTTP_X_FORWARDED_HOST`, ...). Was a strict xfail."""
    environ = _forwarded(tmp_path, ((name, "evil.example"),))
    variable = "HTTP_" + name.upper().replace("-", "_")
    assert "evil.example" not in environ.get(variable, "")  # Accept-Encoding: the broker's


@pytest.mark.parametrize("name", ["X_Api_Key", "x_api-key", "X_Tenant"])
def test_underscored_spellings_of_the_injected_and_stripped_headers_are_dropped(
    tmp_path: Path, name: str
) -> None:
    """1: the agent's `X_Api_Key` beside the injected `X-Api-Key`: the app read
    `HTTP_X_API_KEY` as the agent's value, a comma, then the secret (wsgiref joins them); a
    `strip`ped header's underscored spelling passed too. Was a strict xfail."""
    environ = _forwarded(tmp_path, ((name, "agent-value"),))
    variable = "HTTP_" + name.upper().replace("-", "_")
    assert "agent-value" not in environ.get(variable, "")
    assert environ["HTTP_X_API_KEY"] == SECRET.decode()


_DOTTED = ["X.HTTP.Method.Override", "X.Forwarded.Host", "x.api.key", "X_Forwarded.For"]


@pytest.mark.parametrize("name", _DOTTED)
def test_dotted_spellings_of_dropped_headers_are_dropped(name: str) -> None:
    """1: PHP files a header as a variable name, `.` read as `_` as in a parameter's name (its
    built-in server here put `X.Forwarded.Host: evil` in `$_SERVER['HTTP_X_FORWARDED_HOST']`;
    PHP-FPM behind a server that passes such names does the same), so a dotted spelling of a
    dropped header is that header to PHP. Was a strict xfail: the broker kept them."""
    request = HttpRequest("POST", "/orders", ((name, "evil.example"),), b"")
    _target, headers = HttpInjectEngine().check_request(_inject_spec(), ("write",), request)
    assert headers == []


_SERVER_ROUTER = b"""<?php
header('Content-Type: text/plain');
echo ($_SERVER['HTTP_X_FORWARDED_HOST'] ?? '-') . ' ' . ($_SERVER['HTTP_X_API_KEY'] ?? '-');
"""


def test_a_php_upstream_reads_no_dotted_spelling(tmp_path: Path) -> None:
    """1, end to end on PHP's built-in server: what it reads as `X-Forwarded-Host` and as the
    injected `X-Api-Key` after the agent sent `X.Forwarded.Host` and `X.Api.Key`."""
    with (
        php_upstream(tmp_path, _SERVER_ROUTER) as base,
        orders_lease(tmp_path, base) as (broker, agent, issued),
    ):
        headers = (("X.Forwarded.Host", "evil.example"), ("X.Api.Key", "agent-value"))
        request = HttpRequest("POST", "/orders", headers, b"")
        answer = broker.forward(agent, issued.lease_id, request, now=NOW)
        assert answer.body == b"- [redacted]"


def test_underscored_names_the_broker_keeps_still_pass(tmp_path: Path) -> None:
    """What the fix keeps: a header with an underscore that names nothing the broker drops
    reaches the upstream as before."""
    environ = _forwarded(tmp_path, (("X_Request_Id", "r-1"), ("Content-Type", "text/plain")))
    assert environ["HTTP_X_REQUEST_ID"] == "r-1"


# -- 2: PHP's spellings of a `_method` parameter ------------------------------------------------

_ROUTER = b"""<?php
// Symfony's Request::getMethod with httpMethodParameterOverride (Laravel turns it on): a POST's
// `_method` parameter, read from the body PHP parsed ($_POST), else the query ($_GET)
$method = $_SERVER['REQUEST_METHOD'];
$override = $_POST['_method'] ?? $_GET['_method'] ?? null;
if ($method === 'POST' && is_string($override)) {
    $method = strtoupper($override);
}
header('Content-Type: text/plain');
echo $method;
"""

_PHP_SPELLINGS = [
    ("/orders", b"amount=1&.method=DELETE"),
    ("/orders", b"amount=1&+.method=DELETE"),
    ("/orders", b"amount=1&%20%20.method=DELETE"),
    ("/orders", b"amount=1&_method%00x=DELETE"),
    ("/orders?.method=DELETE", b"amount=1"),
    ("/orders?_method%00=DELETE", b"amount=1"),
]


_UNQUOTED = [  # a form part's name unquoted: PHP's and Rack's multipart parsers take it
    b"--b\r\nContent-Disposition: form-data; name=_method\r\n\r\nDELETE\r\n--b--\r\n",
    b"--b\r\nContent-Disposition: form-data; name=.method\r\n\r\nDELETE\r\n--b--\r\n",
]
_BRACKETED = [b"amount=1&_method[]=DELETE", b"_method[0]=DELETE", b"_method%5B%5D=DELETE"]


@pytest.mark.parametrize(
    ("target", "body"),
    _PHP_SPELLINGS + [("/orders", body) for body in _UNQUOTED + _BRACKETED],
)
def test_other_spellings_of_a_method_parameter_are_refused(target: str, body: bytes) -> None:
    """2: PHP files a parameter under its name with leading spaces dropped, `.` and ` ` read as
    `_` and the rest cut at a NUL byte (`parse_str`, `$_GET`, `$_POST`: seen with PHP 8.2 here),
    so `.method`, `+.method` and `_method%00x` are its `_method`, which Symfony and Laravel
    honour as the method of a POST; it takes a form part's name unquoted (`name=_method`), as
    Rack does. `_method[]=DELETE` is `["DELETE"]` to Express's extended urlencoded parser (qs),
    and method-override takes an array's first item: with its README's "custom logic" getter
    (`req.body._method`), Express 4.22 with method-override 3.0 ran DELETE for each bracketed
    body here. The broker refused `_method` only as written, quoted and followed by `=` or a
    delimiter: a rule allowing `POST /orders` forwarded each of these. Was a strict xfail."""
    request = HttpRequest("POST", target, (), body)
    with pytest.raises(SecretError, match="method-override"):
        HttpInjectEngine().check_request(_inject_spec(), ("write",), request)


_JSON_ESCAPED = [
    b'{"\\u005fmethod": "DELETE"}',
    b'{"_\\u006Dethod": "DELETE"}',
    b'{"amount": 1, "\\u005F\\u006d\\u0065thod": "DELETE"}',
]


@pytest.mark.parametrize("body", _JSON_ESCAPED)
def test_a_json_escaped_method_parameter_is_refused(body: bytes) -> None:
    """3: a JSON body's key with `\\uXXXX` escapes is the same key once parsed: Express's
    `express.json()` with method-override's README getter (`req.body._method`) ran DELETE for
    `{"\\u005fmethod": "DELETE"}` here (Express 4.22, method-override 3.0), and Laravel reads a
    JSON body's `_method` as a form's (PHP's json_decode gives `_method`). The refusal read the
    body's bytes as they came: forwarded. Was a strict xfail."""
    request = HttpRequest("POST", "/orders", (("Content-Type", "application/json"),), body)
    with pytest.raises(SecretError, match="method-override"):
        HttpInjectEngine().check_request(_inject_spec(), ("write",), request)


def _inject_spec() -> SecretSpec:
    config = {
        "scopes": ["write"],
        "upstream": "http://127.0.0.1:9/api",
        "header": "X-Api-Key",
        "rules": [{"methods": ["POST"], "path": "/orders"}],
    }
    return parse_spec("orders", HttpInjectEngine(), config)


@pytest.mark.parametrize(
    "body", [b"amount=1&payment.method=card", b'{"x.method": 1}', b"note=see .methods"]
)
def test_names_php_does_not_read_as_a_method_parameter_pass(body: bytes) -> None:
    """What the fix keeps: `payment.method` (PHP's `payment_method`), a JSON key with `.method`
    inside it and `.methods` are other names."""
    spec = _inject_spec()
    HttpInjectEngine().check_request(spec, ("write",), HttpRequest("POST", "/orders", (), body))


@contextmanager
def php_upstream(tmp_path: Path, router: bytes = _ROUTER) -> Iterator[str]:
    """`router` on PHP's built-in server (skipped where PHP is not installed): its base URL."""
    php = shutil.which("php")
    if php is None:
        pytest.skip("php is not installed (the refusal itself is checked without it)")
    (tmp_path / "router.php").write_bytes(router)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [php, "-n", "-S", f"127.0.0.1:{port}", str(tmp_path / "router.php")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.parametrize(("target", "body"), _PHP_SPELLINGS[:1] + _PHP_SPELLINGS[4:5])
def test_a_php_upstream_runs_no_other_method(tmp_path: Path, target: str, body: bytes) -> None:
    """2, end to end: the rule allows `POST /orders`; PHP behind the broker ran DELETE for
    `.method=DELETE` (the body or the query). Now refused before it is sent."""
    with php_upstream(tmp_path) as base, orders_lease(tmp_path, base) as (broker, agent, issued):
        plain = HttpRequest("POST", "/orders", _FORM, b"amount=1")
        assert broker.forward(agent, issued.lease_id, plain, now=NOW).body == b"POST"
        request = HttpRequest("POST", target, _FORM, body)
        with pytest.raises(SecretError, match="method-override"):
            broker.forward(agent, issued.lease_id, request, now=NOW)


_FORM = (("Content-Type", "application/x-www-form-urlencoded"),)
