"""The `troth` command line. The only code that prints; each command is one library call."""

from __future__ import annotations

import sys

try:  # a fifth of a second: Ctrl-C here is no traceback either (review 57d, cli 4)
    import contextlib
    import errno
    import importlib
    from collections.abc import Iterator, Mapping, Sequence
    from typing import Any

    import click

    from troth import __version__
    from troth.cli.output import (
        EXIT_CODES_HELP,
        EXIT_INTERRUPTED,
        EXIT_IO,
        REPORTED_ERRORS,
        Reporter,
        error_object,
        forget_result,
        internal_error,
        json_text,
        to_stderr,
        write_stdout,
    )
except KeyboardInterrupt:  # as `Interrupted` exits, from the standard library alone
    import json

    if "--json" not in sys.argv[1:]:
        sys.stderr.write("troth: interrupted\n")
    elif sys.stdout is not None:
        error = {"ok": False, "error": "KeyboardInterrupt", "message": "interrupted"}
        sys.stdout.write(json.dumps({**error, "exit_code": 130}, indent=2) + "\n")
    sys.exit(130)

COMMANDS: Mapping[str, tuple[str, str]] = {
    "identity": ("troth.cli.identity_cmds", "identity_group"),
    "node": ("troth.cli.node_cmds", "node_group"),
    "authority": ("troth.cli.authority_cmds", "authority_group"),
    "enroll": ("troth.cli.credential_cmds", "enroll"),
    "credential": ("troth.cli.credential_cmds", "credential_group"),
    "revoke": ("troth.cli.revoke_cmds", "revoke_group"),
    "revocations": ("troth.cli.revoke_cmds", "revocations_group"),
    "channel": ("troth.cli.network_cmds", "channel_group"),
    "message": ("troth.cli.network_cmds", "message_group"),
    "relay": ("troth.cli.network_cmds", "relay_group"),
    "policy": ("troth.cli.policy_cmds", "policy_group"),
    "secret": ("troth.cli.secret_cmds", "secret_group"),
    "lease": ("troth.cli.secret_cmds", "lease_group"),
    "mcp": ("troth.cli.mcp_cmds", "mcp_group"),
    "trace": ("troth.cli.trace_cmds", "trace_group"),
    "vault": ("troth.cli.vault_cmds", "vault_group"),
    "demo": ("troth.cli.demo_cmd", "demo"),
    "bench": ("troth.cli.bench_cmd", "bench"),
}
"""Each top-level command: the module defining it and its name there. A module is imported
when its command is first looked up (`troth node status` imports the node commands, not the
credential commands and all they import: most of a command's start-up time was importing
every other command's module); listing the commands (`troth --help`) imports them all."""


class _Commands(dict[str, click.Command]):
    """The root group's commands, each imported from `COMMANDS` when first read: looking one
    up by name imports its module only; anything that lists them imports them all."""

    def _load(self, name: object) -> None:
        if isinstance(name, str) and name in COMMANDS and not super().__contains__(name):
            module, attribute = COMMANDS[name]
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{module}.{attribute} is not a click command")
            super().__setitem__(name, command)

    def _load_all(self) -> None:
        for name in COMMANDS:
            self._load(name)

    def get(self, name: str, default: Any = None) -> Any:
        self._load(name)
        return super().get(name, default)

    def __getitem__(self, name: str) -> click.Command:
        self._load(name)
        return super().__getitem__(name)

    def __contains__(self, name: object) -> bool:
        self._load(name)
        return super().__contains__(name)

    def __iter__(self) -> Iterator[str]:
        self._load_all()
        return super().__iter__()

    def __len__(self) -> int:
        self._load_all()
        return super().__len__()

    def keys(self) -> Any:
        self._load_all()
        return super().keys()

    def values(self) -> Any:
        self._load_all()
        return super().values()

    def items(self) -> Any:
        self._load_all()
        return super().items()


