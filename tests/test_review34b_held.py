"""Review 34b, held 1: a node never forgets a credential it held (`held_credentials` rows are
only ever added: `CredentialWallet.hold`), and its node refreshes a credential every
maintenance round (30 s) once it expires within `REFRESH_MARGIN` (600 s). An authority issuing
short-lived credentials (`--credential-ttl 60`, the advice for agents) — or a co-trusted
authority's node answering each refresh with a chain of its own that expires at once, up to
128 KiB each — makes each of its members' nodes store one more chain every round, for good:
2,880 a day, and every channel the node opens, every delegation and every refresh decision
reads them all (`list_held`).

Was a strict xfail until holding a chain forgets the identity's chains from the same authority
that have expired, but the member credential and the chain that expire last
(`CredentialWallet.hold`, `CredentialStore.forget_held`; docs/storage.md, "Schema").
"""

from __future__ import annotations

from pathlib import Path

from tests.support.nodes import MemNet, run_memnet
from troth.credentials import Attributes
from troth.node import Node

ROUNDS = 20
TTL = 60  # the globex authority's credential TTL (short-lived credentials)


def test_expired_credentials_of_an_authority_are_not_kept(tmp_path: Path) -> None:
    """n is a member of globex, whose credentials live 60 s, so n refreshes every
    maintenance round: after 20 rounds n holds its unexpired globex credentials (three at
    most), not one per round."""

    async def test(net: MemNet) -> None:
        def create_globex(node: Node) -> None:
            node.create_authority("globex", now=net.clock.now(), credential_ttl=TTL)

        globex = await net.node("globex", listen=("globex", 4000), prepare=create_globex)
        authority = globex.node.authority()
        ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"globex.team": "desk"}),
            address="/tcp/globex:4000",
            now=net.clock.now(),
        )
        n = await net.node("n")
        await n.enroll(str(ticket), "n")
        for _ in range(ROUNDS):
            net.clock.advance(30)  # a maintenance round: the newest expires within the margin
            await globex.refresh_feeds()  # its own feed renewed, as its rounds do
            await n.refresh_feeds()  # as a maintenance round does, first
            assert await n.refresh_credentials() == 1
        held = n.node.wallet.held("n")
        assert len(held) <= 3
        assert max(h.expires_at for h in held) > net.clock.now()  # the newest is kept

    run_memnet(test, tmp_path / "home", budget=60)
