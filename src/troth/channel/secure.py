"""The secure channel: Noise XX bound to identities and credentials, then an explicit-nonce
transport with a replay window, rekeying, padding, fragmentation and in-band credential
refresh. Sans-IO: packets in, events out, `now` passed in (docs/protocols.md, "Secure channel").

The pieces, one module each: packet framing (packets.py), the states and their one transition
table (state.py), peer verification (verification.py), reassembly of fragmented messages
(reassembly.py), the events (events.py). This module ties them together.

Unauthenticated bytes never change state: a packet that is not well-formed, a frame of a type
the state does not read, a handshake message that does not decrypt (it is read on a copy of
the handshake state, kept only when it authenticates), a transport frame that does not
authenticate or replays a nonce: each is dropped, counted in `drops`, and reported as a
`Dropped` event, and the frames after it in its packet are not read (a genuine packet holds
no such frame: one drop per packet of junk, review 34e, frames 1). Only an authenticated frame
(or a local decision) can close a channel.

Keepalive: `keepalive(now)` (a timer of the host, with a monotonic clock) sends an
authenticated PING when nothing authenticated arrived for `keepalive_interval` seconds, and
closes the channel (`timeout`) when nothing authenticated arrived for `keepalive_timeout`
seconds; a PING is answered with a PONG (one per packet received). Only authenticated frames
count: bytes anyone on the path can send neither keep a channel alive nor end it.

Rekeying: the nonce space is cut into epochs of `rekey_interval` messages; epoch e uses
REKEY^e(k) (Noise §4.2), so both sides rekey at the same nonces without signalling, and a
receiver keeps the current and the previous epoch's keys for late messages inside the window.
"""

from __future__ import annotations

import collections
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from troth import limits
from troth.channel.close_detail import close_detail, peer_close_detail
from troth.channel.events import (
    Accepted,
    Closed,
    Dropped,
    DropReason,
    Established,
    Event,
    GivenUp,
    NotRouted,
    Received,
    received,
)
from troth.channel.noise import (
    MAX_MESSAGE,
    MAX_NONCE,
    PROTOCOL_NAMES,
    TAGLEN,
    CipherState,
    HandshakeState,
)
from troth.channel.packets import (
    HANDSHAKE_FRAME,
    LENGTH,
    PACKET_LIMIT,
    TRANSPORT_FRAME,
    group_frames,
    is_route_error,
    iter_packet,
    parse_route_error,
)
from troth.channel.payloads import (
    BATCH_ITEM,
    FRAGMENT,
    HEADER,
    MIN_BATCH_MESSAGE,
    AuthPayload,
    Kind,
    batch_items,
    pack,
    unpack,
)
from troth.channel.reassembly import (
    IN_PLACE_FROM,
    IN_PLACE_ROOM,
    REASSEMBLY_TIMEOUT,
    Reassembler,
    ReassemblyBudget,
)
from troth.channel.rekey import ReceiveKeys
from troth.channel.replay import ReplayWindow, Verdict
from troth.channel.state import HANDSHAKE_STEPS, READS, ChannelState, Step, next_state
from troth.channel.verification import ChannelTrust, HandshakeClaim, VerifiedPeer, verify_peer
from troth.encoding import cbor
from troth.errors import ChannelError, ChannelFailure, DecodeError, TrothError
from troth.vault.ephemeral import DhKey

__all__ = [
    "KEEPALIVE_INTERVAL",
    "KEEPALIVE_TIMEOUT",
    "MAX_PADDING",
    "MAX_PLAINTEXT",
    "PROLOGUE",
    "ChannelIdentity",
    "ChannelSettings",
    "SecureChannel",
]

PROLOGUE: Final = b"troth.channel/1"
_NONCE: Final = struct.Struct(">Q")
_OVERHEAD: Final = 1 + _NONCE.size + TAGLEN  # frame type, nonce, tag
_FRAME_HEAD: Final = struct.Struct(">HBQ")  # a transport frame's length, type and nonce
_DATA: Final = int(Kind.DATA)
_BATCH: Final = int(Kind.BATCH)
MAX_PLAINTEXT: Final = MAX_MESSAGE - _OVERHEAD
MAX_PADDING: Final = 4096
_F = ChannelFailure
_S = ChannelState
_STEP_OF_KIND: Final = tuple(  # indexed by Kind
    {Kind.ACCEPTED: Step.ACCEPTED, Kind.CLOSE: Step.CLOSE}.get(kind, Step.DATA) for kind in Kind
)
KEEPALIVE_INTERVAL: Final = 15.0
"""Seconds without an authenticated frame after which a channel sends a PING (default)."""
KEEPALIVE_TIMEOUT: Final = 45.0
"""Seconds without an authenticated frame after which a channel is closed (default)."""


