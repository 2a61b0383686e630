"""`troth enroll` and `troth credential ...`: join an authority, hold, pass on and check
credentials."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from troth import limits
from troth._api.verifier import caveat_context_json, check_caveats
from troth.authority.tickets import TICKET_PREFIX
from troth.cli.common import (
    CLOCK,
    FEED_FILE,
    IDENTITY_HELP,
    INPUT_FILE,
    OUTPUT_FILE,
    as_option,
    attributes_of,
    authority_copy_text,
    authority_option,
    duration_option,
    enroll_options,
    feed_inputs,
    home,
    node_option,
    node_running,
    open_authority_node,
    open_cli_node,
    output_file,
    over_copy_needs_pin,
    read_input,
    renamed,
    stdin_once,
    text_value,
    write_output,
)
from troth.cli.network_cmds import ask_node
from troth.cli.output import (
    EXIT_INVALID,
    Explained,
    Progress,
    Reporter,
    escape_text,
    invalid_object,
    json_command,
    json_text,
    kv,
)
from troth.cli.text import attributes, duration, moment, relative, timestamp
from troth.cli.verdicts import delegation_refused, not_verified, presented_by
from troth.credentials import VerifiedCredential, VerifiedLink
from troth.credentials.vc import vc_credential_hash
from troth.errors import (
    ArgumentError,
    AuthorityError,
    AuthorityFailure,
    CredentialError,
    DecodeError,
    NotFound,
    TrothError,
)
from troth.identity import Identifier
from troth.node import Node
from troth.node.authorities import (
    FeedOutcome,
    announce_here,
    drop_unusable,
    enroll_locally,
    interrupted,
    is_local,
    parse_ticket,
    refresh_locally,
    resume_locally,
)
from troth.node.traces import delegate_recorded
from troth.node.trust import CREDENTIAL_SKEW, FEED_STALENESS
from troth.node.verify import Sources, chain_file, named_file_hint, verify_chain, verify_vc

OUT = click.option("--out", required=True, type=OUTPUT_FILE, metavar="FILE", help="File to write.")
FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["cbor", "vc"]),
    default="cbor",
    show_default=True,
    help="cbor: a troth chain; vc: a W3C Verifiable Credential (JSON, eddsa-jcs-2022).",
)
TICKET_AGAIN = "copy the whole ticket `troth authority ticket create` printed"


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
            f"not a troth ticket (it does not start with {TICKET_PREFIX}, is not -, and names "
            f"no file): {TICKET_AGAIN}"
        )
    if argument != "-" and os.path.isdir(argument):  # as any input file (review 55g, cli 6)
        raise click.BadParameter(f"{argument} is a directory", param_hint="'TICKET'")
    data = read_input(argument, limits.MAX_TICKET_TEXT, "ticket")
    try:
        return data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise DecodeError("not a troth ticket (not ASCII text)") from None


def _exposed_ticket(argument: str) -> str | None:
    """A warning when TICKET names a regular file that group or others can read (review 53k,
    cli 1). A ticket is a one-time secret: redeeming it at once is what makes a copy worthless
    (an authority redeems a ticket once), so the enrollment goes on (a refusal would leave the
    copy redeemable), and the warning says how to tell whether a copy was used first. A
    ticket given on the command line is warned of too (review 55c, cli 1): it stays in the
    shell's history, redeemable by whoever reads it while it has uses left (a ticket of several
    uses, or an enrollment that failed)."""
    if argument.startswith(TICKET_PREFIX):
        return (
            "the ticket was given on the command line, so it is in the shell's history: while "
            "it has uses left (several, or an enrollment that failed) whoever reads that "
            "history may redeem it (troth authority ticket void on the authority's machine "
            "ends it); pass tickets with - or in a file only you can read"
        )
    if argument == "-":
        return None
    try:
        info = os.stat(argument)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or not info.st_mode & 0o077:
        return None
    return (
        f"{argument} holds a ticket others can read (mode "
        f"{info.st_mode & 0o777:o}): anyone who copied it may redeem it first (the enrollment "
        "is then refused as redeemed: ask the authority for a new ticket); delete the file, "
        "and keep tickets in files only you can read (chmod 600) or pass them with -"
    )


def _utc(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _feed_warning(reporter: Reporter, authority: Identifier | str, feed: FeedOutcome) -> None:
    """A committed enrollment or refresh whose feed sync failed: a warning, not a failure."""
    if not feed.synced:
        reporter.warn(
            f"the credential is stored, but the feed of {authority} was not "
            f"synced: {feed.error} (troth credential refresh retries)"
        )


def held_text(data: dict[str, Any], reporter: Reporter, now: int) -> str:
    """A credential a local identity holds (VerifiedCredential.to_json), for people."""
    return kv(
        {
            "attributes": escape_text(attributes(data["attributes"])),
            "expires": moment(data["window"]["expires_at"], now, expiry=True),
        }
    )


@click.command(
    "enroll",
    epilog="""\b
