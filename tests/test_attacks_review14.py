"""Review 14's attacks: the authority pin (IDENTIFIER:KEY), trace history windows and the
node's own rows, a listener that cannot bind.

Each test asserts the secure or correct behaviour and is marked xfail while main has the bug.
"""

# Held (tried, no test kept; "ran" = exercised here, "read" = from the code only):
# - ran: check_ticket's pin forms: T- and DID-form identifiers, KEY in upper case, surrounding
#   whitespace pass; inner whitespace, "::", "0x" KEY, no KEY, "", "t" + hex, and an identifier
#   in upper-case hex are ConfigError (identifiers are lowercase by format; KEY is not).
# - read: nothing is stored before the pin check (check_ticket, find(ref), then accept_ticket;
#   the runtime's remote path only verifies the ticket first). Resumption: the pending record
#   exists only after the history was stored, so remote resumption needs no pin. A pin for a
#   full-history ticket is compared with the ticket's current key: a genuine ticket made before
#   its authority rotated (within its 600 s TTL) is refused, saying "not from the authority you
#   confirmed" (misleading, safe).
# - read: _dropped windows end at a change the newest history holds; a window ending at a key's
#   change takes the next change's time from later windows, else the node's rows, else refuses;
#   rows with no next change (key_in_rows -> retired_at None) are refused in _resolve. The
#   bundler refuses a key only a window ending at its change holds (no rows). Windows of remote
#   signers: collect.py verifies full histories (review 13). change_index scans one identity's
#   primary-key range; key epochs are cached per keyid, windows verified once per agent.
# - read: daemon "failed to start": a file opened "ab" is positioned at its end, so tell() is
#   where this start's lines begin; the port range is checked before create_server.

from __future__ import annotations

import io
from pathlib import Path

import pytest

import troth
import troth.cli.authority_cmds as authority_cmds
from tests.support.cli import run
from tests.support.traces import DAY, NOW, Held, open_log, tool_call, verify_export_on
from tests.test_api_network import run as run_async
from troth.authority.client import authority_pin_of, check_ticket
from troth.authority.tickets import Ticket
from troth.clock import FixedClock
from troth.credentials import Attributes
from troth.errors import ConfigError, TraceError
from troth.node import init_node, open_node
from troth.trace import TraceRecorder
from troth.trace.export import export_jsonl

# -- 1. a retired key, a bundle whose history ends at its change ---------------------------------


def test_a_node_that_knows_the_rotation_refuses_a_record_signed_after_it(tmp_path: Path) -> None:
    """victim's signing key under change 0 leaks; victim rotates (change 1, a day later). The
    thief keeps a log of its own (its checkpoints are its own to sign), records as victim with
    the leaked key two days after the rotation and exports it: each bundle carries victim's
    history as of change 0, which makes the key current. A node that stores victim's history
    through change 1 verifies the export (`troth trace verify --file`) with that copy: formats.md
    ("Signatures outlive rotations") says H is the newest copy the verifier has, which must not
    be older than its stored one, and rule 3 refuses t >= change 1's time. On main it verifies:
    `check_no_fork` lets an older prefix pass and the bundle's prefix judges the key current."""
    victim = Held(now=NOW)
    leaked = victim.signer(NOW)
    victim.rotate(NOW + DAY)
    clock = FixedClock(NOW + 2 * DAY)
    out = io.StringIO()
    with open_log(tmp_path / "thief.db", clock) as log:
        TraceRecorder(log, leaked, clock=clock).record(tool_call("after-the-rotation"))
        export_jsonl(log, out)
    init_node("verifier")
    with open_node("verifier") as node:
        node.identities.import_history(victim.identity, now=NOW + DAY)
        with pytest.raises(TraceError, match="after its retirement"):
            verify_export_on(node.identities, out.getvalue())