@dataclass(frozen=True, slots=True)
class ChannelIdentity:
    """Who this side is: its history, its Noise static key (in a vault), the attestation that
    binds that key to the identity, and the credential chains it presents."""

    history: bytes
    static: DhKey
    attestation: bytes
    credentials: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """The channel protocol's parameters (both ends must agree on cipher and rekey_interval)."""

    cipher: str = "AESGCM"
    replay_window: int = 2048
    rekey_interval: int = 1 << 16
    padding: int = 0
    max_message: int = limits.MAX_APPLICATION_MESSAGE
    reassembly_timeout: int = REASSEMBLY_TIMEOUT
    keepalive_interval: float = KEEPALIVE_INTERVAL
    """Idle seconds (nothing authenticated received) before a PING is sent (local)."""
    keepalive_timeout: float = KEEPALIVE_TIMEOUT
    """Seconds without any authenticated frame after which the channel is closed (local)."""

    def __post_init__(self) -> None:
        if self.rekey_interval < self.replay_window:
            raise ValueError("rekey_interval must be at least the replay window")
        interval, timeout = self.keepalive_interval, self.keepalive_timeout
        if interval <= 0 or timeout < 2 * interval:
            raise ValueError("keepalive_timeout must be at least twice keepalive_interval (> 0)")
        if self.reassembly_timeout <= 0:  # every fragmented message given up as its next
            # fragment arrives (review 29b, settings 1)
            raise ValueError("reassembly_timeout must be positive (a number of seconds)")
        if not 0 <= self.padding <= MAX_PADDING:
            raise ValueError(f"padding must be 0-{MAX_PADDING} bytes")
        if self.protocol_name not in PROTOCOL_NAMES:
            raise ValueError(f"unknown cipher {self.cipher!r}")

    @property
    def protocol_name(self) -> str:
        """The Noise protocol name for this cipher."""
        return f"Noise_XX_25519_{self.cipher}_SHA256"


