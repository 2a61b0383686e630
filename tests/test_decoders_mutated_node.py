"""Mutation fuzzing of the decoders of a node: the service protocol's requests and responses
(every peer's), the control socket's operations (the node's user's), its files (node.json, a
book of names, the KEK, the rollback guard beside node.db) and the JSON-RPC messages of an MCP
server's stdio, at the limits too (tests/support/limit_mutations.py).

The mutations and the rule every property checks: tests/support/decoder_vectors.py. The
service messages and the guard's slots are canonical CBOR (docs/formats.md, "Encoding", "Rollback
guard"): what decodes encodes again to the same bytes. The files answer ConfigError (the node is
mis-configured), which the rule counts as typed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.decoder_vectors import ED, vectors
from tests.support.limit_mutations import QUICK, hostile
from tests.support.mutations import as_text, mutated, typed
from troth.crypto import sha256
from troth.encoding import cbor
from troth.errors import DecodeError
from troth.integrations.mcp.channel import decode_message, encode_message
from troth.node.config import NodeConfig
from troth.node.control import OPERATIONS
from troth.node.node import parse_kek
from troth.node.own_relays import OwnRelays
from troth.node.services.protocol import (
    decode_request,
    decode_response,
    encode_request,
    result_of,
)
from troth.node.services.relay import RelayBook
from troth.storage.rollback import GUARD_SLOT_BYTES, decode_guard, decode_slot, encode_slot

PROTOCOL = vectors("protocol/protocol_vectors.json")
GUARDS = vectors("storage/guard_vectors.json")

# -- the service protocol ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["request", "request_largest_id"])
@QUICK
@given(data=st.data())
def test_service_request(name: str, data: st.DataObject) -> None:
    mutant = data.draw(hostile(bytes.fromhex(PROTOCOL[name])))
    typed(decode_request, mutant, valid_if=lambda r: encode_request(*r) == mutant)


@pytest.mark.parametrize("name", ["response_ok", "response_denied", "response_busy"])
@QUICK
@given(data=st.data())
def test_service_response(name: str, data: st.DataObject) -> None:
    """A response mutated: decoded (its value encodes again to it), and its result read: the
    result, or the error it carries (Denied, Busy, RoutingError, RemoteError)."""
    mutant = data.draw(hostile(bytes.fromhex(PROTOCOL[name])))
    typed(decode_response, mutant, valid_if=lambda r: cbor.encode(r[1]) == mutant)
    typed(lambda b: result_of(decode_response(b)[1]), mutant)


# -- the control socket -----------------------------------------------------------------------


def _arguments(op: str) -> dict[str, Any]:
    """Arguments operation `op` takes: each field given as text."""
    return {f.name: "x" for f in dataclasses.fields(OPERATIONS[op].arguments)}


@QUICK
@given(data=st.data())
def test_control_request(data: st.DataObject) -> None:
    """A control request (a CBOR map: op, args) mutated, read as the node's control socket
    reads it (troth.node.daemon): typed arguments, or DecodeError."""
    op = data.draw(st.sampled_from(sorted(OPERATIONS)))
    original = cbor.encode({"op": op, "args": _arguments(op)})
    typed(_control_request, data.draw(hostile(original)))


def _control_request(data: bytes) -> object:
    request = cbor.decode(data)
    if not isinstance(request, dict) or not isinstance(request.get("op"), str):
        raise DecodeError("a control request is a map with an op")
    raw = request.get("args") or {}
    if not isinstance(raw, dict):
        raise DecodeError("control arguments are a map")
    operation = OPERATIONS.get(request["op"])
    return None if operation is None else operation.parse(raw)  # else NotFound


# -- the node's files -------------------------------------------------------------------------

CONFIG = NodeConfig(
    "acme", listen="127.0.0.1:4000", advertise="/tcp/acme.example:4000", traces_expect=ED["did"]
).to_json()


@QUICK
@given(data=st.data())
def test_node_config(data: st.DataObject) -> None:
    """node.json mutated: a configuration, or ConfigError."""
    path = Path("node.json")
    typed(lambda b: NodeConfig.from_json(b, path), data.draw(mutated(CONFIG, is_json=True)))


def _read_book(kind: type[RelayBook] | type[OwnRelays], data: bytes) -> object:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "book.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        return kind(path).load()


BOOKS = {
    RelayBook: {"version": 1, "relays": {"orders": ED["identifier"]}},
    OwnRelays: {"version": 1, "relays": {"/tcp/hub.example:4000/relay/acme": ED["identifier"]}},
}


@pytest.mark.parametrize("kind", [RelayBook, OwnRelays], ids=lambda k: k.__name__)
@QUICK
@given(data=st.data())
def test_book_of_names(kind: type[RelayBook] | type[OwnRelays], data: st.DataObject) -> None:
    original = json.dumps(BOOKS[kind]).encode()
    assert _read_book(kind, original)
    typed(lambda b: _read_book(kind, b), data.draw(mutated(original, is_json=True)))


@pytest.mark.parametrize("text", ["5e" * 32, "Xl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl4="])
@QUICK
@given(data=st.data())
def test_kek_text(text: str, data: st.DataObject) -> None:
    """The KEK (hex or base64) mutated: 32 bytes, or ConfigError."""
    assert parse_kek(text) == b"\x5e" * 32
    typed(lambda b: parse_kek(as_text(b)), data.draw(mutated(text.encode())))


def _slot(body: bytes) -> bytes:
    """A guard slot holding `body`, its length and checksum made to fit (formats.md)."""
    slot = len(body).to_bytes(2, "big") + body + sha256(body)[:16]
    return slot.ljust(GUARD_SLOT_BYTES, b"\0")


@pytest.mark.parametrize("name", sorted(GUARDS))
@QUICK
@given(data=st.data())
def test_rollback_guard(name: str, data: st.DataObject) -> None:
    """A guard file mutated (its bytes, or a slot's CBOR with its checksum made to fit): the
    counts of its newest slot, whose CBOR encodes again to the slot, or DecodeError."""
    guard = bytes.fromhex(GUARDS[name]["guard"])
    typed(decode_guard, data.draw(mutated(guard)))
    newest = encode_slot(GUARDS[name]["seq"], GUARDS[name]["counts"])
    body = newest[2 : 2 + int.from_bytes(newest[:2], "big")]
    mutant = data.draw(hostile(body).map(_slot))
    typed(decode_slot, mutant, valid_if=lambda slot: encode_slot(*slot) == mutant)


# -- an MCP server's messages -----------------------------------------------------------------

MCP_CALL = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "refund", "arguments": {"order_id": "4471", "amount": 20}},
    }
).encode()


@QUICK
@given(data=st.data())
def test_mcp_message(data: st.DataObject) -> None:
    """A JSON-RPC message an MCP server (or its client) writes, mutated: a message (written
    again, it reads as the same message), or DecodeError."""
    typed(
        decode_message,
        data.draw(mutated(MCP_CALL, is_json=True)),
        valid_if=lambda m: decode_message(encode_message(m)) == m,
    )
