"""`troth revoke ...` and `troth revocations show`: permanent revocations, and the signed feed
that carries them to every verifier."""

from __future__ import annotations

import re
from typing import Any

import click

from troth import limits
from troth.cli.common import (
    CLOCK,
    INPUT_FILE,
    OUTPUT_FILE,
    as_option,
    authority_option,
    node_option,
    open_authority_node,
    open_cli_node,
    read_input,
    renamed,
    text_value,
    write_output,
)
from troth.cli.output import Progress, Reporter, escape_text, json_command
from troth.cli.text import moment
from troth.credentials import write_page_sequence
from troth.errors import ArgumentError
from troth.node.traces import revoke_as_authority
from troth.node.verify import authority_pages

REASON = click.option(
    "--reason",
    default="",
    callback=text_value(limits.MAX_REVOCATION_REASON),
    help="Why (recorded in the signed feed).",
)
LINK_REASON = click.option(
    "--reason",
    default="",
    callback=text_value(limits.MAX_REVOCATION_REASON),
    help="Why (recorded in the signed feed; a member's reason is at most "
    f"{limits.MAX_MEMBER_REVOCATION_REASON_BYTES} bytes of UTF-8).",
)
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _credential_id(ctx: click.Context, param: click.Parameter, value: str) -> bytes:
    if not _HEX64.fullmatch(value.lower()):
        raise click.BadParameter(
            "a credential ID is 64 hex digits: the `id:` that troth credential verify and troth "
            "credential show print for each link",
            ctx,
            param,
        )
    return bytes.fromhex(value)


CREDENTIAL_ID = click.argument("credential_id", metavar="ID", callback=_credential_id)


@click.group(
    "revoke",
    epilog="""\b
Example:
  troth credential verify s.chain --trust acme --authority acme   # prints each link's id
  troth revoke link ID --chain s.chain --as customer --authority acme
  troth revoke identity support-agent --authority acme --reason "key lost\"""",
)
def revoke_group() -> None:
    """Revoke credentials, delegation links or identities (permanent): the authority's signed
    feed tells every verifier."""


@revoke_group.command("credential")
@CREDENTIAL_ID
@authority_option()
@REASON
@json_command
def revoke_credential(
    credential_id: bytes, authority_ref: str, reason: str, reporter: Reporter
) -> None:
    """The authority revokes credential ID: any chain through it stops verifying."""
    with open_authority_node(reporter.names, authority_ref) as node:
        seq = revoke_as_authority(node, node.authority(), credential_id, reason=reason, clock=CLOCK)
    reporter.result(
        {"seq": seq, "revoked": credential_id.hex()},
        f"revoked credential {credential_id.hex()} (feed entry {seq})",
    )


@revoke_group.command("identity")
@click.argument("ref", metavar="IDENTITY")
@authority_option()
@REASON
@json_command
def revoke_identity(ref: str, authority_ref: str, reason: str, reporter: Reporter) -> None:
    """The authority revokes IDENTITY for good: all it holds and issued stops verifying."""
    identifier = reporter.names.identifier(ref)
    with open_authority_node(reporter.names, authority_ref) as node:
        seq = revoke_as_authority(node, node.authority(), identifier, reason=reason, clock=CLOCK)
    reporter.result(
        {"seq": seq, "revoked": str(identifier)},
        f"revoked identity {reporter.label(identifier)} (feed entry {seq})",
    )


@revoke_group.command("link")
@CREDENTIAL_ID
@click.option(
    "--chain",
    "chain_file",
    required=True,
    type=INPUT_FILE,
    metavar="FILE",
    help="A chain holding the link (proves who issued what upstream).",
)
@as_option("The local identity revoking: the link's issuer or an issuer upstream of it")
@authority_option(
    help_text="The authority the chain is rooted at: a local authority's name or identifier, "
    "or the identifier of one the node trusts at a network address (reached there)."
)
@LINK_REASON
@renamed("--by", "--as IDENTITY")
@node_option
@json_command
def revoke_link(
    credential_id: bytes,
    chain_file: str,
    as_name: str,
    authority_ref: str,
    reason: str,
    node_name: str,
    reporter: Reporter,
) -> None:
    """A delegator revokes link ID, which it (or a link upstream of it) issued: the links
    below it die, their siblings live. The authority is on this machine, or reached over the
    network where the node enrolled with it. The node's copy of the authority's feed (and
    the running node's) holds the revocation when this returns."""
    from troth._api.arguments import check_link_reason
    from troth._api.node import revoke_link as revoke  # asyncio: on use only

    chain = read_input(chain_file, limits.MAX_CHAIN_BYTES, "chain")
    authority = reporter.names.anchor(authority_ref)
    with open_cli_node(node_name) as node:
        as_name = reporter.names.local(as_name, node)
        by = node.identities.find(as_name).identifier
        try:  # a member's reason past its bound: not sent (review 70v, reasons 1)
            check_link_reason("troth revoke link", reason, by=by, authority=authority)
        except ArgumentError as exc:
            said = f"{exc.expected}, not {exc.got}"
            raise click.BadParameter(said, param_hint="--reason") from None
        seq = revoke(
            node,
            as_name,
            credential_id,
            chain=chain,
            authority=authority,
            reason=reason,
            clock=CLOCK,
        )
    reporter.result(
        {"seq": seq, "revoked": credential_id.hex()},
        f"revoked link {credential_id.hex()} (feed entry {seq})",
    )


@click.group(
    "revocations",
    epilog="""\b
Example:
  troth revocations show --authority acme --out acme.feed
  troth credential verify s.chain --trust acme --feed acme.feed""",
)
def revocations_group() -> None:
    """The authority's signed revocation feed: what verifiers elsewhere need to check
    chains."""


@revocations_group.command("show")
@authority_option()
@click.option(
    "--out",
    type=OUTPUT_FILE,
    metavar="FILE",
    help="Also write the signed feed here (a CBOR sequence of pages, for verify --feed).",
)
@json_command
def revocations_show(authority_ref: str, out: str | None, reporter: Reporter) -> None:
    """Show the authority's feed, every page verified; --out writes the pages for
    `troth credential verify --feed`."""
    now = CLOCK.now()
    pages: list[bytes] = []
    rows: list[dict[str, Any]] = []
    with open_authority_node(reporter.names, authority_ref) as node:
        authority = node.authority()
        progress = Progress("feed entries verified", authority.store.revocation_tip()[0])
        for page, feed in authority_pages(authority, now, progress):
            pages.append(page)
            rows.extend(e.to_json() for e in feed.new_entries)
    if out:
        write_output(out, b"".join(write_page_sequence(pages)))
    result = {
        "authority": str(feed.authority),
        "count": feed.count,
        "head": feed.head.hex(),
        "issued_at": feed.issued_at,
        "pages": len(pages),
        "entries": rows,
    }
    lines = [
        f"{reporter.label(feed.authority)}: {feed.count} revocation(s), head "
        f"{feed.head.hex()[:16]}…, signed {moment(feed.issued_at, now)}"
        + (f", written to {escape_text(out)}" if out else "")
    ]
    for r in rows:
        target = r["target"] if r["kind"] == "credential" else reporter.label(r["target"])
        why = f": {escape_text(r['reason'])}" if r["reason"] else ""
        lines.append(
            f"{r['seq']:>4} {r['kind']:<12} {target} by {reporter.label(r['revoked_by'])}, "
            f"{moment(r['revoked_at'], now)}{why}"
        )
    reporter.result(result, "\n".join(lines))
