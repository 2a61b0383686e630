"""`troth policy bundle create`, `troth policy test`, `troth policy push`, `troth policy show`
(docs/policy.md)."""

from __future__ import annotations

import datetime
import sys
from contextlib import ExitStack
from typing import Any

import click

from troth import limits
from troth.cli.common import (
    CLOCK,
    FEED_FILE,
    INPUT_FILE,
    OUTPUT_FILE,
    as_option,
    authority_option,
    duration_option,
    feed_inputs,
    home,
    node_option,
    open_authority_node,
    open_cli_node,
    read_input,
    stdin_once,
    write_output,
)
from troth.cli.names import Directory
from troth.cli.output import EXIT_INVALID, Reporter, error_object, json_command, kv
from troth.cli.text import LAST_DATE, duration, moment
from troth.encoding.ijson import load_json
from troth.errors import DecodeError, PolicyError
from troth.gates import ToolCall, decode_bundle
from troth.identity import Identifier
from troth.node.policy_api import check_server, check_services
from troth.node.policy_test import decide_offline
from troth.node.services.policy_hold import FLEET_HOLDS_NONE
from troth.node.trust import FEED_STALENESS

__all__ = ["policy_group"]


def _text(path: str, limit: int, what: str) -> str:
    try:
        return read_input(path, limit, what).decode()
    except UnicodeDecodeError:
        raise DecodeError(f"{what} {path} is not UTF-8 text") from None


def _json_object(data: bytes, limit: int, what: str) -> dict[str, Any]:
    value = load_json(data, max_bytes=limit, what=what)
    if not isinstance(value, dict):
        raise DecodeError(f"{what}: expected a JSON object")
    return value


def _arguments(text: str | None, file: str | None) -> dict[str, Any]:
    """The call's arguments from --args or --args-file (neither: none). A bad value is a usage
    error, never exit 1, a deny's code (review 54d, json 6); an unreadable or larger file an
    I/O error, as every input's."""
    option = "--args" if file is None else "--args-file"
    if file is not None:
        data = read_input(file, limits.MAX_TOOL_ARGUMENTS_BYTES, "arguments")
    else:  # argv's bytes, as --context reads them (review 54d, json 5)
        data = ("{}" if text is None else text).encode("utf-8", "surrogateescape")
    try:
        return _json_object(data, limits.MAX_TOOL_ARGUMENTS_BYTES, option)
    except DecodeError as exc:
        raise click.BadParameter(str(exc).removeprefix(f"{option}: "), param_hint=option) from None


def _authority_id(names: Directory, text: str) -> Identifier:
    """An authority given as an identifier, or by the name of a local authority (or its node)."""
    if Identifier.looks_like(text):
        return Identifier.parse(text)
    return names.authority(text).identifier


@click.group(
    "policy",
    epilog="""\b
Example:
  troth policy bundle create --policies shop.cedar --tools tools.json --revision 1 \\
      --as acme --authority acme --node acme --out shop.bundle
  troth policy test --bundle shop.bundle --chain support.chain --tool refund \\
      --args '{"order_id": "4471", "amount": 20}' --authority acme
  troth policy push shop.bundle --node acme
  troth policy show --node acme""",
)
def policy_group() -> None:
    """Policy bundles: Cedar policies and tool schemas, signed by an authority (or a
    policy-admin), that decide every tool call and service request."""


@policy_group.group(
    "bundle",
    epilog="""\b
Example:
  troth policy bundle create --policies shop.cedar --tools tools.json --revision 2 \\
      --as acme --authority acme --node acme --out shop.bundle""",
)
def bundle_group() -> None:
    """Signed policy bundles."""


