"""`troth enroll`, `troth credential ...`, `troth revoke ...`, `troth revocations ...`."""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from troth import limits
from troth.authority.client import revoke_request
from troth.authority.tickets import TICKET_PREFIX
from troth.cli.common import (
    CLOCK,
    INPUT_FILE,
    duration_option,
    home,
    node_option,
    node_running,
    open_authority_node,
    open_cli_node,
    read_input,
    write_output,
)
from troth.cli.output import EXIT_INVALID, Reporter, escape_text, invalid_object, json_command, kv
from troth.credentials import Attributes, write_page_sequence
from troth.credentials.vc import export_credential_vc, vc_credential_hash
from troth.errors import CredentialError, DecodeError, NotFound
from troth.identity import Identifier
from troth.node import Node
from troth.node.authorities import enroll_locally, is_local, parse_ticket, refresh_locally
from troth.node.trust import FEED_STALENESS
from troth.node.verify import Sources, authority_pages, verify_chain, verify_vc


def _summary(held_chain: bytes, node: Node) -> dict[str, Any]:
    return node.wallet.inspect(held_chain, now=CLOCK.now()).to_json()


def _exists(path: str) -> bool:
    try:
        return Path(path).exists()
    except OSError:  # e.g. a name too long to be a file's
        return False


def _ticket_text(argument: str) -> str:
    """TICKET as given: the ticket itself (`troth-ticket:...`), `-` (read from stdin) or a file
    holding it (read with a cap), so the ticket need not appear in the process list."""
    if argument.startswith(TICKET_PREFIX):
        return argument
    if argument != "-" and not _exists(argument):  # never echo it: it may be a ticket
        raise DecodeError(
            f"not a troth ticket (it does not start with {TICKET_PREFIX}, is not -, "
            "and names no file)"
        )
    data = read_input(argument, limits.MAX_TICKET_TEXT, "ticket")
    try:
        return data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise DecodeError("not a troth ticket (not ASCII text)") from None


@click.command("enroll")
@click.argument("ticket")
@click.option("--identity", "identity_name", required=True, help="The local identity to enroll.")
@node_option
@json_command
def enroll(ticket: str, identity_name: str, node_name: str, reporter: Reporter) -> None:
    """Redeem TICKET (the ticket, `-` to read it from stdin, or a file holding it): the
    authority makes IDENTITY a member and issues its credential."""
    ticket = _ticket_text(ticket)
    parsed = parse_ticket(ticket)
    if not is_local(parsed.address) or node_running(node_name):
        # over the network (a secure channel to the authority), or through the running node
        from troth.cli.network_cmds import _ask

        data: Any = _ask(node_name, "enroll", {"ticket": ticket, "identity": identity_name})
        reporter.result(data, f"enrolled {identity_name} with {data['authority']}")
        return
    with open_cli_node(node_name) as node:
        held = enroll_locally(node, parsed, identity_name, now=CLOCK.now())
    data = held.to_json()
    reporter.result(
        data,
        f"enrolled {identity_name} with {held.authority}\n"
        + kv({"attributes": json.dumps(data["attributes"]), "expires_at": held.expires_at}),
    )


@click.group("credential")
def credential_group() -> None:
    """Credentials: show, export, import, refresh, delegate, verify."""


@credential_group.command("show")
@click.argument("ref")
@node_option
@json_command
def show(ref: str, node_name: str, reporter: Reporter) -> None:
    """Show a chain FILE, or the credentials local identity NAME holds (structure only)."""
    with open_cli_node(node_name) as node:
        if Path(ref).is_file():
            data: Any = _summary(read_input(ref, limits.MAX_CHAIN_BYTES, "chain"), node)
            reporter.result(data, json.dumps(data, indent=2))
            return
        rows = [_summary(h.chain, node) for h in node.wallet.held(ref)]
    reporter.result(rows, json.dumps(rows, indent=2) if rows else f"{ref} holds no credentials")


