"""Review 64a2: attacks on review 64z's (control answer limits), 64w's (the postgres admin's
SCRAM) and 64y's (fork refusals) fixes that the code refused. Each test is an attack and passes
because it fails."""

from __future__ import annotations

import asyncio
import struct

import pytest

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError, SecretError
from troth.node import daemon
from troth.node.daemon import _decode_answer, _read_request, answer_frame, control_failure
from troth.secrets.engines.postgres import PostgresEngine
from troth.transport.framing import FRAME_HEADER, FRAME_VERSION

# -- 64z: the control socket's limits ------------------------------------------------------------


def test_a_request_announcing_more_than_the_request_limit_is_refused_unread() -> None:
    """A client announcing a 16 MiB request (the answer's limit, not the request's): refused
    at its header, the node reads none of its body (the request side stays at 128 KiB)."""

    async def run() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(FRAME_HEADER.pack(FRAME_VERSION, limits.MAX_CONTROL_ANSWER))
        with pytest.raises(DecodeError, match="over the limit"):
            await _read_request(reader)

    asyncio.run(run())


def test_a_request_of_many_items_within_its_bytes_is_refused_by_the_decoder() -> None:
    """A request within MAX_CONTROL_REQUEST bytes but of 100,000 items (past the generic
    65,536 the node decodes requests with: the answers' 1,048,576 is the CLI's only)."""
    data = cbor.encode({"op": "status", "args": {"x": [0] * 100_000}})
    assert len(data) < limits.MAX_CONTROL_REQUEST
    with pytest.raises(DecodeError, match="data items"):
        cbor.decode(data)


def test_a_failure_whose_message_is_past_the_answer_limit_is_still_answered() -> None:
    """An error of 20 MiB of text (a peer's words repeated into an exception): the answer
    the node sends is a short DecodeError the CLI reads, never one it would refuse."""
    data = answer_frame(control_failure(ValueError("x" * (20 << 20))))
    assert len(data) < 1024
    answer = _decode_answer(data[FRAME_HEADER.size :])
    assert answer["ok"] is False
    assert answer["kind"] == "DecodeError"
    assert "could not be sent" in answer["error"]


def test_an_answer_with_more_items_than_the_cli_reads_is_never_sent() -> None:
    """An answer whose frame is within MAX_CONTROL_ANSWER bytes but past the items the CLI
    reads (the limit lowered here, read at call time, to keep the test fast): the error answer
    is sent, which the CLI decodes, and the next answer goes as it is."""
    lowered = pytest.MonkeyPatch()
    lowered.setattr(limits, "MAX_CONTROL_ANSWER_ITEMS", 1000)
    try:
        refused = answer_frame({"ok": True, "result": [0] * 1000})
        assert _decode_answer(refused[FRAME_HEADER.size :])["kind"] == "DecodeError"
        taken = answer_frame({"ok": True, "result": [0] * 990})
        assert _decode_answer(taken[FRAME_HEADER.size :])["result"] == [0] * 990
    finally:
        lowered.undo()


def test_a_forged_answer_header_past_the_limit_is_refused_before_its_body() -> None:
    """A node (or a process the pid check let through) announcing an answer of 4 GiB: the
    CLI refuses the header, never allocates the body."""

    async def run() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(struct.pack(">BI", FRAME_VERSION, 0xFFFFFFFF))
        with pytest.raises(DecodeError, match="over the limit"):
            await daemon._read_frame(reader, limits.MAX_CONTROL_ANSWER)

    asyncio.run(run())


# -- 64w: no libpq keyword the operator names reaches the connection ------------------------------

BASE = {"dbname": "orders", "user": "admin", "templates": {"orders:read": "reader"}}


@pytest.mark.parametrize(
    "changes",
    [
        {"host": "db.example,/tmp"},  # several hosts: the second a socket, no SCRAM asked
        {"host": "db.example /tmp"},
        {"host": "@abstract"},  # an abstract socket
        {"host": "db.example", "hostaddr": "203.0.113.9"},
        {"host": "db.example", "service": "evil"},
        {"host": "db.example", "options": "-c x=y"},
        {"host": "db.example", "sslrootcert": "system"},
        {"host": "db.example", "require_auth": "password"},
        {"host": "db.example", "channel_binding": "disable"},
        {"host": "host=/tmp require_auth=password"},  # a conninfo string in `host`
    ],
)
def test_a_setting_that_would_reach_libpq_otherwise_is_refused(changes: dict[str, str]) -> None:
    """Every libpq keyword but the engine's own is refused, and `host` holds one host name,
    address or socket directory: no multi-host list with a socket behind a TCP name (whose
    connection `_scram_only` would judge by the first), no hostaddr, service, options."""
    with pytest.raises(SecretError):
        PostgresEngine("tl_").check_settings({**BASE, **changes}, ("orders:read",))
