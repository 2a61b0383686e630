"""`troth authority ...`: create and list authorities, make tickets, manage members."""

from __future__ import annotations

from typing import Any, Final

import click

from troth import limits
from troth.authority import ADMIN, ENROLLER
from troth.authority.base import held_since
from troth.authority.client import authority_pin_of
from troth.cli.common import (
    CLOCK,
    attributes_of,
    authority_option,
    duration_option,
    home,
    open_authority_node,
)
from troth.cli.credential_cmds import _ticket_text
from troth.cli.output import Reporter, error_object, json_command, kv
from troth.cli.text import attributes, duration, moment
from troth.errors import AuthorityError, AuthorityFailure, NotFound, TrothError
from troth.identity import Identifier, UnverifiedHistory
from troth.limits import DEFAULT_REVOCATION_QUOTA
from troth.node import init_node, open_node
from troth.node.authorities import parse_ticket, ticket_address
from troth.node.traces import remove_member_as_authority, tell_hosting_node, tell_local_nodes
from troth.storage import HoldTime

REVOKED_AGAIN: Final = "--revoked-again"
ATTR_HELP = "key=value to grant (repeat the option; repeat a key for a set of values)."
REASON_HELP = "Why (recorded in the signed revocation feed)."
MEMBER = click.argument("member", metavar="IDENTITY")


@click.group(
    "authority",
    epilog="""\b
Example:
  troth authority create acme
  troth authority ticket create --authority acme --attr orders.customer=4471
  troth authority members list --authority acme""",
)
def authority_group() -> None:
    """Authorities: enroll members with one-time tickets, issue credentials, revoke.

    An authority lives in a node of the same name; AUTHORITY options take its name or its
    identifier."""


@authority_group.command("create")
@click.argument("name")
@duration_option(
    "--credential-ttl",
    default="1h",
    show_default=True,
    help=(
        "How long a member credential lasts, never past the authority's signing key (members "
        "refresh it: troth credential refresh)."
    ),
)
@click.option(
    "--depth",
    type=click.IntRange(0, limits.MAX_DELEGATION_LINKS),
    default=4,
    show_default=True,
    help="How many delegation links may hang below a member credential.",
)
@click.option(
    "--revocation-quota",
    type=click.IntRange(0, limits.MAX_REVOCATION_QUOTA),
    default=DEFAULT_REVOCATION_QUOTA,
    show_default=True,
    help="Feed entries (link revocations, supersessions) one member may cause per hour.",
)
@json_command
def create(
    name: str, credential_ttl: int, depth: int, revocation_quota: int, reporter: Reporter
) -> None:
    """Create authority NAME in a node of the same name (created when missing)."""
    try:
        node = open_node(name, home=home())
    except NotFound:
        init_node(name, home=home())
        node = open_node(name, home=home())
    with node:
        authority = node.create_authority(
            name,
            now=CLOCK.now(),
            credential_ttl=credential_ttl,
            delegation_depth=depth,
            revocation_quota=revocation_quota,
        )
    data = {
        "name": name,
        "identifier": str(authority.identifier),
        "node": name,
        "credential_ttl": credential_ttl,
        "delegation_depth": depth,
        "revocation_quota": revocation_quota,
    }
    reporter.result(
        data,
        kv(
            {
                **data,
                "credential_ttl": duration(credential_ttl),
                "revocation_quota": f"{revocation_quota} feed entries per member per hour",
            }
        ),
    )


@authority_group.command("list")
@json_command
def list_(reporter: Reporter) -> None:
    """List the authorities hosted on this machine: name, node, identifier, and the pin
    (IDENTIFIER:KEY) a new member confirms when its ticket cannot show who the authority is
    (troth enroll --authority-pin). A node that cannot be read is said on stderr (with --json,
    a row whose name and identifier are null and whose error says why)."""
    rows: list[dict[str, Any]] = [
        {
            "name": a.name,
            "node": a.node,
            "identifier": str(a.identifier),
            **_pin(a.node, a.identifier),
        }
        for a in reporter.names.authorities()
    ]
    width = max((len(r["name"]) for r in rows), default=0)
    text = "\n".join(
        f"{r['name']:<{width}}  {r['identifier']}  (node {r['node']})\n"
        f"{'':<{width}}  pin {_pin_text(r)}"
        for r in rows
    )
    for node, why in reporter.names.unreadable().items():  # hidden, it read as no authority
        reporter.info(f"node {node!r} cannot be read (an authority it hosts is not listed): {why}")
        # --json says so too, in a row with every key of the others (None where unknown) and
        # `error`, as `troth node list --json` does (review 49m, cli 2)
        rows.append(
            {
                "name": None,
                "node": node,
                "identifier": None,
                "pin": None,
                "pin_unavailable": why,
                "error": why,
            }
        )
    reporter.result(
        rows, text or "no authority on this machine (create one with: troth authority create NAME)"
    )


def _pin_text(row: dict[str, Any]) -> str:
    return str(row["pin"]) if row["pin"] else f"unavailable ({row['pin_unavailable']})"


