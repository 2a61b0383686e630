"""Review 69p (flake): `test_review55j_refuted.py::test_an_open_channel_of_the_stolen_key_gets_
nothing_once_the_node_admitted_the_rotation` failed once under load: alice, just rotated as
compromised, opened her own channel to desk, and desk refused her: `peer not allowed (desk
refused T…: it holds no credential from an authority desk trusts (a credential from T05ddff…`.

flake 1 (medium: an honest member refused after her rotation; the product's race, and the
test's premise). Alice's `serve` runs a maintenance round first, which announces her rotation
to acme, on this machine: desk (trusting acme) is marked due a sync of acme's feed before acme
commits the supersession, and the daemons running here are told after, on a thread
(`tell_local_nodes`). Desk served in this process is no daemon: no one told it. It read the
mark at its next poll (`DUE_POLL`, 1 s), and from then until its own sync of acme's feed
ended it refused every chain of acme (deny when in doubt: `its feed is due a sync after a
revocation made on this machine`): alice's handshake landed in that window under load.
`Node.rotate` told the runtimes served here (`sync_runtimes_here`), but their sync cleared no
mark: each still refused acme's members until its own poll synced the feed again. Now the
runtime's announcement tells the runtimes served in this process as `Node.rotate` does, and
their sync clears the marks it settles (`orphaned_marks`, as a node's own sync does): once the
announcement returned, desk holds the supersession and no mark. (A daemon is told on a thread:
it refuses acme's members from its read of the mark until its sync ends, within `DUE_POLL`
and one sync; deny when in doubt.) The 55j test assumed acme heard nothing, yet alice's serve
announced to it: the thief's next request was refused as `superseded history` when desk had
synced first, not as `older than the` copy stored; it now makes acme unreachable, as its
docstring says.

flake 2 (low: a misleading, cut refusal): a CLOSE frame's detail was cut at 200 bytes: a
refusal naming the peer and an authority (65 characters each) lost its reason, the one part
that tells the peer what to do. Now `limits.MAX_CLOSE_DETAIL` (512) bytes, and past it the
identifiers and digests are shortened first (troth.channel.close_detail).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import troth
from troth.channel.close_detail import close_detail
from troth.identity import Identifier
from troth.limits import MAX_CLOSE_DETAIL
from troth.node import open_node


@pytest.fixture
def nodes(troth_home: Path) -> tuple[Identifier, Identifier]:
    """alice, a member of acme (its authority on node acme); desk, trusting acme. Returns
    alice's identifier and desk's."""
    with troth.Node.open("acme") as acme:
        ticket = acme.create_authority().ticket({"team.name": "x"})
        authority = acme.identity.identifier
    with troth.Node.open("alice") as alice:
        alice.enroll(ticket)
        identifier = alice.identity.identifier
    with troth.Node.open("desk") as desk:
        served = desk.identity.identifier
    with open_node("desk") as node:
        node.wallet.trust(authority, "node:acme", now=int(time.time()))
    return identifier, served


def test_a_member_rotated_here_is_admitted_by_a_node_served_here_once_announced(
    nodes: tuple[Identifier, Identifier], monkeypatch: pytest.MonkeyPatch
) -> None:
    """flake 1: alice rotates as compromised and serves: her start's round announces it to
    acme here, desk marked due a sync before acme commits. Desk's poll of its marks (what
    `DueWatch` does every `DUE_POLL` s: here its own poll waits an hour, and the test reads
    the marks as it would) then finds none, and admits her: the announcement synced desk."""
    monkeypatch.setattr("troth.node.duewatch.DUE_POLL", 3600.0)
    _, desk_id = nodes
    with open_node("alice") as node:
        node.identities.rotate("alice", now=int(time.time()), compromised=True)

    async def main() -> tuple[Identifier, int]:
        with troth.Node.open("desk") as desk, troth.Node.open("alice") as alice:
            async with desk.serve(listen=("127.0.0.1", 0)) as at, alice.serve() as running:
                trust = at._runtime.trust
                await at._runtime.worker.run(trust.read_due)  # desk's poll of its marks
                async with running.connect(at.address, expect=desk_id) as own:
                    return own.peer, len(trust.due)

    peer, due = asyncio.run(main())
    assert (peer, due) == (desk_id, 0)
    with open_node("desk") as node:
        assert node.wallet.store.syncs_due() == []


def test_a_refusal_naming_two_identities_keeps_its_reason_within_the_limit() -> None:
    """flake 2: the refusal alice got, as desk's CLOSE frame carries it, keeps its why."""
    alice, acme = "T" + "5a" * 32, "T" + "05ddff" + "0" * 58
    why = (
        "its feed is due a sync after a revocation made on this machine; wait for desk's copy "
        "of its feed to be synced"
    )
    detail = (
        f"desk refused {alice}: it holds no credential from an authority desk trusts (a "
        f"credential from {acme}: {why})"
    )
    assert why in close_detail(detail).decode()
    several = "; ".join(f"a credential from {acme}: {why}" for _ in range(6))
    fitted = close_detail(f"desk refused {alice}: ({several})")
    assert len(fitted) <= MAX_CLOSE_DETAIL
    assert fitted.decode().startswith("desk refused T5a5a5a5a5a5a5a5a\u2026: (a credential from")
    assert close_detail("é" * 600).decode() == "é" * (MAX_CLOSE_DETAIL // 2)  # at a character