@bundle_group.command("create")
@click.option(
    "--policies",
    "policies_file",
    required=True,
    type=INPUT_FILE,
    metavar="FILE",
    help="Cedar policy text (every policy with a unique @id).",
)
@click.option(
    "--schema",
    "schema_file",
    type=INPUT_FILE,
    metavar="FILE",
    help="A Cedar schema fragment added to troth's (optional).",
)
@click.option(
    "--tools",
    "tools_file",
    required=True,
    type=INPUT_FILE,
    metavar="FILE",
    help="JSON: tool name -> its JSON input schema.",
)
@click.option(
    "--services",
    "services_file",
    type=INPUT_FILE,
    metavar="FILE",
    help="JSON: service name -> [method, ...] (optional).",
)
@click.option(
    "--revision",
    required=True,
    type=click.IntRange(min=1),
    help=(
        "The bundle's revision: higher than every revision nodes hold (a revision the node "
        "already holds a bundle of is refused)."
    ),
)
@as_option("The local identity signing (the authority, or a policy-admin member)")
@authority_option(help_text="The authority the bundle is for: its name here, or its identifier.")
@duration_option(
    "--ttl",
    help=(
        "How long the bundle is valid (default: 7d, or until the signer's key or policy-admin "
        "credential expires if sooner; a longer --ttl is refused)."
    ),
)
@click.option(
    "--out",
    required=True,
    type=OUTPUT_FILE,
    metavar="FILE",
    help="File to write.",
)
@click.option(
    FLEET_HOLDS_NONE,
    "fleet_holds_none",
    is_flag=True,
    help="Your word that no node holds a bundle of the authority (a node.db restored from a "
    "copy holding none of it signs its first one only so).",
)
@node_option
@json_command
def create(
    policies_file: str,
    schema_file: str | None,
    tools_file: str,
    services_file: str | None,
    revision: int,
    as_name: str,
    authority_ref: str,
    ttl: int | None,
    out: str,
    fleet_holds_none: bool,
    node_name: str,
    reporter: Reporter,
) -> None:
    """Compile, validate and sign a policy bundle as SIGNER: the authority itself, or a member
    holding troth.role=policy-admin (refused with the validator's messages if invalid)."""
    stdin_once(
        **{"--policies": policies_file, "--schema": schema_file, "--tools": tools_file},
        **{"--services": services_file},
    )
    now = CLOCK.now()
    policies = _text(policies_file, limits.MAX_POLICY_TEXT, "policies")
    schema = (
        "" if schema_file is None else _text(schema_file, limits.MAX_POLICY_SCHEMA_TEXT, "schema")
    )
    tools = _json_object(
        read_input(tools_file, limits.MAX_POLICY_BUNDLE_BYTES, "tools"),
        limits.MAX_POLICY_BUNDLE_BYTES,
        "tools",
    )
    services: dict[str, Any] = {}
    if services_file is not None:
        raw = read_input(services_file, limits.MAX_POLICY_SCHEMA_TEXT, "services")
        services = check_services(_json_object(raw, limits.MAX_POLICY_SCHEMA_TEXT, "services"))
    authority = _authority_id(reporter.names, authority_ref)
    from troth.node.services.policy import sign_bundle_as

    try:
        with open_cli_node(node_name) as node:
            data = sign_bundle_as(
                node,
                reporter.names.local(as_name, node),
                authority=authority,
                policies=policies,
                schema=schema,
                tools=tools,
                services=services,
                revision=revision,
                ttl=ttl,
                now=now,
                fleet_holds_none=fleet_holds_none,
            )
    except PolicyError as exc:
        reporter.fail(exc, EXIT_INVALID, _refused(exc))
    write_output(out, data)
    summary = {"file": out, "bytes": len(data), **decode_bundle(data).to_json()}
    reporter.result(
        summary,
        f"wrote revision {revision} ({len(data)} bytes) to {out}\n"
        + kv(
            {
                "authority": summary["authority"],
                "expires": moment(summary["expires_at"], now, expiry=True),
            }
        ),
    )


@bundle_group.command(
    "resign",
    epilog="""\b
Example (after troth identity rotate acme --node acme):
  troth policy show --node acme
  troth policy bundle resign --digest 3f1c... --node acme""",
)
@click.option(
    "--digest",
    required=True,
    metavar="HEX",
    help="SHA-256 of the held bundle (troth policy show): what you checked is what is signed.",
)
@node_option
@json_command
def resign(digest: str, node_name: str, reporter: Reporter) -> None:
    """Sign the authority's bundle the node holds again under the authority's current key (one
    revision up, same policies, same lifetime from now) and install it: after the authority
    rotated, what its older key signed is out of force. Only the bundle whose digest you give:
    the held one may be a thief's, pushed with the key the rotation retired."""
    from troth.node.services.policy import resign_held_bundle

    try:
        summary = resign_held_bundle(home(), node_name, digest=digest, clock=CLOCK)
    except PolicyError as exc:
        reporter.fail(exc, EXIT_INVALID, _refused(exc))
    then = "; the running node distributes it" if summary["node_running"] else ""
    reporter.result(
        summary,
        f"re-signed as revision {summary['revision']} of {reporter.label(summary['authority'])}"
        f" and installed on node {node_name!r}{then}",
    )


def _refused(exc: PolicyError) -> dict[str, Any]:
    """A refusal with --json: an error object (`message`, `exit_code`: it had neither; review
    55g, cli 8) with the reason, detail and the validator's messages."""
    return {
        **error_object(exc),
        "exit_code": EXIT_INVALID,
        "reason": exc.reason.value,
        "detail": exc.detail,
        "messages": list(exc.messages),
    }


