"""Review 9's attacks: crashes, concurrency and two processes on one node directory.

Each test asserts what the docs promise (docs/storage.md, "Recovery rules"; docs/credentials.md);
a crash is a real process ended at a `troth.faults` crash point (TROTH_CRASH_AT). Held (no test
kept): a rotation killed after its commit (the identity signs, is presented and rotates again;
only the retired keys stay in the vault), concurrent appends to an authority's feed (one write
lock, sequence numbers never repeat), a repeated `rotated` announcement (nothing appended), the
trace log's caches across processes (reloaded when the size or newest checkpoint moved)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.test_resilience_enrollment import now, troth
from troth.authority import Authority
from troth.authority.client import accept_ticket, enroll_request, ticket_authority
from troth.credentials import Attributes, VerifiedFeed
from troth.faults import CRASH_EXIT_CODE
from troth.node import Node, init_node, open_node


def _authority_with_ticket(node: str, name: str) -> str:
    """Node `node` hosting authority `name`; a one-use member ticket for it."""
    init_node(node)
    with open_node(node) as host:
        authority = host.create_authority(name, now=now())
        ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"team.name": name}),
            address=f"node:{node}",
            now=now(),
        )
    return str(ticket)


# -- 1. an interrupted enrollment with one authority blocks refreshes from every other ----------


def test_an_interrupted_enrollment_elsewhere_does_not_block_credential_refresh() -> None:
    acme_ticket = _authority_with_ticket("acme", "acme")
    beta_ticket = _authority_with_ticket("beta", "beta")
    init_node("agent")
    with open_node("agent") as agent:
        member = agent.identities.create(now=now(), name="agent").identifier
    troth("enroll", acme_ticket, "--as", "agent", "--node", "agent")
    # a second enrollment, with beta, killed once beta committed the redemption
    troth(
        "enroll",
        beta_ticket,
        "--as",
        "agent",
        "--node",
        "agent",
        crash="authority.enroll.after-commit",
        code=CRASH_EXIT_CODE,
    )
    # beta's operator then removes the member (its right): the pending enrollment can no
    # longer complete, refused for good (`not a member`; review 56g, removal 1: it was kept)
    troth("authority", "members", "remove", str(member), "--authority", "beta")
    refreshed = troth("credential", "refresh", "agent", "--node", "agent", "--json", code=None)
    # acme's credential is refreshed; beta's refusal is reported, not a reason to fail it
    assert refreshed.returncode == 0, refreshed.stderr
    with open_node("acme") as acme:
        assert json.loads(refreshed.stdout)["authority"] == str(acme.authority().identifier)
    assert json.loads(refreshed.stdout)["pending"] == []
    (dropped,) = json.loads(refreshed.stdout)["dropped"]  # beta's, reported and forgotten
    assert "member" in dropped["error"]


# -- 2. a second `node start --foreground` takes over a running node's directory -----------------


def _status_pid(home: Path, node: str) -> int | None:
    """The pid node `node`'s status file names (None while there is none)."""
    try:
        return int(json.loads((home / "nodes" / node / "status.json").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def test_a_second_foreground_start_refuses_a_running_node(troth_home: Path) -> None:
    init_node("n")
    first = json.loads(troth("node", "start", "n", "--json").stdout)["pid"]
    second = subprocess.Popen(
        [sys.executable, "-m", "troth.cli.main", "node", "start", "n", "--foreground"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # whichever comes first: the second refuses (exits), or it serves (its status file)
        deadline = time.monotonic() + 60
        while second.poll() is None and _status_pid(troth_home, "n") != second.pid:
            assert time.monotonic() < deadline, "neither refused nor served"
            time.sleep(0.05)
        served = second.poll() is None
    finally:
        if second.poll() is None:
            second.terminate()  # as an operator's Ctrl-C: it cleans up "its" files
            second.wait(timeout=30)
    try:
        status = json.loads(troth("node", "status", "n", "--json").stdout)
        assert not served, "a second runtime served the running node's directory"
        assert second.returncode == 3, second.stderr
        # the first daemon is still the node: running, and reachable on its control socket
        assert status["running"]
        assert status["pid"] == first
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(first, signal.SIGTERM)


# -- 3. an enrollment completed beside a running node stays unknown to it -------------------------


def test_an_enrollment_resumed_by_credential_refresh_reaches_the_running_node() -> None:
    ticket = _authority_with_ticket("acme", "acme")
    init_node("agent")
    with open_node("agent") as agent:
        agent.identities.create(now=now(), name="agent")
    with open_node("acme") as acme:
        authority = str(acme.authority().identifier)
    troth(  # the enrollment is recorded, then the process is killed
        "enroll",
        ticket,
        "--as",
        "agent",
        "--node",
        "agent",
        crash="holder.enroll.after-pending",
        code=CRASH_EXIT_CODE,
    )
    troth("node", "start", "agent")
    try:
        # docs/storage.md: `troth credential refresh` completes the interrupted enrollment
        refreshed = json.loads(
            troth("credential", "refresh", "agent", "--node", "agent", "--json").stdout
        )
        assert len(refreshed["resumed"]) == 1
        with open_node("agent") as agent:  # the store trusts acme now
            assert authority in {str(a) for a in agent.wallet.trusted()}
        status = json.loads(troth("node", "status", "agent", "--json").stdout)
        assert authority in status["trusted"]  # ... and so does the node that is running
    finally:
        troth("node", "stop", "agent", code=None)


# -- 4. an authority that rotated past 64 changes signs feed pages no holder accepts --------------


def _sync(agent: Node, authority: Authority, now: int) -> VerifiedFeed:
    """The member node syncs the authority's feed (as its maintenance does)."""
    return agent.wallet.sync_feed(
        authority.identifier, lambda since: authority.feed(now=now, since=since), now=now
    )


def test_an_authority_rotating_past_64_changes_keeps_a_feed_its_members_accept() -> None:
    start = now()
    init_node("acme")
    init_node("agent")
    with open_node("acme") as acme, open_node("agent") as agent:
        authority = acme.create_authority("acme", now=start)
        _sync(agent, authority, start)
        at = start
        for _ in range(70):  # e.g. a monthly rotation for six years; members sync in between
            at += 60
            acme.identities.rotate("acme", now=at)
            feed = _sync(agent, authority, at)
        superseded = feed.supersession(authority.identifier)
        assert superseded is not None
        assert superseded.changes == 71


def test_a_new_member_enrolls_with_an_authority_past_64_changes() -> None:
    """The ticket of an authority past 64 changes carries its history from a checkpoint of its
    own feed: a new member takes it on the ticket's word (handed over out of band), enrolls,
    and then syncs the feed with nothing else to go on."""
    start = now()
    init_node("acme")
    init_node("newbie")
    with open_node("acme") as acme, open_node("newbie") as newbie:
        authority = acme.create_authority("acme", now=start)
        at = start
        for _ in range(70):  # each rotation published (a page signed) before the next
            at += 60
            acme.identities.rotate("acme", now=at)
            authority.feed(now=at)
        ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"agents.team": "new"}),
            address="/tcp/127.0.0.1:1",
            now=at,
        )
        assert ticket_authority(ticket, now=at) == authority.identifier
        newbie.identities.create(now=at, name="newbie")
        request = enroll_request(newbie.identities, "newbie", ticket, now=at)
        chain = authority.enroll(request, now=at)
        accept_ticket(newbie.identities, ticket, now=at)  # enrolled: its authority is stored
        newbie.wallet.hold("newbie", chain.encode(), now=at)
        feed = _sync(newbie, authority, at)
        assert feed.supersession(authority.identifier) is not None
