"""Review 11's attacks: the newest fixes (an authority's self-supersession, members after their
authority rotates, authorities past 64 changes, the feed walk budget, trace fork checks, the
lease quota per account, node.lock and trust.reload).

Each test asserts the secure or correct behaviour and is marked xfail while main has the bug.
"""

# Held (tried, no test kept):
# - a thief of the authority's old key signing a page of the real entries under the old
#   history: refused (the page's own supersession); an empty or later page to a holder of the
#   newer feed: refused (the held supersession); a fork [c0, c1'] or [c0, c1', c2'] of the
#   authority, full or checkpointed: refused (another change / checkpoint not attested).
# - a thief's page that predates the rotation, handed to a verifier without the newer feed or
#   a stored copy: accepted, as docs/credentials.md says ("cannot tell").
# - a member making the authority publish a supersession naming the authority: _learn only
#   supersedes the requester's own history; revoke_link appends kinds 1-2 only.
# - the feed page cache after a rotation: keyed by (length, changes), and the first page under
#   the new history appends the supersession, so the length moves too; changes() reads the store.
# - a page cut short of the authority's own new supersession (many entries before it): signed
#   under the new history, which extends the old one: accepted, the sync goes on.
# - a ticket for a known authority (review 10's case): the stored copy wins.
# - _held_or: only the authority's own checkpoint is taken from the held feed; others need the
#   caller's stored copy.
# - the feed walk: a walk is free only from where the peer's last page ended, at most the feed's
#   length per FEED_WALK_WINDOW; empty pages end the walk; _walks and _pages are bounded.
#   (Not tested: throwaway identities, each with its own burst, share one node budget, so many
#   of them can keep it spent: a fairness question, not one peer's.)
# - check_no_fork on a fork that overlaps the stored copy: FORK, raised before ROLLBACK.
# - the lease quota: the account is the first link's subject of a verified chain (a member must
#   sign its own enrollment; a delegate spends its delegator's quota by design); the count and
#   the insert are one transaction.
# - node.lock: opened in the 0700 node directory (no other user can plant a symlink); the control
#   socket (0600) is the only way to ask trust.reload; routes_changed only re-reads the store.

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW as T0
from tests.support.cli import run
from tests.support.enroll import enroll_in_process
from tests.support.traces import DAY, NOW, Held, open_log, recorder, tool_call
from tests.test_attacks_review10 import _forged_continuation, acme_and_victim
from tests.test_resilience_enrollment import now, troth
from troth import limits
from troth.authority.client import authority_pin_of, ticket_authority
from troth.authority.tickets import Ticket
from troth.clock import FixedClock, SystemClock
from troth.credentials import Attributes
from troth.credentials.wallet import needs_refresh
from troth.errors import ConfigError, IdentityError, IdentityFailure
from troth.identity import Checkpoint, Identifier, verify_history
from troth.node import init_node, open_node, troth_home
from troth.trace import TraceRecorder, open_node_log
from troth.trace.export import export_jsonl

# -- 1. a forged ticket impersonates an authority the node has not seen yet --------------------


def test_a_forged_ticket_cannot_claim_an_authority_the_node_has_not_seen() -> None:
    """acme has one change (nothing checkpointed: its ticket carries its history from change
    0). Before the victim ever meets acme, an attacker hands it a ticket "for acme": acme's
    identifier in a one-change checkpointed history at change 1, signed by the attacker's key
    alone, its checkpoint naming acme itself. On first sight the ticket vouches for it
    (review 10 kept that), so `troth enroll` stores it: to the victim the attacker's key is
    acme's current key (the identifier no longer binds the first change's key), and the real
    acme's history is "older than the stored copy": the victim can never enroll with acme."""
    start = now()
    real, good = acme_and_victim(start)
    with open_node("victim") as victim:
        assert victim.identities.stored_changes(real) is None  # never seen
    forged = _forged_continuation(real.digest, 1, os.urandom(32), start)
    evil = Ticket(os.urandom(len(good.code)), forged, "node:acme")
    troth("enroll", str(evil), "--as", "victim", "--node", "victim", code=None)
    with open_node("victim") as victim, pytest.raises(IdentityError) as refused:
        # the attacker's key is not acme's to this node
        verify_history(forged, now=start, checkpoints=victim.identities.attested_by_store)
    assert refused.value.reason is IdentityFailure.UNATTESTED_CHECKPOINT
    troth("enroll", str(good), "--as", "victim", "--node", "victim")  # on main: exit 1