def _pin(node_name: str, identifier: Identifier) -> dict[str, str | None]:
    """{"pin": the pin of authority `identifier` on node `node_name` (its identity as it is
    now) or None, "pin_unavailable": why not, or None}: one authority that cannot say its pin
    does not hide the others."""
    try:
        with open_node(node_name, home=home()) as node:
            identity = node.identities.get(str(identifier), now=CLOCK.now()).identity
            return {"pin": authority_pin_of(identity), "pin_unavailable": None}
    except TrothError as exc:
        return {"pin": None, "pin_unavailable": str(exc)}


@authority_group.group(
    "ticket",
    epilog="""\b
Example:
  troth authority ticket create --authority acme --attr orders.customer=4471 \\
    | troth enroll - --as customer
  troth authority ticket void - --authority acme < leaked-ticket.txt""",
)
def ticket_group() -> None:
    """One-time enrollment tickets: a ticket carries a secret code, the authority's identity
    and its address, so `troth enroll TICKET` needs nothing else."""


@ticket_group.command("create")
@authority_option(help_text="The authority issuing the ticket (its name or identifier).")
@click.option("--attr", "attrs", multiple=True, metavar="KEY=VALUE", help=ATTR_HELP)
@click.option(
    "--uses",
    type=click.IntRange(1, limits.MAX_TICKET_USES),
    default=1,
    show_default=True,
    help="How many enrollments the ticket allows.",
)
@duration_option("--ttl", default="10m", show_default=True, help="How long the ticket is valid.")
@click.option("--enroller", is_flag=True, help="The redeemer may create member tickets.")
@click.option("--admin", is_flag=True, help="The redeemer becomes an admin.")
@json_command
def ticket_create(
    authority_ref: str,
    attrs: tuple[str, ...],
    uses: int,
    ttl: int,
    enroller: bool,
    admin: bool,
    reporter: Reporter,
) -> None:
    """Create a ticket; it is printed once, alone on stdout (it is the only copy of the code:
    TICKET=$(troth authority ticket create ...))."""
    if enroller and admin:
        raise click.UsageError("choose --enroller or --admin, not both")
    now = CLOCK.now()
    local = reporter.names.authority(authority_ref)
    address = ticket_address(home(), local.node)
    with open_authority_node(reporter.names, authority_ref) as node:
        authority = node.authority()
        granted = attributes_of(attrs)
        ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=granted,
            address=address,
            now=now,
            uses=uses,
            ttl=ttl,
            role=ADMIN if admin else ENROLLER if enroller else None,
        )
    reporter.info(
        f"ticket of {reporter.label(authority.identifier)} for {attributes(granted.to_json())}: "
        f"{uses} use(s), expires {moment(now + ttl, now)}; redeem it on stdin (a command line "
        "shows in the process list): ... | troth enroll - --as IDENTITY"
    )
    reporter.result(
        {
            "ticket": str(ticket),
            "expires_at": now + ttl,
            "uses": uses,
            "authority": str(authority.identifier),
        },
        str(ticket),
    )


@ticket_group.command("void")
@click.argument("ticket", metavar="TICKET")
@authority_option(help_text="The authority that made the ticket (its name or identifier).")
@json_command
def ticket_void(ticket: str, authority_ref: str, reporter: Reporter) -> None:
    """Void TICKET before its expiry (someone else may have seen it: a shell's history, a log):
    no one can redeem it any more. TICKET is the ticket, - (read from stdin) or a file
    holding it. Who redeemed it stays a member (troth authority members remove)."""
    parsed = parse_ticket(_ticket_text(ticket))
    with open_authority_node(reporter.names, authority_ref) as node:
        authority = node.authority()
        if UnverifiedHistory.decode(parsed.authority_history).identifier_digest != (
            authority.identifier.digest
        ):
            raise click.UsageError(
                f"the ticket was not made by {reporter.label(authority.identifier)}: give its "
                "authority with --authority"
            )
        voided = authority.void_ticket(parsed, now=CLOCK.now())
    reporter.result(
        {"voided": voided, "authority": str(authority.identifier)},
        (
            "voided: no one can redeem it any more"
            if voided
            else "nothing to void: the ticket "
            "expired, was voided already or never was this authority's"
        )
        # whether it was redeemed first is not known here: said either way (review 65h, cli 4)
        + "; whoever redeemed it before stays a member: troth authority members list "
        f"--authority {authority_ref} (troth authority members remove)",
    )


@authority_group.group(
    "members",
    epilog="""\b
Example:
  troth authority members list --authority acme
  troth authority members show customer --authority acme
  troth authority members remove customer --authority acme --reason "left" """,
)
def members_group() -> None:
    """The authority's members: who enrolled, with which attributes."""


@members_group.command("list")
@authority_option()
@json_command
def members_list(authority_ref: str, reporter: Reporter) -> None:
    """List the members: identity, attributes, who added them and when."""
    with open_authority_node(reporter.names, authority_ref) as node:
        members = node.authority().members()
    rows = [m.to_json() for m in members]
    now = CLOCK.now()
    text = "\n".join(
        f"{reporter.label(r['identifier'])}  {attributes(r['attributes'])}  "
        f"(added {moment(r['added_at'], now)})"
        for r in rows
    )
    reporter.result(rows, text or "no members yet (troth authority ticket create, then enroll)")


