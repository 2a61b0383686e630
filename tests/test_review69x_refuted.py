"""Review 69x (wave4c): attacks on this session's late fixes that did not work, each a test
that fails if the defence it names breaks."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import cast

import troth
from tests.support.traces import db, log_of
from troth import limits
from troth.credentials.revocation import VerifiedFeed
from troth.identity import Identifier
from troth.node import open_node
from troth.node.trust import NodeTrust
from troth.rates import ByteBudgets
from troth.trace.verify import verify_log


def test_an_honest_call_at_the_value_limit_fits_one_members_burst() -> None:
    """69s wave2 2: a tools/call of MAX_TOOL_ARGUMENT_VALUES values (the most the gate
    decides) is charged its bytes and MCP_VALUE_CHARGE a value, within one full burst: an
    honest call at the limit is served, never refused as over budget for ever."""
    from tests.support.mcp_weights import weighed
    from troth.gates.toolschema import argument_values
    from troth.node.services.mcp import _values_charge

    arguments = {"notes": list(range(limits.MAX_TOOL_ARGUMENT_VALUES - 1))}
    assert argument_values(arguments) == limits.MAX_TOOL_ARGUMENT_VALUES
    message = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "lookup_order", "arguments": arguments},
        }
    ).encode()
    cost = max(len(message), limits.MCP_MESSAGE_CHARGE)
    valued = _values_charge(weighed(message)) - cost
    assert valued > 0  # charged for its values, not only its bytes
    rates = ByteBudgets(
        rate=limits.MCP_BYTES_PER_SECOND, burst=limits.MCP_BURST_BYTES, max_sources=1
    )
    assert rates.take(b"m", cost, now=0)
    assert rates.take(b"m", valued, now=0)


def test_an_honest_log_stores_every_column_as_its_bounded_reader_takes_it(
    tmp_path: Path,
) -> None:
    """69s wave2 1: the readers now take a record id only as TEXT of at most 64 characters
    without NUL, and leaves, agents, envelopes and proof hashes only as BLOBs: every row an
    honest log writes (records past a stored node level) is of those types and verifies."""
    log = log_of(tmp_path / "trace.db", 20)
    raw = db(log)
    kinds = raw.execute(
        "SELECT DISTINCT typeof(record_id), max(length(record_id)), typeof(leaf), "
        "typeof(agent), typeof(envelope), instr(record_id, char(0)) FROM leaves"
    ).fetchall()
    nodes = raw.execute("SELECT DISTINCT typeof(hash), length(hash) FROM nodes").fetchall()
    raw.close()
    assert kinds == [("text", 32, "blob", "blob", "blob", 0)]
    assert nodes == [("blob", 32)]
    assert verify_log(log).size == 20
    log.close()


def test_a_huge_negative_int_or_bool_attribute_is_text() -> None:
    """69q otel 1: an attribute integer past the int-to-text limit, negative too, alone or
    in a sequence beside a bool, is text (its hexadecimal), never a ValueError."""
    from troth.trace.otel_content import _text

    huge = -(10**5000)
    assert _text(huge) == hex(huge)
    assert _text(True) == "True"
    mixed = _text((True, huge))
    assert mixed is not None
    assert "True" in mixed
    assert hex(huge) in mixed


class _Feed:
    def __init__(self, count: int) -> None:
        self.count = count
        self.authority = Identifier(bytes(32))
        self.head = b""


def test_a_feed_hook_that_installs_a_feed_again_does_not_deadlock(troth_home: Path) -> None:
    """69u wave3 3: a feed hook calling back into `set_feed` / `drop_feed` / `read_due`
    runs after the lock is released (hooks run outside it): no deadlock."""
    with troth.Node.open("desk"):
        pass
    acme = Identifier(bytes(32))
    with open_node("desk") as node:
        trust = NodeTrust(node, None)
        seen: list[int] = []

        def hook(feed: VerifiedFeed) -> None:
            seen.append(feed.count)
            if len(seen) == 1:
                trust.read_due()
                trust.drop_feed(acme)
                trust.set_feed(acme, cast(VerifiedFeed, _Feed(feed.count + 1)))

        trust.feed_hooks.append(hook)
        try:
            setter = threading.Thread(
                target=trust.set_feed, args=(acme, cast(VerifiedFeed, _Feed(2))), daemon=True
            )
            setter.start()
            setter.join(5)
            assert not setter.is_alive()
            assert seen == [2, 3]
            assert trust.feeds[acme].count == 3
        finally:
            trust.detach()
