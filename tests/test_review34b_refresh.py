"""Review 34b, refresh 1: a member node refreshing its credential from a co-trusted authority's
node holds whatever chain that node answers (`membership._refresh_from`: `wallet.hold` checks
only that the chain's last subject is the node, trusting the chain's own root), though an
enrollment's answer must be issued by the ticket's authority. The node presents its eight
unexpired chains that expire last (`CredentialWallet.presentable`, MAX_CHANNEL_CREDENTIALS), so
globex, which the node also enrolled with, answers each refresh with a chain rooted at an
authority it made up, expiring long after acme's: after eight maintenance rounds the node
presents only those, which every peer drops (their root is no trust anchor), and it has lost
its acme membership at every acme node — its channels to the hub show no credential. Each
answer is also stored for good (up to 128 KiB a chain, every round).

Was a strict xfail until a refresh's answer is held only as the authority's it was asked of
(`CredentialWallet.hold(authority=)`, refused UNTRUSTED_ISSUER before anything is stored; used
by every refresh path: remote, hosted and on this machine).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.support.nodes import MemNet, globex_over_tcp, run_memnet
from troth.credentials import Attributes, CredentialBody, CredentialChain, issue_credential
from troth.limits import MAX_CHANNEL_CREDENTIALS


def _root(chain: bytes) -> bytes:
    return CredentialBody.decode(CredentialChain.decode(chain).credentials[0].body).issuer.digest


def test_a_refresh_answer_from_another_authority_is_not_held(tmp_path: Path) -> None:
    """n is a member of acme (the hub) and of globex. globex's node answers every refresh
    with a chain for n rooted at an authority it made up (`made-up`), expiring a month on. n
    refreshes MAX_CHANNEL_CREDENTIALS + 1 times: it holds no such chain, and still presents
    its acme credential."""

    async def test(net: MemNet) -> None:
        n = await net.member("n")
        globex, _, ticket = await globex_over_tcp(net)
        await n.enroll(ticket, "n")
        made_up = globex.node.identities.create(now=net.clock.now(), name="made-up")
        subject = net.identifier(n)

        def answer(request: bytes, *, now: int) -> CredentialChain:  # globex lies
            signer = globex.node.identities.signer("made-up", now=now)
            credential = issue_credential(
                signer,
                subject=subject,
                attributes=Attributes({"made.up": "yes"}),
                now=now,
                ttl=30 * 86400,
                depth=0,
                credential_id=os.urandom(16),
            )
            return CredentialChain((credential,), (signer.identity.history,))

        service: Any = globex.host.services["authority"]
        service.authority.refresh = answer
        for _ in range(MAX_CHANNEL_CREDENTIALS + 1):
            await n.refresh_credentials(margin=4000)  # every credential is due
            net.clock.advance(30)

        held = n.node.wallet.held("n")
        assert made_up.identifier.digest not in {_root(h.chain) for h in held}
        shown, _ = n.channel_identity("n", now=net.clock.now())
        acme = net.authority.identifier.digest
        assert acme in {_root(chain) for chain in shown.credentials}

    run_memnet(test, tmp_path / "home", budget=60)
