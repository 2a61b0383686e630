"""A node's limits on secure channels and the counters of what they refused
(docs/protocols.md, "Load limits"): `ChannelLimits` (read from `TROTH_CHANNELS_*` by
`ChannelLimits.from_environment`), `ChannelCounters`, and the budgets that hold them per peer
(`PeerReassembly`, `ChannelsPerPeer`), used by troth.node.channels."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from troth import limits as protocol_limits
from troth.channel import ChannelSettings, PeerPolicy, ReassemblyBudget, VerifiedPeer
from troth.errors import ConfigError
from troth.identity import Identifier
from troth.node.member_reassembly import MemberBytes
from troth.node.shares import Shares
from troth.transport.settings import (
    TcpSettings,
    require_counts,
    require_seconds,
    settings_from_environment,
)

__all__ = [
    "CHANNELS_ENVIRONMENT_PREFIX",
    "MIN_REASSEMBLY_BUDGET",
    "ChannelCounters",
    "ChannelLimits",
    "ChannelsPerPeer",
    "PeerReassembly",
]

CHANNELS_ENVIRONMENT_PREFIX: Final = "TROTH_CHANNELS_"
MIN_REASSEMBLY_BUDGET: Final = 2 * protocol_limits.MAX_CHANNEL_FRAME
"""The least `max_reassembly_per_peer` and `max_reassembly_total` a node takes: what a message
of two full frames holds while it is put back together (each fragment keeps its frame)."""


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """A node's limits on secure channels (seconds, counts, bytes)."""

    handshake_timeout: float = 10.0
    """A handshake not finished within this long is dropped (both roles)."""
    max_half_open: int = 256
    """Responder ends still in their handshake, in total."""
    max_half_open_per_source: int = 16
    """Responder ends still in their handshake, per source."""
    max_channels_per_peer: int = 64
    """Open channels one peer identity may hold to this node (ones it opened)."""
    max_channels_per_source: int = 256
    """Channels (handshaking or open) that peers from one source (the origin the half-open
    limit counts under) may hold to this node: identities cost nothing, so the per-peer limit
    alone does not bound one source."""
    max_channels_per_member: int = protocol_limits.MAX_CHANNELS_PER_MEMBER
    """Open channels the peers of one member may hold to this node (ones they opened): the
    member's own and its delegates' (`member_accounts`: a member mints delegates for free, so
    the per-peer limit alone does not bound one member; a peer with no chain counts as its own
    member, its per-peer limit the lower: review 43a, channels 1)."""
    max_reassembly_per_peer: int = 2 * (
        protocol_limits.MAX_APPLICATION_MESSAGE + protocol_limits.MAX_CHANNEL_FRAME
    )
    """Bytes held by incomplete fragmented messages of one member, all the channels of it and
    of its delegates (the members at the roots of a peer's chains, `member_accounts`: a member
    mints delegates for free; a peer with no chain, its own: review 41b, delegates 1; a peer
    with chains from several counts against each: review 58l, reassembly 1). Charged bytes, as
    `max_reassembly_total`: the memory held is at most 26/25 of them (the uncharged 1 KiB after
    a large frame and each chunk's bookkeeping, a fragment charged at least 32 KiB;
    docs/protocols.md, "Secure channel")."""
    max_reassembly_total: int = 8 * (
        protocol_limits.MAX_APPLICATION_MESSAGE + protocol_limits.MAX_CHANNEL_FRAME
    )
    """Bytes held by incomplete fragmented messages of all peers together (identities cost an
    attacker nothing on a node that admits any authenticated identity); past it, a peer takes
    more only within one of its authorities' share (strangers are one), up to twice this."""
    max_open_channels: int = protocol_limits.MAX_OPEN_CHANNELS
    """Open channels peers opened to this node, all together (`troth.node.channel_cap`):
    strangers hold at most three quarters, the rest is kept for the members of the node's
    authorities, local callers and the nodes at the other end of its own connections; at the
    cap a newcomer takes the place of a stranger's channel (of the network, then the source,
    holding the most), or, with none, of a member's of the authority most over its share of
    the cap, or is refused (review 54k, channels 1; review 54r, channels 1)."""
    reassembly_timeout: int | None = None
    """Seconds an incomplete message is kept on this node's channels (None: the channel
    settings' `reassembly_timeout`, 60 s by default)."""
    reassembly_sweep: float = 5.0
    """How often incomplete messages are checked against the reassembly timeout."""
    keepalive_interval: float | None = None
    """Idle seconds before a channel sends a PING (None: the channel settings', 15 s; a third
    of `keepalive_timeout` when only that is set)."""
    keepalive_timeout: float | None = None
    """Seconds without an authenticated frame before a channel closes (None: the channel
    settings', 45 s; three times `keepalive_interval` when only that is set)."""
    handshake_burst: int = protocol_limits.HANDSHAKE_BURST
    """Messages 1 taken up from one network at once, then `handshake_rate` a second
    (troth.node.opening_rates; review 57c, handshakes 1)."""
    handshake_rate: int = protocol_limits.HANDSHAKE_RATE
    """Messages 1 a second a network's handshake budget refills by."""
    max_reply_paths: int = 1024
    """Reply paths a channel remembers (least recently used forgotten first)."""
    log_lines_per_minute: int = 10
    """Lines a minute about dropped frames and refused handshakes."""

    def __post_init__(self) -> None:
        # a sweep of 0 s re-arms itself with no delay (a loop that takes the CPU), a handshake
        # timeout of 0 s expires every handshake as it starts (review 28a, settings 1)
        require_seconds(self, "handshake_timeout", "reassembly_sweep")
        # a handshake runs its DH with the channel key it took at its start, which may be one
        # replaced up to IDENTITY_CACHE before: one running past the rest of the grace a
        # replaced key is kept failed on the deleted key (review 69v, wave4a 2; 70a, chkeys 3)
        if self.handshake_timeout > protocol_limits.MAX_HANDSHAKE_TIMEOUT:
            raise ValueError(
                f"handshake_timeout must be at most {protocol_limits.MAX_HANDSHAKE_TIMEOUT} s (a "
                "replaced channel key's grace, less the time a node shows its cached identity)"
            )
        # a count of 0 refuses every channel (max_half_open 0 failed each message 1), a
        # reassembly timeout of 0 s gives up every fragmented message as its next fragment
        # arrives (review 29b, settings 1)
        require_counts(
            self,
            "max_half_open",
            "max_half_open_per_source",
            "max_channels_per_peer",
            "max_channels_per_source",
            "max_channels_per_member",
            "max_open_channels",
            "max_reply_paths",  # each channel end failed as it was made (settings 2)
            "handshake_burst",  # every message 1 refused (review 57c, handshakes 1)
            "handshake_rate",
        )
        if self.reassembly_timeout is not None and self.reassembly_timeout <= 0:
            raise ValueError("reassembly_timeout must be positive (a number of seconds)")
        # every fragment holds its whole decrypted frame against these budgets: below two
        # frames a message of two full frames closed its channel (review 30, settings 1)
        for name in ("max_reassembly_per_peer", "max_reassembly_total"):
            if getattr(self, name) < MIN_REASSEMBLY_BUDGET:
                raise ValueError(
                    f"{name} must be at least {MIN_REASSEMBLY_BUDGET} bytes (two channel frames)"
                )
        self.keepalive(ChannelSettings())  # ValueError when the keepalive times do not fit

    def keepalive(self, settings: ChannelSettings) -> ChannelSettings:
        """`settings` with this node's keepalive times, if set (ValueError when they do not
        fit: the timeout must be at least twice the interval)."""
        interval, timeout = self.keepalive_interval, self.keepalive_timeout
        if interval is None and timeout is None:
            return settings
        interval = interval if interval is not None else (timeout or 0) / 3
        timeout = timeout if timeout is not None else 3 * interval
        return dataclasses.replace(settings, keepalive_interval=interval, keepalive_timeout=timeout)

    def check_idle(self, tcp: TcpSettings, settings: ChannelSettings | None = None) -> None:
        """ConfigError unless `tcp.idle_timeout` is at least twice the keepalive interval in
        force (this node's, on `settings`, by default `ChannelSettings()`): at a node only
        authenticated progress keeps a connection from idling out, on a quiet channel its
        keepalive PING, so an idle timeout at or below that interval closed the connection
        under every quiet, healthy channel (review 57c, transport 1). Twice, as the keepalive
        timeout must be: a PING goes out up to a tick after the interval, and the sweep sees
        its answer up to a sweep later."""
        interval = self.keepalive(settings or ChannelSettings()).keepalive_interval
        if tcp.idle_timeout < 2 * interval:
            raise ConfigError(
                f"the TCP idle timeout ({tcp.idle_timeout:g} s, TROTH_TCP_IDLE_TIMEOUT) must be "
                f"at least twice the channels' keepalive interval ({interval:g} s, "
                "TROTH_CHANNELS_KEEPALIVE_INTERVAL): else the connection under every quiet "
                "channel idles out"
            )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ChannelLimits:
        """The defaults, with the `TROTH_CHANNELS_<FIELD>` variables set in the environment
        (ConfigError for an unknown name or a bad value)."""
        return settings_from_environment(cls, CHANNELS_ENVIRONMENT_PREFIX, environ)


