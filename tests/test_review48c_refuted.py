"""Review 48c, refuted: attacks on revocation that the code withstood (pinned).

- A delegation revoked while the delegate's channel to a node (not the authority's) is open:
  the next request on that channel is refused (access is decided per request).
- An old page of the feed replayed to a holder that synced a revocation: refused, and the
  stored state (entries, head, latest, issued_at) stays as it was.
- An "up to date" page signed with the authority's stolen pre-rotation key, to keep a holder
  believing the feed it holds is fresh (or to fork it): refused once the holder synced the
  rotation.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

import troth
import troth.node.shown_identity
from tests.conftest import NOW
from tests.support.revocation import delegated_to_sub
from tests.test_api_network import LOOPBACK
from troth.credentials import RevocationEntry, RevocationKind, build_page, next_head
from troth.errors import CredentialError, CredentialFailure
from troth.node import init_node, open_node
from troth.node.authorities import sync_from


def test_a_link_revoked_mid_channel_is_refused_at_the_next_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`agents` (enrolled with acme on `hub`) delegates to `sub`; sub opens a channel to
    agents and calls echo (members only) through the chain; agents revokes the link; the next
    call on the same channel is refused."""
    # sub keeps showing its chain: a revoked peer that shows it anyway is what agents refuses
    monkeypatch.setattr(troth.node.shown_identity, "revokes_a_link", lambda *args: False)

    async def main() -> None:
        with (
            troth.Node.open("hub") as hub,
            troth.Node.open("agents") as agents,
            troth.Node.open("sub") as sub,
        ):
            acme = hub.create_authority()
            chain = delegated_to_sub(acme, agents, sub)
            async with (
                agents.serve(listen=LOOPBACK) as running,
                sub.serve() as calling,
                calling.connect(running.address, expect=None) as channel,
            ):
                assert await channel.call("echo", "echo", "hi") == "hi"
                agents.revoke(chain, by=agents.identity)
                with pytest.raises(troth.Denied) as refused:
                    await channel.call("echo", "echo", "again")
                assert f"revoked (credential {chain.id.hex()})" in str(refused.value)

    asyncio.run(main())


def test_an_old_page_replayed_does_not_roll_the_stored_feed_back(troth_home: Path) -> None:
    init_node("auth")
    init_node("agents")
    with open_node("auth") as node, open_node("agents") as agents:
        authority = node.create_authority("acme", now=NOW)
        acme = authority.identifier
        early = authority.feed(now=NOW + 1, since=0)  # before the revocation
        sync_from(agents, authority, now=NOW + 1)
        empty_end = agents.wallet.feed_since(acme)
        up_to_date = authority.feed(now=NOW + 2, since=empty_end)
        authority.revoke_credential(b"\x07" * 32, now=NOW + 3)
        held = sync_from(agents, authority, now=NOW + 4)
        assert held.credential_revoked(b"\x07" * 32)
        state = agents.wallet.store.feed_state(acme.digest)
        for page in (early, up_to_date):
            with pytest.raises(CredentialError) as caught:
                agents.wallet.update_feed(page, authority=acme, now=NOW + 5)
            assert caught.value.reason in (CredentialFailure.FEED_INVALID, _ROLLBACK)
        # a page signed before the one held, at its end: a rollback of its date
        stale = authority.feed(now=NOW + 3, since=held.count)
        with pytest.raises(CredentialError) as caught:
            agents.wallet.update_feed(stale, authority=acme, now=NOW + 5)
        assert caught.value.reason is _ROLLBACK
        assert agents.wallet.store.feed_state(acme.digest) == state
        again = agents.wallet.held_feed(acme)
        assert again is not None
        assert again.credential_revoked(b"\x07" * 32)


_ROLLBACK = CredentialFailure.FEED_ROLLBACK


def test_a_stolen_pre_rotation_key_cannot_keep_a_holder_on_its_feed(troth_home: Path) -> None:
    """The thief holds the authority node's backup from before its rotation. After the owner
    rotated and revoked a credential, a holder synced the real feed; the thief's pages (an
    "up to date" one at the holder's end, signed later, and one adding an entry of its own)
    are refused, and the holder still refuses the credential."""
    init_node("auth")
    init_node("agents")
    with open_node("auth") as node:
        node.create_authority("acme", now=NOW)
    shutil.copytree(troth_home / "nodes" / "auth", troth_home / "nodes" / "thief")
    with open_node("auth") as node, open_node("thief") as thief, open_node("agents") as agents:
        node.identities.rotate("acme", now=NOW + 10)
        authority = node.authority()
        assert authority is not None
        acme = authority.identifier
        authority.revoke_credential(b"\x07" * 32, now=NOW + 11)
        held = sync_from(agents, authority, now=NOW + 12)
        assert held.credential_revoked(b"\x07" * 32)
        state = agents.wallet.store.feed_state(acme.digest)
        old = thief.identities.signer("acme", now=NOW + 20)
        frozen = build_page(
            old, [], start=held.count, head=held.head, latest=held.count, now=NOW + 20
        )
        extra = RevocationEntry(held.count, RevocationKind.CREDENTIAL, b"\x08" * 32, acme, NOW, "")
        raw = extra.encode()
        forked = build_page(
            old,
            [raw],
            start=held.count,
            head=next_head(held.head, raw),
            latest=held.count + 1,
            now=NOW + 20,
        )
        for page in (frozen, forked):
            with pytest.raises(CredentialError) as caught:
                agents.wallet.update_feed(page, authority=acme, now=NOW + 21)
            assert caught.value.reason is CredentialFailure.FEED_INVALID
        assert agents.wallet.store.feed_state(acme.digest) == state
        again = agents.wallet.held_feed(acme)
        assert again is not None
        assert again.credential_revoked(b"\x07" * 32)
        # the control: the same "up to date" page signed with the current key is taken
        current = authority.signer(NOW + 20)
        page = build_page(
            current, [], start=held.count, head=held.head, latest=held.count, now=NOW + 20
        )
        assert agents.wallet.update_feed(page, authority=acme, now=NOW + 21).issued_at == NOW + 20