Example:
  troth identity create customer
  troth authority create acme
  troth authority ticket create --authority acme --attr orders.customer=4471 \\
    | troth enroll - --as customer""",
)
@click.argument("ticket")
@as_option("The local identity to enroll")
@renamed("--identity", "--as IDENTITY")
@enroll_options
@node_option
@json_command
def enroll(
    ticket: str, as_name: str, pin: str | None, over_copy: bool, node_name: str, reporter: Reporter
) -> None:
    """Redeem TICKET (the ticket, - to read it from stdin, or a file holding it): the
    authority makes the identity a member and issues its credential; the node trusts the
    authority from then on.

    Safe to run again with the same ticket: an enrollment interrupted by a crash is resumed,
    and a completed one is answered with the credential already issued. A ticket given on the
    command line, or in a file that group or others can read, is warned of (a copy may be
    redeemed first)."""
    over_copy_needs_pin(over_copy, pin)
    exposed = _exposed_ticket(ticket)
    ticket = _ticket_text(ticket)
    try:
        parsed = parse_ticket(ticket)
    except DecodeError as exc:
        raise Explained(
            exc, f"not a troth ticket (it is cut short or altered): {TICKET_AGAIN}"
        ) from None
    with open_cli_node(node_name) as node:
        as_name = reporter.names.local(as_name, node)
    if exposed is not None:  # a ticket it holds (review 53k, cli 1), or the command line's
        reporter.warn(exposed)  # (review 55c, cli 1)
    try:
        if not is_local(parsed.address) or node_running(node_name):
            # over the network (a secure channel to the authority), or through the running node
            arguments: dict[str, Any] = {"ticket": ticket, "identity": as_name}
            arguments["authority_pin"] = pin
            if over_copy:  # sent only when given: a running node from before 67i knows no such key
                arguments["over_copy"] = True
            data: Any = ask_node(node_name, "enroll", arguments)
        else:
            with open_cli_node(node_name) as node:
                for pending in interrupted(node, as_name, parsed):
                    reporter.info(
                        f"resuming the enrollment interrupted at {_utc(pending.started_at)}"
                    )
                done = enroll_locally(
                    node, parsed, as_name, clock=CLOCK, authority_pin=pin, over_copy=over_copy
                )
            data = done.to_json()
    except AuthorityError as exc:
        if exc.reason is not AuthorityFailure.TICKET_UNKNOWN:
            raise
        raise Explained(
            exc, f"{exc}: ask the authority for a new ticket (troth authority ticket create)"
        ) from None
    # in process or the node's answer alike (review 64h, enroll 2: only the former warned)
    feed = data.get("feed")
    if isinstance(feed, dict) and feed.get("synced") is False:
        _feed_warning(reporter, data["authority"], FeedOutcome(False, error=feed.get("error")))
    text = f"enrolled {reporter.label(data['actor'])} with {reporter.label(data['authority'])}"
    text += "\n" + held_text(data, reporter, CLOCK.now()) + authority_copy_text(data, over_copy)
    reporter.result(data, text)


@click.group(
    "credential",
    epilog="""\b