@dataclass(slots=True)
class ChannelCounters:
    """What the channel layer refused, dropped or expired (a node's status shows them)."""

    handshakes_started: int = 0
    handshakes_timed_out: int = 0
    refused_half_open: int = 0
    """Kept for status readers: 0 since review 34e, handshakes 2 (a full half-open table
    gives up its oldest handshake for a newcomer, `evicted_half_open`, instead of refusing it)."""
    refused_half_open_per_source: int = 0
    refused_channels_per_source: int = 0
    refused_handshake_rate: int = 0
    """Messages 1 dropped past their network's handshake budget (review 57c, handshakes 1)."""
    evicted_half_open: int = 0
    evicted_open: int = 0
    """Strangers' open channels closed for a newcomer at the node's cap (review 54k)."""
    refused_open: int = 0
    """Channels closed as they opened: the node at its cap, no stranger's channel to give way."""
    dropped_frames: int = 0
    reassembly_expired_bytes: int = 0
    reassembly_given_up: int = 0
    """Incomplete messages given up for a later message of their channel that would pass a
    reassembly bound (their tails lost on the way: review 49f, reassembly 1)."""
    unsent_packets: int = 0
    """Packets channels made that their first hop did not take: a congested path (its
    connection's peer does not read, `Congested`) or a connection gone (review 27c)."""
    no_route_notices_sent: int = 0
    """No-route notices sent: a packet from a peer named a `/worker/...` hop this node serves
    no more (troth.node.no_route; review 49b, relays 1)."""
    no_route_notices_forwarded: int = 0
    """No-route notices passed back, from the node at the other end of a connection, for a
    packet that came to this node over another (review 50f, relays 2)."""
    closed_by_no_route: int = 0
    """Channels closed by a no-route notice from the node at the other end of their first hop."""


