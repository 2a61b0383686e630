"""The `http-inject` engine: the broker forwards an agent's HTTP request to the configured
upstream and adds the long-lived secret as a header; the agent never sees the secret.

A lease of such a secret creates nothing upstream: it entitles its agent to have requests
forwarded while it is active. Each request must match a rule (method, path pattern, and the
rule's scope among the lease's scopes). The exact rules (docs/secrets.md, "http-inject"):

- the method is an upper-case token on the rule's list;
- the target is `path[?query]` of printable ASCII without `#` or `\\`, at most
  `limits.MAX_INJECT_TARGET` characters; the path starts with `/`, has no empty, `.`-only or
  `..` segments, no `;` (no path parameters: `..;/` is a traversal on some servers), and no
  percent-escape of `/`, `\\`, `.`, `%` or a control character; other escapes pass as they are
  and never match a literal rule segment (so a rule cannot be bypassed by encoding);
- a pattern's segments match literally, `*` matches one segment, a final `**` any rest;
- headers are RFC 9110 tokens with values free of CR, LF and NUL; hop-by-hop headers, `Host`,
  `Content-Length`, `Transfer-Encoding`, `Expect`, every header `Connection` names, the agent's
  own credentials (`Authorization`, `Proxy-Authorization`, `Cookie`, the injected header and
  the configured `strip` list) are dropped, under any spelling with `_` or `.` for `-` (a
  CGI-style server reads `X_Forwarded_Host` as `X-Forwarded-Host`: `_cgi_name`);
  `Content-Length` is set from the body; a query or body naming a `_method` parameter (a
  method override), as written or as PHP reads `.method` and `_method%00x`, after its
  percent-escapes and a JSON body's `\\u00XX` escapes, behind leading brackets too
  (`[_method]`), is refused, and so is a body with a content-coding or in a charset that does
  not keep ASCII as its bytes (UTF-16, UTF-32, UTF-7: `_readable_body`);
- the response comes back without hop-by-hop headers, `Set-Cookie` and any header whose
  name carries the secret, and with every
  occurrence of the secret (and of its credential part after a scheme) replaced by
  `[redacted]`, in headers and body, as sent or as JSON, HTML or percent-encoding would echo
  it, escapes mixed within it (`_echoes`), so an upstream that echoes requests leaks nothing;
  an answer with a content- or transfer-coding (but `chunked`), a folded header or in UTF-16
  or UTF-32 (by its charset, a byte order mark or leading NUL bytes:
  `redaction.check_readable`) is refused (`Accept-Charset` is dropped);
- the whole exchange (connecting, sending, the answer's headers and body) ends within the
  secret's `timeout`, however the upstream paces its bytes.
"""

from __future__ import annotations

import http.client
import io
import re
import socket
import ssl
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast

from troth import limits
from troth.errors import SecretError, SecretFailure
from troth.secrets.engine import Grant, LocalEngine, SecretSpec, config_error
from troth.secrets.engines.redaction import check_readable, echo_pattern
from troth.secrets.lease import LeaseCredential, SecretValue

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "HttpInjectEngine",
    "HttpRequest",
    "HttpResponse",
    "PreparedForward",
    "check_forward_size",
    "check_secret_header",
]

