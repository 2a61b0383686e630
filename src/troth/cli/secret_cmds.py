"""`troth secret ...` and `troth lease ...`: leased secrets (docs/secrets.md).

An operator stores an upstream secret on a node (`secret put`: the node becomes a broker and
serves it at /service/broker); an agent proves who it is over a secure channel and leases a
short-lived, scoped secret of its own (`secret lease`); it lists, renews and revokes its own
leases (`lease ...`); the broker node's operator revokes every lease of an identity (`lease
revoke --holder`). The upstream secret is read from stdin or a file, never from the command
line, and is never printed.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from troth import limits
from troth.cli.common import (
    CLOCK,
    INPUT_FILE,
    as_option,
    duration_option,
    local_identity,
    node_option,
    open_cli_node,
    read_input,
    stdin_bytes,
    stdin_once,
)
from troth.cli.network_cmds import ask_node, route_value
from troth.cli.output import Reporter, escape_text, json_command, json_text, kv
from troth.cli.text import duration, moment
from troth.errors import SecretError
from troth.identity import Identifier
from troth.node.secret_api import ENGINES

if TYPE_CHECKING:
    from troth.node import Node

BROKER = click.option(
    "--broker",
    "broker_route",
    metavar="ROUTE",
    callback=route_value,
    help="The broker node: a route such as /tcp/127.0.0.1:4000 (through a relay: .../relay/NAME).",
)
EXPECT = click.option(
    "--expect",
    metavar="IDENTITY",
    help="The identity expected at the broker route (a local name or an identifier): anyone "
    "else is refused.",
)
LEASE = click.argument("lease_text", metavar="LEASE", required=False)
LEASE_HELP = (
    "LEASE is the lease id `troth secret lease` printed (lease_...); - reads it from stdin."
)


def _secret_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """NAME checked as it is read: one that is no secret name is a usage error (exit 2); the
    broker refused it as a request it judged, exit 1 (review 55g, cli 9)."""
    from troth.secrets.lease import check_secret_name

    try:
        return check_secret_name(value)
    except SecretError as exc:
        raise click.BadParameter(exc.detail, ctx, param) from None


@click.group(
    "secret",
    epilog="""\b
