"""`troth identity ...`: create, show, list, rotate, export, verify, import, did, forks,
release-restored."""

from __future__ import annotations

from typing import Any

import click

from troth import limits
from troth.cli.common import (
    CLOCK,
    INPUT_FILE,
    OUTPUT_FILE,
    home,
    node_option,
    open_cli_node,
    read_input,
    renamed,
    write_output,
)
from troth.cli.network_cmds import ask_node
from troth.cli.output import (
    EXIT_INVALID,
    Explained,
    Progress,
    Reporter,
    error_object,
    escape_text,
    invalid_object,
    json_command,
    json_text,
    kv,
)
from troth.cli.text import moment
from troth.credentials.wallet import Announcement
from troth.crypto import KeyType, sha256
from troth.errors import CredentialError, IdentityError, TrothError
from troth.identity import Identifier, VerifiedIdentity, did_document, verify_history
from troth.identity.service import IdentityExists
from troth.node import open_node, troth_home
from troth.node.authorities import announce_here
from troth.node.release import VOUCH_OPTION
from troth.node.release import release_restored as release
from troth.node.rotation import rotate_local
from troth.node.rotation_revoke import done as revocation_done
from troth.node.verify import (
    forked_by,
    import_bare_history,
    superseded_reason,
    verify_bare_history,
)
from troth.secrets.wire import BROKER

KEY_TYPES = click.Choice(["ed25519", "p256"])
IDENTITY_ARG = click.argument("ref", metavar="IDENTITY")


def describe(identity: VerifiedIdentity, name: str | None = None) -> dict[str, Any]:
    """An identity as `--json` shows it (times in epoch seconds)."""
    current = identity.current.body
    return {
        "name": name,
        "identifier": str(identity.identifier),
        "did": identity.identifier.did,
        "key_type": current.primary_key.key_type.label,
        "public_key": current.primary_key.data.hex(),
        "changes": identity.change_count,
        "valid_until": current.valid_until,
    }


def shown(data: dict[str, Any]) -> str:
    """An identity for people (no empty name, the key's validity as a date)."""
    now = CLOCK.now()
    return kv({**data, "valid_until": moment(data["valid_until"], now, expiry=True)})


@click.group(
    "identity",
    epilog="""\b
Example:
  troth identity create support-agent
  troth identity rotate support-agent
  troth identity export support-agent --out agent.id
  troth identity verify agent.id""",
)
def identity_group() -> None:
    """Agent identities: signed change histories whose identifier survives key rotation.

    An IDENTITY argument is a local name or an identifier (T…)."""


@identity_group.command("create")
@click.argument("name", required=False)
@click.option(
    "--key-type",
    type=KEY_TYPES,
    default="ed25519",
    show_default=True,
    help="The primary key's type.",
)
@click.option(
    "--count",
    type=click.IntRange(1, 1_000_000),
    default=1,
    show_default=True,
    help="Create this many, named NAME-0, NAME-1, ... (one transaction: all or none).",
)
@renamed("--name", "troth identity create NAME")
@node_option
@json_command
def create(name: str | None, key_type: str, count: int, node_name: str, reporter: Reporter) -> None:
    """Create identity NAME (lowercase letters, digits, . _ -; no NAME: unnamed); its
    primary key is generated inside the node's vault."""
    with open_cli_node(node_name) as node:
        if count == 1:
            try:
                local = node.identities.create(
                    now=CLOCK.now(), name=name, key_type=KeyType.from_label(key_type)
                )
            except IdentityExists as exc:
                raise Explained(
                    exc,
                    f"node {node_name!r} already has an identity named {name!r}: "
                    f"{exc.identifier} (troth identity show {name}); choose another name",
                ) from None
            data = describe(local.identity, local.name)
            reporter.result(data, shown(data))
            return
        counter = Progress("created (not yet committed)", count)

        def progress(stage: str, done: int, total: int) -> None:
            if stage == "committing":  # nothing is stored until the commit returns
                counter.note(f"committing {total} identities ...")
            else:
                counter(done, total)

        created = node.identities.create_many(
            count,
            now=CLOCK.now(),
            key_type=KeyType.from_label(key_type),
            name_prefix=name,
            progress=progress,
        )
        counter.note(f"committed {count} identities")
        reporter.result(
            [describe(c.identity, c.name) for c in created],
            "\n".join(f"{c.identifier}  {c.name or ''}".rstrip() for c in created),
        )