def _parse_time(text: str) -> int:
    """Unix seconds, or an ISO 8601 date-time (UTC unless it names its offset), from 1970 to
    the end of 9999 (ValueError otherwise: a time before 1970 or past what troth's times
    hold was decided, and denied, exit 1; review 55g, cli 5)."""
    if text.isdigit():
        seconds = int(text)
    else:
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"--time {text!r}: use Unix seconds or an ISO 8601 date-time"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        seconds = int(moment.timestamp())
    if not 0 <= seconds <= LAST_DATE:
        raise ValueError(f"--time {text!r}: give a time from 1970 to 9999-12-31T23:59:59Z")
    return seconds


@policy_group.command("test")
@click.option(
    "--bundle",
    "bundle_file",
    required=True,
    type=INPUT_FILE,
    metavar="FILE",
    help="The signed policy bundle.",
)
@click.option(
    "--chain",
    "chain_file",
    required=True,
    type=INPUT_FILE,
    metavar="FILE",
    help="The caller's credential chain.",
)
@click.option("--tool", required=True, help="The tool called.")
@click.option(
    "--server",
    metavar="NAME",
    default=None,
    help='The MCP server whose tool it is (Cedar: Tool::"TOOL" in Server::"NAME", as a '
    "published server NAME or `troth mcp gate --server NAME` decides it). Default: none.",
)
@click.option(
    "--args",
    "args_text",
    metavar="JSON",
    help="The call's arguments: a JSON object. Default: {} (none).",
)
@click.option(
    "--args-file",
    type=INPUT_FILE,
    metavar="FILE",
    help="--args read from FILE (- for stdin), for arguments too large for a command line.",
)
@click.option(
    "--time",
    "at_text",
    metavar="TIME",
    help="Decide at this time (Unix seconds or ISO 8601; default: now).",
)
@click.option(
    "--feed",
    "feed_files",
    multiple=True,
    type=FEED_FILE,
    metavar="FILE",
    help="The authority's revocation feed (troth revocations show --out; a file, not -).",
)
@authority_option(
    required=False,
    help_text="Trust this local authority (name or identifier), and take its feed from it.",
)
@click.option(
    "--trust",
    "trust_ref",
    metavar="AUTHORITY",
    help="Trust this authority (a local authority's name, or any identifier); its feed: --feed.",
)
@click.option(
    "--trust-bundle-authority",
    is_flag=True,
    help="Trust whatever authority the bundle names (offline testing only: nothing else "
    "vouches for it, and the output says so).",
)
@duration_option(
    "--max-feed-age",
    default=duration(FEED_STALENESS),
    show_default=True,
    help="The oldest feed accepted (1s to 30d).",
)
@json_command
def test(
    bundle_file: str,
    chain_file: str,
    tool: str,
    server: str | None,
    args_text: str | None,
    args_file: str | None,
    at_text: str | None,
    feed_files: tuple[str, ...],
    authority_ref: str | None,
    trust_ref: str | None,
    trust_bundle_authority: bool,
    max_feed_age: int,
    reporter: Reporter,
) -> None:
    """Decide one tool call by a chain's holder under a bundle: exit 0 allow, 1 deny. One
    authority is trusted, and the output names it: --authority's or --trust's (the bundle
    must be signed under it), or the one the bundle names (--trust-bundle-authority)."""
    inputs = {"--bundle": bundle_file, "--chain": chain_file, "--args-file": args_file}
    stdin_once(**inputs, **feed_inputs(feed_files))
    if args_text is not None and args_file is not None:
        raise click.UsageError("--args and --args-file cannot go together: give the arguments once")
    if server is not None:
        try:
            check_server(server)
        except PolicyError as exc:
            raise click.BadParameter(exc.detail, param_hint="--server") from None
    trusted_by = _trusted_by(authority_ref, trust_ref, trust_bundle_authority)
    now = CLOCK.now() if at_text is None else _parse_time(at_text)
    bundle = read_input(bundle_file, limits.MAX_POLICY_BUNDLE_BYTES, "bundle")
    chain = read_input(chain_file, limits.MAX_CHAIN_BYTES, "chain")
    arguments = _arguments(args_text, args_file)
    if not feed_files and not authority_ref:
        raise ValueError("the authority's feed is needed: --feed FILE or --authority NAME")
    names = reporter.names
    anchor = None
    if trust_ref is not None:
        anchor = names.anchor(trust_ref)
    try:
        with ExitStack() as stack:
            host = None
            if authority_ref is not None:
                host = stack.enter_context(open_authority_node(names, authority_ref)).authority()
                if anchor is not None and anchor != host.identifier:
                    raise click.UsageError("--trust and --authority name different authorities")
                anchor = host.identifier
            outcome = decide_offline(
                bundle,
                chain,
                ToolCall(tool, arguments, server=server),
                anchor=anchor,
                host=host,
                feed_files=feed_files,
                now=now,
                max_age=max_feed_age,
            )
    except PolicyError as exc:
        reporter.fail(exc, EXIT_INVALID, _refused(exc))
    decision = outcome.decision
    name = names.name_of(outcome.authority)
    shown = f"{name} ({outcome.authority})" if name else str(outcome.authority)
    why = (
        "the bundle names it (--trust-bundle-authority: nothing else vouches for it)"
        if trusted_by == "bundle"
        else f"{trusted_by} names it"
    )
    lines = [decision.reason]
    lines += [f"  error: {error}" for error in decision.errors]
    lines.append(f"authority {shown} trusted because {why}")
    result = decision.to_json()
    result["authority"] = {"identifier": str(outcome.authority), "trusted_by": trusted_by}
    reporter.result(result, "\n".join(lines))
    if not decision.allowed:
        sys.exit(EXIT_INVALID)


