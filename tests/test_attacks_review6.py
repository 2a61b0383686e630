"""Adversarial review, round 6: the fixes of rounds 4 and 5 attacked (channels per source, the
reassembly charge, checkpointed histories after a gap, schema defaults, the MCP budget).

Each test asserts the secure (or live) behaviour and fails on the code it was written against
(marked xfail strict until the lead fixes it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from tests.support.gates import T, make_world
from tests.support.nodes import HUB, MemNet, run_memnet
from tests.support.parties import make_channel_party
from tests.support.traces import tool_call
from tests.test_identity_long_life import ANNOUNCE_EVERY, World
from tests.test_identity_long_life import world as long_life_world
from troth.channel import ChannelTrust, SecureChannel, VerifiedPeer
from troth.clock import FixedClock
from troth.credentials.revocation_held import feed_checkpoints
from troth.errors import PolicyError
from troth.gates import Tool, ToolGate
from troth.identity import Signer, verify_history
from troth.node.channels import LISTENER, ChannelLimits
from troth.routing import Address, RoutedMessage, Router, parse_route
from troth.trace import TraceLog, TraceRecorder
from troth.transport import MemoryTransport
from troth.vault import SoftwareVault

# -- long-lived identities (more than 64 changes, presented from a checkpoint) ----------------

# the long-life tests' world: an authority node, the owner's node (identity "agent", enrolled,
# rotations announced every 32) and a verifier node
world = long_life_world


def _signer(world: World) -> Callable[[int], Signer]:
    return lambda now: world.owner.identities.signer("agent", now=now)


def test_a_long_lived_identity_keeps_signing_its_trace_log(world: World, tmp_path: Path) -> None:
    """An agent past 64 changes (presented from its newest checkpoint, as issue 9 promised:
    "no owner's normal operation makes an identity unusable") records its tool calls in its
    trace log, rotates once, and records again."""
    world.rotate(100)
    assert _signer(world)(world.clock.now()).identity.first_index == 64
    clock = world.clock
    log = TraceLog.open(tmp_path / "trace.db", clock=clock, signer=_signer(world))
    recorder = TraceRecorder(log, _signer(world), clock=clock)
    recorder.record(tool_call())
    log.checkpoint()
    world.rotate(1)  # change 101: presented from change 96 still
    recorder.record(tool_call())
    log.checkpoint()
    world.rotate(ANNOUNCE_EVERY - 6)
    world.announce()  # change 127, announced: presented from it alone
    recorder.record(tool_call())
    log.checkpoint()
    log.close()


def test_a_verifier_that_missed_one_announcement_window_still_accepts_the_identity(
    world: World,
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
    clock, verifier = world.clock, world.verifier
    world.rotate(40)
    verifier.identities.import_history(world.owner.identities.export("agent"), now=clock.now())
    world.rotate(40)
    world.sync(verifier)
    feed = verifier.wallet.feed(world.acme.identifier, now=clock.now(), max_staleness=300)
    checkpoints = feed_checkpoints(
        {world.acme.identifier: feed}, now=clock.now(), max_staleness=300
    )
    presented = verify_history(
        world.owner.identities.export("agent"), now=clock.now(), checkpoints=checkpoints
    )
    feed.check_current(presented)  # the authority's word holds
    verifier.identities.observe(presented)  # what a channel handshake with the agent does


# -- gates: omitted arguments judged with the default the tool runs with ----------------------


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
    gates_world = make_world()
    store = gates_world.store(
        gates_world.bundle(policies=policies, tools={"export_customers": schema})
    )
    member = gates_world.credential(gates_world.support_chain, gates_world.support)
    try:
        declared = Tool("export_customers", schema, export_customers)
    except (ValueError, PolicyError):
        return  # refused at declaration: the schema and the function disagree
    gate = ToolGate(gates_world.point(store), [declared], clock=FixedClock(T + 10))
    assert not gate.invoke(member, "export_customers", {"fmt": "csv"}).allowed
    omitted = gate.invoke(member, "export_customers", {})
    assert ran == []  # the forbidden CSV export must not run
    assert not omitted.allowed


# -- channels: one source's channels, counted through a relay ----------------------------------


class _AdmitsEveryone:
    def admit(self, peer: VerifiedPeer) -> bool:
        return True


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