def test_a_node_refuses_a_record_its_own_rows_show_signed_after_the_key_retired(
    tmp_path: Path,
) -> None:
    """The same theft of the node's own identity's key, verified on the node with
    `troth trace verify --file`: 4c1c8d1 reads the node's own rows (`window_around`: the key's
    change and the next) only when the bundle's history lacks the key's change, so a bundle
    whose history ends at that change is taken as showing the key current, though the node's
    rows say change 1 retired it a day before the record."""
    init_node("acme")
    clock = FixedClock(NOW + 2 * DAY)  # the thief's clock (it signs while it holds the key)
    export = tmp_path / "thief.jsonl"
    with open_node("acme") as acme:
        acme.identities.create(now=NOW, name="agent")
        leaked = acme.identities.signer("agent", now=NOW)
        with open_log(tmp_path / "thief.db", clock) as log, export.open("w") as out:
            TraceRecorder(log, leaked, clock=clock).record(tool_call("after-the-rotation"))
            export_jsonl(log, out)
        acme.identities.rotate("agent", now=NOW + DAY)  # change 1 retires the key
    said = run("trace", "verify", "--file", str(export), "--node", "acme", code=1).output
    assert "after its retirement" in said


# -- 2. the authority pin ------------------------------------------------------------------------


def _ticket_and_pin() -> tuple[Ticket, str]:
    """acme's authority (full history), a ticket for it, its pin; newbie, a node beside it."""
    init_node("acme")
    init_node("newbie")
    with open_node("acme") as node:
        authority = node.create_authority("acme", now=NOW)
        ticket = authority.create_ticket(
            creator=authority.identifier, attributes=Attributes(), address="node:acme", now=NOW
        )
        pin = authority_pin_of(node.identities.get("acme", now=NOW).identity)
    return ticket, pin


def test_a_pin_whose_identifier_is_d_and_hex_is_refused_typed() -> None:
    """`check_ticket` promises ConfigError for a pin that is not one. `Identifier.looks_like`
    takes any "d" + 64 hex digits (it means the DID form), so "d<hex>:KEY" passes the form
    check and `Identifier.parse` raises a bare ValueError: a traceback from `troth enroll
    --authority-pin`, an internal error from the control op. (`troth authority ticket ...
    --authority d<hex>`, through `Names.authority`, raises the same.)"""
    ticket, pin = _ticket_and_pin()
    identifier, key = pin.split(":")
    with open_node("newbie") as newbie, pytest.raises(ConfigError, match="not an authority pin"):
        check_ticket(newbie.identities, ticket, now=NOW, authority_pin=f"d{identifier[1:]}:{key}")


def test_authority_list_lists_every_authority_when_one_cannot_say_its_pin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """9203ba0 made `troth authority list` open each authority's node and verify its identity
    now, to print the pin: one authority whose identity is past its validity (or whose node
    cannot be opened) fails the whole listing (exit 1), where it listed names before. The list
    should still name every authority (the pin of that one left out, or marked)."""
    _ticket_and_pin()
    monkeypatch.setattr(authority_cmds, "CLOCK", FixedClock(NOW + 40 * 365 * DAY))
    said = run("authority", "list").output
    assert "acme" in said


# -- 3. a listener that cannot bind --------------------------------------------------------------


def test_a_listen_host_that_is_no_name_is_a_config_error() -> None:
    """1662d97 turns an OSError from `create_server` into ConfigError, but a host the IDNA codec
    refuses (an empty label "..", a label over 63 characters) raises UnicodeError (a
    ValueError) from getaddrinfo's encoding, and a NUL a ValueError: `node.serve(listen=...)`
    and `troth node start --foreground --tcp-listen ..:9000` end in a traceback, untyped."""

    async def test() -> None:
        with troth.Node.open("agents") as node:
            for host in ("..", "a" * 64):
                with pytest.raises(troth.ConfigError, match="cannot listen on"):
                    async with node.serve(listen=(host, 0)):
                        pass

    run_async(test)