_F = SecretFailure
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.6.2
_METHOD = re.compile(r"[A-Z]{1,16}")
_SEGMENT = re.compile(r"(?:[A-Za-z0-9\-_.~!$&'()*+,=:@]|%[0-9A-Fa-f]{2})+")
_QUERY = re.compile(r"(?:[A-Za-z0-9\-_.~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*")
_BAD_ESCAPE = re.compile(r"%(?:2[eEfF5]|5[cC]|[01][0-9A-Fa-f]|7[fF])")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "expect",
    }
)
_CREDENTIAL_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "cookie"})
# what would let a response escape the literal-secret redaction: a compressed or partial body
# (the broker asks for the identity encoding and refuses any other content- or
# transfer-coding but chunked), and what upstreams and their proxies honour as another
# method, path or host than the one a rule allowed
_REWRITING_HEADERS: Final = frozenset(
    {
        "accept-encoding",
        "accept-charset",  # an answer in UTF-16 or UTF-32 the redaction cannot read (53t)
        "range",
        "if-range",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "x-original-method",
        "x-original-url",
        "x-rewrite-url",
        "x-override-url",
        "x-host",
        "forwarded",
    }
)
_REWRITING_PREFIX: Final = "x-forwarded-"
_CGI_SEPARATORS: Final = str.maketrans("_.", "--")  # `_cgi_name` (review 57f, forwards 1)
# their parameter form: `_method` in the query or a form body of a POST (Laravel, Symfony,
# Rails' Rack::MethodOverride, Express's method-override) as a name of its own, any case,
# percent-escaped or not (`payment_method` is another name; review 53t, secrets 5), and as PHP
# files a name: leading spaces (`+`) dropped, `.` read as `_`, cut at a NUL (`.method`,
# `_method%00x`), and a form part's name unquoted (`name=_method`: PHP's and Rack's multipart
# parsers take it), and as an array (`_method[]=DELETE`: Express's qs gives ["DELETE"], whose
# first item method-override takes; review 57f, forwards 2)
# ... and behind leading brackets, which Express's qs and Rack 2's nested-query parser drop
# (`[_method]=DELETE` is their `_method`: review 57o, forwards 1)
_METHOD_PARAMETER: Final = re.compile(
    rb"(?:^|[&;?\s\"'+]|name=)[\[\]]*[_.]method(?:$|[=&;\s\"'\x00\[\]])", re.I | re.M
)
_CHARSET: Final = re.compile(r";\s*charset\s*=\s*\"?([^\";\s]*)", re.I)
_ASCII_PROBE: Final = bytes(range(0x20, 0x7F))  # `_readable_body`
_JSON_ASCII_ESCAPE: Final = re.compile(rb"\\u00([0-7][0-9A-Fa-f])")
_DROPPED_RESPONSE: Final = frozenset({"set-cookie", "set-cookie2", "proxy-authenticate"})
_REDACTED: Final = b"[redacted]"
_SETTINGS = frozenset({"upstream", "header", "rules", "strip", "timeout"})
_HEADERS_TOTAL: Final = limits.MAX_INJECT_HEADERS_TOTAL


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What the agent asks the broker to forward."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """The upstream's answer, cleaned (see the module docstring)."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "headers": [list(h) for h in self.headers],
            "body_size": len(self.body),
        }


@dataclass(frozen=True, slots=True)
class _Rule:
    methods: frozenset[str]
    segments: tuple[str, ...]
    scope: str | None

    def matches(self, method: str, segments: Sequence[str], scopes: tuple[str, ...]) -> bool:
        if method not in self.methods or (self.scope is not None and self.scope not in scopes):
            return False
        pattern = self.segments
        if pattern and pattern[-1] == "**":
            head = pattern[:-1]
            return len(segments) >= len(head) and _match(head, segments[: len(head)])
        return len(pattern) == len(segments) and _match(pattern, segments)


def _match(pattern: Sequence[str], segments: Sequence[str]) -> bool:
    return all(p == "*" or p == s for p, s in zip(pattern, segments, strict=True))


def _path_segments(path: str) -> tuple[str, ...]:
    """The segments of a normalised path (SecretError FORBIDDEN_REQUEST if it is not one)."""
    if not path.startswith("/"):
        raise SecretError(_F.FORBIDDEN_REQUEST, "the path must start with /")
    if path == "/":
        return ()
    segments = tuple(path[1:].split("/"))
    for segment in segments:
        if (
            not _SEGMENT.fullmatch(segment)
            or segment.strip(".") == ""
            or _BAD_ESCAPE.search(segment)
        ):
            raise SecretError(_F.FORBIDDEN_REQUEST, "the path is not in normal form")
    return segments


def check_forward_size(request: HttpRequest) -> None:
    """SecretError FORBIDDEN_REQUEST when `request` is past a size a broker forwards: its body
    (MAX_INJECT_REQUEST_BYTES), its headers' number and characters (MAX_INJECT_HEADERS,
    MAX_INJECT_HEADERS_TOTAL) or its target (MAX_INJECT_TARGET). The engine's check, and a
    served broker's client's before it sends (`BrokerClient.forward`), so a request within
    them fits one service message and one past them is refused typed, never as a malformed
    request by the broker's decoder (review 63k, limits 2); its method too, an upper-case token
    (`_METHOD`, 16 characters at most: one of a million was sent, past a service message, a
    channel's RemoteError; review 63q, limits 1)."""
    if type(request.method) is not str or not _METHOD.fullmatch(request.method):
        raise SecretError(_F.FORBIDDEN_REQUEST, "the method is not an upper-case token")
    if len(request.body) > limits.MAX_INJECT_REQUEST_BYTES:
        raise SecretError(_F.FORBIDDEN_REQUEST, "the body is over the limit")
    headers = request.headers
    if len(headers) > limits.MAX_INJECT_HEADERS:
        raise SecretError(_F.FORBIDDEN_REQUEST, "too many headers")
    texts = (part for header in headers if type(header) is tuple for part in header)
    if sum(len(part) for part in texts if type(part) is str) > _HEADERS_TOTAL:  # (a header
        # of another type: the engine's refusal, `_forwarded_headers`)
        raise SecretError(_F.FORBIDDEN_REQUEST, "the headers are over the limit")
    if len(request.target) > limits.MAX_INJECT_TARGET:
        raise SecretError(_F.FORBIDDEN_REQUEST, "the target is empty, too long or not ASCII")


