"""`troth enroll`, `troth credential ...`, `troth revoke ...`, `troth revocations ...`."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from troth import enrollment, limits
from troth.authority import Authority, Ticket
from troth.authority.client import refresh_request, revoke_request, ticket_authority
from troth.authority.tickets import TICKET_PREFIX
from troth.cli.common import (
    CLOCK,
    INPUT_FILE,
    duration_option,
    home,
    node_option,
    open_authority_node,
    open_cli_node,
    read_input,
    write_output,
)
from troth.cli.output import EXIT_INVALID, Reporter, escape_text, invalid_object, json_command, kv
from troth.credentials import (
    Attributes,
    ChainVerifier,
    TrustPolicy,
    VerifiedFeed,
    chain_actor,
    feed_authority,
    read_page_sequence,
    verify_page,
    verify_pages,
    write_page_sequence,
)
from troth.credentials.vc import (
    export_credential_vc,
    vc_credential_hash,
    vc_issuer,
    verify_troth_vc,
)
from troth.credentials.wallet import next_page
from troth.encoding.ijson import load_json
from troth.errors import (
    ConfigError,
    CredentialError,
    CredentialFailure,
    DecodeError,
    IdentityError,
    NotFound,
    StorageError,
    TrothError,
)
from troth.identity import Identifier, VerifiedIdentity, verify_history
from troth.node import Node, list_nodes, open_node
from troth.storage import PendingEnrollmentRecord


def _summary(held_chain: bytes, node: Node) -> dict[str, Any]:
    return node.wallet.inspect(held_chain, now=CLOCK.now()).to_json()


def _authority_node_for(address: str) -> str:
    if not address.startswith("node:"):
        raise ConfigError(f"ticket address {address!r} is neither node:NAME nor a route")
    return address[len("node:") :]


def _authority_on(stack: ExitStack, node: Node, name: str) -> Authority:
    """The authority node `name` hosts: `node` itself when it is that node, else opened once
    (closed with `stack`)."""
    host = node if name == node.name else stack.enter_context(open_authority_node(name))
    return host.authority()


def _local_authority(stack: ExitStack, node: Node, identifier: Identifier) -> Authority:
    """The authority `identifier` hosted on this machine: on `node`, else on another node
    (each opened once; the one hosting it stays open until `stack` closes)."""
    with contextlib.suppress(NotFound):
        if (authority := node.authority()).identifier == identifier:
            return authority
    for config in list_nodes(home()):
        if config.name == node.name:
            continue
        with ExitStack() as opened, contextlib.suppress(NotFound):
            authority = opened.enter_context(open_node(config.name, home=home())).authority()
            if authority.identifier == identifier:
                stack.enter_context(opened.pop_all())  # the host stays open with `stack`
                return authority
    raise NotFound(f"no node on this machine hosts authority {identifier}")


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


def _parse_ticket(text: str) -> Ticket:
    try:
        return Ticket.parse(text)
    except DecodeError as exc:
        raise DecodeError(f"not a troth ticket ({exc})", exc.problem) from None


def sync_local_feed(node: Node, authority: Authority) -> VerifiedFeed:
    """Sync `node`'s copy of the feed of `authority`, hosted on this machine (each page signed
    and verified when it is fetched; a race with another process's sync is retried)."""
    return node.wallet.sync_feed(
        authority.identifier,
        lambda since: authority.feed(now=CLOCK.now(), since=since),
        now=CLOCK,
    )


def _feed_outcome(node: Node, authority: Authority, reporter: Reporter) -> dict[str, Any]:
    """Sync the authority's feed after a committed enrollment or refresh: a failure is a
    warning (what was committed stays reported as done), retried by the next refresh."""
    try:
        feed = sync_local_feed(node, authority)
    except TrothError as exc:
        reporter.info(
            f"troth: warning: the credential is stored, but the feed of {authority.identifier} "
            f"was not synced: {exc} (troth credential refresh retries)"
        )
        return {"synced": False, "error": str(exc)}
    return {"synced": True, "count": feed.count}


