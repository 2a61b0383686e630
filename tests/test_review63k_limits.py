"""Review 63k, limits end to end: what one side may make, the other side must accept
(src/troth/limits/).

1. A W3C VC an authority issues for attributes it admits (`check_fits`: the credential body
   within MAX_CREDENTIAL_BYTES) could be larger than MAX_VC_BYTES, which every verifier reads
   first (`troth credential verify --format vc`, `node.verify.verify_vc`): the CLI writes a
   VC indented (`json_text`, indent 2, `\\u0001`-style escapes), so a one-character set value
   of a control character, 2 bytes of CBOR, takes 18 of JSON. With the shortest attribute keys
   (`a.b`, where review 45d tried `a.k00`) the VC was 65,601 bytes: the authority issued and
   recorded it, and no verifier read it. MAX_VC_BYTES is now 96 KiB, above the worst case
   (each byte of the attributes' CBOR at most 9 of JSON: 73,728, and ~2 KB around them).
2. A forward through a served broker (`BrokerClient.forward`, `RemoteLeases`) of a body past
   MAX_INJECT_REQUEST_BYTES (or more than MAX_INJECT_HEADERS headers) was sent whole and refused
   by the broker's decoder: RemoteError "a malformed broker request", where the broker in the
   process refuses it SecretError FORBIDDEN_REQUEST; an agent could not tell its own too-large
   request from a broken broker. The client now refuses it before sending, FORBIDDEN_REQUEST
   (`check_forward_size`, the engine's own check); the largest allowed reaches the upstream.
3. (strict xfail, CLI area) `troth trace prove REC` without --out writes the bundle through
   `Reporter.document`, which escapes DEL, C1 and bidi controls as `\\u007f` whether stdout is
   a terminal or not (`troth trace export` escapes only for a terminal: review 57h, cli 1). A
   record whose disclosed values (a caller's text, within MAX_TRACE_RECORD_DISCLOSURE_BYTES)
   are DEL characters, 1 byte each, takes 6 each: `troth trace prove REC > bundle.json` wrote a
   3 MB bundle that `troth trace verify --file` refuses, over MAX_TRACE_LINE_BYTES (2 MiB).
   Fix (src/troth/cli/trace_cmds.py, prove_cmd): write the text as --out does unless stdout is
   a terminal (`_terminal()`, as `export`).
4. (fixed by review 63p, mcp 1) An MCP gate published over secure channels answers `tools/list` in
   one message, which a channel session carries in one frame (MAX_MCP_FRAME), while the gate
   reads and serves listings of up to MAX_UPSTREAM_LISTING_BYTES (8 MiB) of tools, each up to
   MAX_UPSTREAM_TOOL_BYTES, MAX_TOOLS declared: 24 declared tools whose upstream descriptions
   are 48 KB each (1.15 MB, every bound kept) made every channel client's `tools/list` an
   error ("the message is over the 1046528-byte limit"), so it saw no tool at all, where the
   stdio gate lists them. The gate now pages the answer (MCP's `nextCursor`), each page
   within MAX_MCP_RESULT (troth.integrations.mcp.pages; tests/test_review63p_mcp.py).
"""

from __future__ import annotations

import string
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server import MCPServer

from tests.conftest import NOW
from tests.support.brokers import PAYMENTS, POLICIES, client, hub_bundle, install_bundle, run_broker
from tests.support.cli import run, run_json
from tests.support.gates import T, lookup_order, make_world
from tests.support.nodes import MemNet
from tests.support.parties import make_party, verified_feed
from tests.support.traces import tool_call
from tests.test_review58f_mcp import HELLO, _settle, offer
from tests.test_review58j_refuted import _answers
from troth import limits
from troth.cli.output import json_text
from troth.clock import FixedClock, SystemClock
from troth.credentials import Attributes, TrustPolicy
from troth.credentials.issue import check_fits
from troth.credentials.vc import export_credential_vc, verify_troth_vc
from troth.encoding.ijson import load_json
from troth.errors import CredentialError, SecretError, SecretFailure
from troth.gates import ListRecorder, schema_from_function
from troth.identity import Identifier
from troth.integrations.mcp.channel import new_session, run_session
from troth.integrations.mcp.gate import McpGate, gate_server
from troth.node import open_node
from troth.secrets import HttpRequest
from troth.trace import TraceRecorder, open_node_log
from troth.vault import SoftwareVault