def _split_target(target: str) -> tuple[str, str | None]:
    if not 0 < len(target) <= limits.MAX_INJECT_TARGET or not target.isascii():
        raise SecretError(_F.FORBIDDEN_REQUEST, "the target is empty, too long or not ASCII")
    path, sep, query = target.partition("?")
    if sep and not _QUERY.fullmatch(query):
        raise SecretError(_F.FORBIDDEN_REQUEST, "the query is not in normal form")
    return path, query if sep else None


def check_secret_header(value: bytes) -> None:
    """An injected header value: printable, no CR/LF/NUL (SecretError CONFIG_INVALID)."""
    if not value or not re.fullmatch(rb"[\x20-\x7e]+", value) or value != value.strip():
        raise config_error("an http-inject secret is a printable ASCII header value")


class HttpInjectEngine(LocalEngine):
    """Forwards allowed requests with the secret header; settings: upstream (http[s] URL),
    header (the header to inject), rules [{methods, path, scope?}], strip (more header names
    to drop), timeout (seconds a whole forward may take, the answer's body included)."""

    kind = "http-inject"

    def check_settings(
        self, settings: Mapping[str, Any], scopes: tuple[str, ...]
    ) -> dict[str, Any]:
        unknown = set(settings) - _SETTINGS
        if unknown:
            raise config_error(f"unknown http-inject settings: {', '.join(sorted(unknown))}")
        upstream = settings.get("upstream")
        if not isinstance(upstream, str) or not _upstream_ok(upstream):
            raise config_error("upstream is an http(s) URL without credentials, query or fragment")
        header = settings.get("header")
        if not isinstance(header, str) or not _TOKEN.fullmatch(header):
            raise config_error("header is the name of the header to inject")
        rules = settings.get("rules")
        if not isinstance(rules, list) or not 0 < len(rules) <= limits.MAX_INJECT_RULES:
            raise config_error(f"rules is a list of 1-{limits.MAX_INJECT_RULES} rules")
        strip = settings.get("strip", [])
        if not isinstance(strip, list) or not all(
            isinstance(h, str) and _TOKEN.fullmatch(h) for h in strip
        ):
            raise config_error("strip is a list of header names")
        timeout = settings.get("timeout", 10)
        if type(timeout) is not int or not 1 <= timeout <= limits.MAX_INJECT_TIMEOUT:
            raise config_error(f"timeout is 1-{limits.MAX_INJECT_TIMEOUT} seconds")
        return {
            "upstream": upstream.rstrip("/"),
            "header": header,
            "rules": [_check_rule(rule, scopes) for rule in rules],
            "strip": sorted({h.lower() for h in strip}),
            "timeout": timeout,
        }

    def issue(self, grant: Grant, upstream: SecretValue) -> LeaseCredential:
        return LeaseCredential(
            {"secret": grant.spec.name, "forward": "ask the broker to forward requests"},
            grant.handle.digest,
        )

    # -- forwarding ---------------------------------------------------------------------------

    def check_request(
        self, spec: SecretSpec, scopes: tuple[str, ...], request: HttpRequest
    ) -> tuple[str, list[tuple[str, str]]]:
        """The upstream target and the headers to forward, or SecretError FORBIDDEN_REQUEST."""
        check_forward_size(request)  # (the method first: a rule's detail names it)
        path, query = _split_target(request.target)
        segments = _path_segments(path)
        rules = [_rule(r) for r in spec.settings["rules"]]
        if not any(rule.matches(request.method, segments, scopes) for rule in rules):
            raise SecretError(_F.FORBIDDEN_REQUEST, f"no rule allows {request.method} {path}")
        headers = _forwarded_headers(spec, request.headers)
        _readable_body(headers)
        for text in (query or "").encode(), request.body:
            if _method_override(text):
                raise SecretError(_F.FORBIDDEN_REQUEST, "a method-override parameter (_method)")
        return _upstream_target(spec, path, query), headers

    def forward(
        self, spec: SecretSpec, scopes: tuple[str, ...], request: HttpRequest, upstream: SecretValue
    ) -> HttpResponse:
        """Check `request`, send it upstream with the secret header and return the cleaned
        answer. Errors never include the secret, nor the upstream's exception text."""
        target, headers = self.check_request(spec, scopes, request)
        return PreparedForward(self, spec, request, target, tuple(headers), upstream).send()

    def send(
        self,
        spec: SecretSpec,
        request: HttpRequest,
        target: str,
        headers: Sequence[tuple[str, str]],
        upstream: SecretValue,
    ) -> HttpResponse:
        """Send a request `check_request` allowed (its `target` and `headers`) with the secret
        header; the cleaned answer. The whole exchange (connecting, sending, the answer's
        headers and body) ends within the secret's `timeout`: every socket operation gets only
        the time left, so an upstream that trickles bytes cannot stretch it (UPSTREAM_FAILED).
        Errors never include the secret, nor the upstream's exception text."""
        parts = urllib.parse.urlsplit(spec.settings["upstream"])
        timeout: int = spec.settings["timeout"]
        deadline = _Deadline(timeout)
        host, https = parts.hostname or "", parts.scheme == "https"
        conn: http.client.HTTPConnection
        if https:
            conn = http.client.HTTPSConnection(host, parts.port)
        else:
            conn = http.client.HTTPConnection(host, parts.port)
        secret = upstream.reveal()
        response: http.client.HTTPResponse | None = None
        try:
            # what http.client uses of a socket, bounded by the deadline (_DeadlineSocket)
            conn.sock = cast(
                socket.socket, _DeadlineSocket(_connect(host, conn.port, https, deadline), deadline)
            )
            conn.putrequest(request.method, target, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            conn.putheader("Accept-Encoding", "identity")  # a body the redaction can read
            conn.putheader(spec.settings["header"], secret)
            if request.body or request.method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(request.body)))
            conn.endheaders(request.body or None)
            response = conn.getresponse()
            body = response.read(limits.MAX_INJECT_RESPONSE_BYTES + 1)
            raw_headers = response.getheaders()
            status, reason = response.status, response.reason
        except TimeoutError:
            raise SecretError(
                _F.UPSTREAM_FAILED, f"the upstream did not answer within its timeout ({timeout} s)"
            ) from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise SecretError(_F.UPSTREAM_FAILED, type(exc).__name__) from None
        finally:
            if response is not None:  # it holds the socket once the connection passed it on
                response.close()
            conn.close()
        if len(body) > limits.MAX_INJECT_RESPONSE_BYTES:
            raise SecretError(_F.UPSTREAM_FAILED, "the response body is over the limit")
        return _clean_response(status, reason, raw_headers, body, secret)


