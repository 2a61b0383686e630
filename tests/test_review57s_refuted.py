"""Review 57s, refuted: attacks on this session's newest forward-path, authority and MCP code
(reviews 57f, 57o, 57l) that did not work, and legitimate traffic the new checks must not
refuse. Each test fails if the defence (or the leniency) it shows is lost."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import NOW
from tests.test_review57f_forwards import _inject_spec
from tests.test_review57g_authority import (  # noqa: F401 - the fixture
    ORDERS,
    Member,
    _link_after_rotation,
    _revoke_as,
    member,
)
from tests.test_review57o_authority import delegated_below
from troth import limits
from troth.credentials import CredentialChain, delegate
from troth.errors import AuthorityError, AuthorityFailure, SecretError
from troth.identity import Identifier
from troth.integrations.mcp.quiet import SDK_LOGGERS, quiet_sdk
from troth.secrets import HttpRequest
from troth.secrets.engines.http_inject import HttpInjectEngine

_FORM = "application/x-www-form-urlencoded"
_MULTIPART = b"""--b\r
Content-Disposition: form-data; name="payment_method"\r
\r
card\r
--b\r
Content-Disposition: form-data; name="method"\r
\r
fast\r
--b--\r
"""


def _check(
    headers: tuple[tuple[str, str], ...], body: bytes, target: str = "/orders"
) -> list[tuple[str, str]]:
    request = HttpRequest("POST", target, headers, body)
    return HttpInjectEngine().check_request(_inject_spec(), ("write",), request)[1]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json; charset=utf-8", b'{"payment_method": "card", "method": "x"}'),
        ('application/json; charset="UTF-8"', b'{"shipping_method": "ups"}'),
        ("application/json;charset=UTF8", b'{"a": 1}'),
        (f"{_FORM}; charset=ISO-8859-1", b"payment_method=card&method=GET&shipping_method=ups"),
        ("text/plain; charset=windows-1252", b"order.method and pay_method"),
        ("multipart/form-data; boundary=b", _MULTIPART),
    ],
)
def test_common_legitimate_bodies_pass(content_type: str, body: bytes) -> None:
    """Leniency: JSON APIs with a (quoted) UTF-8 charset, forms and multipart uploads whose
    fields end in `_method` or are `method`, and ASCII-keeping charsets are forwarded."""
    headers = _check((("Content-Type", content_type),), body)
    assert ("Content-Type", content_type) in headers


@pytest.mark.parametrize(
    ("headers", "target"),
    [
        ((("Content-Type", "application/json; charset=utf-8; charset=utf-16le"),), "/orders"),
        ((("Content-Type", "application/json; charset=utf-16le; charset=utf-8"),), "/orders"),
        ((("Content-Type", 'application/json; charset="utf\\-16le"'),), "/orders"),
        ((("Content-Encoding", "identity, gzip"),), "/orders"),
        ((("Content-Encoding", "identity"), ("Content-Encoding", "gzip")), "/orders"),
        ((("Content_Encoding", "gzip"),), "/orders"),
        ((("Content.Encoding", "x-gzip"),), "/orders"),
        ((), "/orders#_method=DELETE"),
        ((), "/orders;_method=DELETE"),
        ((), "/orders?amount=1;_method=DELETE"),
    ],
)
def test_charset_coding_fragment_and_matrix_bypasses_are_refused(
    headers: tuple[tuple[str, str], ...], target: str
) -> None:
    """Two charset parameters (either order), an escaped label, a coding after `identity` or
    in a second header or another spelling, `_method` in a fragment, a path parameter or a
    `;`-separated query parameter: each refused."""
    body = '{"_method": "DELETE"}'.encode("utf-16le") if "charset" in str(headers) else b"{}"
    with pytest.raises(SecretError):
        _check(headers, body, target)


def test_a_transfer_coding_is_dropped_in_every_spelling() -> None:
    """`Transfer-Encoding: gzip, chunked` (or `Transfer_Encoding`) is not forwarded: the body
    goes as the bytes the check read, framed by the broker's Content-Length."""
    names = ("Transfer-Encoding", "Transfer_Encoding", "transfer.encoding")
    forwarded = _check(tuple((n, "gzip, chunked") for n in names), b"amount=1")
    assert [n for n, _ in forwarded] == []


def test_the_check_reads_the_whole_body_and_no_longer_one_is_sent() -> None:
    """`_method` in a body's last bytes at the size limit is found; a byte more is refused."""
    tail = b"&_method=DELETE"
    body = b"a=" + b"x" * (limits.MAX_INJECT_REQUEST_BYTES - 2 - len(tail)) + tail
    assert len(body) == limits.MAX_INJECT_REQUEST_BYTES
    with pytest.raises(SecretError, match="method-override"):
        _check((("Content-Type", _FORM),), body)
    with pytest.raises(SecretError, match="over the limit"):
        _check((("Content-Type", _FORM),), b"x" + body)


def test_troths_own_warnings_pass_after_an_sdk_flood(caplog: pytest.LogCaptureFixture) -> None:
    """The SDK's loggers spent their minute: the gate's and the node's warnings (a refused
    tool, a security event) all pass; none of troth's loggers is (under) an SDK logger."""
    caplog.set_level(logging.INFO)
    quiet_sdk()
    lines = 2 * limits.MCP_SDK_LOG_LINES_PER_MINUTE + 1
    for n in range(lines):
        logging.getLogger("mcp.client.stdio").warning("junk %d", n)
    ours = ("troth.integrations.mcp.gate", "troth.node.mcp", "troth.node")
    for n in range(lines):
        for name in ours:
            logging.getLogger(name).warning("tool refused %d", n)
    assert all(len([r for r in caplog.records if r.name == name]) == lines for name in ours)
    assert not any(name.startswith("troth") for name in SDK_LOGGERS)


def test_a_thiefs_fork_in_a_revoke_requests_chain_publishes_nothing(
    member: Member,  # noqa: F811 - the fixture imported above
) -> None:
    """Her rotation is stored and published (her delegate's revoke request showed it); the
    thief rotates its copy of her keys otherwise and asks to revoke its own link under the
    fork, signed by an identity of its own (the chain, not the requester, carries the fork):
    refused, and her stored history and its supersession are as they were."""
    now = NOW + 20
    link = _link_after_rotation(member, now)
    member.authority.revoke_link(
        _revoke_as(member.member, member, delegated_below(member, link, now), now, ref="sub"),
        now=now,
    )
    her = Identifier(member.member.identities.find("member").identifier)
    store = member.authority.store
    published, tip = store.latest_supersession(her.digest), store.revocation_tip()
    assert published is not None
    assert published[1] == 2
    member.thief.identities.rotate("member", now=now)  # the fork: another second key
    forked = delegate(
        member.thief.identities.signer("member", now=now),
        CredentialChain(link.credentials[:1], link.histories[:1]),  # acme's root for her
        subject=member.sub,
        attributes=ORDERS,
        now=now,
        ttl=600,
        purpose="job",
    )
    with pytest.raises(AuthorityError, match="chain: issuer") as refused:
        member.authority.revoke_link(
            _revoke_as(member.thief, member, forked, now, ref="below"), now=now
        )
    assert refused.value.reason is AuthorityFailure.REQUEST_INVALID
    assert store.latest_supersession(her.digest) == published
    assert store.revocation_tip() == tip
    assert member.authority.identities.stored_changes(her) == 2
    real = member.member.identities.get("member", now=now).identity.current_change_hash
    assert store.supersession_hash(her.digest, 2) == real  # hers, not the thief's
