"""The TCP transport's limits and timeouts, in one settings object (docs/protocols.md,
"TCP transport"), and the counters that show them at work.

A node is configured without code through the environment (docs/protocols.md, "Load
limits"): `TROTH_TCP_<FIELD>` sets a field of `TcpSettings` (`TROTH_TCP_IDLE_TIMEOUT=30`);
`settings_from_environment` reads such variables for any settings dataclass."""

from __future__ import annotations

import dataclasses
import math
import os
import resource
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from troth import limits
from troth.errors import ConfigError
from troth.transport.framing import FRAME_HEADER, LARGE_BUFFER, SMALL_BUFFER

__all__ = [
    "QUEUED_FRAME_COST",
    "SHIELD_SPENDS_PER_CONNECTION",
    "SOURCE_SHARES",
    "TCP_ENVIRONMENT_PREFIX",
    "TcpCounters",
    "TcpSettings",
    "default_max_connections",
    "settings_from_environment",
]

MAX_CONNECTIONS = 1024
QUEUED_FRAME_COST: Final = 64
"""What a frame queued for a connection costs beyond its bytes, charged against
`max_queued_bytes` and `max_queued_total`: its bytes object's header (33 bytes on 64-bit
CPython, rounded up to the allocator's 16) and its slot in the deque (8). Without it a queue of
empty relayed frames (~50 bytes each) held ~1.8 times its bound (review 26a, queue 1)."""
SHIELD_SPENDS_PER_CONNECTION: Final = 4
"""The networks whose newcomer evicted another network's connection mid-handshake that the TCP
transport remembers for its shield (`troth.transport.eviction.ShieldSpends`), per connection of
`max_connections`: while it remembers that many, no newcomer evicts another network's connection
mid-handshake (review 67c, transport 1: at the table's size, honest newcomers' spends pushed the
attacker's out, and it evicted again)."""
SOURCE_SHARES: Final = 4
"""The shares `max_queued_total` is cut into per peer IP address by default
(`TcpSettings.queued_per_source`: a quarter of it, review 26a queue 2, review 27a queue 1)."""
TCP_ENVIRONMENT_PREFIX: Final = "TROTH_TCP_"
_Settings = TypeVar("_Settings")


