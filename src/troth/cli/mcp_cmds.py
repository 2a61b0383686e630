"""`troth mcp gate`, `troth mcp serve`, `troth mcp connect`: MCP servers behind troth's gates
(docs/policy.md, "MCP gates"). The MCP SDK is the `mcp` extra, imported when a command runs.

`gate` and `connect` are stdio MCP servers: stdout carries the protocol, so they print nothing
else there (errors go to stderr, or to stdout as JSON with --json when serving failed).
"""

from __future__ import annotations

import functools
import os
import shlex

import click

from troth.cli.common import (
    as_option,
    home,
    local_identity,
    node_option,
    open_cli_node,
    renamed,
)
from troth.cli.network_cmds import EXPECT, ask_node, route_value
from troth.cli.output import Reporter, escape_text, json_command
from troth.errors import ConfigError, PolicyError
from troth.gates.toolschema import check_name
from troth.identity import Identifier

__all__ = ["mcp_group"]

UPSTREAM = click.option(
    "--upstream",
    required=True,
    metavar="COMMAND",
    help='The upstream MCP server\'s command line, e.g. "python orders.py" (stdio).',
)


def _command(text: str) -> list[str]:
    words = shlex.split(text)
    if not words:
        raise ValueError("--upstream: give the upstream MCP server's command line")
    return words


def _authority_id(reporter: Reporter, text: str) -> Identifier:
    """An authority given as an identifier, or by the name of a local authority (or its node)."""
    if Identifier.looks_like(text):
        return Identifier.parse(text)
    return reporter.names.authority(text).identifier


def _server_name(name: str, option: str) -> None:
    """A usage error (exit 2) naming `option` when `name` is no MCP server name."""
    try:
        check_name(name, "MCP server")
    except PolicyError as exc:
        raise click.BadParameter(exc.detail, param_hint=option) from None


def _sdk() -> None:
    try:
        import mcp  # noqa: F401
    except ImportError:
        raise ConfigError("the MCP gates need the MCP SDK: pip install 'troth[mcp]'") from None


@click.group(
    "mcp",
    epilog="""\b
Example:
  troth mcp gate --as support --upstream "python orders.py" --server orders --node agents
  troth mcp serve orders --upstream "python orders.py" --node hub
  troth mcp connect /tcp/127.0.0.1:4000/service/mcp.orders --as support --node agents""",
)
def mcp_group() -> None:
    """MCP servers behind the gates: every tools/list filtered and every tools/call decided by
    the node's policy bundle, for one local identity or for each agent over a secure channel."""


@mcp_group.command("gate")
@as_option("The local identity the gate acts for (its keys stay in the node's vault)")
@UPSTREAM
@click.option(
    "--server",
    metavar="NAME",
    default=None,
    help='The upstream server\'s name: its tools are Cedar\'s Tool::"TOOL" in Server::"NAME", '
    'so a policy naming `resource in Server::"NAME"` allows them and no other server\'s '
    "(1-128 of A-Z a-z 0-9 _ . -). Default: none, in no server (such a policy denies them).",
)
@node_option
@json_command
def gate(
    as_name: str, upstream: str, server: str | None, node_name: str, reporter: Reporter
) -> None:
    """Serve a stdio MCP server in front of the upstream one, deciding every call as IDENTITY
    with its current credential and the node's current bundle and feed."""
    _sdk()
    import anyio

    from troth.integrations.mcp.local import serve_local_gate

    if server is not None:  # refused before the upstream starts
        _server_name(server, "--server")
    as_name = local_identity(reporter.names, as_name, node_name)
    anyio.run(
        functools.partial(
            serve_local_gate, home(), node_name, as_name, _command(upstream), server=server
        )
    )


@mcp_group.command("serve")
@click.argument("name")
@UPSTREAM
@click.option(
    "--grantable-by",
    "grantable_by",
    multiple=True,
    metavar="AUTHORITY",
    help="An authority whose policy bundles decide the server's tools (its identifier, or the "
    "name of a local authority; repeatable; recorded for NAME in place of any record). "
    "Default: the authorities recorded for NAME, else the authority the node hosts (on a node "
    "hosting none, the first it trusts alone), recorded for NAME (troth mcp forget NAME "
    "forgets them); another authority's members are shown no tool and denied every call.",
)
@node_option
@json_command
def serve(
    name: str, upstream: str, grantable_by: tuple[str, ...], node_name: str, reporter: Reporter
) -> None:
    """Publish the upstream MCP server as node service mcp.NAME on the running node: agents
    reach it through secure channels (troth mcp connect), each call decided on the channel's
    verified peer, by the bundle of its authority when that authority grants the server's tools
    (docs/policy.md, "MCP over secure channels")."""
    _command(upstream)
    _server_name(name, "NAME")
    named = [_authority_id(reporter, text) for text in grantable_by]
    arguments = {"name": name, "upstream": upstream, "cwd": os.getcwd()}
    if named:
        arguments["grantable_by"] = " ".join(str(authority) for authority in named)
    data = ask_node(node_name, "mcp.serve", arguments, transient=False)
    tools = ", ".join(escape_text(t) for t in data["tools"]) or "none"
    reporter.result(
        data,
        f"node {node_name!r} serves MCP server {escape_text(name)} at "
        f"ROUTE{escape_text(data['address'])} (upstream tools: {tools})",
    )


@mcp_group.command("connect")
@click.argument("route", metavar="ROUTE", callback=route_value)
@as_option("The local identity the channel is opened as")
@EXPECT
@renamed("--to", "troth mcp connect ROUTE")
@node_option
@json_command
def connect(
    route: str, as_name: str, expect: str | None, node_name: str, reporter: Reporter
) -> None:
    """Serve a stdio MCP server that forwards to the MCP server at ROUTE (e.g.
    /tcp/127.0.0.1:4000/service/mcp.orders) through a secure channel opened as IDENTITY."""
    _sdk()
    import anyio

    from troth.integrations.mcp.connect import serve_connect

    pinned = None if expect is None else reporter.names.identifier(expect)
    as_name = local_identity(reporter.names, as_name, node_name)
    anyio.run(lambda: serve_connect(home(), node_name, as_name, route, expect=pinned))


@mcp_group.command("forget")
@click.argument("name")
@node_option
@json_command
def forget(name: str, node_name: str, reporter: Reporter) -> None:
    """Forget the authorities recorded as MCP server NAME's grantors: its next publication
    naming none (troth mcp serve without --grantable-by) takes the node's own authority then.
    A running publication keeps its grantors until the node stops (docs/policy.md, "MCP over
    secure channels")."""
    from troth.node.services.mcp import forget_grantors

    _server_name(name, "NAME")  # a name that is none is looked up nowhere (review 55g, cli 10)
    with open_cli_node(node_name) as node:
        forgotten = forget_grantors(node, name)
    reporter.result(
        {"name": name, "forgotten": forgotten},
        f"MCP server {escape_text(name)}: "
        + ("its recorded grantors forgotten" if forgotten else "no grantors were recorded"),
    )
