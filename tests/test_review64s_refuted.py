"""Review 64s: attacks with a stolen pre-rotation key that did not work (each test would fail
if the defence it names broke)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.backups import copy_db
from tests.support.nodes import HUB, MemNet, run_memnet
from tests.test_review44d_relays import FAST, until
from troth.authority import Authority, Ticket
from troth.authority.client import enroll_request, refresh_request, rotated_request
from troth.credentials import Attributes
from troth.errors import AuthorityError, AuthorityFailure, RoutingError
from troth.identity import IdentityService
from troth.node import init_node, open_node
from troth.node.node import node_dir
from troth.node.runtime import NodeRuntime
from troth.routing import parse_route

TEAM = Attributes({"agents.team": "support"})


def _ticket(authority: Authority) -> Ticket:
    return authority.create_ticket(
        creator=authority.identifier, attributes=TEAM, address="node:auth", now=NOW, uses=1
    )


def _announce(authority: Authority, ids: IdentityService, now: int) -> int | None:
    return authority.rotated(rotated_request(ids, "alice", authority.identifier, now=now), now=now)


def _refresh(authority: Authority, ids: IdentityService, now: int) -> None:
    authority.refresh(refresh_request(ids, "alice", authority.identifier, now=now), now=now)


def _enrolled_and_copied(troth_home: Path, authority: Authority) -> None:
    """alice on node agents, enrolled with `authority`; node thief: a copy of agents' node
    directory (vault key and node.db: her current and committed next key)."""
    init_node("agents")
    with open_node("agents") as agents:
        ids = agents.identities
        ids.create(now=NOW, name="alice")
        authority.enroll(enroll_request(ids, "alice", _ticket(authority), now=NOW), now=NOW)
    shutil.copytree(troth_home / "nodes" / "agents", troth_home / "nodes" / "thief")


def test_a_fork_announced_after_the_owners_compromised_rotation_gets_nothing(
    troth_home: Path,
) -> None:
    """The owner rotates as compromised and announces it; the thief rotates its copy (revealing
    the committed key it holds) and announces that fork: refused as a fork (store-or-extend at
    the authority), its refresh too, and the owner still refreshes."""
    init_node("auth")
    with open_node("auth") as auth_node:
        authority = auth_node.create_authority("acme", now=NOW)
        _enrolled_and_copied(troth_home, authority)
        with open_node("agents") as agents:
            agents.identities.rotate("alice", now=NOW + 5, compromised=True)
            _announce(authority, agents.identities, NOW + 6)
            with open_node("thief") as thief:
                thief.identities.rotate("alice", now=NOW + 7)
                for attempt in (_announce, _refresh):
                    with pytest.raises(AuthorityError) as refused:
                        attempt(authority, thief.identities, NOW + 8)
                    assert refused.value.reason is AuthorityFailure.REQUEST_INVALID
                    assert "forks from the stored copy" in str(refused.value)
            _refresh(authority, agents.identities, NOW + 9)
            alice = agents.identities.get("alice", now=NOW).identifier
        assert authority.identities.stored_changes(alice) == 3


def test_a_fork_the_authority_took_first_gets_nothing_once_the_identity_is_revoked(
    troth_home: Path,
) -> None:
    """Rotation 1's recovery: the thief's rotation reaches acme first and is issued to; the
    owner's is refused as a fork and kept as evidence at the authority's node; once its operator
    revokes the identity (what `troth identity show` tells the owner to ask for), the thief's
    refresh and announcement are refused and the feed revokes the identity."""
    init_node("auth")
    with open_node("auth") as auth_node:
        authority = auth_node.create_authority("acme", now=NOW)
        _enrolled_and_copied(troth_home, authority)
        with open_node("thief") as thief, open_node("agents") as agents:
            thief.identities.rotate("alice", now=NOW + 5)
            _announce(authority, thief.identities, NOW + 6)
            agents.identities.rotate("alice", now=NOW + 7, compromised=True)
            with pytest.raises(AuthorityError) as refused:
                _announce(authority, agents.identities, NOW + 8)
            assert "forks from the stored copy" in str(refused.value)
            alice = agents.identities.get("alice", now=NOW).identifier
            assert [f.index for f in auth_node.identities.forks(alice)] == [1]
            _refresh(authority, thief.identities, NOW + 9)  # the residual: acme took its fork
            authority.revoke_identity(alice, now=NOW + 10, reason="forked")
            for attempt in (_refresh, _announce):
                with pytest.raises(AuthorityError) as refused:
                    attempt(authority, thief.identities, NOW + 11)
                assert refused.value.reason is AuthorityFailure.NOT_A_MEMBER
        held = authority.held_feed(now=NOW + 12)
        assert alice.digest in held.revoked_identities


def test_the_retired_history_cannot_enroll_again_with_a_fresh_ticket(troth_home: Path) -> None:
    """The thief redeems a fresh ticket with alice's pre-rotation history (her copy's key) after
    her rotation was announced: refused as older than the authority's copy; nothing issued."""
    init_node("auth")
    with open_node("auth") as auth_node:
        authority = auth_node.create_authority("acme", now=NOW)
        _enrolled_and_copied(troth_home, authority)
        with open_node("agents") as agents:
            agents.identities.rotate("alice", now=NOW + 5)
            _announce(authority, agents.identities, NOW + 6)
            alice = agents.identities.get("alice", now=NOW).identifier
        issued = authority.store.unexpired_issued(alice.digest, NOW)
        with open_node("thief") as thief:
            request = enroll_request(thief.identities, "alice", _ticket(authority), now=NOW + 7)
        with pytest.raises(AuthorityError) as refused:
            authority.enroll(request, now=NOW + 7)
        assert refused.value.reason is AuthorityFailure.REQUEST_INVALID
        assert "older than the stored copy" in str(refused.value)
        assert authority.store.unexpired_issued(alice.digest, NOW) == issued