@identity_group.command("show")
@IDENTITY_ARG
@node_option
@json_command
def show(ref: str, node_name: str, reporter: Reporter) -> None:
    """Show local identity IDENTITY (a name or an identifier)."""
    with open_cli_node(node_name) as node:
        ref = reporter.names.local(ref, node)
        local = node.identities.get(ref, now=CLOCK.now())
        data = describe(local.identity, local.name)
        # a rotation whose announcement never happened (the command killed after its commit,
        # the authority unreachable) is reported, never shown as done (review 38c, rotate 1)
        _changes, due = node.wallet.unannounced(ref)
        forked = node.identities.forks(local.identity.identifier)
        superseded = superseded_reason(node, local.identity)
        lost_to, elsewhere = forked_by(node, local.identity) if superseded else ([], [])
    text = shown(data)
    if lost_to:  # review 64s, rotation 1: not an older copy; "use the node" named the thief's
        data["superseded"] = superseded
        data["forked_by"] = [str(authority) for authority in lost_to]
        text += f"\nsuperseded: {superseded}\n" + "\n".join(
            f"{reporter.label(authority)} took another rotation of this identity, made with a "
            "copy of its keys (a clone of this node, or a stolen backup) and announced first: "
            "it refuses this node's history and serves that one. If this node is the "
            "identity's own, the identity is lost to that authority: have its operator revoke "
            f"it (troth revoke identity {local.identity.identifier} --authority NAME) and "
            'enroll a new identity (docs/vault.md, "Recovering from a stolen backup")'
            for authority in lost_to
        )
    elif superseded is not None and not elsewhere:  # review 50g, local 1: a restored node.db
        data["superseded"] = superseded
        text += (
            f"\nsuperseded: {superseded}\nthis node holds an older copy of the identity than "
            "(or a fork of) the one its owner announced (a restored node.db, or a clone): what "
            "it signs is refused wherever that feed is held; use the node that holds the "
            "current history. If none of yours holds it, a copy of its keys (a stolen backup) "
            "rotated it and announced that first: the identity is lost to that authority; have "
            f"its operator revoke it (troth revoke identity {local.identity.identifier} "
            '--authority NAME) (docs/vault.md, "Recovering from a stolen backup")'
        )
    if elsewhere:  # review 65j, forked 2: a co-trusted authority's word, not her own's
        data["superseded"] = superseded
        data["forked_by_co_trusted"] = [str(authority) for authority in elsewhere]
        head = "" if lost_to else f"\nsuperseded: {superseded}"
        text += f"{head}\n" + "\n".join(
            f"{reporter.label(authority)} serves another rotation of this identity, made with "
            "a copy of its keys (a clone of this node, or a stolen backup) and announced there: "
            "the identity holds no credential of it, so only where it is judged by that "
            "authority's feed (shown with no chain, or with its chains) is this history "
            "refused; the authorities of its credentials are not concerned. Someone holds its "
            "keys: rotate it with --compromised unless it was since, and have that authority's "
            f"operator revoke it there (troth revoke identity {local.identity.identifier} "
            '--authority NAME) (docs/vault.md, "Recovering from a stolen backup")'
            for authority in elsewhere
        )
    if forked:  # review 49c, forks 1: the proof that a copy of its keys is in other hands
        data["forks"] = len(forked)
        newest = moment(max(fork.seen_at for fork in forked), CLOCK.now())
        text += (
            f"\n{len(forked)} fork(s) of it seen and refused, the newest {newest}: someone held "
            f"its keys (troth identity forks {local.identity.identifier} --node {node_name}); "
            "rotate it with --compromised unless it was since "
            '(docs/vault.md, "Recovering from a stolen backup")'
        )
    if due:
        data["unannounced"] = [str(authority) for authority in due]
        name = local.name or str(local.identity.identifier)
        own = local.name == node_name
        refusing = _refusing_as_fork(node_name, due, local.identity.identifier, own=own)
        if refusing:
            data["refused_as_fork_by"] = [str(authority) for authority in refusing]
        text += "\n" + "\n".join(
            f"not announced to {reporter.label(authority)}: it refuses this history as a fork "
            "of the rotation it took (above); announcing it again cannot change that"
            if authority in lost_to
            else f"not announced to {reporter.label(authority)}: its node refuses this history "
            "as a fork of the one it stored (a copy of its keys, a stolen backup or a clone of "
            "this node, rotated it first and announced that); announcing it again cannot "
            "change that. If this node is the identity's own, have its operator revoke it "
            f"(troth revoke identity {local.identity.identifier} --authority NAME) and enroll "
            'a new identity (docs/vault.md, "Recovering from a stolen backup")'
            if authority in refusing
            else f"not yet announced to {reporter.label(authority)}: its feed does not supersede "
            f"the older history yet (troth credential refresh {name} --node {node_name}, or the "
            "running node's next round, announces it)"
            for authority in due
        )
    reporter.result(data, text)


