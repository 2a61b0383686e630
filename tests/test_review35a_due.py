"""Review 35a, due 1: `troth revoke credential ID` kills a credential and every chain through
it — how an authority cuts at once the delegations a member made, the member staying one. The
member's node then holds a member credential its feed revokes: since review 34b (presented 1)
it leaves it off its channels, but its refresh decision (`needs_refresh`, review 34b due 1)
goes by the newest member credential it holds, revoked or not, so it asks for no fresh one
until that one nears expiry: for most of an hour (the default TTL) the node shows no
credential of its authority, and every node trusting that authority refuses it as a member.

The refresh decision now passes over the member credentials the node's feed revokes: the node
asks at once, and the authority (whose bound counts no revoked credential) issues a fresh one.

Was a strict xfail until `needs_refresh(feed=)` passed over the revoked member credentials
(given the authority's feed by `troth.node.membership.refresh_credentials`; docs/credentials.md,
"Enrollment").
"""

from __future__ import annotations

from pathlib import Path

from tests.support.nodes import MemNet, run_memnet
from troth.credentials import CredentialBody, CredentialChain


def _root(chain: bytes) -> bytes:
    return CredentialBody.decode(CredentialChain.decode(chain).credentials[0].body).issuer.digest


def test_a_revoked_member_credential_is_refreshed_at_once(tmp_path: Path) -> None:
    """n enrolls at the hub; the hub's authority revokes n's credential (n stays a member); n
    syncs the feed and runs its refresh: it gets a fresh credential and shows it."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        n = await net.member("n")
        (held,) = n.node.wallet.held("n")
        net.authority.revoke_credential(held.id, now=net.clock.now(), reason="cut its links")
        await hub.refresh_feeds()
        await n.refresh_feeds()  # n's feed says its credential is revoked
        net.clock.advance(30)
        assert await n.refresh_credentials() == 1
        shown, _ = n.channel_identity("n", now=net.clock.now())
        acme = net.authority.identifier.digest
        assert acme in {_root(chain) for chain in shown.credentials}

    run_memnet(test, tmp_path / "home", budget=60)
