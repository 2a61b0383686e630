"""Review 45h (limits end to end), revocation feed pages: the largest page the authority's
publishing path makes (`AuthorityFeed.page`: entries at MAX_REVOCATION_ENTRY_BYTES' worst,
reasons of MAX_REVOCATION_REASON 4-byte characters, or the most entries a page holds) is taken
by every reader: `verify_page`, a feed file (`write_page_sequence` / `read_page_sequence`) and a
node's feed sync over a secure channel. `build_page` never signs a page over
MAX_FEED_PAGE_BYTES: its overhead bound (`_PAGE_OVERHEAD`) holds with every integer at its
largest and a P-256 signer.

Every test passes on main: they pin what holds.
"""

from __future__ import annotations

import io
from pathlib import Path

from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.support.parties import make_party
from troth import limits
from troth.credentials import (
    RevocationEntry,
    RevocationKind,
    Supersession,
    build_page,
    verify_page,
)
from troth.credentials.revocation import feed_authority
from troth.credentials.revocation_pages import (
    _PAGE_OVERHEAD,
    entry_cost,
    page_entry_budget,
    read_page_sequence,
    write_page_sequence,
)
from troth.crypto import KeyType
from troth.encoding import cbor
from troth.identity import Identifier
from troth.vault import SoftwareVault

NOW = 1_700_000_000
WIDE = "\U0001f600" * limits.MAX_REVOCATION_REASON
"""The longest reason, in 4-byte characters: the largest entry an authority writes."""
LARGEST_INT = (1 << 64) - 1


def test_the_largest_entry_fits_its_limit() -> None:
    """Every integer at its largest CBOR form, the longest reason of 4-byte characters: within
    MAX_REVOCATION_ENTRY_BYTES, and a supersession with the highest change count too."""
    digest = bytes(range(32))
    largest = RevocationEntry(
        limits.MAX_FEED_ENTRIES - 1,
        RevocationKind.CREDENTIAL,
        digest,
        Identifier(digest),
        LARGEST_INT,
        WIDE,
    )
    data = largest.encode()
    assert len(data) <= limits.MAX_REVOCATION_ENTRY_BYTES
    assert RevocationEntry.decode(data) == largest
    supersession = RevocationEntry(
        limits.MAX_FEED_ENTRIES - 1,
        RevocationKind.SUPERSEDED,
        digest,
        Identifier(digest),
        LARGEST_INT,
        "",
        Supersession(limits.MAX_CHANGE_INDEX + 1, digest),
    )
    assert RevocationEntry.decode(supersession.encode()) == supersession


def test_build_page_stays_within_its_overhead_bound_at_the_largest_integers() -> None:
    """A P-256 authority (the larger attestation and signature), entries at
    MAX_REVOCATION_ENTRY_BYTES filling `page_entry_budget`, the feed at MAX_FEED_ENTRIES and
    the page signed at the latest time: the page is within MAX_FEED_PAGE_BYTES (no ValueError
    from the producer), what it adds beside its entries and history is within
    `_PAGE_OVERHEAD`, and the decoder takes it."""
    authority = make_party(SoftwareVault(), now=NOW, key_type=KeyType.P256)
    signer = authority.signer
    entry = b"e" * limits.MAX_REVOCATION_ENTRY_BYTES
    count = page_entry_budget(signer.identity.history) // entry_cost(entry)
    entries = [entry] * count
    page = build_page(
        signer,
        entries,
        start=limits.MAX_FEED_ENTRIES - count,
        head=b"h" * 32,
        latest=limits.MAX_FEED_ENTRIES,
        now=(1 << 63) - 1,
    )
    assert len(page) <= limits.MAX_FEED_PAGE_BYTES
    overhead = len(page) - count * entry_cost(entry) - len(signer.identity.history)
    assert overhead <= _PAGE_OVERHEAD
    assert feed_authority(page) == authority.identifier
    pages = list(read_page_sequence(io.BytesIO(b"".join(write_page_sequence([page]))).read))
    assert pages == [page]


def test_the_largest_pages_the_authority_publishes_reach_a_node_over_a_channel(
    tmp_path: Path,
) -> None:
    """The hub's authority revokes 600 credentials with the longest reason in 4-byte
    characters (a full page of the largest entries, and more), then 6,000 with none (a full
    page of the most entries a page holds): each page `AuthorityFeed.page` signs is within
    MAX_FEED_PAGE_BYTES and full (one more entry would not fit), `verify_page` and a feed file
    take them, and a member's node syncs the whole feed over its channel to the hub."""

    async def test(net: MemNet) -> None:
        authority = net.authority
        now = net.clock.now()
        authority.revoke_credentials(
            [n.to_bytes(32, "big") for n in range(600)], now=now, reason=WIDE
        )
        authority.revoke_credentials(
            [(10**6 + n).to_bytes(32, "big") for n in range(6000)], now=now
        )
        latest = 6600
        pages: list[bytes] = []
        feed = None
        since = 0
        while since < latest:
            page, end = authority.feed_page(now=now, since=since)
            assert len(page) <= limits.MAX_FEED_PAGE_BYTES
            feed = verify_page(page, authority=authority.identifier, now=now, previous=feed)
            assert feed.count == end > since
            if end < latest:  # full: the next entry would not have fitted its budget
                _, _, _, _, entries, history = cbor.decode(page, max_bytes=len(page))
                taken = sum(entry_cost(e) for e in entries)
                (following,) = authority.store.revocation_page(end, 0, entry_cost)
                assert taken + entry_cost(following) > page_entry_budget(history)
            pages.append(page)
            since = end
        assert feed is not None
        assert feed.complete
        assert feed.count == latest
        assert len(pages) >= 3
        assert max(len(p) for p in pages) > limits.MAX_FEED_PAGE_BYTES - 2 * (
            limits.MAX_REVOCATION_ENTRY_BYTES + _PAGE_OVERHEAD
        )
        stream = io.BytesIO(b"".join(write_page_sequence(pages)))
        assert list(read_page_sequence(stream.read)) == pages

        member = await net.member("m")
        end_to_hub = await member.channel_to(route(HUB))
        synced = await member.sync_feed(authority.identifier, end_to_hub)
        assert synced.count == latest
        assert synced.credential_revoked((599).to_bytes(32, "big"))

    run_memnet(test, tmp_path / "home", budget=60)