Example:
  echo '{"audience": "payments", "scopes": ["refunds"], "ttl": 120}' > payments.json
  troth secret put payments --engine token --config payments.json --node hub
  troth secret lease payments --ttl 2m --as support-agent --broker /tcp/127.0.0.1:4000
  troth secret jwks --node hub""",
)
def secret_group() -> None:
    """Leased secrets: a node keeps upstream secrets sealed by its vault and lends agents
    short-lived, scoped ones of their own."""


@secret_group.command("put")
@click.argument("name", callback=_secret_name)
@click.option(
    "--engine",
    required=True,
    type=click.Choice(ENGINES),
    help="token: the broker mints JWTs; postgres: a database role per lease; http-inject: "
    "the broker forwards requests and adds the secret header.",
)
@click.option(
    "--config",
    "config_file",
    required=True,
    type=INPUT_FILE,
    metavar="FILE",
    help="The secret's JSON configuration (scopes, ttl, max_ttl and the engine's settings).",
)
@click.option(
    "--value-file",
    type=INPUT_FILE,
    metavar="FILE",
    help="File holding the upstream secret (default: stdin; a token secret has none).",
)
@click.option(
    "--grantable-by",
    "grantable_by",
    multiple=True,
    metavar="AUTHORITY",
    help="An authority whose policy bundles may grant leases of NAME (its identifier, or the "
    "name of a local authority; repeatable; added to the configuration's grantable_by). "
    "Default: the authority the node hosts (on a node hosting none, the one it trusts, when "
    "it trusts exactly one); no other authority's bundle grants it.",
)
@node_option
@json_command
def put(
    name: str,
    engine: str,
    config_file: str,
    value_file: str | None,
    grantable_by: tuple[str, ...],
    node_name: str,
    reporter: Reporter,
) -> None:
    """Store upstream secret NAME on the node, sealed by its vault, and make the node a broker
    (it serves /service/broker once (re)started). The value is read from stdin or
    --value-file, never from the command line, and is never printed. Only the policy bundles
    of the authorities it is grantable by decide who leases it (docs/secrets.md, "Whose
    bundles grant a secret")."""
    from troth.node.services.broker import put_secret

    if engine == "token" and value_file is not None:  # ignored (review 65m, cli 3)
        raise click.UsageError(
            "--value-file: a token secret has no upstream value (the broker signs its tokens "
            "with a key of its own vault)"
        )
    value_from = None if engine == "token" else value_file or "-"  # the value: stdin by default
    stdin_once(**{"--config": config_file, "the secret value (--value-file)": value_from})
    config = read_input(config_file, limits.MAX_SECRET_CONFIG_BYTES, "configuration")
    grantors = tuple(_authority_id(reporter, text) for text in grantable_by)
    value = b"" if engine == "token" else _secret_value(value_file)
    with open_cli_node(node_name) as node:
        data = put_secret(node, name, engine, config, value, now=CLOCK.now(), grantable_by=grantors)
        default = _default_grantors(node)
    text = kv(
        {
            "secret": data["secret"],
            "engine": data["engine"],
            "scopes": " ".join(data["scopes"]) or "(none)",
            "ttl": duration(data["ttl"]),
            "max ttl": duration(data["max_ttl"]),
            "grantable by": " ".join(data["grantable_by"]) or default,
        }
    )
    if data["service_added"]:
        text += (
            f"\nnode {node_name!r} now serves the broker at /service/broker (a running node "
            f"after a restart: troth node stop {node_name}; troth node start {node_name})"
        )
    reporter.result(data, text)


def _default_grantors(node: Node) -> str:
    """Who grants a secret stored naming no authority, in words (docs/secrets.md, "Whose
    bundles grant a secret"): the hosted authority; on a node hosting none, none yet (review
    38a, broker 1: it said "the authority the node hosts" there too)."""
    from troth.errors import NotFound

    try:
        node.authority()
    except NotFound:
        trusted = len(node.wallet.trusted())
        if not trusted:
            return (
                "none yet (the node hosts no authority and trusts none: the one it trusts "
                "when it trusts exactly one; name one with --grantable-by)"
            )
        return (
            f"none (the node hosts no authority and trusts {trusted}: name one with --grantable-by)"
        )
    return "the authority the node hosts"


def _authority_id(reporter: Reporter, text: str) -> Identifier:
    """An authority given as an identifier, or by the name of a local authority (or its node)."""
    if Identifier.looks_like(text):
        return Identifier.parse(text)
    return reporter.names.authority(text).identifier


def _secret_value(value_file: str | None) -> bytes:
    if value_file is None and sys.stdin is not None and sys.stdin.isatty():
        raise click.UsageError(
            "give the upstream secret on stdin (e.g. a pipe) or with --value-file FILE: never "
            "on the command line"
        )
    value = read_input(value_file or "-", limits.MAX_SECRET_VALUE_BYTES, "secret value")
    for ending in (b"\r\n", b"\n"):  # what `echo` and editors add
        if value.endswith(ending):
            return value[: -len(ending)]
    return value


@secret_group.command("lease")
@click.argument("name", callback=_secret_name)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    metavar="SCOPE",
    help="A scope to ask for (repeatable; default: every scope the secret offers).",
)
@duration_option("--ttl", help="How long the lease lives (default: the secret's ttl).")
@as_option("The local identity that leases (it proves who it is to the broker)")
@BROKER
@EXPECT
@node_option
@json_command
def lease(
    name: str,
    scopes: tuple[str, ...],
    ttl: int | None,
    as_name: str,
    broker_route: str | None,
    expect: str | None,
    node_name: str,
    reporter: Reporter,
) -> None:
    """Lease secret NAME from the broker at --broker, as --as: prints the lease and, once, its
    credential (a token, a database login). Keep the lease id: renewing and revoking need it."""
    arguments = _lease_args(reporter, as_name, broker_route, expect, node_name)
    arguments.update(secret=name, scope=" ".join(scopes) or None, ttl=_text(ttl))
    data = ask_node(node_name, "lease.issue", arguments)
    lines = [_lease_line(reporter, data["lease"]), f"lease id: {escape_text(data['lease_id'])}"]
    lines.append("  (keep it: troth lease renew / revoke need it; it is shown only now)")
    lines.extend(_credential_lines(data["credential"]))
    reporter.result(data, "\n".join(lines))