class SecureChannel:
    """One end of a secure channel. An initiator is created with message 1 queued; feed every
    packet from the peer to `receive`; take packets to send from `outgoing()`."""

    def __init__(
        self,
        *,
        initiator: bool,
        me: ChannelIdentity,
        trust: ChannelTrust,
        settings: ChannelSettings | None = None,
    ) -> None:
        self.settings = settings or ChannelSettings()
        self.initiator = initiator
        self.me = me
        self.trust = trust
        self.state = _S.AWAITING_MESSAGE_2 if initiator else _S.AWAITING_MESSAGE_1
        self.peer: VerifiedPeer | None = None
        self.close_reason: ChannelFailure | None = None
        self.handshake_hash = b""
        self.drops: collections.Counter[DropReason] = collections.Counter()
        """Frames dropped unauthenticated (or replayed), by reason."""
        self.authenticated = 0
        self._refreshes = (limits.CHANNEL_REFRESH_BURST, 0)  # (refreshes left, as of when)
        """Transport frames that authenticated so far (what keeps the channel alive)."""
        self._heard = (-1, 0.0)  # (authenticated, keepalive time it was first seen at)
        self._pinged_at: float | None = None
        self._pong_due = False
        self._rejected = False  # a frame of the packet being read was dropped
        self._handshake: HandshakeState | None = HandshakeState(
            self.settings.protocol_name, initiator=initiator, prologue=PROLOGUE, static=me.static
        )
        self._outgoing: list[bytes | bytearray] = []
        self._queued = 0  # bytes in _outgoing
        self._pending: list[bytes] = []  # one-frame messages not yet sealed
        self._pending_size = 0  # their plaintext as one frame (a DATA or a BATCH frame)
        self._send: CipherState | None = None
        self._send_epoch = 0
        self._receiver: ReceiveKeys | None = None
        self._next_nonce = 0
        self._window = ReplayWindow(self.settings.replay_window)
        self._reassembler = Reassembler(
            max_message=self.settings.max_message, timeout=self.settings.reassembly_timeout
        )
        if initiator:
            self._queue(_handshake_packet(self._handshake.write_message(b"")))

    @classmethod
    def initiate(
        cls, *, me: ChannelIdentity, trust: ChannelTrust, settings: ChannelSettings | None = None
    ) -> SecureChannel:
        """An initiator, its message 1 ("-> e") queued."""
        return cls(initiator=True, me=me, trust=trust, settings=settings)

    @property
    def handshaking(self) -> bool:
        """Whether the handshake is still under way (no messages flow yet)."""
        return self.state in HANDSHAKE_STEPS or self.state is _S.AWAITING_ACCEPT

    @property
    def closed(self) -> bool:
        """Whether the channel is closed (nothing more is read or sent)."""
        return self.state is _S.CLOSED

    @property
    def has_outgoing(self) -> bool:
        """Whether packets wait to be taken by `outgoing()`."""
        return bool(self._outgoing) or bool(self._pending)

    @property
    def reassembling(self) -> int:
        """Decrypted bytes held by incomplete fragmented messages now."""
        return self._reassembler.held

    # -- outgoing --------------------------------------------------------------------------------

    @property
    def queued_bytes(self) -> int:
        """The size of the packets waiting to be taken by `outgoing()`."""
        return self._queued + (
            self._pending_size + _FRAME_HEAD.size + TAGLEN if self._pending else 0
        )

    def outgoing(self) -> list[bytes | bytearray]:
        """The packets to send, in order (each taken once). Transport frames queued one after
        another leave together, in packets of up to `PACKET_LIMIT` bytes (a packet is its
        frames one after another, so joined packets are one packet): what a host queues before
        it takes them costs the path one packet instead of one per message."""
        if self._pending:
            try:
                self._seal_pending()
            except ChannelError as exc:  # the end of the nonce space: `_exhausted` closed the
                if exc.reason is not _F.NONCE_EXHAUSTED:  # channel (review 68g, channel 1)
                    raise
        packets, self._outgoing = self._outgoing, []
        self._queued = 0
        if len(packets) < 2:
            return packets
        joined: list[bytes | bytearray] = []
        run: list[bytes | bytearray] = []
        size = 0
        for packet in packets:
            if packet[LENGTH.size] != TRANSPORT_FRAME:  # a handshake packet leaves on its own
                if run:
                    joined.append(b"".join(run) if len(run) > 1 else run[0])
                    run, size = [], 0
                joined.append(packet)
                continue
            if run and size + len(packet) > PACKET_LIMIT:
                joined.append(b"".join(run) if len(run) > 1 else run[0])
                run, size = [], 0
            run.append(packet)
            size += len(packet)
        if run:
            joined.append(b"".join(run) if len(run) > 1 else run[0])
        return joined

    def _queue(self, packet: bytes | bytearray) -> None:
        if self._pending:  # the messages sent before it go first
            self._seal_pending()
        self._outgoing.append(packet)
        self._queued += len(packet)

    def send(self, payload: bytes | bytearray | memoryview, prefix: bytes = b"") -> None:
        """Queue an application message, `prefix` || `payload` (fragmented when over one
        frame). A message over one frame is cut into its fragments straight from the two, so
        a large payload is not first copied behind its prefix (a routed message's header)."""
        if self.state is not _S.OPEN:
            raise ChannelError(_F.PROTOCOL, f"channel is {self.state.value}")
        if self._next_nonce >= MAX_NONCE:  # (not held to fail in `outgoing()`)
            raise self._exhausted()
        if type(payload) is memoryview and payload.itemsize != 1:  # measured and cut in bytes
            payload = payload.cast("B")  # (review 47q, send 1)
        size = len(prefix) + len(payload)
        if size > self.settings.max_message:
            raise ChannelError(_F.TOO_LARGE, f"{size} bytes")
        padding = self.settings.padding
        capacity = MAX_PLAINTEXT - (MAX_PLAINTEXT % padding if padding > 1 else 0)
        chunk = capacity - HEADER.size  # the kind and length header
        if size <= chunk:
            if prefix:
                payload = prefix + payload
            if padding > 1:
                self._emit([(Kind.DATA, (payload,))])
            elif size < MIN_BATCH_MESSAGE:  # a DATA frame of its own: a batch item costs the
                # wire at least what one does (review 47e, batch 1)
                self._seal_held()
                self._queue(self._seal_data(HEADER.pack(_DATA, size) + payload))
            else:  # the common case, one frame: held until the packets are taken, then
                # sealed alone (DATA) or with the others held beside it (BATCH)
                if self._pending and self._pending_size + 2 * BATCH_ITEM.size + size > capacity:
                    self._seal_pending()
                    if self._next_nonce >= MAX_NONCE:  # none left to seal it with: refused
                        raise self._exhausted()  # to its sender (review 68n, channel 1)
                pending = self._pending
                pending.append(payload if type(payload) is bytes else bytes(payload))
                if len(pending) == 1:
                    self._pending_size = HEADER.size + size
                elif len(pending) == 2:
                    self._pending_size += BATCH_ITEM.size * 2 + size
                else:
                    self._pending_size += BATCH_ITEM.size + size
            return
        if self._pending:  # (its message id is the nonce of its first fragment)
            self._seal_pending()
        chunk -= FRAGMENT.size
        message_id = self._next_nonce
        view = memoryview(payload)
        head = len(prefix)
        frames: list[tuple[Kind, tuple[bytes | bytearray | memoryview, ...]]] = []
        for offset in range(0, size, chunk):
            fragment = FRAGMENT.pack(message_id, size, offset)
            rest = view[max(0, offset - head) : max(0, offset + chunk - head)]
            if offset < head:  # (what of the prefix falls in this fragment, then the payload)
                frames.append((Kind.FRAGMENT, (fragment, prefix[offset : offset + chunk], rest)))
            else:
                frames.append((Kind.FRAGMENT, (fragment, rest)))
        self._emit(frames)

    def send_credentials(self, chains: tuple[bytes, ...]) -> None:
        """In-band credential refresh: present (new) chains to the peer (ChannelError
        TOO_LARGE when they do not fit one frame: nothing is sent, the channel goes on)."""
        if self.state is not _S.OPEN:
            raise ChannelError(_F.PROTOCOL, f"channel is {self.state.value}")
        body = cbor.encode(list(chains))
        padding = self.settings.padding
        size = HEADER.size + len(body)
        if padding > 1 and size % padding:
            size += padding - size % padding
        if size > MAX_PLAINTEXT:  # one frame, or its length field overflowed (review 56x,
            # channel 1: struct.error, after a nonce was spent)
            raise ChannelError(_F.TOO_LARGE, f"credentials of {size} bytes over one frame")
        self._emit([(Kind.CREDENTIALS, (body,))])

    def close(self, reason: ChannelFailure = _F.NORMAL, detail: str = "") -> Closed:
        """Close locally; tell the peer (an authenticated CLOSE) when transport keys exist."""
        if self.state is _S.CLOSED:
            return Closed(self.close_reason or reason, detail, by_peer=False)
        if self._send is not None and self._next_nonce < MAX_NONCE:  # (none left: closed
            # here alone, review 68g, channel 1)
            self._emit_or_close([(Kind.CLOSE, (bytes((int(reason),)), close_detail(detail)))])
        return self._closed(reason, detail, by_peer=False)

    def _emit_or_close(
        self, frames: list[tuple[Kind, tuple[bytes | bytearray | memoryview, ...]]]
    ) -> list[Event]:
        """`_emit` of frames this side sends of its own accord (a PONG, a PING, a CLOSE): at
        the end of the nonce space the channel closes instead (a Closed event; review 68g,
        channel 1: the host's timer or the peer's PING raised)."""
        try:
            self._emit(frames)
        except ChannelError as exc:
            if exc.reason is not _F.NONCE_EXHAUSTED:
                raise
            return [Closed(exc.reason, exc.detail, by_peer=False)]  # (`_exhausted` closed it)
        return []

    def _emit(self, frames: list[tuple[Kind, tuple[bytes | bytearray | memoryview, ...]]]) -> None:
        padding = self.settings.padding
        plains = [pack(kind, parts, padding) for kind, parts in frames]
        self._seal_held()
        for group, size in group_frames(plains, _OVERHEAD):
            self._queue(self._seal(group, size))

    def _seal(self, plains: list[bytes], size: int) -> bytearray:
        """One packet of transport frames (length, type, nonce, AEAD(plain)), each encrypted
        straight into its place."""
        packet = bytearray(size)
        view = memoryview(packet)
        at = 0
        for plain in plains:
            nonce = self._next_nonce
            cipher = self._cipher_for_sending(nonce)
            self._next_nonce += 1
            length = _OVERHEAD + len(plain)
            LENGTH.pack_into(packet, at, length)
            packet[at + 2] = TRANSPORT_FRAME
            _NONCE.pack_into(packet, at + 3, nonce)
            body = at + 3 + _NONCE.size
            cipher.encrypt_at_into(nonce, b"", plain, view[body : body + len(plain) + TAGLEN])
            at += LENGTH.size + length
        return packet

    def _seal_held(self) -> None:
        """Seal the messages `send` holds before a frame sent after them is sealed: they take
        the earlier nonces, so the last nonce is never taken from them (review 68n, channel 1:
        a PING or a CLOSE sealed first took it, and they were dropped)."""
        if self._pending:
            self._seal_pending()

    def _seal_pending(self) -> None:
        """Seal the messages held by `send`: one alone as a DATA frame, several as one BATCH
        frame (each item its length and its bytes)."""
        pending, self._pending = self._pending, []
        if len(pending) == 1:
            payload = pending[0]
            plain = HEADER.pack(_DATA, len(payload)) + payload
        else:
            parts = [HEADER.pack(_BATCH, self._pending_size - HEADER.size)]
            for payload in pending:
                parts += (BATCH_ITEM.pack(len(payload)), payload)
            plain = b"".join(parts)
        packet = self._seal_data(plain)
        self._outgoing.append(packet)
        self._queued += len(packet)

    def _seal_data(self, plain: bytes) -> bytearray:
        """A packet of one transport frame holding `plain` (`_seal` for one frame)."""
        nonce = self._next_nonce
        cipher = self._cipher_for_sending(nonce)
        self._next_nonce = nonce + 1
        length = _OVERHEAD + len(plain)
        packet = bytearray(LENGTH.size + length)
        _FRAME_HEAD.pack_into(packet, 0, length, TRANSPORT_FRAME, nonce)
        cipher.encrypt_at_into(nonce, b"", plain, memoryview(packet)[_FRAME_HEAD.size :])
        return packet

    def _exhausted(self) -> ChannelError:
        """The end of the nonce space: the channel is closed here (no CLOSE can be sealed)
        and the error to raise."""
        detail = "nonce 2^64-1 is reserved: nothing more can be sent"
        self._closed(_F.NONCE_EXHAUSTED, detail, by_peer=False)
        return ChannelError(_F.NONCE_EXHAUSTED, detail)

    def _cipher_for_sending(self, nonce: int) -> CipherState:
        cipher = self._send
        if cipher is None:
            raise ChannelError(_F.PROTOCOL, "no transport keys")
        if nonce >= MAX_NONCE:  # §5.1: reserved, never counted as spent (review 68g,
            # channel 1: the next send raised struct.error, and so did close())
            raise self._exhausted()
        epoch = nonce // self.settings.rekey_interval
        while self._send_epoch < epoch:
            cipher = self._send = cipher.rekeyed()
            self._send_epoch += 1
        return cipher

    # -- incoming --------------------------------------------------------------------------------

    def receive(self, packet: bytes | bytearray | memoryview, now: int) -> list[Event]:
        """Process one packet (one or more frames) from the peer. Unauthenticated frames come
        back as Dropped; an authenticated violation closes the channel (a Closed event). While
        it waits for message 2, a route error from a node on the way comes back as NotRouted."""
        if self.state is _S.AWAITING_MESSAGE_2 and is_route_error(packet):
            try:
                return [NotRouted(parse_route_error(packet))]
            except DecodeError as exc:
                return [self._drop(DropReason.MALFORMED, str(exc))]
        # A packet is read up to its first frame that is dropped (unauthenticated, a replay,
        # malformed): a genuine packet holds none, so the frames after it are not read, and a
        # packet of 65,536 junk frames costs one drop, not one each (review 34e, frames 1).
        frames = iter_packet(packet)
        events: list[Event] = []
        self._rejected = False
        try:
            for frame in frames:  # (a DecodeError out here is the packet's framing)
                try:
                    events += self._receive_frame(frame, now)
                except ChannelError as exc:  # raised only after the frame authenticated
                    events.append(self.close(exc.reason, exc.detail))
                except DecodeError as exc:  # (likewise: not the packet's framing)
                    events.append(self.close(_F.PROTOCOL, str(exc)))
                except TrothError as exc:  # this side's own failure (its vault, its store)
                    events.append(self._failed_here(exc))
                if self.state is _S.CLOSED:
                    break
                if self._rejected:
                    events[-1] = _rest_unread(events[-1], frames)
                    break
        except DecodeError as exc:
            events.append(self._drop(DropReason.MALFORMED, str(exc)))
        if self._pong_due:  # one PONG answers every PING of the packet
            self._pong_due = False
            if self.state is _S.OPEN:
                events += self._emit_or_close([(Kind.PONG, ())])
        return events

    def _receive_frame(self, frame: memoryview, now: int) -> list[Event]:
        if not frame:
            return [self._drop(DropReason.MALFORMED, "empty frame")]
        kind = frame[0]
        if kind != READS.get(self.state):
            return [self._drop(DropReason.UNEXPECTED, f"frame {kind} {self.state.value}")]
        if kind == HANDSHAKE_FRAME:
            return self._read_handshake(bytes(frame[1:]), now)
        return self._read_transport(frame, now)

    def _drop(self, reason: DropReason, detail: str) -> Dropped:
        self.drops[reason] += 1
        self._rejected = True
        return Dropped(reason, detail)

    def _read_handshake(self, message: bytes, now: int) -> list[Event]:
        original = self._handshake
        if original is None:
            raise ChannelError(_F.PROTOCOL, "handshake over")
        step = HANDSHAKE_STEPS[self.state]
        handshake = original.copy()  # kept only if the message authenticates
        try:
            payload = handshake.read_message(message)
            if step is Step.MESSAGE_1:  # "-> e" carries no payload; answer "<- e, ee, s, es"
                if payload:
                    raise ChannelError(_F.HANDSHAKE_FAILED, "message 1 carries no payload")
                reply = handshake.write_message(self._auth_payload())
        except ChannelError as exc:  # junk, tampered, truncated: the handshake goes on
            if exc.reason is _F.TOO_LARGE:  # this side's payload over message 2 (a frame holds
                raise  # no message too large to read): closed, not junk (review 56x, channel 4)
            return [self._drop(DropReason.UNDECRYPTABLE, f"handshake message: {exc}")]
        self._handshake = handshake
        if step is Step.MESSAGE_1:
            self._queue(_handshake_packet(reply))
            self.state = next_state(self.state, step)
            return []
        if step is Step.MESSAGE_2:  # initiator: check the responder, then "-> s, se"
            auth = AuthPayload.decode(payload)
            claim = HandshakeClaim(auth.history, auth.attestation, handshake.rs)
            peer = verify_peer(self.trust, claim, auth.credentials, now)
            self._queue(_handshake_packet(handshake.write_message(self._auth_payload())))
            self._establish(handshake, peer)
            self.state = next_state(self.state, step)
            return [Established(peer, self.handshake_hash)]
        try:  # responder, message 3 (it authenticated the initiator's static key); a malformed
            # payload is refused as a failed verification is, with a CLOSE (review 56x, channel 2)
            auth = AuthPayload.decode(payload)
            claim = HandshakeClaim(auth.history, auth.attestation, handshake.rs)
            peer = verify_peer(self.trust, claim, auth.credentials, now)
        except TrothError as exc:  # (this side's own failure too: review 65e, channels 1)
            # The initiator already considers the handshake done (XX): tell it why, under the
            # keys the handshake just agreed, before closing.
            self._establish(handshake, None)
            if not isinstance(exc, ChannelError):
                return [self._failed_here(exc)]
            return [self.close(exc.reason, exc.detail)]
        self._establish(handshake, peer)
        self.state = next_state(self.state, step)
        self._emit([(Kind.ACCEPTED, ())])
        return [Established(peer, self.handshake_hash)]

    def _failed_here(self, exc: TrothError) -> Closed:
        """Close on a failure of this side's own while a frame was read or the peer re-checked
        (the vault lost the static key: a rotation in another process; the store behind
        `trust` failed): the state is closed, not left half way through a step (review 65e,
        channels 1; review 65l, channels 1). The peer's CLOSE names no local error text; the
        Closed event, for the host, does."""
        reason = _F.HANDSHAKE_FAILED if self.handshaking else _F.PEER_INVALID
        self.close(reason, "a failure of the peer's own")
        return Closed(reason, f"a local failure ({type(exc).__name__}: {exc})", by_peer=False)

    def _auth_payload(self) -> bytes:
        return AuthPayload(self.me.history, self.me.attestation, self.me.credentials).encode()

    def _establish(self, handshake: HandshakeState, peer: VerifiedPeer | None) -> None:
        c1, c2 = handshake.split()
        send, receive = (c1, c2) if self.initiator else (c2, c1)
        self._send = send
        self._receiver = ReceiveKeys(receive)
        self.handshake_hash = handshake.handshake_hash
        self._handshake = None  # ephemeral keys dropped: forward secrecy
        self.peer = peer

    def _read_transport(self, frame: memoryview, now: int) -> list[Event]:
        if len(frame) < _OVERHEAD:
            return [self._drop(DropReason.MALFORMED, "short transport frame")]
        (nonce,) = _NONCE.unpack_from(frame, 1)
        verdict = self._window.check(nonce)
        if verdict is Verdict.DUPLICATE:
            return [self._drop(DropReason.DUPLICATE, f"nonce {nonce}")]
        if verdict is Verdict.TOO_OLD:
            return [self._drop(DropReason.REPLAY, f"nonce {nonce} is below the window")]
        receiver = self._receiver
        if receiver is None:
            raise ChannelError(_F.PROTOCOL, "no transport keys")
        epoch = nonce // self.settings.rekey_interval
        cipher = receiver.cipher_for(epoch)
        if cipher is None:
            return [self._drop(DropReason.UNDECRYPTABLE, f"no key for epoch {epoch}")]
        ciphertext = frame[1 + _NONCE.size :]
        try:
            if len(ciphertext) < IN_PLACE_FROM:
                plain: bytes | bytearray = cipher.decrypt_at(nonce, b"", ciphertext)
            else:  # a large frame, probably a fragment: decrypted with room after it, so the
                # rest of its message is put behind it in place (reassembly.py, "In place")
                size = len(ciphertext) - TAGLEN
                plain = bytearray(size + IN_PLACE_ROOM)
                cipher.decrypt_at_into(nonce, b"", ciphertext, memoryview(plain)[:size])
                del plain[size:]  # (the room stays allocated)
        except ChannelError:
            return [self._drop(DropReason.UNDECRYPTABLE, f"nonce {nonce}")]
        receiver.commit(epoch, cipher)  # only an authenticated frame changes any state
        self._window.accept(nonce)
        self.authenticated += 1
        kind, body = unpack(plain)
        step = _STEP_OF_KIND[kind]
        if step is not Step.DATA or self.state is not _S.OPEN:  # (OPEN, DATA) stays OPEN
            self.state = next_state(self.state, step)
        if kind is Kind.DATA:
            return [received(body)]  # a view of the decrypted plaintext, not a copy
        if kind is Kind.BATCH:
            return [received(message) for message in batch_items(body)]
        if kind is Kind.FRAGMENT:
            reassembler = self._reassembler
            reassembler.expire(now)
            given_up = reassembler.given_up
            message = reassembler.add(body, now)
            events: list[Event] = [] if message is None else [Received(message)]
            if reassembler.given_up != given_up:  # older messages made room for this one
                events.insert(0, GivenUp(reassembler.given_up - given_up))
            return events
        if kind is Kind.ACCEPTED:
            return [Accepted()]
        if kind is Kind.CREDENTIALS:
            return self._refresh(bytes(body), now)
        if kind is Kind.PING or kind is Kind.PONG:
            if body:
                raise ChannelError(_F.PROTOCOL, f"a {kind.name.lower()} frame with a body")
            self._pong_due = self._pong_due or kind is Kind.PING
            return []
        try:  # Kind.CLOSE (the state is CLOSED already)
            reason = ChannelFailure(body[0])
        except (IndexError, ValueError):
            reason = _F.PROTOCOL
        # the peer's own words, quoted as one line: they reach log lines and errors (review 65e,
        # channels 2: a newline forged a log line), no more than a node sends (69u, wave3 1)
        detail = peer_close_detail(bytes(body[1:]))
        return [self._closed(reason, detail, by_peer=True)]

    def _refresh(self, body: bytes, now: int) -> list[Event]:
        peer = self.peer
        if peer is None:
            raise ChannelError(_F.PROTOCOL, "refresh before the handshake")
        left, since = self._refreshes  # a token bucket (limits.CHANNEL_REFRESH_BURST)
        burst, period = limits.CHANNEL_REFRESH_BURST, limits.CHANNEL_REFRESH_SECONDS
        regained = max(0, now - since) // period
        left, since = min(burst, left + regained), since + regained * period
        if left < 1:
            raise ChannelError(
                _F.PROTOCOL,
                f"more than {limits.CHANNEL_REFRESH_BURST} credential refreshes back to back "
                f"(CHANNEL_REFRESH_BURST, one more every CHANNEL_REFRESH_SECONDS)",
            )
        self._refreshes = (left - 1, since)
        try:
            chains = tuple(
                cbor.expect_bytes(c, "chain")
                for c in cbor.expect_array(cbor.decode(body), "chains")
            )
        except DecodeError as exc:
            raise ChannelError(_F.PROTOCOL, str(exc)) from None
        self.peer = verify_peer(self.trust, peer, chains, now)
        return [Established(self.peer, self.handshake_hash)]

    # -- timers and continuous evaluation --------------------------------------------------------

    def check_peer(self, now: int) -> list[Event]:
        """Re-check the peer's credentials against the current feeds (and their expiry), and
        the dates its handshake checked (its current key's `valid_until`, its channel key's
        attestation: `verify_peer`); close when the peer is revoked, expired or no longer
        admitted, or when this side cannot tell (its store failed: deny when in doubt, as at a
        refresh). Never raises a library error: the node re-checks every channel in one loop,
        and one raising stopped it for the rest (review 65l, channels 1)."""
        peer = self.peer
        if self.state is not _S.OPEN or peer is None:
            return []
        chains = tuple(c.chain for c in peer.credentials)
        try:
            verify_peer(self.trust, peer, chains, now)
        except ChannelError as exc:
            return [self.close(exc.reason, exc.detail)]
        except TrothError as exc:  # this side's own failure (its store)
            return [self._failed_here(exc)]
        return []

    def keepalive(self, now: float) -> list[Event]:
        """The keepalive timer (docs/protocols.md, "Keepalive"): `now` is the host's monotonic
        clock in seconds; call this every fraction of `keepalive_interval`. Queues a PING when
        nothing authenticated arrived for the interval (at most one per interval); closes the
        channel (`timeout`, a Closed event) when nothing did for `keepalive_timeout`. Silence
        is measured from the first call that saw the last authenticated frame, so the channel
        closes at most one call period after the timeout."""
        if self.state is not _S.OPEN:
            return []
        count, since = self._heard
        if count != self.authenticated or now < since:  # heard from the peer (or a new clock)
            self._heard = (self.authenticated, now)
            self._pinged_at = None
            return []
        silent = now - since
        settings = self.settings
        if silent >= settings.keepalive_timeout:
            detail = f"no authenticated frame for {settings.keepalive_timeout:g} s"
            return [self.close(_F.TIMEOUT, detail)]
        pinged = self._pinged_at
        if silent >= settings.keepalive_interval and (
            pinged is None or now - pinged >= settings.keepalive_interval
        ):
            self._pinged_at = now
            return self._emit_or_close([(Kind.PING, ())])
        return []

    def probe(self, now: float) -> None:
        """Queue a PING now (the node asks whether its peer is still there: a request sent on
        this channel got nothing authenticated back; docs/protocols.md, "Unanswered channels"). The
        peer answers it as any PING; it counts as this interval's keepalive PING. At the end of
        the nonce space it closes the channel instead (`closed`)."""
        if self.state is _S.OPEN:
            self._pinged_at = now
            self._emit_or_close([(Kind.PING, ())])

    def next_expiry(self) -> int | None:
        """When `expire` next has something to give up (None: nothing held)."""
        return self._reassembler.next_expiry()

    def expire(self, now: int) -> int:
        """Give up incomplete messages past the reassembly timeout; the bytes released."""
        return self._reassembler.expire(now)

    def share_reassembly_budget(self, budget: ReassemblyBudget) -> Closed | None:
        """Count this channel's reassemblies against `budget` (one per peer identity, shared
        by all channels with it). Fragments that arrived before (in the packet that completed
        the handshake) are charged to it at once: when they do not fit, the channel closes
        (TOO_LARGE) and the Closed event comes back."""
        reassembler = self._reassembler
        if reassembler.budget is not None:
            raise ValueError("the channel already shares a reassembly budget")
        if not budget.take(reassembler.held):
            return self.close(_F.TOO_LARGE, "reassembly over the peer's or the node's limit")
        reassembler.budget = budget
        return None

    def _closed(self, reason: ChannelFailure, detail: str, *, by_peer: bool) -> Closed:
        if self.state is not _S.CLOSED:
            self.state = next_state(self.state, Step.CLOSE)
        self.close_reason = reason
        self._handshake = None
        self._send = None
        self._receiver = None
        self._reassembler.clear()
        # messages `send` still held: a local close sealed them before its CLOSE; after the
        # peer's (or with no keys) nothing can be sent, so they go with the channel instead of
        # `outgoing()` raising "no transport keys" (review 46g, batches 1)
        self._pending = []
        self._pending_size = 0
        if by_peer:  # and what was sealed, not yet taken: the peer reads no more (a message
            # under MIN_BATCH_MESSAGE is sealed at once, review 47e, batch 1)
            self._outgoing = []
            self._queued = 0
        return Closed(reason, detail, by_peer)


def _rest_unread(drop: Event, frames: Iterator[memoryview]) -> Event:
    """`drop` (the Dropped event of a frame of a packet), saying so when more of the packet
    follows it, unread: a packet is given up at its first dropped frame."""
    try:
        more = next(frames, None) is not None
    except DecodeError:  # a malformed rest
        more = True
    if not more or not isinstance(drop, Dropped):
        return drop
    return Dropped(drop.reason, f"{drop.detail} (the rest of the packet not read)")


def _handshake_packet(message: bytes) -> bytes:
    frame_length = 1 + len(message)
    if frame_length > MAX_MESSAGE:
        raise ChannelError(_F.TOO_LARGE, f"handshake frame of {frame_length} bytes")
    return LENGTH.pack(frame_length) + bytes((HANDSHAKE_FRAME,)) + message
