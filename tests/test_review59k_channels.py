"""Review 59k (short adversarial review of review 59f's src/troth/node/shown_identity.py
change): a root member an authority's first chain already shows gets no second place
(`_each_authority_first`).

- channels 1: "already shows" was judged across authorities. A member M delegating to the
  node under authority A (that chain A's first, expiring last) and under authority B lost
  the place its B chain had among the root members' (review 58u): it went to the tail, behind
  the node's other chains, and past MAX_CHANNEL_CREDENTIALS it is not shown at all, so a peer
  trusting B alone sees no delegation of M (before review 59f it had that place). A root
  member is shown per authority: its chain under A shows nothing to a peer trusting B.
"""

from __future__ import annotations

from tests.support.channels import T
from tests.support.parties import make_channel_party
from tests.test_channel_manager import Net, run
from tests.test_review58s_channels import _chain_of as _delegation
from troth.limits import MAX_CHANNEL_CREDENTIALS
from troth.node.shown_identity import _each_authority_first
from troth.storage.base import HeldCredential

_OTHER_AUTHORITY = bytes([0xBB]) * 32


def test_channels1_a_members_chain_under_another_authority_keeps_its_place() -> None:
    async def test(net: Net) -> None:
        a = net.world.authority.identifier.digest
        who = make_channel_party(net.world.vault, now=T)
        member = make_channel_party(net.world.vault, now=T)
        others = [make_channel_party(net.world.vault, now=T) for _ in range(5)]
        under_b = _delegation(net, member, who, 300)
        held = [
            (_delegation(net, member, who, 900), a, T + 900),  # A's first: rooted at M
            (net.world.credential(who, ttl=800), _OTHER_AUTHORITY, T + 800),  # B's first
            *((_delegation(net, o, who, 500 + i), a, T + 500 + i) for i, o in enumerate(others)),
            (_delegation(net, others[0], who, 400), a, T + 400),  # a second of one member
            (under_b, _OTHER_AUTHORITY, T + 300),  # M's under B
        ]
        rows = [
            HeldCredential(who.identifier.digest, bytes([i]), chain, authority, expires)
            for i, (chain, authority, expires) in enumerate(sorted(held, key=lambda h: -h[2]))
        ]
        shown = [h.chain for h in _each_authority_first(rows)][:MAX_CHANNEL_CREDENTIALS]
        assert under_b in shown

    run(test)
