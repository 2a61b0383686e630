"""The `troth` command line. The only code that prints; each command is one library call."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from troth import __version__
from troth.cli.authority_cmds import authority_group
from troth.cli.bench_cmd import bench
from troth.cli.credential_cmds import credential_group, enroll
from troth.cli.demo_cmd import demo
from troth.cli.identity_cmds import identity_group
from troth.cli.mcp_cmds import mcp_group
from troth.cli.network_cmds import channel_group, message_group, relay_group
from troth.cli.node_cmds import node_group
from troth.cli.output import EXIT_CODES_HELP, error_object
from troth.cli.policy_cmds import policy_group
from troth.cli.revoke_cmds import revocations_group, revoke_group
from troth.cli.secret_cmds import lease_group, secret_group
from troth.cli.trace_cmds import trace_group


class TrothGroup(click.Group):
    """The root group: with `--json` anywhere on the command line, a usage error too is one
    JSON object on stdout and nothing on stderr."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if not standalone_mode or "--json" not in argv:
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(argv, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            click.echo(json.dumps(error_object(exc), indent=2))
            sys.exit(exc.exit_code)
        except click.Abort:
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(
    cls=TrothGroup,
    epilog=EXIT_CODES_HELP
    + """

\b
Grammar:
  NAME / IDENTITY        what a command creates or acts on (an identity: its local name or T…)
  --node NODE            the node whose vault and store are used ($TROTH_NODE, else default)
  --as IDENTITY          the local identity that acts (delegates, enrolls, holds, revokes)
  --authority AUTHORITY  an authority on this machine: its name or identifier
  --trust AUTHORITY      a trust anchor: a local authority's name, or any identifier
  --json                 the result, or the error, as one JSON object on stdout

\b
Example:
  troth identity create customer
  troth authority create acme
  troth authority ticket create --authority acme --attr orders.customer=4471 \\
    | troth enroll - --as customer""",
)
@click.version_option(__version__, prog_name="troth")
def cli() -> None:
    """troth: cryptographic identity and trust for AI agents.

    State lives in $TROTH_HOME (else the platform data directory). Times print as ISO 8601
    UTC (past the year 9999, as a peer may write one: after 9999-12-31T23:59:59Z with the
    epoch seconds); durations as 1h30m (what --ttl takes)."""


for command in (
    identity_group,
    node_group,
    authority_group,
    enroll,
    credential_group,
    revoke_group,
    revocations_group,
    channel_group,
    message_group,
    relay_group,
    policy_group,
    secret_group,
    lease_group,
    mcp_group,
    trace_group,
    demo,
    bench,
):
    cli.add_command(command)


def main() -> None:
    """The console script: `troth ...`."""
    cli(prog_name="troth")


if __name__ == "__main__":  # `python -m troth.cli.main` (how tests run the CLI in a process)
    main()
