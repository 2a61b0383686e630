"""Review 67i, enroll: an enrollment ticket conflicting with a copy of its authority held
only on another authority's word (the lead's design decision, closing reviews 67e enroll 2,
66g enroll 1 and 30a enrollment 2 as one).

1. Desk cannot tell acme's real ticket under globex's made-up copy of acme (review 30a,
   enrollment 2; review 66g, enroll 1, pinned) from a thief's fork of acme, from a stolen early
   backup of its keys, under acme's real later history held from globex's checkpoint (review
   67e, enroll 2: the fork was admitted and replaced the real history; enroll 1, pinned, was
   refused, which locked acme's real pinned ticket out with no way out). Fixed (deny when in
   doubt, an explicit informed override, as ssh's known_hosts conflict): such a ticket, full
   or pinned from a checkpoint, is refused as `IdentityFailure.COPY_CONFLICT` (nothing stored:
   no pending record, no refutation), its message naming the copy's attester and the change
   where they disagree and telling the operator how to decide; `troth enroll --over-copy`
   (`enroll(over_copy=True)`, `Node.enroll(over_copy=True)`, `check_ticket(over_copy=)`,
   `accept_ticket(over_copy=)`), given per enrollment and never recorded, takes the ticket's
   history over an unlinked copy once the authority answered, recording the copy's changes
   refuted (`troth.identity.known.OverCopy`, `copy_conflict`; `troth.authority.client`). The
   library tests are tests/test_review67e_enroll.py (both), tests/test_review66g_enroll.py
   (both pinned ones), tests/test_review30a_enrollment.py (enrollment 2); below, the command
   (`--over-copy`, sent to a running node as the control operation's `over_copy`).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.channels import MEMBER
from tests.support.cli import run
from tests.support.enroll import ticket_pin
from tests.test_review30a_enrollment import acme, stores_globex_copy  # noqa: F401
from tests.test_trust_scope import NOW, make_two
from troth.authority import Authority
from troth.node import Node
from troth.storage import SqliteVoucherStore


def test_troth_enroll_refuses_a_conflicting_ticket_until_the_operator_says_over_copy(
    acme: tuple[Authority, Node, Node],  # noqa: F811
    tmp_path: Path,
) -> None:
    authority, _node, members = acme
    two = make_two()
    stores_globex_copy(members, two, authority.identifier)
    ticket = authority.create_ticket(
        creator=authority.identifier, attributes=MEMBER, address="node:acme-node", now=NOW
    )
    held = tmp_path / "ticket"
    held.write_text(str(ticket))
    held.chmod(0o600)
    refused = run("enroll", str(held), "--as", "alice", "--node", "members", code=1)
    assert "history conflicts with a stored copy" in refused.stderr
    assert str(two.globex.identifier) in refused.stderr  # the copy's attester
    assert "--over-copy" in refused.stderr
    assert members.identities.stored_changes(authority.identifier) == 6
    assert members.wallet.pending_enrollments("alice") == []
    # with the operator's word the ticket passes the check and is sent to acme (which refuses
    # it here: the command's clock is the real one, the ticket made at the tests' fixed NOW is
    # expired), and a ticket acme refuses replaces no copy (review 31a, enrollment 1)
    pin = ticket_pin(ticket, now=NOW)  # acme's, read out by its operator (review 68l, enroll 1)
    sent = run(
        "enroll",
        str(held),
        "--as",
        "alice",
        "--node",
        "members",
        "--over-copy",
        "--authority-pin",
        pin,
        code=1,
    )
    assert "ticket unknown, used up or expired" in sent.stderr
    assert members.identities.stored_changes(authority.identifier) == 6
    assert SqliteVoucherStore(members.db).refuted() == []
