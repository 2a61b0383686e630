"""Review 67v, enroll: attacks on 67i's `--over-copy` that did not work.

1. The flag remembered through a pending record: acme answers an enrollment given with the
   flag, the answer is lost (a crash after the authority answered); resumed without the flag,
   the ticket is judged again and refused as COPY_CONFLICT, globex's copy standing, nothing
   refuted; only a resume given the flag again completes it (and then replaces the copy).
2. A non-bool flag through the control socket: 0, 1, "true", "false" and [] are refused
   (DecodeError), never read by truth (67i covered "no", 1 and None).
3. A thief with a stolen early backup of acme's keys (review 67e's `theft`) goes round the
   ticket's COPY_CONFLICT through a handshake first: it opens a channel to desk as acme, no
   credential, hoping desk replaces globex's unlinked copy of acme's real later history with
   its full fork (the handshake keeps the old rule), so that its ticket then equals the stored
   copy and enrolls with no flag. Refused at the handshake (PEER_INVALID): a peer no trusted
   authority vouches for is judged with every stored copy binding it
   (`channel.verification._known_by`); the copy stands and the thief's ticket is still
   COPY_CONFLICT.
"""

from __future__ import annotations

import pytest

from tests.support.channels import MEMBER
from tests.support.parties import claim_with_new_key
from tests.test_review30a_enrollment import acme, stores_globex_copy  # noqa: F401
from tests.test_review66g_enroll import enroll_alice
from tests.test_review67e_enroll import theft
from tests.test_trust_scope import NOW, make_two
from troth.authority import Authority
from troth.authority.client import authority_pin_of
from troth.channel import AnyAuthenticatedIdentity, verify_peer
from troth.clock import FixedClock
from troth.enrollment import resume
from troth.errors import ChannelError, ChannelFailure, DecodeError, IdentityError, IdentityFailure
from troth.node import Node, open_node
from troth.node.control import OPERATIONS
from troth.node.trust import NodeTrust
from troth.storage import SqliteVoucherStore


def test_a_resume_without_the_flag_does_not_take_the_flag_from_the_pending_record(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    two = make_two()
    stores_globex_copy(members, two, authority.identifier)
    ticket = authority.create_ticket(
        creator=authority.identifier, attributes=MEMBER, address="node:acme-node", now=NOW
    )
    pin = authority_pin_of(node.identities.get("acme", now=NOW).identity)  # read out by acme's

    def lost(request: bytes) -> bytes:
        authority.enroll(request, now=NOW)  # acme made alice a member; its answer is lost
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        enroll_alice(members, ticket, pin, lost, over_copy=True)
    (pending,) = members.wallet.pending_enrollments("alice")
    assert members.identities.stored_changes(authority.identifier) == 6  # not replaced yet

    def send(request: bytes) -> bytes:
        return authority.enroll(request, now=NOW).encode()

    clock = FixedClock(NOW)
    with pytest.raises(IdentityError) as refused:
        resume(members.identities, members.wallet, pending, clock=clock, send=send)
    assert refused.value.reason is IdentityFailure.COPY_CONFLICT
    assert members.identities.stored_changes(authority.identifier) == 6  # globex's copy
    assert not members.identities.linked(authority.identifier)
    assert SqliteVoucherStore(members.db).refuted() == []
    # the operator's word given again completes it, and only then is the copy replaced
    resume(
        members.identities,
        members.wallet,
        pending,
        clock=clock,
        send=send,
        over_copy=True,
        authority_pin=pin,
    )
    assert members.identities.linked(authority.identifier)
    assert members.wallet.pending_enrollments("alice") == []
    assert SqliteVoucherStore(members.db).refuted() != []


def test_the_control_operation_refuses_every_non_bool_flag() -> None:
    enroll = OPERATIONS["enroll"]
    assert enroll.parse({"ticket": "t", "over_copy": False}).over_copy is False
    wrongs: tuple[object, ...] = (0, 1, "true", "false", [], 1.0)
    for wrong in wrongs:
        with pytest.raises(DecodeError, match="must be true or false"):
            enroll.parse({"ticket": "t", "over_copy": wrong})


def test_a_thiefs_handshake_first_does_not_let_its_fork_ticket_enroll_without_the_flag(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    theft(authority, node, members)
    trust = NodeTrust(members, None)
    trust.reload(NOW)
    with open_node("thief") as thief:
        thief.identities.rotate("acme", now=NOW)  # change 2': key 2 too, its own next key
        stolen = thief.authority()
        local = thief.identities.get("acme", now=NOW)
        claim = claim_with_new_key(thief.vault, local.primary_key, local.identity, now=NOW)
        channels = trust.channel_trust(AnyAuthenticatedIdentity())
        with pytest.raises(ChannelError) as caught:
            verify_peer(channels, claim, (), NOW)
        assert caught.value.reason is ChannelFailure.PEER_INVALID
        assert "older than the stored copy" in str(caught.value)  # every copy binds it
        assert members.identities.stored_changes(authority.identifier) == 5  # the real copy
        ticket = stolen.create_ticket(
            creator=stolen.identifier, attributes=MEMBER, address="node:thief", now=NOW
        )

        def send(request: bytes) -> bytes:
            return stolen.enroll(request, now=NOW).encode()

        with pytest.raises(IdentityError) as refused:
            enroll_alice(members, ticket, None, send)
        assert refused.value.reason is IdentityFailure.COPY_CONFLICT
    assert members.identities.stored_changes(authority.identifier) == 5
    assert not members.identities.linked(authority.identifier)
