"""Review 54d, refuted: hostile JSON that troth's readers already refused or read safely (the
code was right). Each is one typed error of its layer with a reason, or the value the consumer
acts on is the one that was checked.

- `load_json` (VCs, node.json, status.json, books, bundle tool schemas, JWKS, secret
  configurations, caveat contexts, policy inputs, export lines, DSSE envelopes): duplicate
  names, nesting 100,000 deep, 100,000-digit integers, NaN / Infinity / 1e400, lone
  surrogates, bytes that are not UTF-8, a BOM, and an input over its limit (refused before it
  is decoded) are each a DecodeError; -0.0 and 1e-400 are finite doubles, read as such.
- MCP JSON-RPC (`decode_message`, the MCP SDK's pydantic reader): what is not I-JSON is a
  DecodeError; of a duplicated name the last is read, and the message forwarded is re-encoded
  from what was read, so an upstream sees the member the gate judged and no other.
- trace record payloads and troth's DSSE envelopes: only their canonical bytes decode (so a
  duplicate name, whitespace or an escape is refused as well as deep nesting or NaN).
- JWT headers (read before the signature: a caller's bearer token; of a token's claims,
  read only once its signature verified, the last of a duplicated name is read, as RFC 7519
  §4 allows) and stored disclosures (`decode_disclosures`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCRequest

from tests.support.traces import NOW, Held, tool_call
from troth.encoding.ijson import load_json
from troth.errors import DecodeError, DecodeProblem, SecretError, SecretFailure, TraceError
from troth.integrations.mcp.channel import decode_message, encode_message
from troth.secrets.jwt import Jwks, validate_token
from troth.secrets.lease import b64url
from troth.trace.dsse import decode_envelope
from troth.trace.record_decode import decode_payload
from troth.trace.signing import open_envelope, sign_record
from troth.trace.stored import decode_disclosures

LIMIT = 1 << 20
HOSTILE: dict[str, bytes] = {
    "duplicate": b'{"a":1,"a":2}',
    "duplicate inside": b'[{"a":{"b":1,"b":1}}]',
    "deep array": b"[" * 100_000 + b"]" * 100_000,
    "deep object": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "unclosed": b"[" * 100_000,
    "digits": b"9" * 100_000,
    "4000 digits": b"-" + b"9" * 4_000,
    "past 2**53": b"9007199254740992",
    "NaN": b"[NaN]",
    "Infinity": b"-Infinity",
    "1e400": b"1e400",
    "long exponent": b"1e" + b"9" * 100_000,
    "lone surrogate": b'"\\ud800"',
    "lone low surrogate in a name": b'{"\\udc00":1}',
    "noncharacter": b'"\\uffff"',
    "encoded surrogate": b'"\xed\xa0\x80"',
    "not UTF-8": b'"\xff"',
    "overlong": b'"\xc0\xaf"',
    "BOM": b"\xef\xbb\xbf{}",
    "two values": b"{}{}",
    "empty": b"",
}


@pytest.mark.parametrize("data", list(HOSTILE.values()), ids=list(HOSTILE))
def test_load_json_refuses_with_a_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError) as caught:
        load_json(data, max_bytes=LIMIT)
    assert str(caught.value)


def test_load_json_checks_the_size_before_decoding() -> None:
    """An input over the limit is refused as such, whatever it holds (no bytes decoded)."""
    for data in (b"\xff" * 101, b"[" * 101, b" " * 101):
        with pytest.raises(DecodeError) as caught:
            load_json(data, max_bytes=100)
        assert caught.value.problem is DecodeProblem.OVER_LIMIT


def test_load_json_reads_signed_zero_and_underflow_as_doubles() -> None:
    assert json.dumps(load_json(b"[-0.0,1e-400,-0]", max_bytes=LIMIT)) == "[-0.0, 0.0, 0]"


def test_load_json_keeps_a_bom_inside_a_string_and_a_10000_element_array() -> None:
    assert load_json(b'"\xef\xbb\xbf"', max_bytes=LIMIT) == "\ufeff"
    many = b"[" + b",".join([b'{"a":[1,2]}'] * 10_000) + b"]"
    assert len(load_json(many, max_bytes=LIMIT)) == 10_000


# -- MCP JSON-RPC ---------------------------------------------------------------------------------

_CALL = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"refund",%s}}'


@pytest.mark.parametrize(
    "arguments",
    [
        b'"arguments":{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'"arguments":{"x":' + b"9" * 100_000 + b"}",
        b'"arguments":{"x":"\\ud800"}',
        b'"arguments":{"x":"\xff"}',
    ],
    ids=["deep", "digits", "lone surrogate", "not UTF-8"],
)
def test_an_mcp_message_that_is_not_i_json_is_a_decode_error(arguments: bytes) -> None:
    with pytest.raises(DecodeError, match="not a JSON-RPC message"):
        decode_message(_CALL % arguments)
    with pytest.raises(DecodeError, match="not a JSON-RPC message"):
        decode_message(b"\xef\xbb\xbf" + _CALL % b'"arguments":{}')


def test_an_mcp_message_with_a_duplicate_name_is_forwarded_as_it_was_judged() -> None:
    """The gate judges the decoded message and forwards it re-encoded: one member, the one
    judged (the last), whichever the upstream's parser would have taken of the original."""
    message = decode_message(
        _CALL % b'"arguments":{"amount":1,"amount":100000},"name":"refund"'
    ).message
    assert isinstance(message, JSONRPCRequest)
    assert message.params is not None
    assert message.params["arguments"] == {"amount": 100000}
    forwarded = encode_message(SessionMessage(message))
    assert forwarded.count(b'"amount"') == 1
    assert json.loads(forwarded)["params"]["arguments"] == {"amount": 100000}


