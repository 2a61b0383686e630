"""`troth channel ...`, `troth message send`, `troth relay create`: ask a node to act.

A running node (troth node start) does the work through its control socket; when the node is
not running, `channel create` and `message send` run it in this process for the command.
"""

from __future__ import annotations

import json
from typing import Any

import click

from troth.cli.common import home
from troth.cli.output import Reporter, json_command, kv


def _ask(node: str, op: str, arguments: dict[str, Any], *, transient: bool = True) -> Any:
    from troth.node.daemon import control, node_status, run_transient  # asyncio: on use only

    status = node_status(home(), node)
    if status["running"] or not transient:
        return control(home(), node, op, arguments, status=status)
    return run_transient(home(), node, op, arguments)


@click.group("channel")
def channel_group() -> None:
    """Secure channels (Noise XX, identities and credentials checked both ways)."""


EXPECT_HELP = "The identifier expected at the route: anyone else is refused."


@channel_group.command("create")
@click.option("--from", "from_node", required=True, help="The node that opens the channel.")
@click.option("--to", "route", required=True, help="Route to a node, e.g. /tcp/127.0.0.1:4000.")
@click.option("--expect", metavar="IDENTIFIER", help=EXPECT_HELP)
@json_command
def channel_create(from_node: str, route: str, expect: str | None, reporter: Reporter) -> None:
    """Open a secure channel from a node to another node's channel listener."""
    data = _ask(from_node, "channel.create", {"to": route, "expect": expect})
    reporter.result(data, kv(data))


@channel_group.command("list")
@click.option("--node", "node_name", required=True)
@json_command
def channel_list(node_name: str, reporter: Reporter) -> None:
    """The channels of a running node."""
    rows = _ask(node_name, "channel.list", {}, transient=False)
    text = "\n".join(f"{r['id']}  {r['state']}  {r['peer']}  {r['route']}" for r in rows)
    reporter.result(rows, text or "(no channels)")


@click.group("message")
def message_group() -> None:
    """Messages to services of other nodes, through secure channels."""


@message_group.command("send")
@click.option("--from", "from_node", required=True)
@click.option("--to", "route", required=True, help="e.g. /tcp/127.0.0.1:4000/service/echo")
@click.option("--expect", metavar="IDENTIFIER", help=EXPECT_HELP)
@click.argument("text")
@json_command
def message_send(
    from_node: str, route: str, expect: str | None, text: str, reporter: Reporter
) -> None:
    """Send TEXT to a service through a secure channel; print the reply."""
    reply = _ask(from_node, "message.send", {"to": route, "text": text, "expect": expect})
    reporter.result({"reply": reply}, reply if isinstance(reply, str) else json.dumps(reply))


@click.group("relay")
def relay_group() -> None:
    """Relays: be reachable through another node without a listening port."""


@relay_group.command("create")
@click.argument("name")
@click.option("--at", "route", required=True, help="Route to the relay node.")
@click.option("--from", "from_node", required=True, help="The (running) node to make reachable.")
@json_command
def relay_create(name: str, route: str, from_node: str, reporter: Reporter) -> None:
    """Ask the relay node to forward /relay/NAME to FROM (needs troth.relay=NAME or *)."""
    data = _ask(from_node, "relay.create", {"name": name, "at": route}, transient=False)
    reporter.result(data, kv(data))
