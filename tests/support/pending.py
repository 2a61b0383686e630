"""Enrollments left pending by a passing failure, and tickets an authority never made (review
61l: an interrupted enrollment beside another ticket's)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet
from troth.authority import Ticket
from troth.clock import Clock
from troth.credentials import Attributes
from troth.enrollment import enroll, enrollment, request_of
from troth.errors import RemoteError
from troth.node import Node
from troth.node.runtime import NodeRuntime


def _unreachable(request: bytes) -> bytes:
    raise RemoteError("no route to the authority")  # a passing failure: kept, resumed later


def enroll_unreachable(member: Node, ref: str, ticket: Ticket | str, clock: Clock) -> None:
    """`troth enroll` of `member`'s local identity `ref` with `ticket`, its request failing for
    a passing reason (the network down): its pending record stays."""
    with pytest.raises(RemoteError):
        enroll(member.identities, member.wallet, ref, ticket, clock=clock, send=_unreachable)


def made_up(ticket: Ticket) -> Ticket:
    """A ticket of `ticket`'s authority and address that it never made (refused for good)."""
    return Ticket(os.urandom(32), ticket.authority_history, ticket.address)


def old_pending_schema(db_path: Path) -> None:
    """node.db's pending enrollments as a troth before review 61l kept them (one record per
    identity and authority)."""
    conn = sqlite3.connect(db_path)
    with conn:
        conn.executescript(
            """
            CREATE TABLE old_pending (
                identifier BLOB NOT NULL, authority BLOB NOT NULL, ticket TEXT NOT NULL,
                address TEXT NOT NULL, started_at INTEGER NOT NULL,
                PRIMARY KEY (identifier, authority)
            );
            INSERT INTO old_pending SELECT * FROM pending_enrollments;
            DROP TABLE pending_enrollments;
            ALTER TABLE old_pending RENAME TO pending_enrollments;
            """
        )
    conn.close()


def hub_ticket(net: MemNet, team: str) -> Ticket:
    """A ticket of the memory network's authority, at the hub, for `team`."""
    authority = net.authority
    return authority.create_ticket(
        creator=authority.identifier,
        attributes=Attributes({"agents.team": team}),
        address=HUB,
        now=net.clock.now(),
    )


def record_at_hub(net: MemNet, member: NodeRuntime, ticket: Ticket, *, redeemed: bool) -> None:
    """`troth enroll` of `member`'s identity `agent` with `ticket`, interrupted: its request
    committed by the hub's authority, the answer lost (`redeemed`), or never arriving."""
    node = member.node
    steps = enrollment(node.identities, node.wallet, "agent", ticket, clock=net.clock)
    request = request_of(steps)
    if redeemed:
        net.authority.enroll(request, now=net.clock.now())
    steps.close()
