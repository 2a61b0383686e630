"""Review 63m, authority: attacks on review 63a, authority 2 (the authority's held feed kept
and grown in place).

Authority 1 (medium; fixed in troth/credentials/revocation_held.py). `AuthorityFeed.held` now
keeps the view it made last and grows that view's index in place, so every view a library
`Verifier` (an `Authority` as a feed source) or a node gets shares one index with the next.
The held feed's lock covers the growth only: a reader of an older view that copies the index
(`VerifiedFeed.agrees_with`, through `newest_copy`, which a `Verifier` with two sources calls at
every verification) iterated its dicts in Python bytecode while another thread's `held_feed`
added to them: RuntimeError ("dictionary changed size during iteration") out of `verify`, no
TrothError. Before, each view had an index of its own. `_Index.prefix` now copies each dict's
items first (one C-level step under the GIL) and filters the copy. The test makes the other
thread's growth happen at that point deterministically (a trace hook in the copying frame).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from tests.conftest import NOW
from troth.authority import Authority
from troth.credentials import VerifiedFeed
from troth.node import init_node, open_node


def _grow_while_copying(authority: Authority, older: VerifiedFeed, newer: VerifiedFeed) -> bool:
    """`older.agrees_with(newer)` with another thread's revocation and `held_feed` landing in
    the middle of the copy of the shared index (at the second step of a comprehension)."""
    lines: list[int] = []

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            lines.append(frame.f_lineno)
            if len(lines) == 2:  # mid-iteration: the other thread's turn
                sys.settrace(None)
                authority.revoke_credentials([os.urandom(32) for _ in range(8)], now=NOW)
                authority.held_feed(now=NOW)
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        return local if event == "call" and frame.f_code.co_name == "<dictcomp>" else None

    sys.settrace(tracer)
    try:
        return older.agrees_with(newer)
    finally:
        sys.settrace(None)


def test_authority_1_an_older_view_is_compared_while_another_thread_grows_it(
    troth_home: Path,
) -> None:
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        authority.revoke_credentials([os.urandom(32) for _ in range(6)], now=NOW)
        older = authority.held_feed(now=NOW)  # the cached view: its index grows in place
        authority.revoke_credentials([os.urandom(32) for _ in range(6)], now=NOW)
        newer = authority.held_feed(now=NOW)  # the same index, grown
        assert _grow_while_copying(authority, older, newer)
