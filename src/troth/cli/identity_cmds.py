"""`troth identity ...`: create, show, rotate, export, verify, import, list, did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from troth import limits
from troth.cli.common import CLOCK, INPUT_FILE, node_option, open_cli_node, read_input
from troth.cli.network_cmds import _ask
from troth.cli.output import EXIT_INVALID, Reporter, invalid_object, json_command, kv
from troth.credentials.wallet import Announcement
from troth.crypto import KeyType
from troth.errors import IdentityError, TrothError
from troth.identity import VerifiedIdentity, did_document, verify_history
from troth.node import open_node, troth_home
from troth.node.authorities import announce_here

KEY_TYPES = click.Choice(["ed25519", "p256"])


def describe(identity: VerifiedIdentity, name: str | None = None) -> dict[str, Any]:
    current = identity.current.body
    return {
        "name": name,
        "identifier": str(identity.identifier),
        "did": identity.identifier.did,
        "key_type": current.primary_key.key_type.label,
        "public_key": current.primary_key.data.hex(),
        "changes": len(identity.changes),
        "valid_until": current.valid_until,
    }


@click.group("identity")
def identity_group() -> None:
    """Agent identities: signed change histories whose identifier survives key rotation."""


@identity_group.command("create")
@click.option("--name", help="A local name (lowercase letters, digits, . _ -).")
@click.option("--key-type", type=KEY_TYPES, default="ed25519", show_default=True)
@click.option("--count", type=click.IntRange(1, 1_000_000), default=1, help="Create this many.")
@node_option
@json_command
def create(name: str | None, key_type: str, count: int, node_name: str, reporter: Reporter) -> None:
    """Create an identity (its primary key is generated inside the node's vault)."""
    with open_cli_node(node_name) as node:
        if count == 1:
            local = node.identities.create(
                now=CLOCK.now(), name=name, key_type=KeyType.from_label(key_type)
            )
            data = describe(local.identity, local.name)
            reporter.result(data, kv(data))
            return

        def progress(done: int, total: int) -> None:
            if done % max(1, total // 10) == 0 or done == total:
                reporter.info(f"created {done}/{total}")

        created = node.identities.create_many(
            count,
            now=CLOCK.now(),
            key_type=KeyType.from_label(key_type),
            name_prefix=name,
            progress=progress,
        )
        reporter.result(
            [describe(c.identity, c.name) for c in created],
            "\n".join(str(c.identifier) for c in created),
        )


@identity_group.command("show")
@click.argument("ref")
@node_option
@json_command
def show(ref: str, node_name: str, reporter: Reporter) -> None:
    """Show a local identity by NAME or IDENTIFIER."""
    with open_cli_node(node_name) as node:
        local = node.identities.get(ref, now=CLOCK.now())
        data = describe(local.identity, local.name)
        reporter.result(data, kv(data))


@identity_group.command("list")
@node_option
@json_command
def list_(node_name: str, reporter: Reporter) -> None:
    """List the node's local identities."""
    with open_cli_node(node_name) as node:
        rows = [
            {"name": r.name, "identifier": "T" + r.identifier.hex(), "changes": r.changes}
            for r in node.identities.list_local()
        ]
    text = "\n".join(f"{r['identifier']}  {r['changes']}  {r['name'] or ''}" for r in rows)
    reporter.result(rows, text or "(no identities)")


@identity_group.command("rotate")
@click.argument("ref")
@click.option("--key-type", type=KEY_TYPES, help="Key type of the new key (default: unchanged).")
@node_option
@json_command
def rotate(ref: str, key_type: str | None, node_name: str, reporter: Reporter) -> None:
    """Rotate the primary key: append a change signed by the new and the current key, then
    announce the new history to every authority the identity holds credentials from (so their
    feeds tell every verifier the older history is superseded)."""
    with open_cli_node(node_name) as node:
        local = node.identities.rotate(
            ref, now=CLOCK.now(), key_type=KeyType.from_label(key_type) if key_type else None
        )
        data: dict[str, Any] = describe(local.identity, local.name)
    announced = _announce(node_name, ref)
    lines = [kv(data)]
    for row in announced:
        if row["announced"]:
            lines.append(f"announced to {row['authority']} (feed entry {row['seq']})")
        else:
            reporter.info(
                f"troth: warning: not announced to {row['authority']}: {row['error']} "
                "(the rotation is committed; a running node retries)"
            )
    reporter.result({**data, "announcements": announced}, "\n".join(lines))


def _announce(node_name: str, ref: str) -> list[dict[str, Any]]:
    """Announce `ref`'s rotated history: to authorities on this machine directly, to others
    over a secure channel (through the running node, else a transient one)."""
    with open_cli_node(node_name) as node:
        done, remote = announce_here(node, ref, now=CLOCK.now())
        changes = node.identities.find(ref).changes
    rows = [outcome.to_json() for outcome in done]
    if remote:
        try:
            rows.extend(_ask(node_name, "announce", {"identity": ref}))
        except TrothError as exc:
            rows.extend(Announcement(ref, a, changes, error=str(exc)).to_json() for a in remote)
    return rows


@identity_group.command("export")
@click.argument("ref")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="File to write.")
@node_option
@json_command
def export(ref: str, out: str, node_name: str, reporter: Reporter) -> None:
    """Write the identity's change history (binary, canonical CBOR) to a file."""
    with open_cli_node(node_name) as node:
        history = node.identities.export(ref)
    Path(out).write_bytes(history)
    data = {"file": out, "bytes": len(history)}
    reporter.result(data, f"wrote {len(history)} bytes to {out}")


@identity_group.command("verify")
@click.argument("file", type=INPUT_FILE)
@click.option("--node", "node_name", help="Also require an extension of this node's stored copy.")
@json_command
def verify(file: str, node_name: str | None, reporter: Reporter) -> None:
    """Verify a change history file: exit 0 if valid, 1 with the reason if not."""
    data = read_input(file, limits.MAX_IDENTITY_HISTORY_BYTES, "history")
    try:
        identity = verify_history(data, now=CLOCK.now())
        if node_name is not None:
            with open_node(node_name, home=troth_home()) as node:
                node.identities.check_known(identity)
    except IdentityError as exc:
        reporter.fail(exc, EXIT_INVALID, invalid_object(exc))
    result = {"valid": True, **describe(identity)}
    del result["name"]
    reporter.result(result, "valid\n" + kv(result))


@identity_group.command("import")
@click.argument("file", type=INPUT_FILE)
@node_option
@json_command
def import_(file: str, node_name: str, reporter: Reporter) -> None:
    """Store a verified history; a known identity accepts only an extension (no fork/rollback)."""
    history = read_input(file, limits.MAX_IDENTITY_HISTORY_BYTES, "history")
    with open_cli_node(node_name) as node:
        identity = node.identities.import_history(history, now=CLOCK.now())
    data = describe(identity)
    del data["name"]
    reporter.result(data, kv(data))


@identity_group.command("did")
@click.argument("ref")
@node_option
@json_command
def did(ref: str, node_name: str, reporter: Reporter) -> None:
    """Print the DID document (did:troth) of a local identity."""
    with open_cli_node(node_name) as node:
        document = did_document(node.identities.get(ref, now=CLOCK.now()).identity)
    reporter.result(document, json.dumps(document, indent=2))
