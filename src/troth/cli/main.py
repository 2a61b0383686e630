"""The `troth` command line. The only code that prints; each command is one library call."""

from __future__ import annotations

import click

from troth import __version__
from troth.cli.authority_cmds import authority_group
from troth.cli.bench_cmd import bench
from troth.cli.credential_cmds import (
    credential_group,
    enroll,
    revocations_group,
    revoke_group,
)
from troth.cli.demo_cmd import demo
from troth.cli.identity_cmds import identity_group
from troth.cli.network_cmds import channel_group, message_group, relay_group
from troth.cli.node_cmds import node_group
from troth.cli.trace_cmds import trace_group


@click.group()
@click.version_option(__version__, prog_name="troth")
def cli() -> None:
    """troth: cryptographic identity and trust for AI agents.

    State lives in $TROTH_HOME (else the platform data directory).
    Exit codes: 0 ok, 1 invalid or denied, 2 usage, 3 configuration, 4 I/O.
    """


cli.add_command(identity_group)
cli.add_command(node_group)
cli.add_command(authority_group)
cli.add_command(enroll)
cli.add_command(credential_group)
cli.add_command(revoke_group)
cli.add_command(revocations_group)
cli.add_command(channel_group)
cli.add_command(message_group)
cli.add_command(relay_group)
cli.add_command(demo)
cli.add_command(bench)
cli.add_command(trace_group)


def main() -> None:
    cli(prog_name="troth")


if __name__ == "__main__":  # `python -m troth.cli.main` (how `troth node start` runs a node)
    main()
