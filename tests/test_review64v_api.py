"""Review 64v of 64n's fixes: findings.

api 1 (cbor): `encode`'s fast path (`_in_subset`, a recursive walk) took any depth its
Python recursion limit allowed, and the value then went straight to cbor2's C encoder, whose
recursion on the C stack is unchecked: in a process that raised `sys.setrecursionlimit` (as
parsers and deep-data applications do) a list 60,000 deep crashed the process with a segfault,
where 64n's `MAX_CBOR_ENCODE_DEPTH` promised a DecodeError. The fast path now stops at that
depth and leaves the value to the general path, which refuses it.

api 2 (trust): `NodeTrust.detach` unset the wallet's `feed_binds` when they were its own, even
while another runtime on the same `troth.node.Node` (an earlier one) still ran: the later
runtime's stop left the running one with no binds, its feed pages judged as outside any node
(`anchor_binds`). A `troth.Node` handle runs one runtime at a time (troth._api.handle_runtime),
so this is reached by code running `NodeRuntime`s itself. A detach now gives the binds back to
the trust attached before it that is still attached.

api 3 (trust): `detach` removed its refutation hook from the node's `refuted_hooks` in place,
while another runtime's storage thread may be running them (`IdentityService._refuted`
iterates that list): the hook after the removed one was skipped, that runtime's vouchers
keeping the word of an identity whose history was just refuted. The list is now replaced.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from troth.node import init_node, open_node
from troth.node.trust import NodeTrust

SRC = Path(__file__).resolve().parent.parent / "src"

_RAISED_LIMIT = """
import sys
sys.setrecursionlimit(200_000)
from troth.encoding import cbor
from troth.errors import DecodeError

value = []
for _ in range(60_000):
    value = [value]
try:
    cbor.encode(value)
except DecodeError as exc:
    print("nested deeper than" in str(exc))
"""


def test_api1_a_deep_value_is_refused_when_the_recursion_limit_was_raised() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _RAISED_LIMIT],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])  # -11: a segfault
    assert done.stdout.split() == ["True"]


def test_api2_a_later_runtimes_stop_leaves_the_running_ones_feed_binds(tmp_path: Path) -> None:
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        first = NodeTrust(node, None)
        second = NodeTrust(node, None)  # another runtime on the same node, started later
        assert node.wallet.feed_binds is second._feed_binds
        second.detach()
        assert node.wallet.feed_binds is first._feed_binds  # None before: anchor_binds
        assert second.vouchers.refuted not in node.identities.refuted_hooks
        assert first.vouchers.refuted in node.identities.refuted_hooks
        third = NodeTrust(node, None)
        first.detach()  # the first stops while the third runs
        assert node.wallet.feed_binds is third._feed_binds
        third.detach()
        assert node.wallet.feed_binds is None


def test_api3_a_stop_during_a_refutation_skips_no_other_runtimes_hook(tmp_path: Path) -> None:
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        first = NodeTrust(node, None)
        second = NodeTrust(node, None)
        running = iter(node.identities.refuted_hooks)  # a refutation telling the hooks
        assert next(running) == first.vouchers.refuted
        first.detach()  # its runtime stops meanwhile
        assert list(running) == [second.vouchers.refuted]  # [] before: skipped
        second.detach()
