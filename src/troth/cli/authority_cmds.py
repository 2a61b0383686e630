"""`troth authority ...`: create an authority, make tickets, manage members."""

from __future__ import annotations

import click

from troth.authority import ADMIN, ENROLLER
from troth.cli.common import CLOCK, duration_option, home, open_authority_node
from troth.cli.output import Reporter, json_command, kv
from troth.credentials import Attributes
from troth.errors import NotFound
from troth.identity import Identifier
from troth.limits import DEFAULT_REVOCATION_QUOTA
from troth.node import init_node, open_node
from troth.node.authorities import ticket_address


@click.group("authority")
def authority_group() -> None:
    """Authorities: enroll members with one-time tickets, issue credentials, revoke."""


@authority_group.command("create")
@click.argument("name")
@duration_option("--credential-ttl", default="1h", show_default=True)
@click.option(
    "--depth",
    type=click.IntRange(0, 8),
    default=4,
    show_default=True,
    help="How many delegation links may hang below a member credential.",
)
@click.option(
    "--revocation-quota",
    type=click.IntRange(0, 1_000_000),
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
    reporter.result(data, kv(data))


@authority_group.group("ticket")
def ticket_group() -> None:
    """Enrollment tickets."""


@ticket_group.command("create")
@click.option("--authority", "authority_name", required=True, help="The authority (its node).")
@click.option("--attr", "attrs", multiple=True, help="key=value to grant (repeat a key for a set).")
@click.option("--uses", type=click.IntRange(1, 1_000_000), default=1, show_default=True)
@duration_option("--ttl", default="10m", show_default=True)
@click.option("--enroller", is_flag=True, help="The redeemer may create member tickets.")
@click.option("--admin", is_flag=True, help="The redeemer becomes an admin.")
@json_command
def ticket_create(
    authority_name: str,
    attrs: tuple[str, ...],
    uses: int,
    ttl: int,
    enroller: bool,
    admin: bool,
    reporter: Reporter,
) -> None:
    """Create a ticket (printed once: it is the only copy of the code)."""
    if enroller and admin:
        raise ValueError("choose --enroller or --admin, not both")
    now = CLOCK.now()
    address = ticket_address(home(), authority_name)
    with open_authority_node(authority_name) as node:
        authority = node.authority()
        ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes.from_assignments(attrs),
            address=address,
            now=now,
            uses=uses,
            ttl=ttl,
            role=ADMIN if admin else ENROLLER if enroller else None,
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


@authority_group.group("members")
def members_group() -> None:
    """The authority's members."""


@members_group.command("list")
@click.option("--authority", "authority_name", required=True)
@json_command
def members_list(authority_name: str, reporter: Reporter) -> None:
    with open_authority_node(authority_name) as node:
        members = node.authority().members()
    rows = [m.to_json() for m in members]
    text = "\n".join(f"{r['identifier']}  {r['attributes']}" for r in rows)
    reporter.result(rows, text or "(no members)")


@members_group.command("show")
@click.argument("identifier")
@click.option("--authority", "authority_name", required=True)
@json_command
def members_show(identifier: str, authority_name: str, reporter: Reporter) -> None:
    with open_authority_node(authority_name) as node:
        member = node.authority().member(Identifier.parse(identifier))
    data = member.to_json()
    reporter.result(data, kv(data))


@members_group.command("remove")
@click.argument("identifier")
@click.option("--authority", "authority_name", required=True)
@click.option("--reason", default="member removed", show_default=True)
@json_command
def members_remove(identifier: str, authority_name: str, reason: str, reporter: Reporter) -> None:
    """Stop issuing to a member and revoke its unexpired credentials."""
    with open_authority_node(authority_name) as node:
        revoked = node.authority().remove_member(
            Identifier.parse(identifier), now=CLOCK.now(), reason=reason
        )
    data = {"removed": identifier, "revoked_credentials": [r.hex() for r in revoked]}
    reporter.result(data, f"removed {identifier}; revoked {len(revoked)} credential(s)")