_SHORTEST_KEYS = [
    f"{first}.{second}" for first in "ab" for second in string.ascii_lowercase + string.digits
]
_WIDEST_VALUES = [chr(c) for c in range(1, 32)] + [chr(1) + chr(c) for c in range(1, 34)]
"""Set values widest in escaped JSON for their CBOR: one control character, then two."""


def _widest_attributes() -> Attributes:
    """Attributes `check_fits` admits whose indented JSON is widest (greedy, as review 45d's,
    with the shortest keys the key grammar allows)."""
    items: dict[str, frozenset[str]] = {}
    widest = _WIDEST_VALUES[: limits.MAX_ATTRIBUTE_VALUES]
    for key in _SHORTEST_KEYS[: limits.MAX_ATTRIBUTES]:
        if _fits({**items, key: frozenset(widest)}):
            items[key] = frozenset(widest)
            continue
        values: list[str] = []  # the last key: as many values as still fit
        for value in widest:
            if not _fits({**items, key: frozenset([*values, value])}):
                break
            values.append(value)
        if values:
            items[key] = frozenset(values)
        break
    return Attributes(items)


def _fits(items: dict[str, frozenset[str]]) -> bool:
    try:
        check_fits(Attributes(items))
    except CredentialError:
        return False
    return True


def test_the_widest_vc_an_authority_issues_is_one_every_verifier_reads() -> None:
    authority = make_party(SoftwareVault(), now=NOW)
    document = export_credential_vc(
        authority.signer,
        credential_id=bytes(16),
        subject=Identifier(bytes(32)),
        attributes=_widest_attributes(),
        valid_from=NOW,
        valid_until=NOW + 3600,
        now=NOW,
    )
    written = json_text(document).encode() + b"\n"  # as `troth credential issue --format vc`
    assert len(written) > 65_536  # the case: past the limit before
    read = load_json(written, max_bytes=limits.MAX_VC_BYTES, what="VC")  # as every verifier
    verified = verify_troth_vc(
        read,
        policy=TrustPolicy(frozenset({authority.identifier}), max_feed_staleness=600),
        issuer=authority.identity,
        feeds={authority.identifier: verified_feed(authority, now=NOW)},
        now=NOW,
    )
    assert verified.attributes == _widest_attributes()