def _refusing_as_fork(
    node_name: str, due: list[Identifier], identifier: Identifier, *, own: bool
) -> list[Identifier]:
    """The authorities of `due` whose node refused local identity `identifier`'s history as a
    fork: at the running node's last attempt on its link there, for the node's own identity
    (`own`; review 64u, rotation 1: a remote authority's node refuses the handshake, so the
    node never gets the feed `forked_by` reads), or at its last announcement of the identity
    (an agent's `rotated` request refused: review 65a, forked 2); none when the node is not
    running or does not answer."""
    from troth.node.daemon import control, node_status

    status = node_status(home(), node_name)
    if not status["running"]:
        return []
    try:
        answer = control(home(), node_name, "status", {}, status=status)
    except TrothError:
        return []
    links = (answer.get("links") or []) if own else []
    forked = {row.get("authority") for row in links if row.get("forked")}
    forked.update(
        row.get("authority")
        for row in answer.get("refused_as_fork") or []
        if row.get("identity") == str(identifier)
    )
    return [authority for authority in due if str(authority) in forked]


@identity_group.command("list")
@node_option
@json_command
def list_(node_name: str, reporter: Reporter) -> None:
    """List the node's local identities: name, identifier, number of changes."""
    with open_cli_node(node_name) as node:
        rows: list[dict[str, Any]] = [
            {"name": r.name, "identifier": "T" + r.identifier.hex(), "changes": r.changes}
            for r in node.identities.list_local()
        ]
    width = max((len(r["name"] or "") for r in rows), default=0)
    text = "\n".join(
        f"{r['name'] or '-':<{width}}  {r['identifier']}  {r['changes']} change(s)" for r in rows
    )
    reporter.result(rows, text or f"node {node_name!r} has no identities")


