"""The hard limits of what the leased-secrets broker keeps per lease and of the requests it
forwards (troth.secrets; docs/secrets.md, "Storage" and "Issue rate").

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4: the module is near the 800-line cap).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "LEASE_FORWARD_BURST",
    "LEASE_FORWARD_RATE",
    "LEASE_FORWARD_TOTAL_BURST",
    "LEASE_FORWARD_TOTAL_RATE",
    "MAX_RETAINED_LEASE_BYTES",
    "MAX_TOKEN_LEEWAY_SECONDS",
]

MAX_RETAINED_LEASE_BYTES: Final = 8 * 1024
"""Bytes (the columns' payload, before SQLite's page and index overhead) the broker keeps for one
lease, open or ended, until `prune` forgets it 30 days after it ended, whatever the chain it was
issued under: its row (~290 bytes of fixed fields, the secret's name of at most MAX_SECRET_NAME
characters, MAX_LEASE_SCOPES ASCII scopes of at most MAX_ATTRIBUTE_TEXT characters, ~4.1 KB, and the
engine's kind and reference, a name it derives from the handle) and, when its chain is new, the
chain's hash, its (identity, account) row and its members (three a link, at most 1 +
MAX_DELEGATION_LINKS links, and the standing row: ~1.8 KB), ~6.6 KB in all. Not the chain: its bytes
were kept too, up to MAX_PRESENTED_CHAIN_BYTES (~31.9 KB) a lease on a served broker
(MAX_CHAIN_BYTES in the library), and nothing read them (review 56j, chains 1: a fresh delegate
chain at each issue, ~2.6 million in 30 days, let one member make the node keep ~83 GB). Times a
member's issue bound (docs/secrets.md, "Issue rate") it bounds what one member leaves in the lease
tables: ~21 GB in 30 days, ~420 GB for the whole broker."""
LEASE_FORWARD_BURST: Final = 600
"""Requests one member (and its delegates) may have the broker forward with an http-inject lease
in a burst, then `LEASE_FORWARD_RATE` a second; more is SecretError BUSY, nothing forwarded or
written (review 56j, forwards 2: each forward writes a `use` record, up to ~2 KB, to the
append-only audit log, and no budget counted them: one member wrote as many as the node served
it, bounded only by MAX_FORWARDS_PER_AGENT at once and the upstream's latency)."""
LEASE_FORWARD_RATE: Final = 10
"""Forwards a second one member's forward budget refills with."""
LEASE_FORWARD_TOTAL_BURST: Final = 6000
"""Forwards a broker makes in a burst, all members together, then `LEASE_FORWARD_TOTAL_RATE` a
second: what bounds the audit log's growth by forwards however many members hold leases."""
LEASE_FORWARD_TOTAL_RATE: Final = 100
"""Forwards a second the broker's total forward budget refills with."""
MAX_TOKEN_LEEWAY_SECONDS: Final = 300
"""Largest `leeway` `validate_token` takes (ArgumentError past it): the clock skew between a
relying party and the broker it allows, as much as a credential's verifier allows
(MAX_CLOCK_SKEW_SECONDS). A leeway of a year (a typo, milliseconds taken for seconds) validated a
token expired a year ago, and one whose lease had ended (review 70i, leftovers 1)."""