@pytest.fixture
def counting_upstream() -> Iterator[tuple[str, list[int]]]:
    """An upstream answering every request `ok`: its URL and the body sizes it read."""
    seen: list[int] = []

    class Counting(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(len(self.rfile.read(int(self.headers.get("Content-Length") or 0))))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_forward_past_the_body_limit_is_refused_by_the_client_typed(
    tmp_path: Path, counting_upstream: tuple[str, list[int]]
) -> None:
    url, seen = counting_upstream
    config = {
        "scopes": ["write"],
        "upstream": url,
        "header": "X-Api-Key",
        "rules": [{"methods": ["POST"], "path": "/orders"}],
    }
    policies = POLICIES + (
        '@id("orders-api") permit(principal, action == Action::"lease", '
        'resource == Secret::"orders-api");\n'
    )
    limit = limits.MAX_INJECT_REQUEST_BYTES
    headers = tuple((f"X-H{n:02d}", "v" * 1000) for n in range(limits.MAX_INJECT_HEADERS))

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        await install_bundle(net.hub, hub_bundle(net.hub, revision=2, policies=policies))
        desk = await net.node("desk")
        desk.node.identities.create(now=net.clock.now(), name="agent")
        await desk.enroll(net.ticket(**{"agents.team": "support"}), "agent")
        agent = client(desk, "agent")
        issued = await agent.issue("orders-api")
        largest = HttpRequest("POST", "/orders", headers, bytes(limit))
        assert (await agent.forward(issued.lease_id, largest)).status == 200
        assert seen == [limit]
        for over in (
            HttpRequest("POST", "/orders", (), bytes(limit + 1)),
            HttpRequest("POST", "/orders", (*headers, ("X-One-More", "v"))),
        ):
            with pytest.raises(SecretError) as refused:
                await agent.forward(issued.lease_id, over)
            assert refused.value.reason is SecretFailure.FORBIDDEN_REQUEST
        assert seen == [limit]

    run_broker(
        test,
        tmp_path,
        secrets={
            "payments": ("token", PAYMENTS, b""),
            "orders-api": ("http-inject", config, b"k" * 16),
        },
    )


def test_a_proof_bundle_printed_to_a_file_is_one_the_verifier_reads(troth_home: Path) -> None:
    run("identity", "create", "support")
    # two values of a caller's text at MAX_TRACE_DISCLOSURE_BYTES, as a gate's record keeps
    text = "\x7f" * (limits.MAX_TRACE_DISCLOSURE_BYTES - 64)
    clock = SystemClock()
    with open_node("default", home=troth_home) as node, open_node_log(node, clock=clock) as log:
        agent = TraceRecorder(
            log, lambda now: node.identities.signer("support", now=now), clock=clock
        )
        agent.record(tool_call(args={"note": text}, result=text))
    record = run_json("trace", "show")[0]["id"]
    bundle = troth_home / "bundle.json"
    bundle.write_bytes(run("trace", "prove", record).stdout_bytes)  # `> bundle.json`
    assert run_json("trace", "verify", "--file", str(bundle))["verified"] is True


_LISTED, _DESCRIPTION = 24, "d" * 48_000  # each tool within MAX_UPSTREAM_TOOL_BYTES


def _upstream_of_large_tools() -> MCPServer:
    app = MCPServer("orders")
    for n in range(_LISTED):

        def tool(order_id: str) -> str:
            return order_id

        app.add_tool(tool, name=f"t{n:02d}", description=_DESCRIPTION)
    return app


def test_a_listing_within_the_gates_limits_reaches_a_channel_client() -> None:
    world = make_world()
    tools = {f"t{n:02d}": schema_from_function(lookup_order) for n in range(_LISTED)}
    bundle = world.bundle(tools=tools, policies='@id("all") permit(principal, action, resource);')
    point = world.point(world.store(bundle), ListRecorder())
    support = world.credential(world.support_chain, world.support)
    frames: list[bytes] = []
    listed: list[dict[str, Any]] = []  # the answers to tools/list, page by page

    async def way_back(frame: bytes) -> bool:
        frames.append(frame)
        return True

    async def answer_to(ident: int) -> dict[str, Any] | None:
        with anyio.move_on_after(5):
            while True:
                for message in _answers(frames):
                    if message.get("id") == ident:
                        return message
                await anyio.sleep(0.01)
        return None

    async def main() -> None:
        async with Client(_upstream_of_large_tools(), cache=None) as client:
            gate = McpGate(point, client, clock=FixedClock(T + 10))
            inbound, read = anyio.create_memory_object_stream[Any](limits.MAX_MCP_QUEUE)
            async with anyio.create_task_group() as tg:
                session = gate_server(gate, support)
                tg.start_soon(run_session, session, read, new_session(), way_back)
                hello = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": HELLO}
                assert offer(inbound, hello)
                await _settle()
                assert offer(inbound, {"jsonrpc": "2.0", "method": "notifications/initialized"})
                params: dict[str, Any] = {}
                for ident in range(1, 10):  # each page, as a client follows `nextCursor`
                    await _settle()
                    ask = {"jsonrpc": "2.0", "id": ident, "method": "tools/list", "params": params}
                    assert offer(inbound, ask)
                    answer = await answer_to(ident)
                    assert answer is not None
                    listed.append(answer)
                    cursor = answer.get("result", {}).get("nextCursor")
                    if cursor is None:
                        break
                    params = {"cursor": cursor}
                tg.cancel_scope.cancel()

    anyio.run(main)
    assert all("error" not in answer for answer in listed), listed[-1]
    names = [tool["name"] for answer in listed for tool in answer["result"]["tools"]]
    assert sorted(names) == sorted(tools)
