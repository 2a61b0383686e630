"""Adversarial review, round 6: the fixes of rounds 4 and 5 attacked (channels per source, the
reassembly charge, checkpointed histories after a gap, schema defaults, the MCP budget).

Each test asserts the secure (or live) behaviour and fails on the code it was written against
(marked xfail strict until the lead fixes it)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from tests.conftest import NOW
from tests.support.gates import T, make_world
from tests.support.nodes import HUB, MemNet, run_memnet
from tests.support.parties import make_channel_party
from tests.support.traces import tool_call
from troth import enrollment
from troth.authority import Authority
from troth.authority.client import rotated_request
from troth.channel import ChannelTrust, SecureChannel, VerifiedPeer
from troth.clock import FixedClock
from troth.credentials import Attributes
from troth.credentials.revocation import feed_checkpoints
from troth.errors import PolicyError
from troth.gates import Tool, ToolGate
from troth.identity import Signer, verify_history
from troth.node import Node, init_node, open_node
from troth.node.channels import LISTENER, ChannelLimits
from troth.routing import Address, RoutedMessage, Router, parse_route
from troth.trace import TraceLog, TraceRecorder
from troth.transport import MemoryTransport
from troth.vault import SoftwareVault

ANNOUNCE_EVERY = 32  # what `troth identity rotate` users do (tests/test_identity_long_life.py)
STEP = 60


# -- long-lived identities (more than 64 changes, presented from a checkpoint) ----------------


@dataclass
class Enrolled:
    """An authority node, the owner's node (identity "agent", enrolled there) and a verifier
    node."""

    clock: FixedClock
    acme: Authority
    owner: Node
    verifier: Node

    def rotate(self, times: int) -> None:
        """Rotate "agent" `times` times, announcing every 32 rotations (and syncing the feed)."""
        for number in range(times):
            self.clock.advance(STEP)
            self.owner.identities.rotate("agent", now=self.clock)
            if (number + 1) % ANNOUNCE_EVERY == 0:
                now = self.clock.now()
                request = rotated_request(
                    self.owner.identities, "agent", self.acme.identifier, now=now
                )
                self.acme.rotated(request, now=now)
                self.owner.wallet.sync_feed(
                    self.acme.identifier,
                    lambda since: self.acme.feed(now=self.clock.now(), since=since),
                    now=self.clock,
                )

    def signer(self, now: int) -> Signer:
        return self.owner.identities.signer("agent", now=now)


@pytest.fixture
def enrolled(troth_home: Path) -> Iterator[Enrolled]:
    clock = FixedClock(NOW)
    for name in ("acme", "owner", "verifier"):
        init_node(name)
    with (
        open_node("acme") as acme_node,
        open_node("owner") as owner,
        open_node("verifier") as verifier,
    ):
        acme = acme_node.create_authority("acme", now=NOW)
        owner.identities.create(now=NOW, name="agent")
        ticket = acme.create_ticket(
            creator=acme.identifier, attributes=Attributes(), address="node:acme", now=NOW
        )
        enrollment.enroll(
            owner.identities,
            owner.wallet,
            "agent",
            str(ticket),
            clock=clock,
            send=lambda request: acme.enroll(request, now=clock.now()).encode(),
        )
        yield Enrolled(clock, acme, owner, verifier)


@pytest.mark.xfail(
    strict=True,
    reason="trace.signing.resolve_key indexes a checkpointed history's changes by change index "
    "(IndexError for any identity past 64 changes); log._observe compares stored suffixes "
    "from index 0",
)
def test_a_long_lived_identity_keeps_signing_its_trace_log(
    enrolled: Enrolled, tmp_path: Path
) -> None:
    """An agent past 64 changes (presented from its newest checkpoint, as issue 9 promised:
    "no owner's normal operation makes an identity unusable") records its tool calls in its
    trace log, rotates once, and records again."""
    enrolled.rotate(100)
    assert enrolled.signer(enrolled.clock.now()).identity.first_index == 96
    clock = enrolled.clock
    log = TraceLog.open(tmp_path / "trace.db", clock=clock, signer=enrolled.signer)
    recorder = TraceRecorder(log, enrolled.signer, clock=clock)
    recorder.record(tool_call())
    log.checkpoint()
    enrolled.rotate(1)  # change 101: presented from change 96 still
    recorder.record(tool_call())
    log.checkpoint()
    enrolled.rotate(ANNOUNCE_EVERY - 6)  # change 128, announced: presented from it alone
    recorder.record(tool_call())
    log.checkpoint()
    log.close()


@pytest.mark.xfail(
    strict=True,
    reason="check_extends refuses a gap and the owner presents from its newest checkpoint "
    "only: a verifier that missed one announcement window refuses the identity for good",
)
def test_a_verifier_that_missed_one_announcement_window_still_accepts_the_identity(
    enrolled: Enrolled,
) -> None:
    """The verifier met the agent at change 40 (its full history: it fits) and stored it. The
    agent rotates 40 more times, announced after 32 as `troth identity rotate` users do, and
    presents its history from that announcement (change 72), although every change from its
    previous checkpoint (change 32, which the verifier holds) would still fit in 64. The
    verifier, holding a fresh feed, verifies the history, but its stored copy ends at change
    40: a gap, refused (UNATTESTED_CHECKPOINT), and forever, since the owner never presents an
    overlapping history (its export is the same cut). docs/formats.md promises gaps only "for
    identities past 64 changes that a verifier has not seen for as many rotations": 40 here.
    Before review 4's fix this history was accepted."""
    clock, verifier = enrolled.clock, enrolled.verifier
    enrolled.rotate(40)
    verifier.identities.import_history(enrolled.owner.identities.export("agent"), now=clock.now())
    enrolled.rotate(40)
    verifier.wallet.sync_feed(
        enrolled.acme.identifier,
        lambda since: enrolled.acme.feed(now=clock.now(), since=since),
        now=clock,
    )
    feed = verifier.wallet.feed(enrolled.acme.identifier, now=clock.now(), max_staleness=300)
    checkpoints = feed_checkpoints(
        {enrolled.acme.identifier: feed}, now=clock.now(), max_staleness=300
    )
    presented = verify_history(
        enrolled.owner.identities.export("agent"), now=clock.now(), checkpoints=checkpoints
    )
    feed.check_current(presented)  # the authority's word holds
    verifier.identities.observe(presented)  # what a channel handshake with the agent does