def _past_64(start: int) -> tuple[Any, Any, Ticket, int]:
    """acme rotated 70 times (each rotation published before the next, as review 9's), its
    pin (what its operator tells a new member), its ticket (from a checkpoint of its feed), and
    the time after."""
    init_node("acme")
    init_node("newbie")
    with open_node("acme") as node:
        authority = node.create_authority("acme", now=start)
        at = start
        for _ in range(70):
            at += 60
            node.identities.rotate("acme", now=at)
            authority.feed(now=at)
        ticket = authority.create_ticket(
            creator=authority.identifier, attributes=Attributes(), address="node:acme", now=at
        )
        pin = authority_pin_of(node.identities.get("acme", now=at).identity)
    return authority.identifier, pin, ticket, at


def test_a_checkpointed_ticket_needs_the_authoritys_pin_confirmed() -> None:
    """The rest of finding 1: a ticket that gives an authority the node has never seen from a
    checkpoint binds nothing to the identifier it names (an attacker answering at the ticket's
    address would be taken for acme), so it is refused unless the authority's pin (identifier
    and current key), confirmed with its operator, is given, and a pin given is always checked.
    With the right pin an authority past 64 changes enrolls its new member."""
    start = now()
    identifier, pin, ticket, at = _past_64(start)
    other = str(Identifier(bytes(32)))
    clock = FixedClock(at)
    with open_node("acme") as acme_node, open_node("newbie") as newbie:
        authority = acme_node.authority()
        newbie.identities.create(now=at, name="newbie")

        def enroll(authority_pin: str | None) -> Any:
            return enroll_in_process(newbie, "newbie", authority, ticket, clock, pin=authority_pin)

        wrong_key, wrong_identifier = f"{identifier}:{'00' * 32}", other + pin[len(other) :]
        for wrong in (None, wrong_key, wrong_identifier):
            with pytest.raises(IdentityError) as refused:
                enroll(wrong)
            assert refused.value.reason is IdentityFailure.UNATTESTED_CHECKPOINT
            assert newbie.identities.stored_changes(identifier) is None  # nothing kept
            assert newbie.wallet.pending_enrollments("newbie") == []
        with pytest.raises(ConfigError, match=r"not an authority pin \(IDENTIFIER:KEY in hex\)"):
            enroll("00" * 32)  # not a pin
        enrolled = enroll(f" {pin}\n")
        assert enrolled.authority == identifier
        assert newbie.identities.stored_changes(identifier) == 71


def test_a_key_given_for_a_full_ticket_is_checked_too() -> None:
    start = now()
    init_node("acme")
    init_node("victim")
    with open_node("acme") as acme_node, open_node("victim") as victim:
        authority = acme_node.create_authority("acme", now=start)
        ticket = authority.create_ticket(
            creator=authority.identifier, attributes=Attributes(), address="node:acme", now=start
        )
        victim.identities.create(now=start, name="victim")
    troth(
        "enroll",
        str(ticket),
        "--as",
        "victim",
        "--node",
        "victim",
        "--authority-pin",
        f"{ticket_authority(ticket, now=start)}:{'ab' * 32}",
        code=1,
    )
    troth("enroll", str(ticket), "--as", "victim", "--node", "victim")


# -- 2. trace verification: a fork that ends before the stored copy begins ---------------------


def _rotate_long(agent: Held, times: int, at: int) -> None:
    """`times` rotations of `agent`, presented (as its node does past 64 changes) from a
    checkpoint once its history would hold 60 changes."""
    for number in range(times):
        agent.rotate(at + number)
        identity = agent.held.identity
        if len(identity.changes) >= 60:
            digest = identity.identifier.digest
            cut = identity.from_checkpoint(Checkpoint(digest, digest, identity.current.index - 8))
            agent.held = agent.held._replace(identity=cut)