@secret_group.command("rotate-key")
@click.option(
    "--compromised",
    is_flag=True,
    help="The key may be in someone else's hands (a copy of the vault): withdraw every older "
    "key at once, so nothing it signed validates any more (holders lease again).",
)
@node_option
@json_command
def rotate_key(compromised: bool, node_name: str, reporter: Reporter) -> None:
    """Rotate the broker node's token signing key. Routine: the old key stays in the JWKS until
    the tokens it signed expire (at most 30 days). --compromised: every older key leaves the
    JWKS and the vault now; relying parties must fetch the JWKS again."""
    from troth.node.services.broker import rotate_token_key

    with open_cli_node(node_name) as node:
        data = rotate_token_key(node, compromised=compromised, now=CLOCK.now())
    text = kv(
        {
            "new key": data["kid"],
            "withdrawn": " ".join(data["withdrawn"]) or "(none)",
            "published": " ".join(data["published"]),
        }
    )
    reporter.result(data, text)


@secret_group.command("jwks")
@node_option
@json_command
def jwks(node_name: str, reporter: Reporter) -> None:
    """The broker node's token keys as a JWKS document: what a service validates the broker's
    tokens with (any JWT library; kid = RFC 7638 thumbprint)."""
    data = ask_node(node_name, "broker.jwks", {})
    reporter.result(data, json_text(data))


@click.group(
    "lease",
    epilog="""\b
Example:
  troth lease list --as support-agent --broker /tcp/127.0.0.1:4000
  troth lease renew lease_3q2... --ttl 5m --as support-agent --broker /tcp/127.0.0.1:4000
  troth lease revoke lease_3q2... --as support-agent --broker /tcp/127.0.0.1:4000
  troth lease revoke --holder support-agent --node hub""",
)
def lease_group() -> None:
    """An identity's own leases at a broker: list, renew, revoke (and, on the broker node, every
    lease of an identity)."""


@lease_group.command("list")
@click.option("--ended", is_flag=True, help="Also the leases that ended (revoked, expired).")
@as_option("The local identity whose leases to list")
@BROKER
@EXPECT
@node_option
@json_command
def list_(
    ended: bool,
    as_name: str,
    broker_route: str | None,
    expect: str | None,
    node_name: str,
    reporter: Reporter,
) -> None:
    """The identity's own leases at the broker (nobody else's), newest first.
    At most 1,000: the newest that fit one service answer."""
    arguments = _lease_args(reporter, as_name, broker_route, expect, node_name)
    arguments["ended"] = "yes" if ended else None
    data = ask_node(node_name, "lease.list", arguments)
    lines = [_lease_line(reporter, lease) for lease in data["leases"]]
    reporter.result(data, "\n".join(lines) or f"{as_name} holds no lease there")


@lease_group.command("renew", epilog=LEASE_HELP)
@LEASE
@duration_option("--ttl", help="How long from now (default: the lease's ttl; capped).")
@as_option("The local identity that holds the lease")
@BROKER
@EXPECT
@node_option
@json_command
def renew(
    lease_text: str | None,
    ttl: int | None,
    as_name: str,
    broker_route: str | None,
    expect: str | None,
    node_name: str,
    reporter: Reporter,
) -> None:
    """Extend LEASE from now (never past its max ttl nor the credential that justified it):
    prints the lease and its new credential."""
    arguments = _lease_args(reporter, as_name, broker_route, expect, node_name)
    arguments.update(lease=_lease_id(lease_text), ttl=_text(ttl))
    data = ask_node(node_name, "lease.renew", arguments)
    lines = [_lease_line(reporter, data["lease"])]
    lines.extend(_credential_lines(data["credential"]))
    reporter.result(data, "\n".join(lines))