@identity_group.command("rotate")
@IDENTITY_ARG
@click.option("--key-type", type=KEY_TYPES, help="Key type of the new key (default: unchanged).")
@click.option(
    "--compromised",
    is_flag=True,
    help="The node's keys may have been copied (a stolen backup): append two changes, so the "
    "new key is one made now, not the committed next key every copy holds.",
)
@node_option
@json_command
def rotate(
    ref: str, key_type: str | None, compromised: bool, node_name: str, reporter: Reporter
) -> None:
    """Rotate IDENTITY's primary key: append a change signed by the new and the current key,
    then announce the new history to every authority the identity holds credentials from (so
    their feeds tell every verifier the older history is superseded). After a stolen backup,
    rotate with --compromised: a plain rotation reveals the next key the backup holds; on a
    broker node it revokes every lease whose chain names IDENTITY, as lease revoke --holder."""
    with open_cli_node(node_name) as node:
        ref = reporter.names.local(ref, node)
        local = rotate_local(  # the clock is read once the write lock is held
            node,
            ref,
            clock=CLOCK,
            key_type=KeyType.from_label(key_type) if key_type else None,
            compromised=compromised,
        )
        data: dict[str, Any] = describe(local.identity, local.name)
        broker = compromised and BROKER in node.config.services
    unrevoked: TrothError | None = None
    try:  # what the copied key obtained here ends with it (review 67f, secrets 1), before
        # the announcement, whose network a Ctrl-C may cut short (review 68c, revoke 1)
        if broker:
            data["leases_revoked"] = _revoke_rotated(node_name, local.identity)
    except TrothError as exc:  # reported once the announcements are (review 68n, revoke 1)
        unrevoked = exc
    finally:  # announced however the revocation ends (a failed one stays due: 67l)
        announced = _announce(node_name, ref)
    _hint_resign(node_name, local.identity.identifier, reporter)
    lines = [shown(data)]
    if broker and unrevoked is None:
        lines.append(f"revoked {data['leases_revoked']} lease(s) at this broker")
    for row in announced:
        authority = reporter.label(row["authority"])
        if row["announced"]:
            lines.append(f"announced to {authority} (feed entry {row['seq']})")
        else:
            error = reporter.names.label_text(row["error"])
            reporter.warn(
                f"not announced to {authority}: {error} "
                + (
                    "(the rotation is committed)"  # review 64u, rotation 3: retrying cannot help
                    if row.get("forked")
                    else "(the rotation is committed; a running node retries)"
                )
            )
    if unrevoked is not None:  # the rotation stands: say so, not only the revocation's error
        reporter.info("\n".join(lines))
        reporter.warn(
            f"the rotation is committed ({local.identity.change_count} changes) and announced "
            "(each authority's outcome reported); the leases whose chain names it are not all "
            "revoked: they stay due, revoked by this node's broker at its next start or "
            "maintenance round (do not rotate again)"
        )
        rotation = {**data, "announcements": announced}
        reporter.fail(unrevoked, payload={**error_object(unrevoked), "rotation": rotation})
    reporter.result({**data, "announcements": announced}, "\n".join(lines))


def _hint_resign(node_name: str, identity: Identifier, reporter: Reporter) -> None:
    """The node's authority rotated: the bundle it holds of it is out of force once the feed
    supersedes the older history. Say how to re-sign it — never automatically: the held
    bundle may be one a thief pushed with the key this rotation retired."""
    from troth.node.services.policy import held_authority_bundle

    found = held_authority_bundle(home(), node_name)
    if found is None or found[0] != identity:
        return
    reporter.warn(
        f"the policy bundle this node holds (digest {sha256(found[1]).hex()}) was "
        "signed under the retired key and is out of force; check it (troth policy show), then "
        f"re-sign it: troth policy bundle resign --digest <digest> --node {node_name}"
    )


def _revoke_rotated(node_name: str, rotated: VerifiedIdentity) -> int:
    """Revoke at node `node_name`'s broker every lease whose chain names `rotated`, rotated
    as compromised: by the running node, else in this process (a transient node's start
    would revoke them as due, its count lost: troth.node.rotation_revoke); then no longer
    due (review 67l, rotate 1). How many it revoked."""
    from troth.node.daemon import node_status  # asyncio: on use only
    from troth.node.secret_api import revoke_holder, trace_audit

    identity = rotated.identifier
    if node_status(home(), node_name)["running"]:
        arguments = {"identity": str(identity)}
        ended = ask_node(node_name, "broker.revoke-identity", arguments, transient=False)
        count = int(ended.get("revoked", len(ended["leases"])))
    else:
        with open_cli_node(node_name) as node, trace_audit(node, CLOCK) as audit:
            count = len(revoke_holder(node, identity, now=CLOCK.now(), audit=audit))
    with open_cli_node(node_name) as node:
        revocation_done(node, identity.digest, rotated.change_count)
    return count


