"""Review 23a, stored histories: what one member's throwaway delegates make a node store.

A node verifies the chains a peer presents with a verifier that stores (or extends) every
issuer history in them (store-or-extend, `NodeTrust.verifier`), at the handshake, before the
peer is judged and admitted. A member's delegation chain through fresh intermediate
identities makes the node store each of their histories — also when the node then refuses
the peer because the member's share of its memory (`MAX_VOUCHED_PER_MEMBER`) is full, which
docs/storage.md ("Vouchers") says stores nothing. So the bound that keeps a member's flood of
fresh delegates to its own share does not hold for the histories table.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.channels import MEMBER, T
from tests.support.parties import ChannelParty, make_channel_party, make_party
from tests.test_trust_scope import NOW, feed_of
from troth import limits
from troth.channel import AnyAuthenticatedIdentity, ChannelTrust, verify_peer
from troth.channel.verification import HandshakeClaim
from troth.credentials import CredentialChain, delegate, issue_credential
from troth.errors import ChannelError, ChannelFailure
from troth.node import Node, init_node, open_node
from troth.node.trust import NodeTrust
from troth.vault import SoftwareVault


class Desk:
    """A node trusting acme (an in-memory authority party), and alice, acme's member."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.vault = SoftwareVault()
        self.acme = make_party(self.vault, now=T)
        self.alice = make_party(self.vault, now=T)
        node.wallet.trust(self.acme.identifier, "node:acme", now=T)
        self.trust = NodeTrust(node, None)
        self.trust.reload(T)
        self.trust.set_feed(self.acme.identifier, feed_of(self.acme))
        root = issue_credential(
            self.acme.signer,
            subject=self.alice.identifier,
            attributes=MEMBER,
            now=T,
            ttl=3600,
            depth=4,
        )
        self.root = CredentialChain((root,), (self.acme.identity.history,))

    def channel_trust(self) -> ChannelTrust:
        return self.trust.channel_trust(AnyAuthenticatedIdentity())

    def flood_chain(self, to_whom: ChannelParty | None = None) -> tuple[HandshakeClaim, bytes]:
        """Alice's chain through three fresh delegates to a fresh presenter (or `to_whom`; the
        most the default depth allows): three throwaway issuers; and the presenter's handshake
        claim."""
        chain, holder = self.root, self.alice
        presenter: ChannelParty | None = None
        for n in range(4):
            if n == 3:
                presenter = to_whom or make_channel_party(self.vault, now=T)
            to = make_party(self.vault, now=T) if presenter is None else presenter.party
            chain = delegate(
                holder.signer,
                chain,
                subject=to.identifier,
                attributes=MEMBER,
                now=T,
                ttl=600,
                purpose="throwaway",
            )
            holder = to
        assert presenter is not None
        claim = HandshakeClaim(
            presenter.party.identity.history,
            presenter.attestation,
            self.vault.public_key(presenter.channel_key),
        )
        return claim, chain.encode()

    def stored_histories(self) -> int:
        row = self.node.db.fetch_one("SELECT count(*) FROM identities")
        return int(row[0])


@pytest.fixture
def desk(troth_home: Path) -> Iterator[Desk]:
    init_node("desk")
    with open_node("desk") as node:
        yield Desk(node)


def test_a_refused_delegate_leaves_no_history_behind(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alice's share is 2 identities: her first two delegates are admitted, the next 30 are
    refused (`cannot remember who vouches`), and those refusals must store nothing (each
    stored the three intermediate delegates' histories: 90 rows; a member repeats it at will).
    The admitted ones' delegators are stored, as before."""
    monkeypatch.setattr(limits, "MAX_VOUCHED_PER_MEMBER", 2)
    trust = desk.channel_trust()
    stored = desk.node.identities.stored_changes
    for _ in range(2):
        claim, chain = desk.flood_chain()
        peer = verify_peer(trust, claim, (chain,), NOW)
        (credential,) = peer.credentials  # an admitted peer and its delegators are kept
        assert all(stored(issuer.identifier) == 1 for issuer in credential.issuers)
        assert stored(peer.identifier) == 1
    before = desk.stored_histories()
    for _ in range(30):
        claim, chain = desk.flood_chain()
        with pytest.raises(ChannelError) as caught:
            verify_peer(trust, claim, (chain,), NOW)
        assert caught.value.reason is ChannelFailure.PEER_NOT_ALLOWED
    assert desk.stored_histories() == before


def test_a_refresh_stores_the_issuers_its_chains_bring(desk: Desk) -> None:
    """An admitted peer shows a chain through other delegates in-band (a refresh, or a re-check
    with it): their histories are judged, then stored once the peer is admitted again."""
    trust = desk.channel_trust()
    presenter = make_channel_party(desk.vault, now=T)
    claim, chain = desk.flood_chain(presenter)
    peer = verify_peer(trust, claim, (chain,), NOW)
    _, fresh = desk.flood_chain(presenter)
    (credential,) = verify_peer(trust, peer.identity, (fresh,), NOW).credentials
    stored = desk.node.identities.stored_changes
    assert all(stored(issuer.identifier) == 1 for issuer in credential.issuers)