@members_group.command("show")
@MEMBER
@authority_option()
@json_command
def members_show(member: str, authority_ref: str, reporter: Reporter) -> None:
    """Show member IDENTITY (a local name or an identifier): attributes, who added it, when."""
    with open_authority_node(reporter.names, authority_ref) as node:
        found = node.authority().member(reporter.names.identifier(member))
    data = found.to_json()
    text = kv(
        {
            "identifier": data["identifier"],
            "name": reporter.names.name_of(data["identifier"]),
            "attributes": attributes(data["attributes"]),
            "added_by": reporter.label(data["added_by"]),
            "added_at": moment(data["added_at"], CLOCK.now()),
        }
    )
    reporter.result(data, text)


@members_group.command("remove")
@MEMBER
@authority_option()
@click.option("--reason", default="member removed", show_default=True, help=REASON_HELP)
@json_command
def members_remove(member: str, authority_ref: str, reason: str, reporter: Reporter) -> None:
    """Stop issuing to member IDENTITY and revoke its unexpired credentials."""
    identifier = reporter.names.identifier(member)
    with open_authority_node(reporter.names, authority_ref) as node:
        revoked = remove_member_as_authority(
            node, node.authority(), identifier, reason=reason, clock=CLOCK
        )
    data = {"removed": str(identifier), "revoked_credentials": [r.hex() for r in revoked]}
    reporter.result(
        data, f"removed {reporter.label(identifier)}; revoked {len(revoked)} credential(s)"
    )


_NAMED: Final = 20
"""How many of each kind the refusal of `release-restored` names (--json: every one)."""


def _lost(again: dict[str, list[str]]) -> str:
    """What a failed re-revoke found lost (`Authority.to_revoke_again`), for the refusal's
    text, named as part of what to revoke again: a restored copy taken while held lacks it
    and what was revoked after it (review 67l, revoke 1; review 67q, again 1); empty when
    none is recorded."""
    parts = [
        f"{kind} {', '.join(items[:_NAMED])}"
        + (f" and {len(items) - _NAMED} more (--json)" if len(items) > _NAMED else "")
        for kind, items in again.items()
        if items
    ]
    return (
        f", and what its feed lost before (a failed re-revoke's): {'; '.join(parts)}"
        if parts
        else ""
    )


@authority_group.command("release-restored")
@authority_option()
@click.option(
    REVOKED_AGAIN,
    "revoked_again",
    is_flag=True,
    help="Your word that what was revoked after the copy was taken is revoked again "
    "(without it a held authority is not released).",
)
@json_command
def release_restored(authority_ref: str, revoked_again: bool, reporter: Reporter) -> None:
    """Release the authority a restore of its node.db held: it issues and serves again.

    node.db was found restored from a copy: its revocation feed is the copy's, which lacks
    every revocation, member removal and rotation recorded after the copy was taken, so the
    authority was held (its node refuses every chain of it, it issues no credential and
    serves no feed page). Revoke again first what was revoked after the copy was taken
    (troth revoke identity, troth authority members remove), then release it with
    --revoked-again. See docs/storage.md, "An authority's node from before some revocations"."""
    with open_authority_node(reporter.names, authority_ref) as node:
        authority = node.authority()
        held = authority.restore_hold()  # a damaged time a hold too (review 72b, holds 1)
        if held is not None and not revoked_again:  # on no one's word (review 66b, hold 2)
            again = authority.to_revoke_again()  # a failed re-revoke's (review 67d, hold 1)
            refused = AuthorityError(
                AuthorityFailure.RESTORED,
                f"held {held_since(held)}, not released: revoke again what was revoked after the "
                f"copy was taken{_lost(again)} (troth revoke identity, troth authority members "
                f"remove), then run this again with {REVOKED_AGAIN}: whatever is not revoked "
                "again is admitted again by every node that syncs its feed",
            )
            reporter.fail(refused, payload={**error_object(refused), "revoke_again": again})
        held_at = authority.release_restored()
        if held_at is not None:  # its daemon and the nodes here take its feed now
            tell_hosting_node(node, authority.identifier)
            tell_local_nodes(node, authority.identifier)
    data = {
        "authority": str(authority.identifier),
        "released": held_at is not None,
        "held_at": held_at if isinstance(held_at, int) else None,
        # its time unknown: node.db held it damaged (review 72b, holds 1)
        "held_at_damaged": held_at is HoldTime.DAMAGED,
    }
    if held_at is None:
        reporter.result(data, "not held by a restore: nothing to release")
        return
    reporter.warn(
        "released on your word that what was revoked after the copy was taken is revoked "
        "again: whatever is not is admitted again by every node that syncs its feed from now on"
    )
    reporter.result(data, "released: it issues credentials and serves its feed again")