def _announce(node_name: str, ref: str) -> list[dict[str, Any]]:
    """Announce `ref`'s rotated history: to authorities on this machine directly, to others
    over a secure channel (through the running node, else a transient one)."""
    with open_cli_node(node_name) as node:
        done, remote = announce_here(node, ref, now=CLOCK.now())
        changes = node.identities.find(ref).changes
    rows = [outcome.to_json() for outcome in done]
    if remote:
        try:
            rows.extend(ask_node(node_name, "announce", {"identity": ref}))
        except TrothError as exc:
            rows.extend(Announcement(ref, a, changes, error=str(exc)).to_json() for a in remote)
    return rows


@identity_group.command("export")
@IDENTITY_ARG
@click.option("--out", required=True, type=OUTPUT_FILE, metavar="FILE", help="File to write.")
@node_option
@json_command
def export(ref: str, out: str, node_name: str, reporter: Reporter) -> None:
    """Write IDENTITY's change history (binary, canonical CBOR) to a file: what a verifier
    needs to check it (troth identity verify)."""
    with open_cli_node(node_name) as node:
        history = node.identities.export(reporter.names.local(ref, node))
    write_output(out, history)
    data = {"file": out, "bytes": len(history)}
    reporter.result(data, f"wrote {len(history)} bytes to {escape_text(out)}")


@identity_group.command("verify")
@click.argument("file", type=INPUT_FILE)
@click.option(
    "--node",
    "node_name",
    metavar="NODE",
    help="Also require the history to extend this node's stored copy (no fork, no rollback) and "
    "not be superseded in a feed the node holds (a trusted authority's own history: in its own "
    "feed); a checkpointed history is attested by that copy or by a fresh feed the node holds. "
    "A valid history that extends the stored copy replaces it (an unknown one is not stored).",
)
@json_command
def verify(file: str, node_name: str | None, reporter: Reporter) -> None:
    """Verify a change history FILE (- for stdin): exit 0 if valid, 1 with the reason if not."""
    data = read_input(file, limits.MAX_IDENTITY_HISTORY_BYTES, "history")
    now = CLOCK.now()
    try:
        if node_name is None:
            identity = verify_history(data, now=now)
        else:
            with open_node(node_name, home=troth_home()) as node:
                identity = verify_bare_history(node, data, now=now)
    except (IdentityError, CredentialError) as exc:
        reporter.fail(exc, EXIT_INVALID, invalid_object(exc))
    # `valid` is said once: the first line, not again as `valid: True` beneath it
    facts = describe(identity)
    del facts["name"]
    reporter.result({"valid": True, **facts}, "valid\n" + shown(facts))


@identity_group.command("import")
@click.argument("file", type=INPUT_FILE)
@node_option
@json_command
def import_(file: str, node_name: str, reporter: Reporter) -> None:
    """Store a verified history FILE (- for stdin); a known identity accepts only an extension
    of its stored copy (no fork, no rollback), but for a trusted authority's full history over
    a copy only another authority's checkpoint ties to it. A history a held feed supersedes is
    refused (a trusted authority's own: by its own feed)."""
    history = read_input(file, limits.MAX_IDENTITY_HISTORY_BYTES, "history")
    with open_cli_node(node_name) as node:
        identity = import_bare_history(node, history, now=CLOCK.now())
    data = describe(identity)
    del data["name"]
    reporter.result(data, shown(data))


