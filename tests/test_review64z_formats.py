"""Review 64z, formats: the formats, their golden vectors and their limits, end to end (what one
side may send, the other side must accept).

formats 1 (medium). The node control protocol promises answers up to `MAX_CONTROL_ANSWER`
(16 MiB: docs/protocols.md, "Node control"; review 34d, control 2, raised it from the
transport's 128 KiB so that `mcp.serve` of a large catalogue or a hub's channel list reaches
the CLI), and the node framed answers up to it; but the CLI decoded the answer with the
generic CBOR limits (`MAX_CBOR_BYTES`, 1 MiB, and 65,536 items): an answer of 1 to 16 MiB, or
one of more than 65,536 data items (a few thousand channels or tools, each a map), was done by
the node and then refused by the CLI as "document of N bytes is over the limit of 1048576", the
very failure review 34d fixed, moved from the frame to the decoder. And the node encoded
answers as deep as `MAX_CBOR_ENCODE_DEPTH` (1000) while the CLI reads 16 levels: a deeper answer
was done, sent, and refused. Now the CLI reads an answer with `MAX_CONTROL_ANSWER` bytes and
`MAX_CONTROL_ANSWER_ITEMS` items (`troth.limits`), and the node checks its answer against
exactly those limits (`answer_frame`): one the CLI would refuse is answered as an error saying
why, never sent to be refused.

formats 3 (low, a format unpinned). The routed message and its TCP frame (docs/formats.md,
"Routed message and TCP frame"), what every node writes and reads on every hop, had no golden
vector: a change to its bytes (the header's length, the routes' CBOR, the frame's version) would
have passed every test run by troth on both ends. Now tests/vectors/routing/routed_vectors.json
(made by its `generate.py`) pins a message as sent, as a relay forwards it, and the largest route
header a sender writes, rebuilt byte for byte and read back here.

formats 2 (low, docs). docs/formats.md's table of limits gave the rollback guard as "256 bytes
exactly": a guard of version 4 (review 64j) is 512 (`MAX_ROLLBACK_GUARD_BOUND_BYTES`), and a
reader of the table took a 512-byte guard for a damaged one. And it said "the encoder refuses
what the decoder refuses" with no word of the limits: the encoder takes 1,000 levels
(`MAX_CBOR_ENCODE_DEPTH`, review 64n), any size and any number of items, where every decoder
reads 16 levels and 65,536 items; now it says which limits are the sender's to check, and where.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError
from troth.node.daemon import control
from troth.routing import RoutedMessage, format_route
from troth.transport.framing import FRAME_HEADER, check_header, frame

DOCS = Path(__file__).resolve().parent.parent / "docs"
ROUTED: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "routing" / "routed_vectors.json").read_text()
)


def _node_answering(path: Path, answer: bytes) -> threading.Thread:
    """A stand-in node listening at `path` (in this process, so the CLI's check of the
    listener's pid passes) that reads one control request and sends `answer` (a frame)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def serve() -> None:
        with listener:
            connection, _ = listener.accept()
            with connection:
                header = b""
                while len(header) < FRAME_HEADER.size:
                    header += connection.recv(FRAME_HEADER.size - len(header))
                length = check_header(header, limits.MAX_CONTROL_REQUEST)
                got = 0
                while got < length:
                    got += len(connection.recv(length - got))
                connection.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def _ask(tmp_path: Path, answer: bytes) -> Any:
    """What `control` returns for a node that answers `answer`."""
    path = tmp_path / "c.sock"
    thread = _node_answering(path, answer)
    status = {"running": True, "control": str(path), "pid": os.getpid()}
    try:
        return control(tmp_path, "n", "status", {}, timeout=10, status=status)
    finally:
        thread.join(5)


def test_formats_1_an_answer_of_two_mib_reaches_the_cli(tmp_path: Path) -> None:
    """An answer of 2 MiB (within MAX_CONTROL_ANSWER), framed as the node frames it."""
    result = "x" * (2 << 20)
    data = frame(cbor.encode({"ok": True, "result": result}), limits.MAX_CONTROL_ANSWER)
    assert _ask(tmp_path, data) == result


def test_formats_1_an_answer_of_many_items_reaches_the_cli(tmp_path: Path) -> None:
    """An answer of 8,000 maps of 5 fields (80,001 items: past the generic 65,536)."""
    result = [{"a": i, "b": "", "c": None, "d": True, "e": b""} for i in range(8000)]
    data = frame(cbor.encode({"ok": True, "result": result}), limits.MAX_CONTROL_ANSWER)
    assert _ask(tmp_path, data) == result


@pytest.mark.parametrize(
    ("levels", "why"),
    [
        pytest.param(20, "nested deeper", id="depth"),
        pytest.param(0, "data items", id="items"),
    ],
)
def test_formats_1_an_answer_the_cli_would_refuse_is_answered_as_an_error(
    tmp_path: Path, levels: int, why: str
) -> None:
    """The node's answer (`answer_frame`) past what the CLI reads (20 levels deep; as many
    items as MAX_CONTROL_ANSWER_ITEMS in a list) is an error answer saying why, which the CLI
    reads and raises (a DecodeError: the answer could not be sent)."""
    from troth.node.daemon import answer_frame

    result: Any = [[]] * limits.MAX_CONTROL_ANSWER_ITEMS if not levels else "deep"
    for _ in range(levels):
        result = [result]

    data = answer_frame({"ok": True, "result": result})
    assert len(data) < 1024
    with pytest.raises(DecodeError, match=why):
        _ask(tmp_path, data)


def test_formats_1_an_answer_within_the_limits_is_framed_as_it_is() -> None:
    """`answer_frame` of an answer the CLI reads: the frame of its encoding, byte for byte."""
    from troth.node.daemon import answer_frame

    answer = {"ok": True, "result": {"channels": [{"peer": "n", "up": True}] * 3}}
    assert answer_frame(answer) == frame(cbor.encode(answer), limits.MAX_CONTROL_ANSWER)


def test_formats_2_the_limits_table_gives_both_sizes_of_the_rollback_guard() -> None:
    """docs/formats.md's limits table names the guard's sizes as the code has them."""
    table = (DOCS / "formats.md").read_text().split("## Limits (`src/troth/limits/`)")[1]
    row = next(line for line in table.splitlines() if line.startswith("| rollback guard"))
    assert f"{limits.MAX_ROLLBACK_GUARD_BYTES} bytes" in row
    assert f"{limits.MAX_ROLLBACK_GUARD_BOUND_BYTES} bytes" in row
    assert "MAX_ROLLBACK_GUARD_BOUND_BYTES" in row


@pytest.mark.parametrize("name", ["sent", "forwarded", "largest"])
def test_formats_3_the_golden_routed_messages(name: str) -> None:
    """Rebuilt byte for byte; each frame read back to its routes and payload; the header is
    `length (2) || canonical CBOR [onward, return]` (each route [[kind, value], ...]), the
    frame `0x01 || length (4) || header || payload`, as docs/formats.md says."""
    from tests.vectors.routing.generate import vectors

    vector = ROUTED[name]
    assert vectors()[name] == vector
    data = bytes.fromhex(vector["frame"])
    length = check_header(data[: FRAME_HEADER.size])
    assert data[0] == 0x01
    assert length == len(data) - FRAME_HEADER.size
    message = RoutedMessage.decode(data[FRAME_HEADER.size :])
    assert format_route(message.onward) == vector["onward"]
    assert format_route(message.return_route) == vector["return"]
    assert bytes(message.payload) == bytes.fromhex(vector["payload"])
    routes = [[list(a) for a in message.onward], [list(a) for a in message.return_route]]
    body = cbor.encode(routes)
    assert bytes.fromhex(vector["header"]) == len(body).to_bytes(2, "big") + body
    assert len(body) <= limits.MAX_ROUTE_HEADER_BYTES


def test_formats_2_the_encoders_depth_is_told_apart_from_the_decoders() -> None:
    """docs/formats.md names the encoder's own depth limit beside the decoder's."""
    text = (DOCS / "formats.md").read_text()
    assert "`MAX_CBOR_ENCODE_DEPTH`" in text
    assert f"{limits.MAX_CBOR_ENCODE_DEPTH:,} levels" in text