def test_a_relay_name_its_owner_took_back_by_rotating_never_falls_back_to_the_thief(
    tmp_path: Path,
) -> None:
    """The relay owner name: b holds `/relay/b` at the hub (which hosts its authority); a thief
    with a copy of b's node directory creates the name over a channel of its own (the hub has
    not seen a rotation: it forwards to the thief). b rotates as compromised and announces it:
    the hub refuses the thief's channel the name (its feed supersedes that history) and b takes
    it back; a fresh caller reaches b's new history. b stops: the name is held for b, never
    handed back to the thief's channel still open (`_fall_back` decides `create` again)."""
    relay_b = parse_route(f"{HUB}/relay/b")

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        b = await net.node("b", backoff=FAST)
        await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
        await b.create_relay("b", HUB)
        ours, copy = node_dir(net.home, "b"), node_dir(net.home, "thief")
        shutil.copytree(ours, copy, ignore=shutil.ignore_patterns("node.db*", "*.sock"))
        copy_db(ours / "node.db", copy / "node.db")
        stolen = open_node("thief", home=net.home)
        net.opened.append(stolen)
        thief = NodeRuntime(
            stolen, clock=net.clock, transport=net.transport("host-thief"), backoff=FAST
        )
        net.runtimes.append(thief)
        await thief.start(None)
        await thief.create_relay("b", HUB)  # the thief's channel forwards the name now
        b.node.identities.rotate("b", now=net.clock.now(), compromised=True)
        assert (await b.announce_rotations())[0]["announced"]

        def relays() -> str:
            return str(hub.status()["services"]["relay"]["b"]["state"])

        await until(lambda: relays() == "up", 5)
        caller = await net.member("c")
        peer = (await caller.channel_to(relay_b)).peer
        assert peer is not None
        assert peer.identity.change_count == 3  # b's new history
        await b.stop()
        await until(lambda: relays().startswith("held"), 5)
        late = await net.member("d")
        with pytest.raises(RoutingError, match="relay not found"):
            await late.channel_to(relay_b)
        owner = str(net.identifier(b))  # the thief's channel, still open there: not used
        assert [row["peer"] for row in hub.channel_rows()].count(owner) == 1

    run_memnet(test, tmp_path)
