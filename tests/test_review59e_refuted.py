"""Review 59e: attacks on the public Python API that did not work (each would fail were its
defence gone)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest

import troth
from tests.support.public_api import READ, acme_and_agents
from troth.authority.tickets import TICKET_PREFIX, Ticket


def test_a_hand_made_credential_naming_another_link_revokes_nothing() -> None:
    """`Node.revoke` takes the link id from the `Credential` it is given: one made by hand
    (dataclasses.replace) naming another member's credential beside the revoker's own chain is
    refused by the authority (the link is not in the chain), and that credential stands."""
    with acme_and_agents() as scene:
        other = scene.agents.identities.create("other")
        theirs = scene.agents.enroll(scene.acme.ticket(READ), identity=other)
        mine = scene.agents.delegate(
            scene.support, to=scene.sub, attributes=READ, ttl=600, purpose="p"
        )
        with pytest.raises(troth.AuthorityError, match="not in the chain"):
            scene.agents.revoke(dataclasses.replace(mine, id=theirs.id), by=scene.support)
        verifier = troth.Verifier(trust=[scene.acme.identifier], feeds=scene.acme)
        assert verifier.verify(theirs, presenter=other).actor == other.identifier


def test_a_hand_made_credential_claims_nothing_a_verifier_reads() -> None:
    """The fields of a `Credential` are the chain's to prove: a verifier reads its `chain`
    only, so attributes or a holder written in by hand grant nothing."""
    with acme_and_agents() as scene:
        forged = dataclasses.replace(
            scene.member,
            attributes=troth.Attributes({"orders.access": "admin"}),
            holder=scene.sub.identifier,
        )
        verifier = troth.Verifier(trust=[scene.acme.identifier], feeds=scene.acme)
        verified = verifier.verify(forged, presenter=scene.support)
        assert verified.attributes.values_of("orders.access") == {"read"}
        with pytest.raises(troth.CredentialError) as refused:
            verifier.verify(forged, presenter=scene.sub)
        assert refused.value.reason is troth.CredentialFailure.WRONG_SUBJECT


@pytest.mark.parametrize("at", [-5, 40])
def test_a_chain_changed_by_one_bit_is_neither_held_nor_verified(at: int) -> None:
    with acme_and_agents() as scene:
        changed = bytearray(scene.member.chain)
        changed[at] ^= 1
        with pytest.raises(troth.TrothError):
            scene.agents.hold(scene.support, bytes(changed))
        verifier = troth.Verifier(trust=[scene.acme.identifier], feeds=scene.acme)
        with pytest.raises(troth.CredentialError):
            verifier.verify(bytes(changed), presenter=scene.support)


def test_a_refused_ticket_is_never_shown() -> None:
    """A ticket is a secret: the errors refusing one used up (by another identity), cut short or
    changed never show its text or its code (str or repr)."""
    with acme_and_agents() as scene:
        ticket = scene.acme.ticket(READ)
        code = Ticket.parse(ticket).code.hex()
        scene.agents.enroll(ticket, identity=scene.sub)
        encoded = ticket[len(TICKET_PREFIX) :]
        for attempt in (ticket, ticket[:-3] + "zzz", ticket + "A", encoded):
            with pytest.raises(troth.TrothError) as refused:  # (sub's own repeat is answered)
                scene.agents.enroll(attempt, identity=scene.support)
            shown = f"{refused.value} {refused.value!r}"
            assert encoded[-40:] not in shown
            assert code not in shown


def test_a_handler_failing_with_a_secret_in_its_error_sends_the_caller_none_of_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A handler's bare exception reaches the caller as `RemoteError` "internal error": its
    text (a token, say) stays on the serving node."""
    leaky = troth.Service("leaky")

    @leaky.method("boom", allow=troth.AnyAuthenticated())
    async def boom(request: troth.Request) -> str:
        raise KeyError("s3cr3t-t0ken")

    async def scenario() -> str:
        with acme_and_agents() as scene:
            async with (
                scene.hub.serve(listen=("127.0.0.1", 0), services=[leaky]) as hub,
                scene.agents.connect(hub.address, expect=hub.identifier) as channel,
            ):
                with pytest.raises(troth.RemoteError) as failed:
                    await channel.call("leaky", "boom")
                return f"{failed.value} {failed.value!r} {failed.value.__dict__}"

    with caplog.at_level(logging.CRITICAL):  # the node logs the handler's traceback
        shown = asyncio.run(scenario())
    assert "internal error" in shown
    assert "s3cr3t" not in shown


def test_an_authority_revoking_itself_is_refused_and_its_members_stand() -> None:
    """`Authority.revoke_identity(acme.identifier)` would revoke every link acme issued (and
    so every chain rooted at it): refused, nothing written."""
    with acme_and_agents() as scene:
        for itself in (scene.acme.identifier, str(scene.acme.identifier)):
            with pytest.raises(troth.AuthorityError, match="cannot revoke itself"):
                scene.acme.revoke_identity(itself, reason="oops")
        verifier = troth.Verifier(trust=[scene.acme.identifier], feeds=scene.acme)
        assert verifier.verify(scene.member, presenter=scene.support).actor
