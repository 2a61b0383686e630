"""`troth node ...`: the named home of a vault, its database and identities; running it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from troth.cli.common import CLOCK, home
from troth.cli.output import Reporter, escape_text, json_command, kv
from troth.node import NodeConfig, init_node, list_nodes, open_node

F = TypeVar("F", bound=Callable[..., Any])


@click.group(
    "node",
    epilog="""\b
Example:
  troth node create hub
  troth node start hub --tcp-listen 127.0.0.1:4000
  troth node status hub
  troth node stop hub""",
)
def node_group() -> None:
    """Nodes: a vault (software or PKCS#11), a database, identities; a node runs as a
    background process with secure channels, services and relays."""


def node_options(func: F) -> F:
    """--vault, --pkcs11-module, --token-label, --pin-env, --durability (node init, create)."""
    for option in reversed(
        (
            click.option(
                "--vault",
                type=click.Choice(["software", "pkcs11"]),
                default="software",
                show_default=True,
                help="Where identity keys live: sealed in the node's database, or in a PKCS#11 "
                "token (an HSM).",
            ),
            click.option(
                "--pkcs11-module",
                metavar="PATH",
                help="Absolute path of the PKCS#11 library (default: SoftHSM2's).",
            ),
            click.option("--token-label", metavar="LABEL", help="Label of the PKCS#11 token."),
            click.option(
                "--pin-env",
                metavar="VAR",
                help="Environment variable holding the token's user PIN "
                "(default: TROTH_PKCS11_PIN).",
            ),
            click.option(
                "--durability",
                type=click.Choice(["normal", "full"]),
                default="normal",
                show_default=True,
                help="normal: survive a process crash; full: also a power loss (fsync every "
                "commit).",
            ),
        )
    ):
        func = option(func)
    return func


def _init(name: str, options: dict[str, Any]) -> NodeConfig:
    return init_node(
        name,
        home=home(),
        vault="pkcs11" if options["vault"] == "pkcs11" else "software",
        pkcs11_module=options["pkcs11_module"],
        token_label=options["token_label"],
        pin_env=options["pin_env"],
        durability=options["durability"],
    )


@node_group.command("init")
@click.argument("name")
@node_options
@json_command
def init(name: str, reporter: Reporter, **options: Any) -> None:
    """Create node NAME with its vault, and no identity (troth node create also makes one)."""
    config = _init(name, options)
    data = {
        "name": config.name,
        "vault": config.vault,
        "durability": config.durability,
        "home": str(home()),
    }
    reporter.result(data, kv(data))


@node_group.command("list")
@json_command
def list_(reporter: Reporter) -> None:
    """List the nodes in $TROTH_HOME: name, vault, running or stopped. A node whose
    configuration cannot be read is listed with why (with --json, as `error`)."""
    from troth.node.daemon import node_status

    unreadable: dict[str, str] = {}
    rows: list[dict[str, Any]] = [
        {
            "name": c.name,
            "vault": c.vault,
            "durability": c.durability,
            "running": node_status(home(), c.name)["running"],
        }
        for c in list_nodes(home(), unreadable=unreadable)
    ]
    rows += [{"name": name, "error": why} for name, why in unreadable.items()]
    rows.sort(key=lambda r: str(r["name"]))
    width = max((len(r["name"]) for r in rows), default=0)
    text = "\n".join(
        f"{r['name']:<{width}}  cannot be read: {escape_text(r['error'])}"
        if "error" in r
        else f"{r['name']:<{width}}  {r['vault']:<8}  {'running' if r['running'] else 'stopped'}"
        for r in rows
    )
    reporter.result(rows, text or f"no nodes in {home()} (create one with: troth node create NAME)")


@node_group.command("create")
@click.argument("name")
@node_options
@json_command
def create(name: str, reporter: Reporter, **options: Any) -> None:
    """Create node NAME with its vault and its own identity (also named NAME): the identity
    the node shows on its channels."""
    config = _init(name, options)
    with open_node(name, home=home()) as node:
        identity = node.identities.create(now=CLOCK.now(), name=name)
    data = {"name": config.name, "vault": config.vault, "identifier": str(identity.identifier)}
    reporter.result(data, kv(data))


def _listen_value(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--tcp-listen checked as it is read: one that is not host:port is a usage error (exit 2),
    as every route option is (it was a RoutingError, exit 1; review 55g, cli 7)."""
    from troth.errors import RoutingError
    from troth.routing import Address

    if value is not None:
        try:
            Address("tcp", value).host_port()
        except RoutingError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
    return value


def _listening(value: Any) -> str:
    return str(value) if value else "no port (reachable through a relay, or not at all)"


@node_group.command("start")
@click.argument("name")
@click.option(
    "--tcp-listen",
    metavar="HOST:PORT",
    callback=_listen_value,
    help="Listen for channels here (e.g. 127.0.0.1:4000; port 0: any free port). Recorded: "
    "the node's tickets carry this address.",
)
@click.option("--foreground", is_flag=True, help="Run in this process until interrupted.")
@json_command
def start(name: str, tcp_listen: str | None, foreground: bool, reporter: Reporter) -> None:
    """Start node NAME: a background process with a pid file and a log (node.log) in its
    directory."""
    import asyncio
    import logging

    from troth.node.daemon import serve, start_daemon
    from troth.routing import Address

    listen = None
    if tcp_listen:
        listen = Address("tcp", tcp_listen).host_port()
    if foreground:
        logging.basicConfig(  # (forced: with --json the command's handler drops them)
            level=logging.INFO, format="%(asctime)s %(name)s %(message)s", force=True
        )
        asyncio.run(serve(home(), name, listen, record=tcp_listen))
        reporter.result({"name": name, "stopped": True})  # --json: an object (review 55o, cli 2)
        return
    status = start_daemon(home(), name, tcp_listen)
    text = kv(
        {
            "name": status["name"],
            "pid": status["pid"],
            "listening": _listening(status.get("listening")),
            "identifier": reporter.label(status.get("identifier")),
        }
    )
    reporter.result(status, text)


@node_group.command("stop")
@click.argument("name")
@json_command
def stop(name: str, reporter: Reporter) -> None:
    """Stop node NAME (starting: once it is up; not running: said so, exit 0)."""
    from troth.node.daemon import stop_daemon

    stopped = stop_daemon(home(), name)
    reporter.result(
        {"name": name, "stopped": stopped}, f"{name}: {'stopped' if stopped else 'not running'}"
    )


def _counters(counters: dict[str, Any]) -> dict[str, str]:
    """One line per counter group, the counters that are not zero."""
    lines: dict[str, str] = {}
    for group, values in counters.items():
        if isinstance(values, dict):
            busy = [f"{k.replace('_', ' ')} {v}" for k, v in values.items() if v]
            lines[f"{group} counters"] = ", ".join(busy) or "all zero"
        else:
            lines[group.replace("_", " ")] = str(values)
    return lines


def _traces(traces: dict[str, Any]) -> str:
    """Where the node's records go; with a trace service, what its outbox holds."""
    to = traces.get("to", "log")
    outbox = traces.get("outbox") or {}
    queued, refused = outbox.get("queued", 0), outbox.get("refused", 0)
    if to == "log":
        shown = "to the node's log"
        if queued or refused:  # queued while node.json named a trace service
            shown += f"; {queued + refused} left in the outbox (troth trace outbox)"
        return shown
    shown = f"to {to}; outbox: {queued} queued"
    if refused:
        shown += f", {refused} refused and set aside (troth trace outbox)"
    held = outbox.get("held_back")
    if held:  # a clock is off: the log's ran ahead, or disagrees now (review 68i, clock 1, 5)
        shown += (
            f"; waiting since {held.get('since')}: the log refuses them"
            f" ({held.get('reason')}: {held.get('detail')}); they stay queued and go again"
            " until it takes them (fix the clock that is off: docs/traces.md)"
        )
    return shown


def _restored(rows: list[dict[str, Any]]) -> str | None:
    """The restores of node.db found (docs/storage.md, "Rollback guard"), or None (no line)."""
    voided = {
        "authority": "ticket(s) voided",
        "broker": "lease(s) revoked",
        "identity": "identity(ies) held",
    }
    # what the operator does (review 57r, status 1: an identity scope's advice was to revoke)
    advice = {
        "identity": "release one not rotated after the copy with troth identity "
        "release-restored IDENTITY, and make a new one for each rotated since: it is lost here",
        # its members are refused here until released (review 65o, feed 2)
        "authority": "its members are refused here until then: revoke again what was revoked "
        "after the copy, then troth authority release-restored --authority NAME "
        "--revoked-again",
    }
    return (
        "; ".join(
            f"{row['scope']} at {row['at']}"
            + (" (another node's node.db)" if row.get("another_node") else "")
            + f", {row['voided']} {voided.get(row['scope'], 'voided')}"
            f" ({advice.get(row['scope'], 'revoke again what was revoked after the copy')})"
            for row in rows
        )
        or None
    )


def _authority(data: dict[str, Any], reporter: Reporter) -> str:
    """The hosted authority, and whether it is held (review 65z, hold 2: its members are
    refused here, which the restores found do not say once one is released, nor when a
    failed re-revoke held it)."""
    if not data.get("authority"):
        return "none"
    shown = reporter.label(data["authority"])
    held = data.get("authority_held")
    if held is None:
        return shown
    if held == "damaged":  # its time unknown (review 72b, holds 3)
        held = "a time node.db holds damaged"
    return (
        f"{shown} (held since {held}: every member refused here, nothing issued; revoke "
        "again what its feed lost, then troth authority release-restored --authority NAME "
        "--revoked-again)"
    )


@node_group.command("status")
@click.argument("name")
@json_command
def status(name: str, reporter: Reporter) -> None:
    """Is node NAME running; where it listens, its channels, relays, trusted authorities and
    counters."""
    from troth.node.daemon import control, node_status
    from troth.node.links import LinkRow

    data = node_status(home(), name)
    if data.get("starting"):
        reporter.result(data, f"{name}: starting (pid {data['pid']})")
        return
    if not data["running"]:
        reporter.result(data, f"{name}: not running (start it with: troth node start {name})")
        return
    data.update(control(home(), name, "status", {}, status=data))
    sunk = data.get("sunk") or {}
    text = kv(
        {
            "name": data["name"],
            "running": f"yes, pid {data['pid']}",
            "identifier": reporter.label(data.get("identifier")),
            "listening": _listening(data.get("listening")),
            "channels": data.get("channels", 0),
            # the relays this node serves to others; one it holds at another node is a link's
            "relays served": ", ".join(data.get("relays") or []) or "none",
            "links": "; ".join(LinkRow.from_json(r).describe() for r in data.get("links") or [])
            or "none",
            "authority": _authority(data, reporter),
            "trusts": ", ".join(reporter.label(a) for a in data.get("trusted") or []) or "none",
            "sink": f"{sunk.get('messages', 0)} message(s), {sunk.get('bytes', 0)} bytes",
            "traces": _traces(data.get("traces") or {}),
            "restored": _restored(data.get("restored") or []),
            **_counters(data.get("counters") or {}),
        }
    )
    reporter.result(data, text)