def settings_from_environment(
    cls: type[_Settings], prefix: str, environ: Mapping[str, str] | None = None
) -> _Settings:
    """`cls()` with each field named by a variable `<prefix><FIELD NAME IN CAPITALS>` set to
    that variable's value (a number). ConfigError for a name that is no field, a value that is
    not a finite number of the field's type (a NaN timer fires at once, an infinite one never:
    review 28a, settings 1), or settings that refuse the value."""
    environ = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    names = {f.name.upper(): f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for variable, text in environ.items():
        if not variable.startswith(prefix):
            continue
        name = names.get(variable.removeprefix(prefix))
        if name is None:
            known = ", ".join(prefix + n for n in sorted(names))
            raise ConfigError(f"{variable}: no such setting (known: {known})")
        kinds = typing.get_args(hints[name]) or (hints[name],)
        kind = int if int in kinds else float
        try:
            value = kind(text)
        except ValueError:
            raise ConfigError(f"{variable}={text!r}: not a number ({kind.__name__})") from None
        if isinstance(value, float) and not math.isfinite(value):  # a whole number is finite
            # (math.isfinite of one past a float's range raised OverflowError: review 29b,
            # settings 3)
            raise ConfigError(f"{variable}={text!r}: not a finite number")
        values[name] = value
    try:
        return cls(**values)
    except ValueError as exc:
        raise ConfigError(f"{prefix}*: {exc}") from None


def require_seconds(settings: object, *names: str) -> None:
    """ValueError unless each field `names` of `settings` is a positive, finite number of
    seconds (0 or NaN would break every connection or spin a timer: review 28a, settings 1)."""
    for name in names:
        value = getattr(settings, name)
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be positive (a finite number of seconds)")


def require_counts(settings: object, *names: str) -> None:
    """ValueError unless each field `names` of `settings` is at least 1 (a limit of 0 refuses
    everything it bounds: review 29b, settings 1-2)."""
    for name in names:
        if getattr(settings, name) < 1:
            raise ValueError(f"{name} must be at least 1")


def default_max_connections() -> int:
    """1024 accepted connections, or half the descriptors this process may open if that is
    less: the other half stays free for outgoing connections, storage and new arrivals."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(1, min(MAX_CONNECTIONS, soft // 2))


@dataclass(frozen=True, slots=True)
class TcpSettings:
    """Limits and timeouts of a TCP transport (seconds, bytes, counts)."""

    connect_timeout: float = 5.0
    """Connecting gives up after this long."""
    frame_timeout: float = 10.0
    """A frame that has started must be complete within this long (a stalled peer)."""
    first_frame_timeout: float = 10.0
    """A connection must bring its first complete frame within this long."""
    idle_timeout: float = 600.0
    """A connection that makes no progress for this long is closed (a channel over it keeps it
    busy: its keepalive pings every 15 s when idle). Progress is any complete frame either way,
    at a node only an authenticated one (`TcpTransport.authenticated_idle`)."""
    evict_idle_after: float = 60.0
    """At the connection limit, a new connection evicts the accepted connection idle the
    longest, if it brought no frame yet or has been idle at least this long."""
    max_connections: int = field(default_factory=default_max_connections)
    """Accepted connections open at once (outgoing ones are the node's own and not counted)."""
    max_connections_per_source: int = 64
    """Accepted connections open at once from one IP address."""
    max_queued_frames: int = 64
    """Frames read but not yet routed before reading pauses (backpressure)."""
    max_routing_total: int = limits.MAX_ROUTING_QUEUE_BYTES
    """Bytes of frames read but not yet routed, all connections together: past it, or past a
    quarter of it for the connections of one peer IP address (`routing_per_source`), the
    connection whose frame passed it pauses reading until its own frames are routed (review
    53n, queues 1); past the address's share, every connection of that address, until its
    frames are back within it (review 55a, budget 1: troth.transport.holds)."""
    write_buffer: int = 1 << 20
    """Bytes queued for the socket before senders wait."""
    write_buffer_total: int = limits.MAX_WRITE_BUFFER_TOTAL
    """Bytes the write buffers of all connections hold together: past it, a connection left
    holding unsent bytes by a write is treated as over `write_buffer` (its frames queue, its
    timers run) until it drains; a peer that reads promptly holds none (review 48q)."""
    write_timeout: float = 10.0
    """A connection whose write buffer stays over `write_buffer` this long (its peer does not
    read it down to a quarter of that) is dropped."""
    max_queued_bytes: int = limits.MAX_CONNECTION_QUEUE_BYTES
    """Bytes of frames held for one connection while its write buffer is full, beyond that
    buffer: past it a sender waits while the peer reads (backpressure); a stalled peer's
    queue and frames are dropped instead (`stall_timeout`)."""
    max_queued_total: int = limits.MAX_QUEUED_BYTES
    """Bytes of frames held queued for all connections together: past it a frame for a
    connection whose write buffer is full waits until a queue drains or a stalled one is
    dropped."""
    max_queued_per_source: int | None = None
    """Bytes of frames held queued for the connections of one peer IP address together: past
    it a frame for one of them waits as past `max_queued_bytes` (review 26a, queue 2). None
    (the default): a quarter of `max_queued_total`, at least `max_queued_bytes`
    (`limits.MAX_QUEUED_BYTES_PER_SOURCE` at the default total), so a lowered total is still
    shared out (review 27a, queue 1); `queued_per_source` is the bound in force."""
    stall_timeout: float = 2.0
    """A connection whose write buffer is full and whose peer takes less than a sixteenth of
    `write_buffer` in this long has stalled: its queue and every frame for it are dropped
    (counted) until it drains, so the connections its frames come from go on routing."""
    max_reply_paths: int = 4096
    """Reply paths a connection remembers (least recently used forgotten first)."""
    small_read_buffer: int = SMALL_BUFFER
    """A connection's read buffer while frames are small, and after it runs empty."""
    large_read_buffer: int = LARGE_BUFFER
    """The read buffer while a stream is heavy."""
    log_lines_per_minute: int = 10
    """Lines a minute about misbehaving connections (closed, refused, dropped messages)."""
    accept_errors_per_minute: int = 3
    """Lines a minute about accept() failing (out of descriptors: EMFILE)."""

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> TcpSettings:
        """The defaults, with the `TROTH_TCP_<FIELD>` variables set in the environment
        (ConfigError for an unknown name or a bad value)."""
        return settings_from_environment(cls, TCP_ENVIRONMENT_PREFIX, environ)

    def __post_init__(self) -> None:
        # each value that would break every connection or turn a defence off is refused here,
        # NaN included (review 28a, settings 1)
        timeouts = ("connect_timeout", "frame_timeout", "first_frame_timeout", "idle_timeout")
        require_seconds(self, *timeouts, "write_timeout", "stall_timeout")
        if not (self.evict_idle_after >= 0 and math.isfinite(self.evict_idle_after)):
            raise ValueError("evict_idle_after must be a number of seconds, at least 0")
        if self.max_connections < 1 or self.max_connections_per_source < 1:
            raise ValueError("connection limits must be at least 1")
        # each connection failed as it was made: an allow-set keeps at least one reply path
        require_counts(self, "max_reply_paths")
        if self.max_queued_frames < 2:  # reading resumes below half of it: never below 1
            raise ValueError("max_queued_frames must be at least 2")
        if not 1 <= self.write_buffer <= self.write_buffer_total:
            raise ValueError("write_buffer must be at least 1 byte and at most write_buffer_total")
        if not FRAME_HEADER.size <= self.small_read_buffer <= self.large_read_buffer:
            raise ValueError(
                f"small_read_buffer must hold a frame header ({FRAME_HEADER.size} bytes) "
                "and large_read_buffer at least small_read_buffer"
            )
        if self.log_lines_per_minute < 0 or self.accept_errors_per_minute < 0:
            raise ValueError("log_lines_per_minute and accept_errors_per_minute must be >= 0")
        largest = limits.MAX_TRANSPORT_FRAME + FRAME_HEADER.size + QUEUED_FRAME_COST
        if not largest <= self.max_queued_bytes <= self.queued_per_source:
            raise ValueError(
                f"max_queued_bytes must hold a frame ({largest} bytes) and "
                "max_queued_per_source at least max_queued_bytes"
            )
        if self.max_queued_total < self.max_queued_bytes:
            raise ValueError("max_queued_total must be at least max_queued_bytes")
        if self.max_routing_total < largest:
            raise ValueError(f"max_routing_total must hold a frame ({largest} bytes)")

    @property
    def queued_per_source(self) -> int:
        """The bound on the queues of one peer address's connections together: the
        `max_queued_per_source` set, else a quarter of `max_queued_total` (at least
        `max_queued_bytes`)."""
        if self.max_queued_per_source is not None:
            return self.max_queued_per_source
        return max(self.max_queued_total // SOURCE_SHARES, self.max_queued_bytes)

    @property
    def routing_per_source(self) -> int:
        """The bound on the bytes the connections of one peer address hold waiting to be
        routed: a quarter of `max_routing_total` (review 53n, queues 1)."""
        return self.max_routing_total // SOURCE_SHARES

    @property
    def routing_outgoing(self) -> int:
        """The bound on the bytes the node's own outgoing connections (its hub, its configured
        peers) hold waiting to be routed: a quarter of `max_routing_total`, reserved, not
        counted in it (review 53o, queues 1: strangers over the total paused the uplink)."""
        return self.max_routing_total // SOURCE_SHARES

    @property
    def sweep_interval(self) -> float:
        """How often connections are checked against the timeouts."""
        return min(self.frame_timeout, self.first_frame_timeout, self.idle_timeout) / 4


@dataclass(slots=True)
class TcpCounters:
    """What the transport refused or closed, and why (a node's status shows them)."""

    accepted: int = 0
    refused_over_limit: int = 0
    refused_per_source: int = 0
    evicted: int = 0
    closed_bad_frame: int = 0
    closed_stalled: int = 0
    closed_first_frame: int = 0
    closed_idle: int = 0
    closed_not_reading: int = 0
    dropped_messages: int = 0
    stalled: int = 0
    """Times a connection's peer stalled (`TcpSettings.stall_timeout`)."""
    dropped_stalled: int = 0
    """Frames dropped for a stalled peer (queued, or sent while it stalled)."""
    held_back: int = 0
    """Times a connection was held back as the write buffers together passed
    `TcpSettings.write_buffer_total` (review 48q, write budget 1)."""
