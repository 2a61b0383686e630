"""Review 35a, shown 1: a node shows peers its eight unexpired chains that expire last
(`NodeRuntime.channel_identity`, MAX_CHANNEL_CREDENTIALS), whichever authority they come from.
Review 34b (refresh 1, and review 35a refresh 1) holds a refresh's answer only as the asked
authority's member credential, but a co-trusted authority's node still chooses each answer's
expiry: globex answers every refresh with a member credential of its own that expires after
acme's yet within the refresh margin, so the node asks again the next round (its globex
credential is due) and holds one more each time. Where acme's credentials live less than
`REFRESH_MARGIN` (600 s) — a TTL of 5 min — globex's eight newest expire after acme's: within
eight rounds the node shows only globex's credentials, and has lost its acme membership on its
channels. An honest globex whose TTL is under the margin, refreshed every round and answering
16 live at its bound, does the same.

The test forces every credential due each round (`margin`), as those short TTLs do, and has
globex's answers expire after acme's.

The node now shows each authority's chain that expires last first, then the others by expiry:
no authority's chains push another's off its channels.

Was a strict xfail until `NodeRuntime.channel_identity` put each authority's chain that expires
last first (`_each_authority_first`; docs/protocols.md, "Nodes").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.nodes import MemNet, globex_over_tcp, run_memnet
from troth.credentials import CredentialBody, CredentialChain, issue_credential
from troth.limits import MAX_CHANNEL_CREDENTIALS


def _root(chain: bytes) -> bytes:
    return CredentialBody.decode(CredentialChain.decode(chain).credentials[0].body).issuer.digest


def test_one_authoritys_credentials_do_not_push_anothers_off_the_channels(
    tmp_path: Path,
) -> None:
    """n is a member of acme (the hub) and of globex. globex's node answers every refresh with
    a genuine globex member credential for n expiring two hours on (after acme's hour). n
    refreshes MAX_CHANNEL_CREDENTIALS + 1 times, every credential due: it still shows its acme
    credential."""

    async def test(net: MemNet) -> None:
        n = await net.member("n")
        globex, authority, ticket = await globex_over_tcp(net)
        await n.enroll(ticket, "n")
        subject = net.identifier(n)
        member = authority.member(subject)

        def answer(request: bytes, *, now: int) -> CredentialChain:  # expiring after acme's
            signer = authority.signer(now)
            credential = issue_credential(
                signer,
                subject=subject,
                attributes=member.attributes,
                now=now,
                ttl=2 * 3600,
                depth=0,
            )
            return CredentialChain((credential,), (signer.identity.history,))

        service: Any = globex.host.services["authority"]
        service.authority.refresh = answer
        for _ in range(MAX_CHANNEL_CREDENTIALS + 1):
            await n.refresh_credentials(margin=3 * 3600)  # every credential is due
            net.clock.advance(30)

        shown, _ = n.channel_identity("n", now=net.clock.now())
        acme = net.authority.identifier.digest
        assert acme in {_root(chain) for chain in shown.credentials}

    run_memnet(test, tmp_path / "home", budget=60)
