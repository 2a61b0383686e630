"""Review 65b: attacks on session 64's CBOR codec and control-plane limits that the code
refused. Each test is an attack and passes because it fails."""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import random
import uuid
from typing import Any

import cbor2
import pytest

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem, RoutingError
from troth.node.daemon import _control_frame, _decode_answer, answer_frame
from troth.routing import Address
from troth.routing.message import RoutedMessage
from troth.transport.framing import FRAME_HEADER

# -- canonical form: one byte form per value, on the fast path and the scan alike ---------------

_SEEDS = [
    cbor.encode(value)
    for value in (
        [1, 2, {"a": b"x", "bb": [True, None, -5]}],
        {"a": 1, "b": [[]], "cc": "\u00e9"},
        [2**63, -(2**64), "x" * 30, b"y" * 300],
        {"": {"a": {"b": [1]}}},
    )
]


def _canonical(data: bytes) -> bool:
    """The oracle, apart from troth's decoder: cbor2 (strict) reads `data`, and troth's
    encoder writes what it read back as exactly `data`."""
    try:
        value = cbor2.loads(data, allow_indefinite=False, allow_duplicate_keys=False)
        return cbor.encode(value) == data
    except Exception:
        return False


def test_mutated_documents_decode_only_in_their_one_canonical_form() -> None:
    """3,000 seeded mutations (bytes flipped, inserted, dropped) of small canonical documents,
    each decoded by the fast path: every one read is its value's canonical encoding (never a
    non-minimal argument, a reordered or duplicate key, a float, a tag, trailing bytes), and
    every canonical one is read; anything else is a DecodeError, never another exception."""
    rng = random.Random(65)
    for _ in range(3000):
        data = bytearray(rng.choice(_SEEDS))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(data))
            roll = rng.random()
            if roll < 0.4:
                data[at] = rng.randrange(256)
            elif roll < 0.6:
                data.insert(at, rng.randrange(256))
            elif roll < 0.8:
                del data[at]
            else:
                data[at] ^= 1 << rng.randrange(8)
        document = bytes(data)
        try:
            value = cbor.decode(document)
        except DecodeError:
            assert not _canonical(document), document.hex()
            continue
        assert cbor.encode(value) == document, document.hex()


@pytest.mark.parametrize(
    ("hex_document", "problem"),
    [
        ("a2616101616102", DecodeProblem.MALFORMED),  # duplicate key "a"
        ("a2616201616101", DecodeProblem.NON_CANONICAL),  # keys out of order
        ("9f01ff", DecodeProblem.MALFORMED),  # indefinite array
        ("5f4101ff", DecodeProblem.MALFORMED),  # indefinite byte string
        ("1801", DecodeProblem.NON_CANONICAL),  # 1 in two bytes
        ("3900ff", DecodeProblem.NON_CANONICAL),  # -256 in three bytes
        ("f93c00", DecodeProblem.MALFORMED),  # 1.0, a half float, where an integer is
        ("c24101", DecodeProblem.MALFORMED),  # 1 as a bignum (tag 2)
        ("0100", DecodeProblem.TRAILING_BYTES),
    ],
)
def test_non_canonical_forms_of_a_value_are_refused(hex_document: str, problem: Any) -> None:
    """Second byte forms of a value a signature could be checked over, on the fast path and
    on the scan (the same bytes after a 17 KiB byte string, past the fast path's size)."""
    document = bytes.fromhex(hex_document)
    with pytest.raises(DecodeError) as fast:
        cbor.decode(document)
    padding = b"\x59\x44\x00" + bytes(0x4400)  # a byte string of 17,408 bytes
    with pytest.raises(DecodeError) as scanned:
        cbor.decode(b"\x82" + padding + document)
    if problem is not DecodeProblem.MALFORMED:
        assert fast.value.problem is problem
        if problem is not DecodeProblem.TRAILING_BYTES:  # there: a third item, past the array
            assert scanned.value.problem is problem


def test_an_integer_field_refuses_true_and_a_float() -> None:
    """Float/int/bool confusion in a typed field: true (0xf5) and a float are no integer."""
    with pytest.raises(DecodeError, match="expected an integer"):
        cbor.expect_int(cbor.decode(b"\xf5"), "count")
    with pytest.raises(DecodeError, match="float"):
        cbor.decode(bytes.fromhex("fb3ff0000000000000"))


@pytest.mark.parametrize("tagged", ["d81c8101", "82d81c8101d81d00", "d90100826141d81900"])
def test_a_peer_cannot_send_a_shared_value(tagged: str) -> None:
    """A DAG (a sub-object shared by many paths, 2**n paths of n objects) would cost `encode`
    2**n when a node re-encodes what it read (cbor2 writes each path): a peer could make one
    only with value sharing (tags 28 and 29) or string references (tags 256 and 25), which
    every decode refuses, fast path and scan alike."""
    document = bytes.fromhex(tagged)
    with pytest.raises(DecodeError):
        cbor.decode(document)
    padding = b"\x59\x44\x00" + bytes(0x4400)
    with pytest.raises(DecodeError, match="tags are not allowed"):
        cbor.decode(b"\x82" + padding + document)