@dataclass(frozen=True, slots=True)
class PreparedForward:
    """A request its lease's rules allowed, with the secret to inject: `send()` makes the
    upstream call (on any thread: the served broker runs it in its forward pool, never on the
    broker's own thread). Its repr shows no secret (SecretValue)."""

    engine: HttpInjectEngine
    spec: SecretSpec
    request: HttpRequest
    target: str
    headers: tuple[tuple[str, str], ...]
    upstream: SecretValue

    def send(self) -> HttpResponse:
        """`HttpInjectEngine.send`: the cleaned answer, within the secret's timeout."""
        return self.engine.send(self.spec, self.request, self.target, self.headers, self.upstream)


class _Deadline:
    """The end of one forward (monotonic clock): `left()` is the time a socket operation may
    still take (TimeoutError once it has passed)."""

    __slots__ = ("_end",)

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            raise TimeoutError("the forward's deadline passed")
        return left


def _connect(host: str, port: int, https: bool, deadline: _Deadline) -> socket.socket:
    """A connection to the upstream (TLS verified for https), each address tried and the TLS
    handshake done within the time left (name resolution is the system's: the host is the
    operator's configuration, never the agent's)."""
    error: OSError = OSError("the upstream host has no address")
    for family, kind, proto, _name, address in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM
    ):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(deadline.left())
            sock.connect(address)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if not https:
                return sock
            sock.settimeout(deadline.left())  # the handshake as a whole (CPython's _ssl)
            return ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        except TimeoutError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            error = exc
    raise error