Example:
  troth credential delegate --as customer --to support-agent \\
      --attr orders.customer=4471 --ttl 30m --purpose "resolve complaint 123" --out s.chain
  troth credential verify s.chain --trust acme --authority acme""",
)
def credential_group() -> None:
    """Credentials: show, export, import, refresh, delegate, verify.

    A chain is a member credential from an authority followed by delegation links, each
    narrowing what the previous one allows."""


def link_lines(links: Iterable[VerifiedLink], reporter: Reporter, now: int) -> list[str]:
    """Each link of a chain: who to whom, its id (what `troth revoke link` takes), purpose,
    attributes, caveats, expiry."""
    lines = []
    for link in links:
        lines.append(
            f"  link {link.index}: {reporter.label(link.issuer)} -> {reporter.label(link.subject)}"
        )
        lines.append(f"          id: {link.hash.hex()}")
        if link.purpose:
            lines.append(f"          purpose: {escape_text(link.purpose)}")
        lines.append(f"          attributes: {escape_text(attributes(link.attributes))}")
        lines.extend(f"          caveat: {escape_text(caveat)}" for caveat in link.caveats)
        lines.append(f"          expires: {moment(link.expires_at, now, expiry=True)}")
    return lines


def _chain_text(verified: VerifiedCredential, reporter: Reporter, now: int) -> str:
    head = (
        f"chain of {len(verified.links)} link(s) from {reporter.label(verified.authority)} to "
        f"{reporter.label(verified.actor)} (structure checked; trust: troth credential verify)"
    )
    return "\n".join([head, *link_lines(verified.links, reporter, now)])


@credential_group.command("show")
@click.argument("ref", metavar="[IDENTITY|FILE]", required=False)
@click.option("--file", "file", type=INPUT_FILE, help="The chain file to show (instead of REF).")
@node_option
@json_command
def show(ref: str | None, file: str | None, node_name: str, reporter: Reporter) -> None:
    """Show the chains local IDENTITY holds, or the chain in FILE: links, ids, attributes,
    expiry (structure and signatures only: troth credential verify decides trust). REF is an
    identity when it can be one (a name or identifier), never a file of that name: give a
    file as a path (./chain) or with --file."""
    if (ref is None) == (file is None):
        raise click.UsageError("give one of IDENTITY|FILE or --file FILE")
    now = CLOCK.now()
    name = ref or ""
    path = Path(file) if file is not None else chain_file(name)
    with open_cli_node(node_name) as node:
        if path is not None:
            data = read_input(str(path), limits.MAX_CHAIN_BYTES, "chain")
            checked = node.wallet.inspect(data, now=now)
            reporter.result(checked.to_json(), _chain_text(checked, reporter, now))
            return
        try:
            name = reporter.names.local(name, node)
        except NotFound as exc:
            raise Explained(exc, f"{exc}{named_file_hint(name)}") from None
        chains = [node.wallet.inspect(h.chain, now=now) for h in node.wallet.held(name)]
    text = "\n".join(_chain_text(c, reporter, now) for c in chains)
    reporter.result([c.to_json() for c in chains], text or f"{name} holds no credentials")


def _best_chain(node: Node, ref: str, now: int) -> bytes:
    try:
        return node.wallet.best(ref, now=now)
    except NotFound as exc:
        raise Explained(
            exc,
            f"{exc}: enroll it (troth enroll TICKET --as {ref}) or refresh its credential "
            f"(troth credential refresh {ref})",
        ) from None


@credential_group.command("export")
@click.argument("ref", metavar="IDENTITY")
@FORMAT
@authority_option(
    required=False, help_text="With --format vc: the authority issuing the VC (name or identifier)."
)
@OUT
@renamed("--identity", "troth credential export IDENTITY")
@renamed("--subject", "troth credential export IDENTITY")
@node_option
@json_command
def export(
    ref: str,
    fmt: str,
    authority_ref: str | None,
    out: str,
    node_name: str,
    reporter: Reporter,
) -> None:
    """Write the best chain local IDENTITY holds (CBOR), or, with --format vc, have the
    authority issue member IDENTITY's credential as a W3C VC."""
    now = CLOCK.now()
    if fmt == "cbor":
        if authority_ref:
            raise click.UsageError("--authority goes with --format vc")
        with open_cli_node(node_name) as node:
            chain = _best_chain(node, reporter.names.local(ref, node), now)
        write_output(out, chain)
        reporter.result(
            {"file": out, "format": "cbor", "bytes": len(chain)},
            f"wrote {len(chain)} bytes to {escape_text(out)}",
        )
        return
    if not authority_ref:
        raise click.UsageError("--format vc needs --authority (the issuing authority)")
    subject = reporter.names.identifier(ref)
    # the file first: a VC is issued (recorded as issued) only when it can be written (review
    # 44c, CLI 6)
    with output_file(out) as file, open_authority_node(reporter.names, authority_ref) as node:
        document = node.authority().issue_member_vc(subject, now=now)
        file.write(json_text(document).encode() + b"\n")
    credential_hash = vc_credential_hash(document["id"])
    reporter.result(
        {
            "file": out,
            "format": "vc",
            "id": document["id"],
            "credential_hash": credential_hash.hex(),
        },
        f"wrote {escape_text(out)} (revoke with: troth revoke credential {credential_hash.hex()} "
        f"--authority {authority_ref})",
    )