@credential_group.command("export")
@click.option("--identity", "identity_name", help="Export the best chain this identity holds.")
@click.option(
    "--format", "fmt", type=click.Choice(["cbor", "vc"]), default="cbor", show_default=True
)
@click.option("--authority", "authority_name", help="With --format vc: the issuing authority.")
@click.option("--subject", help="With --format vc: the member whose credential to issue as a VC.")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@node_option
@json_command
def export(
    identity_name: str | None,
    fmt: str,
    authority_name: str | None,
    subject: str | None,
    out: str,
    node_name: str,
    reporter: Reporter,
) -> None:
    """Write a credential chain (CBOR), or an authority-issued credential as a W3C VC."""
    now = CLOCK.now()
    if fmt == "vc":
        if not (authority_name and subject):
            raise ValueError("--format vc needs --authority and --subject")
        with open_authority_node(authority_name) as node:
            authority = node.authority()
            member = authority.member(Identifier.parse(subject))
            valid_until = now + authority.config.credential_ttl
            document = export_credential_vc(
                authority.signer(now),
                credential_id=os.urandom(16),
                subject=member.identifier,
                attributes=member.attributes,
                valid_from=now,
                valid_until=valid_until,
                now=now,
            )
            # issued to the member before it leaves this process: removing the member
            # revokes it like the member's CBOR credentials
            credential_hash = vc_credential_hash(document["id"])
            authority.store.record_issued(
                credential_hash, member.identifier.digest, valid_until, now
            )
        write_output(out, json.dumps(document, indent=2).encode() + b"\n")
        reporter.result(
            {
                "file": out,
                "format": "vc",
                "id": document["id"],
                "credential_hash": credential_hash.hex(),
            },
            f"wrote {out} (revoke with: troth revoke credential {credential_hash.hex()})",
        )
        return
    if not identity_name:
        raise ValueError("--format cbor needs --identity")
    with open_cli_node(node_name) as node:
        chain = node.wallet.best(identity_name, now=now)
    write_output(out, chain)
    reporter.result(
        {"file": out, "format": "cbor", "bytes": len(chain)}, f"wrote {len(chain)} bytes to {out}"
    )


@credential_group.command("import")
@click.argument("file", type=INPUT_FILE)
@click.option("--identity", "identity_name", required=True)
@node_option
@json_command
def import_(file: str, identity_name: str, node_name: str, reporter: Reporter) -> None:
    """Hold a chain delegated to a local identity (so it can use or delegate it further)."""
    data = read_input(file, limits.MAX_CHAIN_BYTES, "chain")
    with open_cli_node(node_name) as node:
        held = node.wallet.hold(identity_name, data, now=CLOCK.now())
    reporter.result(held.to_json(), f"{identity_name} now holds a {len(held.links)}-link chain")


@credential_group.command("refresh")
@click.option("--identity", "identity_name", required=True)
@node_option
@json_command
def refresh(identity_name: str, node_name: str, reporter: Reporter) -> None:
    """Get a fresh member credential from the (local) authority before the current one expires."""
    with open_cli_node(node_name) as node:
        held = node.wallet.held(identity_name)
        if not held:
            raise NotFound(f"{identity_name} holds no credential: enroll first")
        authority_id = Identifier(held[0].authority)
        address = node.wallet.trusted().get(authority_id)
        checked = refresh_locally(
            node, identity_name, authority_id, address=address, now=CLOCK.now()
        )
    reporter.result(checked.to_json(), f"refreshed; expires at {checked.expires_at}")


