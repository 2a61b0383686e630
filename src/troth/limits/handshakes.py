"""The hard limits on the secure-channel handshakes a node takes up (troth.node.opening_rates;
docs/protocols.md, "Load limits").

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "HANDSHAKE_BURST",
    "HANDSHAKE_RATE",
    "HANDSHAKE_SOURCE_SHARE",
    "IDENTITY_CACHE",
    "MAX_HANDSHAKE_NETWORKS",
    "MAX_HANDSHAKE_SOURCES",
    "MAX_HANDSHAKE_TIMEOUT",
    "RETIRED_CHANNEL_KEY_GRACE",
    "SOURCE_CHANNELS_KEPT_FOR_OWN",
]

HANDSHAKE_BURST: Final = 256
"""Messages 1 (handshake openings) a node takes up from one network at once (an IPv4 /24, an
IPv6 /48, a sender behind a relay by the network its relay's host tag names: the networks the
half-open table judges by), then HANDSHAKE_RATE a second; past it a message 1 is dropped and
counted (`refused_handshake_rate`). Each costs the node a responder's handshake work (~0.4 ms of
CPU), and the half-open table bounds how many are held, not how fast they come: a flood from
one /24 evicted its own oldest and was taken up at any rate (review 57c, handshakes 1). As many
as the half-open table holds, so members behind one NAT all reconnecting at once are taken up
(`TROTH_CHANNELS_HANDSHAKE_BURST` sets a node's)."""
HANDSHAKE_RATE: Final = 64
"""Messages 1 a second a network's handshake budget refills by (~26 ms of a core a second at
~0.4 ms each; `TROTH_CHANNELS_HANDSHAKE_RATE` sets a node's)."""
MAX_HANDSHAKE_NETWORKS: Final = 4096
"""Networks whose handshake budget a node keeps at once: refilled budgets are forgotten first,
then the oldest (it starts again with a full budget), so no number of networks leaves a new one
refused."""
HANDSHAKE_SOURCE_SHARE: Final = 2
"""One source (an address, a sender behind a relay) spends at most 1/HANDSHAKE_SOURCE_SHARE of
its network's handshake refill (half its rate, at least 1 a second; the whole burst at once, so
members behind one NAT reconnecting are taken up): a source's own limits count the handshakes it
holds, not how fast it opens them, so one address that dropped its connection and opened 16 more
over a new one, again and again, spent its whole /24's budget, and its neighbours' messages 1
were dropped for as long as it went on (review 57u, openings 1)."""
MAX_HANDSHAKE_SOURCES: Final = 4096
"""Sources whose share of a handshake budget a node keeps at once (as MAX_HANDSHAKE_NETWORKS:
refilled ones forgotten first, then the oldest)."""

RETIRED_CHANNEL_KEY_GRACE: Final = 300
"""Seconds a channel key its renewal replaced stays in the vault before it is deleted (its
`retired_keys` record carries the time: troth.identity.retired_keys). A handshake that took
the node's channel identity just before the renewal does its DH with that key after it: one
minute of the node's cached identity (`IDENTITY_CACHE`) and a handshake's timeout (10 s by
default) fit well inside, and a key deleted at once failed such handshakes (KeyNotFound:
review 69t, chkeys 1). No new handshake is shown the replaced key's attestation."""
IDENTITY_CACHE: Final = 60
"""Seconds a running node reuses its channel identity (history, key, credentials;
troth.node.shown_identity): one another process's renewal replaced the key of is shown as
long (and while the node's own renewal reads it again)."""
MAX_HANDSHAKE_TIMEOUT: Final = RETIRED_CHANNEL_KEY_GRACE - IDENTITY_CACHE
"""The longest handshake timeout a node takes (`TROTH_CHANNELS_HANDSHAKE_TIMEOUT`): a handshake
taking the node's cached identity up to IDENTITY_CACHE after another process's renewal
replaced its key does its DH within the key's grace. The grace alone (review 69v, wave4a 2) let
it come a minute after the key was deleted (review 70a, chkeys 3)."""

SOURCE_CHANNELS_KEPT_FOR_OWN: Final = 16
"""Of the channels one source may hold to a node (`ChannelLimits.max_channels_per_source`, 256
by default), how many are kept for the node at the other end of a connection itself (at most
half the limit): the parties behind it, whose channels come over its connection (members it
forwards for) and count as its host, may hold the rest, not all of it, so they cannot refuse
its own next channel there (a renewed channel key's, an agent identity's). Within the limit,
not added to it: one host holds no more in total (review 72p, ends2 1). Likewise of its
handshakes in progress (`max_half_open_per_source`, 16: half of it kept; review 72r, room 1)
and of its share of the handshake rate (HANDSHAKE_BURST: 16 of 256 kept; review 73c, rooms 2)."""