@credential_group.command("import")
@click.argument("file", type=INPUT_FILE)
@as_option("The local identity the chain was delegated to")
@renamed("--identity", "--as IDENTITY")
@node_option
@json_command
def import_(file: str, as_name: str, node_name: str, reporter: Reporter) -> None:
    """Hold the chain in FILE (- for stdin), delegated to a local identity, so it can use it
    or delegate it further."""
    data = read_input(file, limits.MAX_CHAIN_BYTES, "chain")
    with open_cli_node(node_name) as node:
        held = node.wallet.hold(reporter.names.local(as_name, node), data, now=CLOCK.now())
    reporter.result(
        held.to_json(),
        f"{reporter.label(held.actor)} now holds a {len(held.links)}-link chain\n"
        + held_text(held.to_json(), reporter, CLOCK.now()),
    )


@credential_group.command("refresh")
@click.argument("ref", metavar="IDENTITY")
@renamed("--identity", "troth credential refresh IDENTITY")
@node_option
@json_command
def refresh(ref: str, node_name: str, reporter: Reporter) -> None:
    """Get local IDENTITY a fresh member credential from its authority on this machine,
    before the current one expires. An enrollment interrupted by a crash is resumed first,
    and a rotation not yet announced (`identity show` lists it) is announced to the
    authorities on this machine."""
    with open_cli_node(node_name) as node:
        ref = reporter.names.local(ref, node)
        dropped = drop_unusable(node, ref)
        for pending, reason in dropped:
            reporter.info(
                f"the enrollment with {reporter.label(Identifier(pending.authority))} is "
                f"dropped: it can never complete ({reason})"
            )
        for pending in node.wallet.pending_enrollments(ref):
            reporter.info(f"resuming the enrollment interrupted at {_utc(pending.started_at)}")
        resumed, remote, tried = resume_locally(node, ref, clock=CLOCK)
        for pending in remote:  # with a remote authority: through the node, over the network
            if pending not in node.wallet.pending_enrollments(ref):
                continue  # cleared when a newer ticket's enrollment completed (review 61l)
            try:
                ask_node(node_name, "enroll", {"ticket": pending.ticket, "identity": ref})
            except TrothError as exc:
                tried.append((pending, exc))
        still = node.wallet.pending_enrollments(ref)
        gone = [(Identifier(p.authority), why) for p, why in tried if p not in still]
        failed = [(Identifier(p.authority), why) for p, why in tried if p in still]
        for authority, why in gone:  # forgotten: no longer "stays pending" (review 56g, removal 2)
            reporter.info(
                f"the enrollment with {reporter.label(authority)} is dropped: the authority "
                f"refused it for good ({why})"
            )
        for authority, why in failed:  # reported; the other credentials are refreshed anyway
            reporter.info(
                f"the enrollment with {reporter.label(authority)} could not complete now "
                f"({why}); it stays pending"
            )
        if resumed and node_running(node_name):  # the running node learns what it now trusts
            ask_node(node_name, "trust.reload", {})
        held = node.wallet.held(ref)
        if not held:
            raise NotFound(
                f"{ref} holds no credential: enroll it first (troth enroll TICKET --as {ref})"
            )
        # a rotation not yet announced (a `rotate` killed after its commit): told to the
        # authorities on this machine now, the others by the running node (review 38c, rotate 1)
        announced, _remote = announce_here(node, ref, now=CLOCK.now())
        for outcome in announced:
            if outcome.error is not None:
                reporter.warn(
                    f"the rotation is not announced to "
                    f"{reporter.label(outcome.authority)}: {outcome.error}"
                )
        authority_id = Identifier(held[0].authority)
        address = node.wallet.trusted().get(authority_id)
        done = refresh_locally(
            node, ref, authority_id, address=address, clock=CLOCK, resumed=tuple(resumed)
        )
    _feed_warning(reporter, authority_id, done.feed)
    data = done.to_json()
    data["pending"] = [{"authority": str(a), "error": str(why)} for a, why in failed]
    data["dropped"] = [
        {"authority": str(Identifier(pending.authority)), "error": why} for pending, why in dropped
    ] + [{"authority": str(a), "error": str(why)} for a, why in gone]
    reporter.result(
        data,
        f"refreshed {reporter.label(done.credential.actor)}\n"
        + held_text(data, reporter, CLOCK.now()),
    )