@credential_group.command("delegate")
@click.option("--from", "from_name", required=True, help="The local identity delegating.")
@click.option("--to", "to_identifier", required=True, help="The identifier receiving authority.")
@click.option(
    "--attr", "attrs", multiple=True, help="key=value to pass on (a subset of what is held)."
)
@duration_option("--ttl", required=True)
@click.option("--purpose", required=True)
@click.option(
    "--caveat", "caveats", multiple=True, help="A Cedar condition the gates will enforce."
)
@click.option(
    "--depth", type=click.IntRange(0, 8), help="Further links allowed (default: one less)."
)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@node_option
@json_command
def delegate_cmd(
    from_name: str,
    to_identifier: str,
    attrs: tuple[str, ...],
    ttl: int,
    purpose: str,
    caveats: tuple[str, ...],
    depth: int | None,
    out: str,
    node_name: str,
    reporter: Reporter,
) -> None:
    """Delegate part of what FROM holds to another identity (refused if it would amplify)."""
    now = CLOCK.now()
    with open_cli_node(node_name) as node:
        chain = node.wallet.delegate(
            from_name,
            to=Identifier.parse(to_identifier),
            attributes=Attributes.from_assignments(attrs),
            now=now,
            ttl=ttl,
            purpose=purpose,
            caveats=caveats,
            depth=depth,
        )
        summary = node.wallet.inspect(chain, now=now).to_json()
    write_output(out, chain)
    reporter.result(summary, f"wrote a {len(summary['chain'])}-link chain to {out}")


@credential_group.command("verify")
@click.argument("file", type=INPUT_FILE)
@click.option(
    "--trust", "trusted", multiple=True, required=True, help="A trusted authority identifier."
)
@click.option(
    "--feed",
    "feed_files",
    multiple=True,
    help="A revocation feed file (troth revocations show --out).",
)
@click.option(
    "--authority",
    "authority_name",
    help="Take the feed (and, for a VC, the issuer's history) from this local authority.",
)
@duration_option("--max-feed-age", default=f"{FEED_STALENESS}s", show_default=True)
@click.option("--presenter", help="The identity presenting the chain (default: its last subject).")
@click.option(
    "--format", "fmt", type=click.Choice(["cbor", "vc"]), default="cbor", show_default=True
)
@click.option("--issuer-history", type=INPUT_FILE, help="With --format vc.")
@click.option(
    "--no-store",
    is_flag=True,
    help="Use no node store: issuer histories are neither checked against stored copies nor "
    "stored (the feed's supersessions still apply).",
)
@node_option
@json_command
def verify(
    file: str,
    trusted: tuple[str, ...],
    feed_files: tuple[str, ...],
    authority_name: str | None,
    max_feed_age: int,
    presenter: str | None,
    fmt: str,
    issuer_history: str | None,
    no_store: bool,
    node_name: str,
    reporter: Reporter,
) -> None:
    """Verify a chain (or a single credential) or a W3C VC: exit 0 valid, 1 invalid.

    A chain is checked against the node's store of histories (each issuer's history must
    extend the stored copy, and is stored; the presenter's stored history is checked against
    the feed), unless --no-store."""
    now = CLOCK.now()
    anchors = frozenset(Identifier.parse(t) for t in trusted)
    sources = Sources(anchors, home(), feed_files, authority_name, max_feed_age)
    limit = limits.MAX_VC_BYTES if fmt == "vc" else limits.MAX_CHAIN_BYTES
    data = read_input(file, limit, "credential")
    try:
        if fmt == "vc":
            history = (
                read_input(issuer_history, limits.MAX_IDENTITY_HISTORY_BYTES, "history")
                if issuer_history
                else None
            )
            result = verify_vc(data, sources, now=now, issuer_history=history).to_json()
            human = {**result, "attributes": json.dumps(result["attributes"])}
            del human["valid"]
            reporter.result(result, "valid\n" + kv(human))
            return
        with ExitStack() as stack:
            node = None if no_store else stack.enter_context(open_cli_node(node_name))
            verified = verify_chain(
                data,
                sources,
                now=now,
                presenter=Identifier.parse(presenter) if presenter else None,
                node=node,
            )
    except CredentialError as exc:
        reporter.fail(exc, EXIT_INVALID, invalid_object(exc))
    result = {"valid": True, **verified.to_json()}
    lines = [f"valid: {verified.actor} acts", f"  authority {verified.authority}"]
    for link in verified.links:
        lines.append(f"  link {link.index}: {link.issuer} -> {link.subject}")
        if link.purpose:
            lines.append(f"          purpose: {escape_text(link.purpose)}")
        attributes = json.dumps(link.attributes.to_json())
        lines.append(f"          attributes: {attributes}, expires {link.expires_at}")
        for caveat in link.caveats:
            lines.append(f"          caveat: {escape_text(caveat)}")
    lines.append(f"  effective attributes: {json.dumps(verified.attributes.to_json())}")
    lines.append(f"  window: {verified.not_before} .. {verified.expires_at}")
    reporter.result(result, "\n".join(lines))