# -- gates: omitted arguments judged with the default the tool runs with ----------------------


@pytest.mark.xfail(
    strict=True,
    reason="Tool accepts a run function whose Python default its input schema lacks: the "
    "omitted argument is judged absent and the tool runs with the default",
)
def test_a_tool_whose_function_default_its_schema_omits_is_judged_with_it() -> None:
    """The review-5 fix judges an omitted argument with its *schema's* default. A tool declared
    with an explicit input schema (the one the bundle holds, written by hand or copied from
    an MCP server's listing) whose function has a Python default the schema does not name is
    still run with a value Cedar never saw: the forbid on clear CSV exports does not apply to
    `{}`, and the CSV export runs. The gate must refuse such a declaration (or judge the
    call with the function's default)."""
    ran: list[str] = []

    def export_customers(fmt: Literal["csv", "json"] = "csv") -> str:
        """Export every customer."""
        ran.append(fmt)
        return f"customers.{fmt}"

    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"fmt": {"type": "string", "enum": ["csv", "json"]}},
    }
    policies = """\
@id("export") permit(principal, action == Action::"invoke:export_customers", resource)
  when { principal.hasTag("orders.access") };
@id("no-csv") forbid(principal, action == Action::"invoke:export_customers", resource)
  when { context.args has fmt && context.args.fmt == "csv" };
"""
    world = make_world()
    store = world.store(world.bundle(policies=policies, tools={"export_customers": schema}))
    member = world.credential(world.support_chain, world.support)
    try:
        declared = Tool("export_customers", schema, export_customers)
    except (ValueError, PolicyError):
        return  # refused at declaration: the schema and the function disagree
    gate = ToolGate(world.point(store), [declared], clock=FixedClock(T + 10))
    assert not gate.invoke(member, "export_customers", {"fmt": "csv"}).allowed
    omitted = gate.invoke(member, "export_customers", {})
    assert ran == []  # the forbidden CSV export must not run
    assert not omitted.allowed


# -- channels: one source's channels, counted through a relay ----------------------------------


class _AdmitsEveryone:
    def admit(self, peer: VerifiedPeer) -> bool:
        return True


@pytest.mark.xfail(
    strict=True,
    reason="Connection.origin keys a relayed message by the relay's connection from the "
    "sender, so every connection one host opens to the relay is a fresh source",
)
def test_channels_per_source_are_bounded_through_a_relay(tmp_path: Path) -> None:
    """A node without an open port is reached as /relay/target on the hub. Its per-source
    channel cap (review 4; here 4, with 4 handshakes in progress per source) counts what
    arrives over the relay under "our connection to the hub *via the hub's connection from the
    sender*". One attacker host opens three connections to the hub (the hub allows 64 per
    host) and starts four handshakes over each: the target holds twelve channel ends from one
    host, three times its cap (64 times over the defaults: 16,384 ends per address)."""
    cap = 4
    connections = 3
    vault = SoftwareVault()

    async def test(net: MemNet) -> None:
        limits = ChannelLimits(max_channels_per_source=cap, max_half_open_per_source=cap)
        target = await net.node("target", limits=limits)
        await target.enroll(net.ticket(**{"troth.relay": "target"}), "target")
        await target.create_relay("target", HUB)
        before = target.channels.counters.handshakes_started
        route = parse_route(f"{HUB}/relay/target")
        mine = Address("worker", "attacker")
        for _ in range(connections):  # one host, a connection to the hub per router
            router = Router()
            MemoryTransport(router, net.network, host="10.6.6.6")

            async def inbox(message: RoutedMessage, source: object) -> None:
                return None

            router.register(mine, inbox)
            for _ in range(cap):
                me = make_channel_party(vault, now=net.clock.now()).me()
                trust = ChannelTrust(policy=_AdmitsEveryone())
                (first,) = SecureChannel.initiate(me=me, trust=trust).outgoing()
                await router.route(RoutedMessage((*route, LISTENER), (mine,), first))
        counters = target.channels.counters
        async with asyncio.timeout(10):  # the memory network delivers asynchronously
            while (
                counters.handshakes_started
                - before
                + counters.refused_channels_per_source
                + counters.refused_half_open_per_source
                < connections * cap
            ):
                await asyncio.sleep(0.005)
        held = sum(1 for end in target.channels.ends.values() if not end.channel.initiator)
        assert held <= cap, f"one host holds {held} channel ends at the target"

    run_memnet(test, tmp_path)
