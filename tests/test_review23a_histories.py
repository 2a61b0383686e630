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
from tests.support.parties import Party, make_party
from tests.test_trust_scope import NOW, feed_of
from troth import limits
from troth.channel import AnyAuthenticatedIdentity, ChannelTrust, verify_peer
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

    def flood_chain(self) -> tuple[Party, bytes]:
        """Alice's chain through three fresh delegates to a fresh presenter (the most the
        default depth allows): four throwaway identities, three of them issuers."""
        chain, holder = self.root, self.alice
        for _ in range(4):
            to = make_party(self.vault, now=T)
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
        return holder, chain.encode()

    def stored_histories(self) -> int:
        row = self.node.db.fetch_one("SELECT count(*) FROM identities")
        return int(row[0])


@pytest.fixture
def desk(troth_home: Path) -> Iterator[Desk]:
    init_node("desk")
    with open_node("desk") as node:
        yield Desk(node)


@pytest.mark.xfail(
    strict=True,
    reason="review 23a: the node's chain verifier stores every issuer history before the peer "
    "is judged: a member's delegates refused for its full share still fill the histories table",
)
def test_a_refused_delegate_leaves_no_history_behind(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alice's share is 2 identities: her first two delegates are admitted, the next 30 are
    refused (`cannot remember who vouches`), and those refusals must store nothing (here each
    stored the three intermediate delegates' histories: 90 rows; a member repeats it at will)."""
    monkeypatch.setattr(limits, "MAX_VOUCHED_PER_MEMBER", 2)
    trust = desk.channel_trust()
    for _ in range(2):
        who, chain = desk.flood_chain()
        assert verify_peer(trust, who.identity, (chain,), NOW).identifier == who.identifier
    before = desk.stored_histories()
    for _ in range(30):
        who, chain = desk.flood_chain()
        with pytest.raises(ChannelError) as caught:
            verify_peer(trust, who.identity, (chain,), NOW)
        assert caught.value.reason is ChannelFailure.PEER_NOT_ALLOWED
    assert desk.stored_histories() == before