@click.group("revoke")
def revoke_group() -> None:
    """Revoke credentials, delegation links or identities (permanent)."""


@revoke_group.command("credential")
@click.argument("credential_id")
@click.option("--authority", "authority_name", required=True)
@click.option("--reason", default="")
@json_command
def revoke_credential(
    credential_id: str, authority_name: str, reason: str, reporter: Reporter
) -> None:
    """The authority revokes a credential (any link in chains rooted at it)."""
    with open_authority_node(authority_name) as node:
        seq = node.authority().revoke_credential(
            bytes.fromhex(credential_id), now=CLOCK.now(), reason=reason
        )
    reporter.result(
        {"seq": seq, "revoked": credential_id}, f"revoked credential {credential_id} (entry {seq})"
    )


@revoke_group.command("identity")
@click.argument("identifier")
@click.option("--authority", "authority_name", required=True)
@click.option("--reason", default="")
@json_command
def revoke_identity(identifier: str, authority_name: str, reason: str, reporter: Reporter) -> None:
    """The authority revokes an identity for good: all it holds and issued stops verifying."""
    with open_authority_node(authority_name) as node:
        seq = node.authority().revoke_identity(
            Identifier.parse(identifier), now=CLOCK.now(), reason=reason
        )
    reporter.result(
        {"seq": seq, "revoked": identifier}, f"revoked identity {identifier} (entry {seq})"
    )


@revoke_group.command("link")
@click.argument("credential_id")
@click.option("--chain", "chain_file", required=True, type=INPUT_FILE)
@click.option(
    "--by", "by_name", required=True, help="The local identity revoking (an upstream issuer)."
)
@click.option("--authority", "authority_name", required=True)
@click.option("--reason", default="")
@node_option
@json_command
def revoke_link(
    credential_id: str,
    chain_file: str,
    by_name: str,
    authority_name: str,
    reason: str,
    node_name: str,
    reporter: Reporter,
) -> None:
    """A delegator revokes a link it (or an upstream link) issued: descendants die,
    siblings live."""
    now = CLOCK.now()
    chain = read_input(chain_file, limits.MAX_CHAIN_BYTES, "chain")
    with ExitStack() as stack:
        node = stack.enter_context(open_cli_node(node_name))
        host = (
            node
            if authority_name == node.name
            else stack.enter_context(open_authority_node(authority_name))
        )
        authority = host.authority()
        request = revoke_request(
            node.identities,
            by_name,
            authority.identifier,
            credential_hash=bytes.fromhex(credential_id),
            chain=chain,
            reason=reason,
            now=now,
        )
        seq = authority.revoke_link(request, now=now)
    reporter.result(
        {"seq": seq, "revoked": credential_id}, f"revoked link {credential_id} (entry {seq})"
    )


@click.group("revocations")
def revocations_group() -> None:
    """The authority's signed revocation feed."""


@revocations_group.command("show")
@click.option("--authority", "authority_name", required=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Also write the signed feed here (a CBOR sequence of pages).",
)
@json_command
def revocations_show(authority_name: str, out: str | None, reporter: Reporter) -> None:
    """The authority's feed, every page verified; --out writes the pages for `verify --feed`."""
    now = CLOCK.now()
    pages: list[bytes] = []
    rows: list[dict[str, Any]] = []
    with open_authority_node(authority_name) as node:
        for page, feed in authority_pages(node.authority(), now):
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
    text = "\n".join(
        f"{r['seq']:>4} {r['kind']:<10} {r['target']} by {r['revoked_by']}" for r in rows
    )
    reporter.result(
        result, f"{feed.count} revocation(s), head {feed.head.hex()[:16]}...\n{text}".rstrip()
    )