# -- trace payloads and envelopes -----------------------------------------------------------------


def _signed() -> tuple[bytes, bytes]:
    record = sign_record(Held().signer(), tool_call(), seq=0, prev=None, time=NOW)
    return record.envelope, open_envelope(record.envelope)[1]


def test_a_record_payload_decodes_only_in_its_canonical_bytes() -> None:
    _envelope, payload = _signed()
    value = json.loads(payload)
    text = payload.decode()
    first = text.index(",")
    variants = [
        text[:first] + ',"agent":' + json.dumps(value["agent"]) + text[first:],  # duplicate
        text.replace(f'"seq":{value["seq"]}', '"seq":' + "9" * 5_000),
        text.replace(f'"time":{value["time"]}', '"time":NaN'),
        text.replace(f'"time":{value["time"]}', '"time":-0.0'),
        text.replace('"kind":"', '"kind":"\\ud800'),
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        text.replace(":", ": ", 1),
    ]
    for variant in variants:
        with pytest.raises(DecodeError):
            decode_payload(variant.encode())
    assert decode_payload(payload).seq == value["seq"]


def test_a_trace_envelope_decodes_only_in_its_canonical_bytes() -> None:
    envelope, _payload = _signed()
    value = json.loads(envelope)
    variants = [
        envelope.replace(b'{"payload"', b'{"payloadType":"x","payload"', 1),  # duplicate
        envelope.replace(b'"signatures":[', b'"signatures": [', 1),
        json.dumps(value, sort_keys=True).encode(),
        b"[" * 100_000 + b"]" * 100_000,
        envelope.replace(b'"keyid":"', b'"keyid":"\\u0030', 1),
    ]
    for variant in variants:
        with pytest.raises(DecodeError):
            decode_envelope(variant)


# -- JWT headers, stored disclosures --------------------------------------------------------------

_HEADERS: dict[str, Any] = {
    "deep": b"[" * 5_000 + b"]" * 5_000,
    "digits": b'{"alg":"EdDSA","kid":' + b"9" * 5_000 + b"}",
    "not UTF-8": b'{"alg":"\xff"}',
}


@pytest.mark.parametrize("header", list(_HEADERS.values()), ids=list(_HEADERS))
def test_a_hostile_jwt_header_is_a_malformed_token(header: bytes) -> None:
    token = f"{b64url(header)}.{b64url(b'{}')}.{b64url(b'x' * 64)}"
    with pytest.raises(SecretError) as caught:
        validate_token(token, Jwks(), audience="a", now=NOW)
    assert caught.value.reason is SecretFailure.JWT_MALFORMED


def test_a_jwt_over_its_limit_is_refused_before_it_is_read() -> None:
    token = "e" * 20_000 + ".e.e"
    with pytest.raises(SecretError, match="sane size"):
        validate_token(token, Jwks(), audience="a", now=NOW)


@pytest.mark.parametrize(
    "stored",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"args":["' + b"00" * 16 + b'",' + b"9" * 5_000 + b"]}",
        b'{"args":["' + b"00" * 16 + b'","1","2"]}',
        b'{"args":7}',
        b"\xff",
    ],
    ids=["deep", "digits", "three", "not a pair", "not UTF-8"],
)
def test_stored_disclosures_not_as_written_are_malformed(stored: bytes) -> None:
    with pytest.raises(TraceError, match="stored disclosures"):
        decode_disclosures(stored)
