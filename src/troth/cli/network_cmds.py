"""`troth channel ...`, `troth message send`, `troth relay create`: ask a node to act.

A running node (troth node start) does the work through its control socket; when the node is
not running, `channel create`, `message send` and `enroll` run it in this process for the
command.
"""

from __future__ import annotations

from typing import Any

import click

from troth.cli.common import IDENTITY_HELP, home, node_option, renamed
from troth.cli.output import Explained, Reporter, escape_text, json_command, json_text
from troth.errors import ChannelError, ChannelFailure, DecodeError, RoutingError, Unreachable
from troth.routing.address import parse_route

ROUTE_HELP = "a route such as /tcp/127.0.0.1:4000 (through a relay: .../relay/NAME)"


def route_value(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A ROUTE given on the command line, checked before anything runs: one that does not parse
    is a usage error (exit 2), like any bad value."""
    if value is not None:
        try:
            parse_route(value)
        except RoutingError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


def ask_node(node: str, op: str, arguments: dict[str, Any], *, transient: bool = True) -> Any:
    """Have node `node` do control operation `op`: the running node, else (`transient`) an
    in-process one for this command. Network failures say what to check."""
    from troth.node.daemon import control, node_status, run_transient  # asyncio: on use only

    status = node_status(home(), node)
    try:
        if status["running"] or not transient:
            return control(home(), node, op, arguments, status=status)
        return run_transient(home(), node, op, arguments)
    except Unreachable as exc:
        raise Explained(
            exc, f"{exc}: is a node listening there? (troth node start NAME --tcp-listen HOST:PORT)"
        ) from None
    except ChannelError as exc:
        if exc.reason is ChannelFailure.PEER_CLOSED:
            raise Explained(
                exc,
                f"{exc.detail or exc}: the node there closed the connection (one at its "
                "connection limits closes a newcomer's: try again later)",
            ) from None
        if exc.reason is not ChannelFailure.TIMEOUT:
            raise
        raise Explained(
            exc,
            f"{exc.detail or exc}: nothing answered there (is the node behind that route "
            "running, and for a route through a relay, was the relay created? troth relay "
            "create NAME --at ROUTE --node NODE)",
        ) from None


def _expect(reporter: Reporter, ref: str | None) -> str | None:
    return None if ref is None else str(reporter.names.identifier(ref))


EXPECT = click.option(
    "--expect",
    metavar="IDENTITY",
    help=f"The identity expected at the route, {IDENTITY_HELP}: anyone else is refused.",
)
NOT_FROM = renamed("--from", "--node NODE (the node that acts)")


@click.group(
    "channel",
    epilog="""\b
Example:
  troth channel create /tcp/127.0.0.1:4000 --node agent-a --expect hub
  troth channel list --node agent-a""",
)
def channel_group() -> None:
    """Secure channels between nodes (Noise XX; identities and credentials checked both
    ways)."""


@channel_group.command("create")
@click.argument("route", metavar="ROUTE", callback=route_value)
@EXPECT
@NOT_FROM
@renamed("--to", "troth channel create ROUTE")
@node_option
@json_command
def channel_create(route: str, expect: str | None, node_name: str, reporter: Reporter) -> None:
    """Open a secure channel from the node to the node at ROUTE (ROUTE: e.g.
    /tcp/127.0.0.1:4000)."""
    data = ask_node(node_name, "channel.create", {"to": route, "expect": _expect(reporter, expect)})
    reporter.result(
        data, f"channel {escape_text(data['id'])} open to {reporter.label(data['peer'])}"
    )


@channel_group.command("list")
@node_option
@json_command
def channel_list(node_name: str, reporter: Reporter) -> None:
    """The channels of a running node: id, state, peer, route, messages in and out."""
    rows = ask_node(node_name, "channel.list", {}, transient=False)
    text = "\n".join(
        f"{r['id']}  {r['state']}  {reporter.label(r['peer'])}  {r['route']}  "
        f"in {r['messages_in']} out {r['messages_out']}"
        for r in rows
    )
    reporter.result(rows, text or f"node {node_name!r} has no channels")


@click.group(
    "message",
    epilog="""\b
Example:
  troth message send /tcp/127.0.0.1:4000/relay/agent-b/service/echo "hi" --node agent-a""",
)
def message_group() -> None:
    """Messages to services of other nodes, through secure channels."""


@message_group.command("send")
@click.argument("route", metavar="ROUTE", callback=route_value)
@click.argument("text")
@EXPECT
@NOT_FROM
@renamed("--to", "troth message send ROUTE TEXT")
@node_option
@json_command
def message_send(
    route: str, text: str, expect: str | None, node_name: str, reporter: Reporter
) -> None:
    """Send TEXT to the service at ROUTE (e.g. /tcp/127.0.0.1:4000/service/echo) through a
    secure channel; print the reply."""
    arguments = {"to": route, "text": text, "expect": _expect(reporter, expect)}
    reply = _json_data(ask_node(node_name, "message.send", arguments))
    reporter.result({"reply": reply}, reply if isinstance(reply, str) else json_text(reply))


def _json_data(reply: Any) -> Any:
    """The reply of a peer's service, which the command prints as JSON: DecodeError (exit 1)
    when it holds a byte string, which CBOR has and JSON has not (a peer's echo that answered
    one died in a TypeError traceback, exit 1 with nothing on stdout; review 55g, cli 2)."""
    values = [reply]
    while values:
        value = values.pop()
        if isinstance(value, bytes):
            raise DecodeError(
                "the service answered a byte string, which is not text or JSON data: the "
                "reply is not shown"
            )
        if isinstance(value, dict):
            values.extend(value.values())
        elif isinstance(value, list):
            values.extend(value)
    return reply


@click.group(
    "relay",
    epilog="""\b
Example:
  troth relay create agent-b --at /tcp/127.0.0.1:4000 --node agent-b""",
)
def relay_group() -> None:
    """Relays: a node reachable through another node, without a listening port."""


@relay_group.command("create")
@click.argument("name")
@click.option(
    "--at",
    "route",
    required=True,
    metavar="ROUTE",
    callback=route_value,
    help=f"The relay node: {ROUTE_HELP}.",
)
@NOT_FROM
@node_option
@json_command
def relay_create(name: str, route: str, node_name: str, reporter: Reporter) -> None:
    """Ask the relay node at ROUTE to forward /relay/NAME to the (running) node. The node's
    identity needs a credential with troth.relay=NAME (or *) from the authority the relay
    node hosts (from any authority it trusts when it hosts none)."""
    data = ask_node(node_name, "relay.create", {"name": name, "at": route}, transient=False)
    reporter.result(
        data,
        f"node {node_name!r} is reachable at {escape_text(data['route'])} (relay "
        f"{escape_text(name)} on the node at {escape_text(route)})",
    )