@credential_group.command("delegate")
@as_option("The local identity delegating (it holds the chain it extends)")
@click.option(
    "--to", "to_ref", required=True, metavar="IDENTITY", help=f"Who receives: {IDENTITY_HELP}."
)
@click.option(
    "--attr",
    "attrs",
    multiple=True,
    metavar="KEY=VALUE",
    help="key=value to pass on (a subset of what is held; repeat the option).",
)
@duration_option(
    "--ttl", required=True, help="How long the delegation lasts (not past its parent nor your key)."
)
@click.option(
    "--purpose",
    required=True,
    callback=text_value(limits.MAX_PURPOSE_TEXT),
    help="Why: recorded in the signed link.",
)
@click.option(
    "--caveat",
    "caveats",
    multiple=True,
    callback=text_value(limits.MAX_CAVEAT_TEXT),
    metavar="CONDITION",
    help="A Cedar condition the gates will enforce (repeat for several).",
)
@click.option(
    "--depth",
    type=click.IntRange(0, limits.MAX_DELEGATION_LINKS),
    help="Further links allowed below this one (default: one less).",
)
@OUT
@renamed("--from", "--as IDENTITY")
@node_option
@json_command
def delegate_cmd(
    as_name: str,
    to_ref: str,
    attrs: tuple[str, ...],
    ttl: int,
    purpose: str,
    caveats: tuple[str, ...],
    depth: int | None,
    out: str,
    node_name: str,
    reporter: Reporter,
) -> None:
    """Delegate part of what an identity holds to another identity; the chain goes to FILE
    (--out) for the receiver to import. Refused if it would amplify (more attributes, a
    later expiry, more depth)."""
    now = CLOCK.now()
    requested = attributes_of(attrs)
    # the file first: a chain that cannot be written is never delegated, nor recorded in the
    # signed trace (review 44c, CLI 6); a refusal below leaves no file
    with output_file(out) as file, open_cli_node(node_name) as node:
        as_name = reporter.names.local(as_name, node)
        to = reporter.names.identifier(to_ref, node)
        try:
            chain = delegate_recorded(
                node,
                as_name,
                to=to,
                attributes=requested,
                ttl=ttl,
                purpose=purpose,
                caveats=caveats,
                depth=depth,
                clock=CLOCK,
            )
        except NotFound as exc:
            _best_chain(node, as_name, now)
            raise exc from None
        except CredentialError as exc:
            parent = node.wallet.inspect(
                node.wallet.parent_for(as_name, requested, now=now), now=now
            )
            raise delegation_refused(exc, parent, requested, ttl=ttl, now=now) from None
        summary = node.wallet.inspect(chain, now=now)
        file.write(chain)
    reporter.result(
        summary.to_json(),
        f"wrote a {len(summary.links)}-link chain to {escape_text(out)} for "
        f"{reporter.label(to)}, who holds it after: troth credential import {escape_text(out)} "
        f"--as {reporter.names.name_of(to) or to}\n"
        + "\n".join(link_lines(summary.links[-1:], reporter, now)),
    )