class _Items(tuple[Any, ...]):
    """A sequence of no exact list type (the encoder's general path)."""


@pytest.mark.parametrize(
    "value",
    [
        decimal.Decimal(1),
        fractions.Fraction(1, 3),
        datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
        datetime.datetime(2020, 1, 1),  # naive: cbor2 refuses it
        uuid.UUID(int=1),
        cbor2.undefined,
        cbor2.CBORSimpleValue(5),
        cbor2.CBORTag(2, b"\x01"),
        float("nan"),
        complex(1, 2),
        2**64,
        -(2**64) - 1,
        {1: 2},
        {b"a": 1},
        frozenset(),
        [object()],
        "\udcff",
        {"\udcff": 1},
        _Items([1, 1.5]),
        {"a": _Items([{2: 1}])},
    ],
)
def test_what_encode_cannot_write_in_the_subset_is_a_decode_error(value: Any) -> None:
    """Values outside the subset (tags cbor2 writes, floats, simple values, bignums, non-text
    keys, lone surrogates, unknown types), also inside a sequence of the general path: each a
    DecodeError, never another exception nor bytes the decoder would refuse."""
    with pytest.raises(DecodeError, match="cannot encode value"):
        cbor.encode(value)


@pytest.mark.parametrize(
    "value",
    [
        bytearray(b"ab"),
        collections.OrderedDict(a=1),
        collections.Counter(a=1),
        range(3),
        collections.deque([1, [2]]),
        _Items([True, None, {"k": b"v"}]),
        -(2**64),
    ],
)
def test_what_encode_writes_of_odd_containers_the_decoder_reads_back(value: Any) -> None:
    """Bytes-likes, mapping and sequence types of no exact built-in type: what `encode`
    writes of them is canonical (decoded and encoded again, the same bytes)."""
    data = cbor.encode(value)
    assert cbor.encode(cbor.decode(data)) == data


# -- the control socket: what the node sends is what the CLI reads --------------------------


def _nested(levels: int) -> Any:
    value: Any = [0]
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize("levels", [13, 14, 15, 16, 17])
def test_an_answer_near_the_depth_limit_is_sent_only_when_the_cli_reads_it(levels: int) -> None:
    """A result nested about `MAX_CBOR_DEPTH` deep inside the answer's map: the node sends it
    only when the CLI's decoder reads it, else an error answer the CLI reads (never one it
    refuses after the operation was done)."""
    result = _nested(levels)
    answer = _decode_answer(answer_frame({"ok": True, "result": result})[FRAME_HEADER.size :])
    inside = levels + 1  # the answer's map around it
    if inside < limits.MAX_CBOR_DEPTH:
        assert answer == {"ok": True, "result": result}
    else:
        assert answer["ok"] is False
        assert answer["kind"] == "DecodeError"
        assert "nested deeper" in answer["error"]


def test_a_result_the_cli_could_not_read_as_text_is_answered_as_an_error() -> None:
    """A result holding a lone surrogate (a file name's bytes that are not UTF-8): no answer
    the CLI cannot decode is sent, and no connection closes unanswered."""
    frame = answer_frame({"ok": True, "result": {"path": "/tmp/x\udcff"}})
    answer = _decode_answer(frame[FRAME_HEADER.size :])
    assert answer["ok"] is False
    assert "could not be sent" in answer["error"]


def test_a_request_the_node_could_not_read_is_never_sent() -> None:
    """A CLI argument holding argv's non-UTF-8 bytes (lone surrogates), or one past the
    request limit: refused by the client as a DecodeError before anything is sent."""
    with pytest.raises(DecodeError, match="cannot encode value"):
        _control_frame({"op": "message.send", "args": {"text": "\udcff"}}, 1 << 17)
    with pytest.raises(DecodeError) as over:
        _control_frame(
            {"op": "message.send", "args": {"text": "x" * limits.MAX_CONTROL_REQUEST}},
            limits.MAX_CONTROL_REQUEST,
        )
    assert over.value.problem is DecodeProblem.OVER_LIMIT


# -- routed messages: what a router writes, a reader reads --------------------------------------


def test_the_largest_route_header_a_router_writes_is_read_and_one_more_is_not_written() -> None:
    """Routes of 16 hops each way, their addresses grown a character at a time until the
    router refuses the header: every header it wrote is read back by the next hop, and the
    first it refuses is a RoutingError, never a header the reader would refuse."""

    def message(size: int) -> RoutedMessage:
        onward = tuple(Address("relay", f"{i:02d}" + "a" * (size - 2)) for i in range(16))
        back = tuple(Address("worker", f"{i:02d}" + "b" * (size - 2)) for i in range(16))
        return RoutedMessage(onward, back, b"payload")

    size = 200
    while True:
        sent = message(size)
        try:
            data = sent.encode()
        except RoutingError:
            break
        received = RoutedMessage.decode(data)
        assert (received.onward, received.return_route) == (sent.onward, sent.return_route)
        size += 1
    assert 200 < size <= limits.MAX_ADDRESS_TEXT
    assert len(message(size - 1).header()) - 2 <= limits.MAX_ROUTE_HEADER_BYTES