class PeerReassembly(ReassemblyBudget):
    """The reassembly budget of the peers whose chains root in one set of members (`members`,
    `member_accounts`: a member and its delegates; a peer with no chain, its own), drawing on
    each member's bytes (`tally`, shared by all budgets of a node: `limit` per member, a peer
    with chains from several members counting against each, review 58l, reassembly 1) and on
    the node's bytes as a pool shared between authorities (troth.node.shares, in bytes): within
    the node's total, anyone; past it, only within the share of one of the peer's authorities
    (strangers are one), so identities that cost nothing fill the total and no more (review
    23b, limits 1); the node holds at most twice its total. `held` is this budget's bytes,
    taken once from the node's, against `authorities`."""

    __slots__ = ("authorities", "members", "node", "tally", "total")

    def __init__(
        self,
        limit: int,
        node: Shares,
        total: int,
        authorities: frozenset[bytes],
        *,
        members: frozenset[bytes],
        tally: MemberBytes,
    ):
        super().__init__(limit)
        self.node, self.total, self.authorities = node, total, authorities
        self.members, self.tally = members, tally

    def take(self, size: int) -> bool:
        """Reserve `size` bytes (False past one of the members' limit or the node's room for
        it); nothing is always room (a channel that joins the budget holding no fragment)."""
        if not size:
            return True
        if not self.tally.fits(self.members, size, self.limit):
            return False
        if not self.node.room(self.authorities, self.total, size):
            return False
        self.node.take(self.authorities, size)
        self.tally.take(self.members, size)
        self.held += size
        return True

    def give(self, size: int) -> None:
        """Release `size` bytes (to the node and to each member)."""
        self.held -= size
        self.tally.give(self.members, size)
        self.node.release(self.authorities, size)

    def count_against(self, authorities: frozenset[bytes]) -> None:
        """The peer's authorities now (its credentials changed: a stranger that enrolled over
        its channel, a refresh): what this budget holds counts against them from now on (its
        members' counts are unchanged: they are the same bytes)."""
        if authorities != self.authorities:
            if self.held:
                self.node.release(self.authorities, self.held)
                self.node.take(authorities, self.held)
            self.authorities = authorities


class ChannelsPerPeer:
    """The handshake's policy: the node's, and a peer may not hold more than `limit` channels
    opened to this node, nor the peers of its member (`member_count`, given the peer: its own
    and its delegates', review 43a, channels 1) more than `member_limit`, and the node must
    have room for it under its cap on open channels (`room`, given the peer: review 54k,
    channels 1) (used only until the handshake completes)."""

    def __init__(
        self,
        inner: PeerPolicy,
        count: Callable[[Identifier], int],
        limit: int,
        *,
        member_count: Callable[[VerifiedPeer], int] | None = None,
        member_limit: int = protocol_limits.MAX_CHANNELS_PER_MEMBER,
        room: Callable[[VerifiedPeer], bool] | None = None,
    ) -> None:
        self.inner, self.count, self.limit = inner, count, limit
        self.member_count, self.member_limit, self.room = member_count, member_limit, room

    def admit(self, peer: VerifiedPeer) -> bool:
        """Admitted by the node's policy, under the per-peer and per-member channel limits,
        and with room under the node's cap."""
        if not self.inner.admit(peer) or self.count(peer.identifier) >= self.limit:
            return False
        if self.room is not None and not self.room(peer):
            return False
        return self.member_count is None or self.member_count(peer) < self.member_limit