@credential_group.command("verify")
@click.argument("file", type=INPUT_FILE)
@click.option(
    "--trust",
    "trusted",
    multiple=True,
    required=True,
    metavar="AUTHORITY",
    help="A trusted authority: a local authority's name, or any identifier (repeat for several).",
)
@click.option(
    "--feed",
    "feed_files",
    multiple=True,
    type=FEED_FILE,
    metavar="FILE",
    help="A revocation feed file (troth revocations show --authority A --out FILE; a file, not -).",
)
@authority_option(
    required=False,
    help_text="Take the feed (and, for a VC, the issuer's history) from this local authority "
    "(name or identifier).",
)
@duration_option(
    "--max-feed-age",
    default=duration(FEED_STALENESS),
    show_default=True,
    help="The oldest feed accepted (1s to 30d).",
)
@click.option(
    "--presenter",
    metavar="IDENTITY",
    help="Who presents the chain (default: its last subject), or the VC (its subject).",
)
@FORMAT
@click.option(
    "--issuer-history",
    type=INPUT_FILE,
    metavar="FILE",
    help="With --format vc: the issuer's history.",
)
@click.option(
    "--no-store",
    is_flag=True,
    help="Use no node store: issuer histories are neither checked against stored copies nor "
    "stored (the feed's supersessions still apply).",
)
@click.option(
    "--context",
    "context_text",
    metavar="JSON",
    help="The request the chain's caveats are evaluated for: a JSON object (context.KEY in a "
    'caveat; "now" is the verification time), e.g. \'{"complaint": "123"}\'.',
)
@click.option(
    "--context-file",
    type=INPUT_FILE,
    metavar="FILE",
    help="--context read from FILE (- for stdin).",
)
@click.option(
    "--unevaluated-caveats",
    is_flag=True,
    help="Accept a chain with caveats without evaluating them (you enforce them yourself); "
    "without it and without a context such a chain is invalid.",
)
@node_option
@json_command
def verify(
    file: str,
    trusted: tuple[str, ...],
    feed_files: tuple[str, ...],
    authority_ref: str | None,
    max_feed_age: int,
    presenter: str | None,
    fmt: str,
    issuer_history: str | None,
    no_store: bool,
    context_text: str | None,
    context_file: str | None,
    unevaluated_caveats: bool,
    node_name: str,
    reporter: Reporter,
) -> None:
    """Verify a chain (or a single credential), or a W3C VC, in FILE (- for stdin): exit 0
    valid, 1 invalid with the reason.

    A chain is checked against the node's store of histories (each issuer's history must
    extend the stored copy, and is stored; the presenter's stored history is checked against
    the feed), and so are a VC's issuer history and the feed files' authority histories,
    unless --no-store.

    A chain whose links carry caveats (Cedar conditions) is valid only when each holds for
    the request given with --context or --context-file (principal the presenter, action
    Action::"verify", resource the last link: docs/policy.md, "Caveats outside a bundle");
    with neither it is invalid (deny when in doubt) unless --unevaluated-caveats."""
    inputs = {"FILE": file, "--issuer-history": issuer_history, "--context-file": context_file}
    stdin_once(**inputs, **feed_inputs(feed_files))
    given = [o for o, v in [("--context", context_text), ("--context-file", context_file)] if v]
    if len(given) > 1 or (given and unevaluated_caveats):
        raise click.UsageError(
            f"{' and '.join([*given, '--unevaluated-caveats'][:2])} cannot go together: give "
            "one context, or none with --unevaluated-caveats"
        )
    if fmt == "vc" and (given or unevaluated_caveats):
        raise click.UsageError("a VC carries no caveats: --context goes with a chain")
    if fmt != "vc" and issuer_history is not None:  # ignored (review 65h, cli 3)
        raise click.UsageError("--issuer-history goes with --format vc: a chain carries its own")
    now = CLOCK.now()
    context = _caveat_context(context_text, context_file, now)
    names = reporter.names
    anchors = frozenset(names.anchor(t) for t in trusted)
    local = None if authority_ref is None else names.authority(authority_ref).node
    progress = Progress("feed entries verified", 0)
    sources = Sources(anchors, home(), feed_files, local, max_feed_age, progress)
    data = read_input(
        file, limits.MAX_VC_BYTES if fmt == "vc" else limits.MAX_CHAIN_BYTES, "credential"
    )
    try:
        if fmt == "vc":
            history = (
                read_input(issuer_history, limits.MAX_IDENTITY_HISTORY_BYTES, "history")
                if issuer_history
                else None
            )
            with ExitStack() as stack:  # the store, as for a chain (review 48j, delegation 5)
                node = None if no_store else stack.enter_context(open_cli_node(node_name))
                verified_vc = verify_vc(data, sources, now=now, issuer_history=history, node=node)
            presented_by(verified_vc.subject, presenter, names)
            vc = verified_vc.to_json()
            reporter.result(vc, _vc_text(vc, reporter, now))
            return
        with ExitStack() as stack:
            node = None if no_store else stack.enter_context(open_cli_node(node_name))
            verified = verify_chain(
                data,
                sources,
                now=now,
                # `--presenter ""` is no identity, as for a VC: it meant "its last subject",
                # and anyone's chain was valid (review 65m, cli 2)
                presenter=None if presenter is None else names.identifier(presenter),
                node=node,
            )
    except CredentialError as exc:
        reporter.fail(not_verified(exc, names, anchors, now), EXIT_INVALID, invalid_object(exc))
    check = check_caveats(verified, context)  # None with --unevaluated-caveats
    refusal = None if unevaluated_caveats else check.refusal(_MISSING_CONTEXT)
    if refusal is not None:
        payload = {**invalid_object(refusal), "caveat_check": check.to_json()}
        reporter.fail(refusal, EXIT_INVALID, payload)
    result = {
        "valid": True,
        **verified.to_json(),
        "within_skew": verified.within_skew(now),
        "caveat_check": check.to_json(),
    }
    lines = [
        f"{_valid(verified.not_before, verified.expires_at, now)}: "
        f"{reporter.label(verified.actor)} acts, "
        f"for authority {reporter.label(verified.authority)}",
        *link_lines(verified.links, reporter, now),
        f"  effective attributes: {escape_text(attributes(verified.attributes))}",
        f"  window: {timestamp(verified.not_before)} .. {timestamp(verified.expires_at)} "
        f"({duration(verified.expires_at - verified.not_before)}), "
        + _ends(verified.expires_at, now),
    ]
    if check.ids:
        held = "hold for the context given" if check.evaluated else "NOT evaluated: enforce them"
        lines.append(f"  caveats: {held} ({', '.join(check.ids)})")
    reporter.result(result, "\n".join(lines))


