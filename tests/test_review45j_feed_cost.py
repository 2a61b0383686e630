"""Review 45j, feed page cost: `entry_cost`, what one entry adds to a feed page (the authority
fills a page's `page_entry_budget` by it), counted a 3-byte CBOR byte-string header for every
entry, while an entry under 256 bytes takes 2 (every entry without a long reason): pages of the
smallest entries ended ~1% short of their budget. It is the exact header length by size now,
so a page of the smallest entries fills its budget as computed, and still never exceeds
MAX_FEED_PAGE_BYTES."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from troth import limits
from troth.credentials import verify_page
from troth.credentials.revocation_pages import _PAGE_OVERHEAD, entry_cost, page_entry_budget
from troth.encoding import cbor
from troth.node import init_node, open_node

SIZES = (0, 1, 23, 24, 100, 255, 256, limits.MAX_REVOCATION_ENTRY_BYTES, 65_535, 65_536)


def test_entry_cost_is_the_entrys_encoded_size() -> None:
    """An entry of each size costs exactly what it takes in the page's array of entries (its
    CBOR byte string: 1, 2, 3 or 5 header bytes by size)."""
    for size in SIZES:
        entry = b"e" * size
        assert entry_cost(entry) == len(cbor.encode(entry)), size


def test_a_page_of_the_smallest_entries_fills_its_budget_as_computed(troth_home: Path) -> None:
    """An authority revokes 7,000 credentials with no reason (its smallest entries, all under
    256 bytes): its first page takes entries while their costs fit its budget, their costs sum
    to exactly the bytes they take in the page, the next entry would not have fitted (less
    than one entry's cost is left), the page is within MAX_FEED_PAGE_BYTES (its other bytes
    within `_PAGE_OVERHEAD`) and verifies."""
    init_node("acme")
    with open_node("acme") as node:
        authority = node.create_authority("acme", now=NOW)
        authority.revoke_credentials([n.to_bytes(32, "big") for n in range(7000)], now=NOW)
        page, end = authority.feed_page(now=NOW, since=0)
        _, _, _, _, entries, history = cbor.decode(page, max_bytes=len(page))
        (following,) = authority.store.revocation_page(end, 0, entry_cost)
    assert 0 < end == len(entries) < 7000
    assert max(len(e) for e in [*entries, following]) < 256
    taken = sum(entry_cost(e) for e in entries)
    array_header = len(cbor.encode([0] * len(entries))) - len(entries)  # each 0: one byte
    assert taken == len(cbor.encode(entries)) - array_header
    budget = page_entry_budget(history)
    assert taken <= budget < taken + entry_cost(following)
    assert len(page) <= limits.MAX_FEED_PAGE_BYTES
    assert len(page) - taken - len(history) <= _PAGE_OVERHEAD
    feed = verify_page(page, authority=authority.identifier, now=NOW)
    assert feed.count == end