def test_a_fork_older_than_the_stored_checkpointed_copy_is_refused(tmp_path: Path) -> None:
    """Review 7's stolen-backup attack, on a long-lived agent: its full key backup (change 0,
    next key included) is stolen; the owner rotates on for months (70 changes), so nodes store
    its history from a checkpoint (change 62 on). The thief rotates the backup into a fork
    [c0, c1'] (fresh keys, any validity) and signs records as the agent. The verifier node's
    stored copy shares no index with the fork, so check_no_fork sees only "older than the
    stored copy" and `troth trace verify --file` answers the thief's export "valid": the fork
    must be refused (nothing shows that [c0, c1'] is a prefix of what the node stored)."""
    agent = Held()
    thief = copy.copy(agent)  # the backup: the same keys, the next one included
    _rotate_long(agent, 70, NOW + DAY)
    assert agent.identity.first_index > 1
    thief.rotate(NOW + 200 * DAY)
    assert thief.identifier == agent.identifier
    init_node("verifier")
    with open_node("verifier") as node:
        # what a node that met the agent stores (its authority's feed attested the checkpoint)
        node.identities.import_history(
            agent.identity.history, now=NOW + 2 * DAY, checkpoints=lambda _c, _h: True
        )
        assert node.identities.stored_changes(agent.identifier) == 71
    clock = FixedClock(NOW + 200 * DAY + 60)
    log = open_log(tmp_path / "thief-trace.db", clock)
    recorder(log, thief, clock).record(tool_call("wire-transfer"))
    export = tmp_path / "export.jsonl"
    with export.open("w") as out:
        export_jsonl(log, out)
    log.close()
    run("trace", "verify", "--file", str(export), "--node", "verifier", code=1)  # main: 0


def test_the_nodes_own_export_verifies_after_70_rotations(tmp_path: Path) -> None:
    """The honest side of the fix above: a node's own identity rotated past 64 changes (an
    authority, whose own feed checkpoints it, as review 9's) is stored from a checkpoint, but
    its change rows show that a record signed at change 0 is an older prefix, not a fork: its
    export and the node's own log still verify."""
    init_node("default")
    clock = SystemClock()
    start = clock.now() - 3600
    then = FixedClock(start + 1)  # the record, made before the rotations
    with open_node("default", home=troth_home()) as node, open_node_log(node, clock=then) as log:
        authority = node.create_authority("acme", now=start)
        agent = TraceRecorder(log, lambda now: node.identities.signer("acme", now=now), clock=then)
        agent.record(tool_call())
        for step in range(70):  # each rotation published (a page signed) before the next
            node.identities.rotate("acme", now=start + 30 * (step + 1))
            authority.feed(now=start + 30 * (step + 1))
        stored = verify_history(
            node.identities.export("acme"),
            now=clock.now(),
            checkpoints=node.identities.attested_by_store,
        )
        assert stored.first_index > 0  # presented (and stored) from a checkpoint
    run("trace", "checkpoint")
    export = tmp_path / "export.jsonl"
    run("trace", "export", "--format", "jsonl", "--out", str(export))
    run("trace", "verify", "--file", str(export))
    run("trace", "verify")


# -- 3. a member after its authority rotates with a full feed ----------------------------------


def test_a_member_that_stops_presenting_a_chain_asks_for_a_fresh_one(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The authority's feed is full (MAX_FEED_ENTRIES, here 1): its rotation cannot be
    published (docs/credentials.md: "then only verifiers with a store refuse the older
    history"). The member's node syncs the feed (the page, signed under the new history,
    stores it) and so stops presenting its credential (`presentable`: issued before the
    rotation), yet `needs_refresh` says no, for the credential's whole remaining lifetime
    (an hour by default): the member has nothing to show any peer meanwhile."""
    monkeypatch.setattr(limits, "MAX_FEED_ENTRIES", 1)
    clock = FixedClock(T0)
    init_node("acme")
    init_node("owner")
    with open_node("acme") as acme_node, open_node("owner") as owner:
        acme = acme_node.create_authority("acme", now=T0)
        owner.identities.create(now=T0, name="agent")
        ticket = acme.create_ticket(
            creator=acme.identifier, attributes=Attributes(), address="node:acme", now=T0
        )
        enroll_in_process(owner, "agent", acme, str(ticket), clock)
        acme.revoke_credentials([os.urandom(32)], now=T0)  # the feed is full

        def sync() -> None:
            owner.wallet.sync_feed(
                acme.identifier, lambda since: acme.feed(now=clock.now(), since=since), now=clock
            )

        sync()
        clock.advance(60)
        acme_node.identities.rotate("acme", now=clock)
        sync()  # signed under the rotated history: the owner's node stores it
        now = clock.now()
        assert owner.identities.stored_changes(acme.identifier) == 2
        feed = owner.wallet.held_feed(acme.identifier)
        assert feed is not None
        assert feed.supersession(acme.identifier) is None
        assert owner.wallet.presentable("agent", now=now) == []  # the old chain is dropped
        held = owner.wallet.held("agent")
        known = owner.wallet.known_changes(acme.identifier)
        assert needs_refresh(held, acme.identifier, known, now, margin=60)  # main: False
