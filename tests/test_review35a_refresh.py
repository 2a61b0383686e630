"""Review 35a, refresh 1: review 34b held a refresh's answer only when the authority asked issued
its root (`CredentialWallet.hold(authority=)`, refresh 1), and made the refresh decision go by
the node's member credentials alone, one-link chains (`needs_refresh`, due 1). Together they let
a co-trusted authority's node do what refresh 1 meant to stop: globex, which the node also
enrolled with, answers each refresh with a *delegation* rooted at globex — globex's credential
to an identity of its own, delegated on to the node — expiring long after acme's credential.
The answer's root is globex, so it is held; it is no member credential, so the node's globex
credential stays due and the node asks again the next round. The node presents its eight
unexpired chains that expire last (MAX_CHANNEL_CREDENTIALS): within eight rounds it presents
only globex's, and it has lost its acme membership on its channels.

An authority's `refresh` answers one link, the member credential it issues (or issued) to the
requester, so the node now holds a refresh's answer only when it is that: a one-link chain
issued by the authority asked.

Was a strict xfail until `CredentialWallet.hold(authority=)` refuses (UNTRUSTED_ISSUER, before
anything is stored) a chain of more than one link (docs/protocols.md, "Nodes").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.nodes import MemNet, globex_over_tcp, run_memnet
from troth.credentials import (
    Attributes,
    CredentialBody,
    CredentialChain,
    delegate,
    issue_credential,
)
from troth.limits import MAX_CHANNEL_CREDENTIALS

WEEK = 7 * 86400


def _root(chain: bytes) -> bytes:
    return CredentialBody.decode(CredentialChain.decode(chain).credentials[0].body).issuer.digest


def test_a_refresh_answered_with_a_delegation_is_not_held(tmp_path: Path) -> None:
    """n is a member of acme (the hub) and of globex. globex's node answers every refresh with
    a chain rooted at globex: globex's credential to its own identity `x`, which `x` delegates
    on to n, expiring a week on. n refreshes MAX_CHANNEL_CREDENTIALS + 1 times: it holds no
    such chain, and still presents its acme credential."""

    async def test(net: MemNet) -> None:
        n = await net.member("n")
        globex, authority, ticket = await globex_over_tcp(net)
        await n.enroll(ticket, "n")
        x = globex.node.identities.create(now=net.clock.now(), name="x")
        subject = net.identifier(n)
        team = Attributes({"globex.team": "desk"})

        def answer(request: bytes, *, now: int) -> CredentialChain:  # globex hands a delegation
            root = issue_credential(
                authority.signer(now),
                subject=x.identifier,
                attributes=team,
                now=now,
                ttl=WEEK,
                depth=1,
            )
            parent = CredentialChain((root,), (authority.signer(now).identity.history,))
            signer = globex.node.identities.signer("x", now=now)
            return delegate(
                signer,
                parent,
                subject=subject,
                attributes=team,
                now=now,
                ttl=WEEK,
                purpose="crowd",
            )

        service: Any = globex.host.services["authority"]
        service.authority.refresh = answer
        for _ in range(MAX_CHANNEL_CREDENTIALS + 1):
            await n.refresh_credentials(margin=4000)  # every member credential is due
            net.clock.advance(30)

        shown, _ = n.channel_identity("n", now=net.clock.now())
        acme = net.authority.identifier.digest
        assert acme in {_root(chain) for chain in shown.credentials}
        held = n.node.wallet.held("n")
        assert all(len(CredentialChain.decode(h.chain).credentials) == 1 for h in held)

    run_memnet(test, tmp_path / "home", budget=60)