def _trusted_by(authority_ref: str | None, trust_ref: str | None, bundle: bool) -> str:
    """Which option chose the authority `policy test` trusts: `--trust`, `--authority`, or
    `bundle` (--trust-bundle-authority); a usage error for none, or the flag with another."""
    if bundle and (authority_ref or trust_ref):
        raise click.UsageError(
            "--trust-bundle-authority trusts whatever authority the bundle names: give it "
            "without --trust or --authority"
        )
    if bundle:
        return "bundle"
    if trust_ref is not None:
        return "--trust"
    if authority_ref is not None:
        return "--authority"
    raise click.UsageError(
        "say which authority to trust: --authority NAME (a local authority, its feed read "
        "from it), --trust AUTHORITY (with --feed), or --trust-bundle-authority to trust "
        "whichever authority the bundle names (offline testing)"
    )


@policy_group.command("push")
@click.argument("file", type=INPUT_FILE)
@node_option
@json_command
def push(file: str, node_name: str, reporter: Reporter) -> None:
    """Install the signed bundle in FILE on the node (verified: a higher revision, signed by
    the authority or a policy-admin, under a fresh feed); a running node takes it up at once
    and pushes it to the nodes subscribed to it."""
    from troth.node.services.policy import install_bundle
    from troth.node.services.policy_hold import SIGNING_HOLD_ENDED

    data = read_input(file, limits.MAX_POLICY_BUNDLE_BYTES, "bundle")
    try:
        summary = install_bundle(home(), node_name, data, clock=CLOCK)
    except PolicyError as exc:
        reporter.fail(exc, EXIT_INVALID, _refused(exc))
    state = "installed" if summary["new"] else "already active"
    then = "; the running node distributes it" if summary["node_running"] else ""
    if summary["signing_hold_ended"]:  # the word given by this push (review 67d, hold 2)
        reporter.warn(SIGNING_HOLD_ENDED)
    reporter.result(
        summary,
        f"revision {summary['revision']} of {reporter.label(summary['authority'])} {state} on "
        f"node {node_name!r}{then}",
    )


@policy_group.command("show")
@node_option
@json_command
def show(node_name: str, reporter: Reporter) -> None:
    """The policy bundles the node holds: authority, revision, issued and expiry times, tools,
    services, policy ids, and whether each is in force now."""
    from troth.node.services.policy import stored_bundles

    now = CLOCK.now()
    rows = stored_bundles(home(), node_name, clock=CLOCK)
    blocks = []
    for row in rows:
        force = "yes" if row["in_force"] else f"no ({row['not_in_force']})"
        services = ", ".join(f"{n}: {' '.join(m)}" for n, m in row["services"].items())
        blocks.append(
            kv(
                {
                    "authority": reporter.label(row["authority"]),
                    "revision": row["revision"],
                    "issued": moment(row["issued_at"], now),
                    "expires": moment(row["expires_at"], now, expiry=True),
                    "in force": force,
                    "tools": ", ".join(row["tools"]) or "none",
                    "services": services or "none",
                    "policies": ", ".join(row["policies"]),
                }
            )
        )
    reporter.result(rows, "\n\n".join(blocks) or f"node {node_name!r} holds no policy bundle")