_MISSING_CONTEXT = (
    "give the request with --context JSON or --context-file FILE, or accept the chain with "
    "its caveats unevaluated with --unevaluated-caveats"
)


def _caveat_context(text: str | None, file: str | None, now: int) -> str | None:
    """The caveats' Cedar context from --context or --context-file, with `now`
    (`caveat_context_json`); None when neither is given."""
    if file is not None:
        data = read_input(file, limits.MAX_CAVEAT_CONTEXT_BYTES, "context")
    elif text is not None:
        data = text.encode("utf-8", "surrogateescape")  # argv's bytes
    else:
        return None
    option = "--context-file" if file is not None else "--context"
    try:
        return caveat_context_json(data, now, option)
    except ArgumentError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _ends(expires_at: int, now: int) -> str:
    distance = relative(expires_at - now)
    return f"ends in {distance}" if expires_at > now else f"ended {distance} ago"


def _valid(not_before: int, expires_at: int, now: int) -> str:
    """`valid`, saying so when only the clock-skew allowance made it valid."""
    if now >= expires_at:
        past = f"{relative(now - expires_at)} past expiry" if now > expires_at else "at expiry"
        return f"valid ({past}, within the {CREDENTIAL_SKEW} s clock-skew allowance)"
    if now < not_before:
        return (
            f"valid ({relative(not_before - now)} before its start, within the "
            f"{CREDENTIAL_SKEW} s clock-skew allowance)"
        )
    return "valid"


def _vc_text(vc: dict[str, Any], reporter: Reporter, now: int) -> str:
    head = _valid(vc["valid_from"], vc["valid_until"], now)
    return f"{head}\n" + kv(
        {
            "id": vc["id"],
            "credential_hash": vc["credential_hash"],
            "issuer": reporter.label(vc["issuer"]),
            "subject": reporter.label("T" + str(vc["subject"]).rsplit(":", 1)[-1]),
            "attributes": escape_text(attributes(vc["attributes"])),
            "valid_from": moment(vc["valid_from"], now),
            "valid_until": moment(vc["valid_until"], now, expiry=True),
            "proofs": vc["proofs"],
        }
    )
