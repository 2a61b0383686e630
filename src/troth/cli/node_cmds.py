"""`troth node ...`: the named home of a vault and its identities."""

from __future__ import annotations

import click

from troth.cli.common import home
from troth.cli.output import Reporter, json_command, kv
from troth.node import init_node, list_nodes


@click.group("node")
def node_group() -> None:
    """Nodes: a vault (software or PKCS#11), a database, identities."""


@node_group.command("init")
@click.argument("name")
@click.option(
    "--vault", type=click.Choice(["software", "pkcs11"]), default="software", show_default=True
)
@click.option("--pkcs11-module", help="Path of the PKCS#11 library (default: SoftHSM2's).")
@click.option("--token-label", help="Label of the PKCS#11 token.")
@click.option("--pin-env", help="Environment variable holding the token's user PIN.")
@click.option(
    "--durability",
    type=click.Choice(["normal", "full"]),
    default="normal",
    show_default=True,
    help="normal: survive a process crash; full: also a power loss (fsync every commit).",
)
@json_command
def init(
    name: str,
    vault: str,
    pkcs11_module: str | None,
    token_label: str | None,
    pin_env: str | None,
    durability: str,
    reporter: Reporter,
) -> None:
    """Create node NAME with its vault."""
    config = init_node(
        name,
        home=home(),
        vault="pkcs11" if vault == "pkcs11" else "software",
        pkcs11_module=pkcs11_module,
        token_label=token_label,
        pin_env=pin_env,
        durability=durability,
    )
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
    rows = [
        {"name": c.name, "vault": c.vault, "durability": c.durability} for c in list_nodes(home())
    ]
    reporter.result(rows, "\n".join(f"{r['name']}  {r['vault']}" for r in rows) or "(no nodes)")