class Interrupted(click.ClickException):
    """Ctrl-C before a command ran (`TrothGroup`): exit 130, as inside one (`json_command`)."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self) -> None:
        super().__init__("interrupted")

    def show(self, file: Any = None) -> None:
        to_stderr("troth: interrupted")


class OutputLost(click.ClickException):
    """The help or the version not written: stdout a pipe whose reader has gone (`troth --help
    | head -0`). Exit 4, I/O, as a command's result not written is (click's own handling of
    EPIPE exits 1, "invalid or denied": review 61n, cli 2)."""

    exit_code = EXIT_IO

    def __init__(self, exc: OSError) -> None:
        super().__init__(f"cannot write to stdout: {exc.strerror or exc} (its reader has gone)")

    def show(self, file: Any = None) -> None:
        to_stderr(f"troth: {self.message}")


def _epipe(exc: OSError) -> BaseException:
    """`exc` as it is reported: EPIPE (which click's `main` takes for its own, exit 1) as
    `OutputLost`, anything else as it is."""
    return OutputLost(exc) if exc.errno == errno.EPIPE else exc


def _json_error(exc: click.ClickException) -> bool:
    """Whether `exc`'s `--json` error object was written to stdout (not when stdout is closed
    or failing: the error then goes to stderr, review 49g, cli 2)."""
    shown = KeyboardInterrupt("interrupted") if isinstance(exc, Interrupted) else exc
    try:
        write_stdout(json_text(error_object(shown)))
    except OSError:
        return False
    return True


class TrothGroup(click.Group):
    """The root group: with `--json` anywhere on the command line, a usage error too is one
    JSON object on stdout and nothing on stderr. Its commands are imported when first looked
    up (`COMMANDS`). Ctrl-C while the command line is parsed (the root's options, the
    subcommand's, importing the subcommand's module) exits 130 as inside a command (review
    45a, interrupt 1: click's own handling exits 1, "Aborted!")."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        commands = _Commands()
        commands.update(self.commands)
        self.commands = commands

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt:
            raise Interrupted() from None
        except OSError as exc:  # writing --help or --version
            raise _epipe(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # resolving, importing or parsing the subcommand
            raise Interrupted() from None
        except OSError as exc:  # writing a subcommand's --help
            raise _epipe(exc) from None

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        try:  # click's errors reported here: its own reporting exits 1 when stderr fails
            code = super().main(argv, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            if "--json" not in argv or not _json_error(exc):
                with contextlib.suppress(OSError, ValueError):  # (review 61n, cli 2)
                    exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            to_stderr("Aborted!")
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
  --authority AUTHORITY  an authority on this machine: its name or identifier (revoke link:
                         also the identifier of one the node trusts over the network)
  --trust AUTHORITY      a trust anchor: a local authority's name, or any identifier
  --json                 the result, or the error, as one JSON document on stdout: an
                         object (a list command's result: an array), a warning in its
                         warnings list, not on stderr

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

    State lives in $TROTH_HOME (else the platform data directory), which must be this
    user's (or root's) and writable by no one else (exit 3 otherwise). Times print as ISO 8601
    UTC (past the year 9999, as a peer may write one: after 9999-12-31T23:59:59Z with the
    epoch seconds); durations as 1h30m (what --ttl takes)."""


def main() -> None:
    """The console script: `troth ...`. An error of troth's that no command reported (one
    raised outside any) exits with its code, as inside one; any other exception, a bug, exits
    70 without its traceback (`internal_error`). Calling `cli` itself (tests, in-process) lets
    such an exception through (review 55o, cli 1)."""
    forget_result()
    try:
        cli(prog_name="troth")
    except REPORTED_ERRORS as exc:
        Reporter("--json" in sys.argv[1:]).fail(exc)
    except Exception as exc:  # a bug: not exit 1, a verdict's code
        internal_error(exc, "--json" in sys.argv[1:])


if __name__ == "__main__":  # `python -m troth.cli.main` (how tests run the CLI in a process)
    main()
