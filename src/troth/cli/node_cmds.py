"""`troth node ...`: the named home of a vault and its identities."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from troth.cli.common import home
from troth.cli.output import Reporter, json_command, kv
from troth.node import NodeConfig, init_node, list_nodes

F = TypeVar("F", bound=Callable[..., Any])


@click.group("node")
def node_group() -> None:
    """Nodes: a vault (software or PKCS#11), a database, identities."""


def node_options(func: F) -> F:
    """--vault, --pkcs11-module, --token-label, --pin-env, --durability (node init, create)."""
    for option in reversed(
        (
            click.option(
                "--vault",
                type=click.Choice(["software", "pkcs11"]),
                default="software",
                show_default=True,
            ),
            click.option(
                "--pkcs11-module", help="Path of the PKCS#11 library (default: SoftHSM2's)."
            ),
            click.option("--token-label", help="Label of the PKCS#11 token."),
            click.option("--pin-env", help="Environment variable holding the token's user PIN."),
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
    """Create node NAME with its vault."""
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
    """List the nodes in $TROTH_HOME."""
    from troth.node.daemon import node_status

    rows = [
        {
            "name": c.name,
            "vault": c.vault,
            "durability": c.durability,
            "running": node_status(home(), c.name)["running"],
        }
        for c in list_nodes(home())
    ]
    text = "\n".join(
        f"{r['name']}  {r['vault']}  {'running' if r['running'] else 'stopped'}" for r in rows
    )
    reporter.result(rows, text or "(no nodes)")


@node_group.command("create")
@click.argument("name")
@node_options
@json_command
def create(name: str, reporter: Reporter, **options: Any) -> None:
    """Create node NAME with its vault and its default identity (also named NAME)."""
    from troth.cli.common import CLOCK
    from troth.node import open_node

    config = _init(name, options)
    with open_node(name, home=home()) as node:
        identity = node.identities.create(now=CLOCK.now(), name=name)
    data = {"name": config.name, "vault": config.vault, "identifier": str(identity.identifier)}
    reporter.result(data, kv(data))


@node_group.command("start")
@click.argument("name")
@click.option("--tcp-listen", help="host:port to listen on (e.g. 127.0.0.1:4000; port 0: any).")
@click.option("--foreground", is_flag=True, help="Run in this process until interrupted.")
@json_command
def start(name: str, tcp_listen: str | None, foreground: bool, reporter: Reporter) -> None:
    """Start node NAME (a background process with a pid file and a log in its directory)."""
    import asyncio
    import logging

    from troth.node.daemon import serve, start_daemon
    from troth.routing import Address

    listen = None
    if tcp_listen:
        listen = Address("tcp", tcp_listen).host_port()
    if foreground:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        asyncio.run(serve(home(), name, listen))
        return
    status = start_daemon(home(), name, tcp_listen)
    reporter.result(status, kv({k: status[k] for k in ("name", "pid", "listening", "identifier")}))


@node_group.command("stop")
@click.argument("name")
@json_command
def stop(name: str, reporter: Reporter) -> None:
    """Stop node NAME."""
    from troth.node.daemon import stop_daemon

    stopped = stop_daemon(home(), name)
    reporter.result(
        {"name": name, "stopped": stopped}, f"{name}: {'stopped' if stopped else 'not running'}"
    )


@node_group.command("status")
@click.argument("name")
@json_command
def status(name: str, reporter: Reporter) -> None:
    """Is node NAME running, and where does it listen."""
    from troth.node.daemon import control, node_status

    data = node_status(home(), name)
    if data["running"]:
        data.update(control(home(), name, "status", {}, status=data))
    shown = {k: v for k, v in data.items() if k not in ("control", "counters", "services")}
    for group, counters in (data.get("counters") or {}).items():
        if isinstance(counters, dict):
            shown.update({f"{group}.{k}": v for k, v in counters.items()})
        else:
            shown[group] = counters
    reporter.result(data, kv(shown))