@lease_group.command("revoke", epilog=LEASE_HELP)
@LEASE
@click.option(
    "--holder",
    metavar="IDENTITY",
    help="On the broker node (--node): revoke every lease of this identity, a local name or "
    "an identifier, and of the chains it delegated (the node's operator).",
)
@click.option(
    "--as",
    "as_name",
    metavar="IDENTITY",
    help="The local identity that holds LEASE: a local name or an identifier (T…).",
)
@BROKER
@EXPECT
@node_option
@json_command
def revoke(
    lease_text: str | None,
    holder: str | None,
    as_name: str | None,
    broker_route: str | None,
    expect: str | None,
    node_name: str,
    reporter: Reporter,
) -> None:
    """Revoke LEASE (yours: --as and --broker), or with --holder every lease of an identity at
    the broker that node --node runs, its delegates' under chains it signed too (their database
    sessions end, their tokens stop validating with the broker's state)."""
    if holder is not None:
        if lease_text is not None or as_name is not None:
            raise click.UsageError("--holder revokes every lease of an identity: no LEASE, no --as")
        given = [o for o, v in (("--broker", broker_route), ("--expect", expect)) if v is not None]
        if given:  # ignored: another broker's leases said revoked (review 65h, cli 2)
            raise click.UsageError(
                f"--holder revokes at the broker node --node runs, not at a route: no "
                f"{' or '.join(given)} (run it on that broker's node)"
            )
        identifier = str(reporter.names.identifier(holder))
        data = ask_node(node_name, "broker.revoke-identity", {"identity": identifier})
        lines = [_lease_line(reporter, lease) for lease in data["leases"]]
        revoked = data.get("revoked", len(lines))  # more than an answer holds: the newest
        # its own and those of the chains it delegated (review 58d, secrets 2): each line
        # names its holder
        summary = f"revoked {revoked} lease(s) of {reporter.label(identifier)} and its delegates"
        if revoked > len(lines):
            summary += f" (the {len(lines)} newest shown)"
        reporter.result(data, "\n".join([summary, *lines]))
        return
    if as_name is None:
        raise click.UsageError("say whose lease: --as IDENTITY --broker ROUTE (or --holder)")
    arguments = _lease_args(reporter, as_name, broker_route, expect, node_name)
    arguments["lease"] = _lease_id(lease_text)
    data = ask_node(node_name, "lease.revoke", arguments)
    reporter.result(data, _lease_line(reporter, data["lease"]))


# -- helpers ------------------------------------------------------------------------------------


def _text(value: int | None) -> str | None:
    return None if value is None else str(value)


def _lease_args(
    reporter: Reporter, as_name: str, broker_route: str | None, expect: str | None, node_name: str
) -> dict[str, str | None]:
    if broker_route is None:
        raise click.UsageError(
            "say where the broker is: --broker ROUTE (e.g. /tcp/127.0.0.1:4000; troth node "
            "status NODE shows a node's address)"
        )
    return {
        "identity": local_identity(reporter.names, as_name, node_name),
        "broker": broker_route,
        "expect": None if expect is None else str(reporter.names.identifier(expect)),
    }


def _lease_id(text: str | None) -> str:
    if text is None:
        raise click.UsageError("say which lease: LEASE (the lease id troth secret lease printed)")
    if text == "-":
        text = stdin_bytes().readline(256).decode(errors="replace").strip()
    return text


def _lease_line(reporter: Reporter, lease: dict[str, Any]) -> str:
    now = CLOCK.now()
    state, reason = str(lease["state"]), lease.get("end_reason")
    if reason and reason != state:
        state += f" ({str(reason).replace('_', ' ')})"
    if lease["state"] == "active":
        when = f"until {moment(int(lease['expires_at']), now, expiry=True)}"
    else:
        when = f"since {moment(int(lease['state_at']), now)}"
    return (
        f"lease {escape_text(lease['handle'])}  {escape_text(lease['secret'])} "
        f"[{escape_text(' '.join(lease['scope']) or '-')}]  {escape_text(state)}  {when}  "
        f"holder {reporter.label(lease['identity'])}"
    )


def _credential_lines(credential: dict[str, Any]) -> list[str]:
    """An engine's credential for people (times as times)."""
    now = CLOCK.now()
    lines = []
    for key, value in credential.items():
        shown = (
            moment(value, now, expiry=True)
            if key in ("expires_at", "valid_until") and isinstance(value, int)
            else escape_text(value)
        )
        lines.append(f"{escape_text(key)}: {shown}")
    return lines