class _DeadlineSocket:
    """The connection's socket as http.client uses it (`sendall`, `makefile`, `close`): every
    send and every receive may take only the time left before the deadline."""

    __slots__ = ("_deadline", "_sock")

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(self._deadline.left())  # bounds the whole sendall (Python 3.5+)
        self._sock.sendall(data)

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def close(self) -> None:
        self._sock.close()  # the answer's reader keeps it open until it is closed itself


class _DeadlineReader(io.RawIOBase):
    """The socket's byte stream (socket.SocketIO), each receive given the time left."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int | None:
        self._sock.settimeout(self._deadline.left())
        return self._raw.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def _check_rule(rule: Any, scopes: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(rule, Mapping) or set(rule) - {"methods", "path", "scope"}:
        raise config_error("a rule is {methods, path, scope?}")
    methods, path, scope = rule.get("methods"), rule.get("path"), rule.get("scope")
    if (
        not isinstance(methods, list)
        or not methods
        or not all(isinstance(m, str) and _METHOD.fullmatch(m) for m in methods)
    ):
        raise config_error("a rule's methods are upper-case tokens")
    if not isinstance(path, str) or not path.startswith("/"):
        raise config_error("a rule's path is a pattern starting with /")
    pattern = () if path == "/" else tuple(path[1:].split("/"))
    for index, segment in enumerate(pattern):
        wildcard = segment == "*" or (segment == "**" and index == len(pattern) - 1)
        if not wildcard and "*" in segment:
            raise config_error(f"rule path {path!r}: * and a final ** stand alone in a segment")
        if not wildcard:
            try:
                _path_segments("/" + segment)
            except SecretError:
                raise config_error(f"rule path {path!r} is not in normal form") from None
    if scope is not None and scope not in scopes:
        raise config_error(f"rule scope {scope!r} is not a scope of the secret")
    return {"methods": sorted(set(methods)), "path": path, "scope": scope}


def _rule(settings: Mapping[str, Any]) -> _Rule:
    path = settings["path"]
    pattern = () if path == "/" else tuple(path[1:].split("/"))
    return _Rule(frozenset(settings["methods"]), pattern, settings["scope"])


def _upstream_ok(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url)
        path = parts.path.rstrip("/")
        if path:
            _path_segments(path)
        return (
            parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and parts.username is None
            and not parts.query
            and not parts.fragment
            and url.isascii()
        )
    except (ValueError, SecretError):
        return False


def _upstream_target(spec: SecretSpec, path: str, query: str | None) -> str:
    base: str = urllib.parse.urlsplit(spec.settings["upstream"]).path.rstrip("/")
    return base + path + ("" if query is None else "?" + query)


def _method_override(text: bytes) -> bool:
    """Whether a query or body names a `_method` parameter (`_METHOD_PARAMETER`), read after
    its percent-escapes and its JSON escapes of ASCII (`\\u005fmethod` is a JSON body's
    `_method` once parsed: review 57f, forwards 3)."""
    plain = urllib.parse.unquote_to_bytes(text)
    plain = _JSON_ASCII_ESCAPE.sub(lambda match: bytes([int(match[1], 16)]), plain)
    return _METHOD_PARAMETER.search(plain) is not None


def _readable_body(headers: Sequence[tuple[str, str]]) -> None:
    """Refuse a body the method-override check cannot read as the upstream will: one with a
    content-coding (Express's body parsers inflate gzip and deflate), or whose Content-Type
    names a charset in which ASCII is not its own bytes (express.json() decodes UTF-16, UTF-32
    and UTF-7: review 57o, forwards 2 and 3)."""
    for name, value in headers:
        field = _cgi_name(name)
        if field == "content-encoding" and value.strip(" \t,").lower() not in ("", "identity"):
            raise SecretError(_F.FORBIDDEN_REQUEST, "a content-coding of the body")
        if field == "content-type":
            for charset in _CHARSET.findall(value):
                if not _ascii_charset(charset):
                    raise SecretError(_F.FORBIDDEN_REQUEST, "a charset that is not ASCII")


def _ascii_charset(charset: str) -> bool:
    """Whether text in `charset` keeps printable ASCII as its own bytes (False: unknown)."""
    try:
        return _ASCII_PROBE.decode(charset) == _ASCII_PROBE.decode("ascii")
    except (LookupError, UnicodeDecodeError):
        return False


def _header_bytes(headers: Sequence[tuple[str, str]]) -> int:
    return sum(len(name) + len(value) for name, value in headers)


def _forwarded_headers(
    spec: SecretSpec, headers: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    if len(headers) > limits.MAX_INJECT_HEADERS:
        raise SecretError(_F.FORBIDDEN_REQUEST, "too many headers")
    total = 0
    dropped = set(_HOP_BY_HOP) | _CREDENTIAL_HEADERS | _REWRITING_HEADERS
    dropped.update(_cgi_name(name) for name in spec.settings["strip"])
    dropped.add(_cgi_name(spec.settings["header"]))
    for name, value in headers:
        if (
            not isinstance(name, str)
            or not isinstance(value, str)
            or not _TOKEN.fullmatch(name)
            or not _HEADER_VALUE.fullmatch(value)
            or len(name) + len(value) > limits.MAX_INJECT_HEADER_BYTES
        ):
            raise SecretError(_F.FORBIDDEN_REQUEST, "a header is malformed or too long")
        total += len(name) + len(value)
        if total > _HEADERS_TOTAL:
            raise SecretError(_F.FORBIDDEN_REQUEST, "the headers are over the limit")
        if name.lower() == "connection":
            dropped.update(_cgi_name(t.strip()) for t in value.split(","))
    return [
        (n, v)
        for n, v in headers
        if _cgi_name(n) not in dropped and not _cgi_name(n).startswith(_REWRITING_PREFIX)
    ]


def _cgi_name(name: str) -> str:
    """A header's name as a CGI-style server (WSGI's wsgiref, Rack, PHP) files it, `HTTP_`
    and the name upper-cased with `-` as `_` (PHP reads a `.` as `_` too, as in a parameter's
    name), spelled as the broker's lists spell names: lower case, `_` and `.` as `-`.
    `X_HTTP_Method_Override` and `X.Forwarded.Host` are `X-HTTP-Method-Override` and
    `X-Forwarded-Host` there (review 57f, forwards 1; Puma's CVE-2024-45614), so a dropped
    header is dropped in every spelling."""
    return name.lower().translate(_CGI_SEPARATORS)


def _clean_response(
    status: int, reason: str, headers: list[tuple[str, str]], body: bytes, secret: bytes
) -> HttpResponse:
    echoed = echo_pattern(secret)
    if len(headers) > limits.MAX_INJECT_HEADERS or _header_bytes(headers) > _HEADERS_TOTAL:
        raise SecretError(_F.UPSTREAM_FAILED, "too many response headers")
    for name, value in headers:  # fail closed: an encoded body cannot be searched for the secret
        if "\r" in value or "\n" in value:  # an obs-fold, kept by http.client: a gateway
            # discards the message (RFC 9112 section 5.2); one inside the secret hid it (53t)
            raise SecretError(_F.UPSTREAM_FAILED, "the upstream answered a folded header")
        coding = value.strip().lower()
        if name.lower() == "content-encoding" and coding not in ("", "identity"):
            raise SecretError(_F.UPSTREAM_FAILED, "the upstream answered with an encoded body")
        # http.client decodes chunks only under a first value of exactly `chunked`: under
        # `gzip, chunked` it handed the compressed bytes on (review 53t, secrets 2), under
        # `chunked ` or `identity` then `chunked` the framing, which split the secret (6)
        if name.lower() == "transfer-encoding" and value.lower() != "chunked":
            raise SecretError(_F.UPSTREAM_FAILED, "the upstream answered with an encoded body")
    # review 53t, secrets 7 (a wide charset's label); review 54e, secrets 2 (its BOM, no label)
    check_readable((v for n, v in headers if n.lower() == "content-type"), body)
    cleaned: list[tuple[str, str]] = []
    for name, value in headers:
        lower = name.lower()
        if lower in _HOP_BY_HOP or lower in _DROPPED_RESPONSE:
            continue
        if echoed.search(name.encode("latin-1", "replace")):  # a name is not text to edit
            continue  # (review 53t, secrets 1: an upstream reflecting it into a header name)
        raw = echoed.sub(_REDACTED, value.encode("latin-1", "replace"))
        cleaned.append((name, raw.decode("latin-1")))
    body = echoed.sub(_REDACTED, body)
    safe_reason = echoed.sub(_REDACTED, reason.encode("latin-1", "replace"))
    return HttpResponse(status, safe_reason.decode("latin-1"), tuple(cleaned), body)
