"""Review 64b2 of 64v's fixes: findings in `troth.node.trust`.

trust 1: `NodeTrust.detach` replaced the node's `refuted_hooks` with a filtered copy of the
list it read, outside any lock, while a trust attached meanwhile (another runtime on the same
node, started on another thread) appended its hook to the list being copied: the new list
lacked it, and that runtime's vouchers were never told of a refutation, keeping the word of
an identity whose history was just shown made up. Attaching and detaching now change the
list under the lock that orders the wallet's `feed_binds`, each writing a new list.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from troth.node import init_node, open_node
from troth.node.trust import NodeTrust


def test_trust1_a_trust_attached_while_another_detaches_keeps_its_refutation_hook(
    tmp_path: Path,
) -> None:
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        stopping = NodeTrust(node, None)
        started: list[NodeTrust] = []
        attach = threading.Thread(target=lambda: started.append(NodeTrust(node, None)))

        class Hooks(list[Any]):
            def __iter__(self) -> Iterator[Any]:
                yield from list(super().__iter__())
                # detach has read the list, not yet replaced it: another runtime attaches
                if not attach.is_alive() and not started:
                    attach.start()
                    attach.join(0.5)  # as long as it runs (with the fix: waits for the lock)

        node.identities.refuted_hooks = Hooks(node.identities.refuted_hooks)
        stopping.detach()
        attach.join(10)
        assert started, "the other runtime's trust was not made"
        assert started[0].vouchers.refuted in node.identities.refuted_hooks
        assert stopping.vouchers.refuted not in node.identities.refuted_hooks
        assert node.wallet.feed_binds is started[0]._feed_binds
        started[0].detach()
        assert node.identities.refuted_hooks == []
        assert node.wallet.feed_binds is None