def _when(started_at: int) -> str:
    return datetime.fromtimestamp(started_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _local_send(authority: Authority) -> Callable[[bytes], bytes]:
    """Carry an enroll request to an authority hosted on this machine (its clock read when
    the request arrives, as a remote authority's would be)."""
    return lambda request: authority.enroll(request, now=CLOCK.now()).encode()


@click.command("enroll")
@click.argument("ticket")
@click.option("--identity", "identity_name", required=True, help="The local identity to enroll.")
@node_option
@json_command
def enroll(ticket: str, identity_name: str, node_name: str, reporter: Reporter) -> None:
    """Redeem TICKET (the ticket, `-` to read it from stdin, or a file holding it): the
    authority makes IDENTITY a member and issues its credential.

    Safe to run again with the same ticket: an enrollment interrupted by a crash is resumed,
    and a completed one is answered with the credential already issued."""
    ticket = _ticket_text(ticket)
    parsed = _parse_ticket(ticket)
    if parsed.address.startswith("/"):  # over the network: a secure channel to the authority
        from troth.cli.network_cmds import _ask

        data: Any = _ask(node_name, "enroll", {"ticket": ticket, "identity": identity_name})
        reporter.result(
            data, f"enrolled {identity_name} with {data['authority']} over a secure channel"
        )
        return
    authority_node_name = _authority_node_for(parsed.address)
    with ExitStack() as stack:
        node = stack.enter_context(open_cli_node(node_name))
        authority = _authority_on(stack, node, authority_node_name)
        if authority.identifier != ticket_authority(parsed, now=CLOCK.now()):
            raise ConfigError(
                f"node {authority_node_name!r} hosts another authority than the ticket's"
            )
        for pending in node.wallet.pending_enrollments(identity_name):
            if pending.authority == authority.identifier.digest and pending.ticket == str(parsed):
                reporter.info(f"resuming the enrollment interrupted at {_when(pending.started_at)}")
        try:
            enrolled = enrollment.enroll(
                node.identities,
                node.wallet,
                identity_name,
                parsed,
                clock=CLOCK,
                send=_local_send(authority),
            )
        except StorageError as exc:
            raise StorageError(f"{exc} ({_INTERRUPTED.format(name=identity_name)})") from None
        feed = _feed_outcome(node, authority, reporter)
    data = {**enrolled.to_json(), "feed": feed}
    reporter.result(
        data,
        f"enrolled {identity_name} with {enrolled.authority}\n"
        + kv(
            {
                "credential": data["credential"],
                "attributes": json.dumps(data["attributes"]),
                "expires_at": enrolled.credential.expires_at,
            }
        ),
    )


_INTERRUPTED = (
    "the enrollment was not completed; it is recorded and resumes with the same ticket or with "
    "troth credential refresh --identity {name}"
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
    """Get a fresh member credential from the (local) authority before the current one expires.
    An enrollment interrupted by a crash is resumed first."""
    with ExitStack() as stack:
        node = stack.enter_context(open_cli_node(node_name))
        resumed = [
            _resume(stack, node, p, node_name, reporter) for p in _pending(node, identity_name)
        ]
        held = node.wallet.held(identity_name)
        if not held:
            raise NotFound(f"{identity_name} holds no credential: enroll first")
        authority_id = Identifier(held[0].authority)
        try:
            authority = _local_authority(stack, node, authority_id)
        except NotFound:
            if not resumed:
                raise
            reporter.result(resumed, f"resumed {len(resumed)} enrollment(s)")
            return
        now = CLOCK.now()
        request = refresh_request(node.identities, identity_name, authority_id, now=now)
        chain = authority.refresh(request, now=now)
        checked = node.wallet.hold(identity_name, chain.encode(), now=now)
        feed = _feed_outcome(node, authority, reporter)
    data = {**checked.to_json(), "feed": feed, "resumed": resumed}
    reporter.result(data, f"refreshed; expires at {checked.expires_at}")


def _pending(node: Node, identity_name: str) -> list[PendingEnrollmentRecord]:
    return node.wallet.pending_enrollments(identity_name)


def _resume(
    stack: ExitStack,
    node: Node,
    pending: PendingEnrollmentRecord,
    node_name: str,
    reporter: Reporter,
) -> dict[str, Any]:
    """Complete an interrupted enrollment: with a local authority here, with a remote one
    through the node (the authority answers the repeat with the credential it issued)."""
    authority = Identifier(pending.authority)
    reporter.info(
        f"resuming the enrollment interrupted at {_when(pending.started_at)} with {authority}"
    )
    if pending.address.startswith("/"):
        from troth.cli.network_cmds import _ask

        data: dict[str, Any] = _ask(
            node_name,
            "enroll",
            {"ticket": pending.ticket, "identity": "T" + pending.identifier.hex()},
        )
        node.wallet.forget_enrollment(pending)  # completed by the node
        return data
    host = _authority_on(stack, node, _authority_node_for(pending.address))
    enrolled = enrollment.resume(
        node.identities, node.wallet, pending, clock=CLOCK, send=_local_send(host)
    )
    return enrolled.to_json()


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


Known = Callable[[VerifiedIdentity], None]


def _authority_pages(authority: Authority, now: int) -> Iterator[tuple[bytes, VerifiedFeed]]:
    """A local authority's whole feed, page by page, each page verified as it comes."""
    feed: VerifiedFeed | None = None
    since: int | None = 0
    while since is not None:
        page = authority.feed(now=now, since=since)
        feed = verify_page(page, authority=authority.identifier, now=now, previous=feed)
        yield page, feed
        since = next_page(feed, since)


def _file_feed(
    path: str, anchors: frozenset[Identifier], now: int, known: Known | None
) -> VerifiedFeed:
    """Verify a feed file (a CBOR sequence of pages), read one page at a time."""
    with open(path, "rb") as stream:
        try:
            pages = read_page_sequence(stream.read)
            first = next(pages, None)
            if first is None:
                raise CredentialError(CredentialFailure.FEED_INVALID, f"{path} holds no page")
            claimed = feed_authority(first)
            if claimed not in anchors:
                raise CredentialError(
                    CredentialFailure.FEED_INVALID, f"feed of {claimed}, not a trusted authority"
                )
            return verify_pages(
                itertools.chain([first], pages), authority=claimed, now=now, known=known
            )
        except DecodeError as exc:
            raise CredentialError(CredentialFailure.FEED_INVALID, str(exc)) from None


def _load_feeds(
    feed_files: tuple[str, ...],
    authority_name: str | None,
    anchors: frozenset[Identifier],
    now: int,
    max_age: int,
    *,
    known: Known | None = None,
) -> dict[Identifier, VerifiedFeed]:
    """The fresh feeds of trusted authorities, from feed files and/or a local authority."""
    feeds = [_file_feed(path, anchors, now, known) for path in feed_files]
    if authority_name:
        with open_authority_node(authority_name) as node:
            authority = node.authority()
            if authority.identifier not in anchors:
                raise CredentialError(
                    CredentialFailure.FEED_INVALID,
                    f"feed of {authority.identifier}, not a trusted authority",
                )
            *_, (_, feed) = _authority_pages(authority, now)
            feeds.append(feed)
    for feed in feeds:
        feed.check_fresh(now=now, max_staleness=max_age)
    return {feed.authority: feed for feed in feeds}


def _store_or_extend(node: Node, now: int) -> Known:
    """The node's store of histories as a chain verifier's `known`: the first verified copy of
    an identity is stored, a later one must extend it (and is stored)."""

    def known(identity: VerifiedIdentity) -> None:
        node.identities.import_history(identity, now=now)

    return known


def _stored_presenter(node: Node, actor: Identifier, now: int) -> Identifier | VerifiedIdentity:
    """The actor's history as this node stores it (so the feed can tell whether it is
    superseded), else only its identifier."""
    stored = node.identities.store.get_history(actor.digest)
    if stored is None:
        return actor
    try:
        return verify_history(stored[0], now=now)
    except IdentityError:
        return actor


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
@duration_option("--max-feed-age", default="5m", show_default=True)
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
    limit = limits.MAX_VC_BYTES if fmt == "vc" else limits.MAX_CHAIN_BYTES
    data = read_input(file, limit, "credential")
    try:
        if fmt == "vc":
            policy = TrustPolicy(anchors, max_feed_staleness=max_feed_age)
            result = _verify_vc(data, policy, authority_name, issuer_history, feed_files, now)
            human = {**result, "attributes": json.dumps(result["attributes"])}
            del human["valid"]
            reporter.result(result, "valid\n" + kv(human))
            return
        with ExitStack() as stack:
            node = None if no_store else stack.enter_context(open_cli_node(node_name))
            known = None if node is None else _store_or_extend(node, now)
            feeds = _load_feeds(feed_files, authority_name, anchors, now, max_feed_age, known=known)
            actor = Identifier.parse(presenter) if presenter else chain_actor(data)
            verified = ChainVerifier(TrustPolicy(anchors), known=known).verify(
                data,
                presenter=actor if node is None else _stored_presenter(node, actor, now),
                feeds=feeds,
                now=now,
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


def _verify_vc(
    data: bytes,
    policy: TrustPolicy,
    authority_name: str | None,
    issuer_history: str | None,
    feed_files: tuple[str, ...],
    now: int,
) -> dict[str, Any]:
    """Verify a troth VC: proofs, window and revocation status against the issuer's feed
    (`--authority` or `--feed`), like a chain. Raises CredentialError when it is not valid."""
    try:
        document = load_json(data, max_bytes=limits.MAX_VC_BYTES, what="VC")
    except DecodeError as exc:
        raise CredentialError(CredentialFailure.MALFORMED, str(exc)) from None
    issuer = vc_issuer(document)
    if issuer not in policy.anchors:
        raise CredentialError(CredentialFailure.UNTRUSTED_ISSUER, str(issuer))
    if issuer_history:
        history = read_input(issuer_history, limits.MAX_IDENTITY_HISTORY_BYTES, "history")
    elif authority_name:
        with open_authority_node(authority_name) as node:
            history = node.authority().history()
    else:
        raise ValueError(
            "a VC needs its issuer's history: --issuer-history FILE or --authority NAME"
        )
    try:
        identity = verify_history(history, now=now)
    except IdentityError as exc:
        raise CredentialError(CredentialFailure.ISSUER_INVALID, str(exc)) from None
    feeds = _load_feeds(feed_files, authority_name, policy.anchors, now, policy.max_feed_staleness)
    verified = verify_troth_vc(document, policy=policy, issuer=identity, feeds=feeds, now=now)
    return verified.to_json()


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
        authority = _authority_on(stack, node, authority_name)
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
        for page, feed in _authority_pages(node.authority(), now):
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