@identity_group.command("did")
@IDENTITY_ARG
@node_option
@json_command
def did(ref: str, node_name: str, reporter: Reporter) -> None:
    """Print the DID document (did:troth, JSON) of local identity IDENTITY."""
    with open_cli_node(node_name) as node:
        document = did_document(
            node.identities.get(reporter.names.local(ref, node), now=CLOCK.now()).identity
        )
    reporter.result(document, json_text(document))


@identity_group.command("forks")
@IDENTITY_ARG
@node_option
@json_command
def forks(ref: str, node_name: str, reporter: Reporter) -> None:
    """List the histories of IDENTITY this node refused as forks of its stored copy, kept as
    evidence: the first change of each that the stored copy does not hold is signed with the
    identity's keys, as the stored copy's is, so one of the two was made by someone holding a
    copy of them (a stolen backup), or its owner signed both. JSON carries each history (hex),
    which `troth identity verify` takes."""
    with open_cli_node(node_name) as node:
        identifier = reporter.names.identifier(ref, node)
        kept = node.identities.forks(identifier)
    rows = [
        {
            "index": fork.index,
            "change_hash": fork.change_hash.hex(),
            "seen_at": fork.seen_at,
            "history": fork.history.hex(),
        }
        for fork in kept
    ]
    now = CLOCK.now()
    text = "\n".join(
        f"change {fork.index} {fork.change_hash.hex()}  seen {moment(fork.seen_at, now)}"
        for fork in kept
    )
    reporter.result(rows, text or f"no fork of {identifier} seen by node {node_name!r}")


@identity_group.command("release-restored")
@IDENTITY_ARG
@node_option
@click.option(
    VOUCH_OPTION,
    "vouch",
    is_flag=True,
    help="Where no feed issued after the hold can tell (no authority, an unreachable one): "
    "release on your word that IDENTITY was NOT rotated after the copy was taken.",
)
@json_command
def release_restored(ref: str, node_name: str, vouch: bool, reporter: Reporter) -> None:
    """Release IDENTITY held by a restore of node.db: it signs and rotates again.

    node.db was found restored from a copy taken before a rotation, and every identity it
    holds was held. Release only one you know was NOT rotated after the copy was taken: one
    that was holds the keys its rotation retired (make a new one and enroll it instead).
    Released only when the feed of every trusted authority it is a member of was issued after
    the hold (those on this machine are pulled first) and none shows it rotated; else refused,
    saying how to pull them, or --vouch-not-rotated (a delegate: no feed shows its rotation).
    See docs/vault.md,
    "A node.db restored from before a rotation"."""
    with open_cli_node(node_name) as node:
        ref = reporter.names.local(ref, node)
        local = node.identities.get(ref, now=CLOCK.now())
        # review 57v, release 1: refused unless a feed issued after the hold tells (troth.node.
        # release), the feeds node.db holds being the copy's, older than a rotation since
        done = release(node, ref, clock=CLOCK, vouch=vouch)
    data = {
        **describe(local.identity, local.name),
        "released": done.released,
        "held_at": done.held_at,
        "held_at_damaged": done.held_at_damaged,  # its time unknown (review 72b, holds 1)
        "vouched": done.vouched,
        "feeds": [
            {
                "authority": str(f.authority),
                "fresh": f.fresh,
                "pulled": f.pulled,
                "issued_at": f.issued_at,
                "error": f.error,
            }
            for f in done.feeds
        ],
    }
    if not done.released:
        reporter.result(data, f"{ref!r} is not held by a restore of node {node_name!r}")
        return
    if done.vouched:
        reporter.warn(
            f"{ref!r} released on your word ({VOUCH_OPTION}): no feed issued after the hold "
            "told whether it was rotated after the copy was taken; you vouched it was not"
        )
    reporter.warn(
        f"{ref!r} released: it signs with the keys the copy holds; had it been rotated after "
        "the copy was taken, they are keys its rotation retired and a rotation from them forks "
        "its history: such an identity is lost on this node (make a new one and enroll it)"
    )
    reporter.result(data, f"{ref!r} released: it signs, opens channels and rotates again")
