"""The secure channel: Noise XX bound to identities and credentials, then an explicit-nonce
transport with a replay window, rekeying, padding, fragmentation and in-band credential
refresh. Sans-IO: frames in, events out, `now` passed in (docs/protocols.md).

Frames (each at most one Noise message, 65535 bytes), sent in packets of one or more
length-prefixed frames (length: 2 bytes, big-endian), so that a fragmented message travels as
one packet:
    0x01 || Noise handshake message            (messages 1-3 of XX)
    0x02 || nonce (8, big-endian) || AEAD(k_epoch, nonce, ad = "", plaintext)

Each side verifies the other from signatures only the other's keys could make: the change
history (and that it extends any stored copy), the attestation binding the Noise static key to
the identity, the credential chains (for the configured trust anchors, against the revocation
feeds), then asks its PeerPolicy whether to admit the peer. Nothing is delivered before that.

Rekeying: the nonce space is cut into epochs of `rekey_interval` messages; epoch e uses
REKEY^e(k) (Noise §4.2), so both sides rekey at the same nonces without signalling, and a
receiver keeps the current and the previous epoch's keys for late messages inside the window.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from troth import limits
from troth.channel.noise import (
    MAX_MESSAGE,
    PROTOCOL_NAMES,
    TAGLEN,
    CipherState,
    HandshakeState,
)
from troth.channel.payloads import FRAGMENT, HEADER, AuthPayload, Kind, pack, unpack
from troth.channel.replay import ReplayWindow, Verdict
from troth.credentials import ChainVerifier, VerifiedCredential, VerifiedFeed
from troth.encoding import cbor
from troth.errors import (
    ChannelError,
    ChannelFailure,
    CredentialError,
    CredentialFailure,
    DecodeError,
    IdentityError,
)
from troth.identity import Identifier, VerifiedIdentity, verify_attestation, verify_history
from troth.vault import KeyPurpose
from troth.vault.ephemeral import DhKey

__all__ = [
    "PROLOGUE",
    "Accepted",
    "ChannelIdentity",
    "ChannelSettings",
    "ChannelState",
    "ChannelTrust",
    "Closed",
    "Dropped",
    "Established",
    "Event",
    "PeerPolicy",
    "Received",
    "SecureChannel",
    "VerifiedPeer",
    "split_packet",
]

PROLOGUE: Final = b"troth.channel/1"
HANDSHAKE_FRAME: Final = 0x01
TRANSPORT_FRAME: Final = 0x02
_NONCE: Final = struct.Struct(">Q")
_LENGTH: Final = struct.Struct(">H")
_OVERHEAD: Final = 1 + _NONCE.size + TAGLEN  # frame type, nonce, tag
MAX_PLAINTEXT: Final = MAX_MESSAGE - _OVERHEAD
PACKET_LIMIT: Final = limits.MAX_TRANSPORT_FRAME - 4096  # leaves room for the routes
MAX_PADDING: Final = 4096
MIN_FRAGMENT: Final = 4096  # every fragment but the last carries at least this much
REASSEMBLY_TIMEOUT: Final = 60  # seconds an incomplete message is kept


def split_packet(packet: bytes | bytearray | memoryview) -> list[memoryview]:
    """The frames of a packet: each is length (2 bytes) || frame (at most 65535 bytes)."""
    if len(packet) > limits.MAX_TRANSPORT_FRAME:
        raise ChannelError(_F.TOO_LARGE, f"packet of {len(packet)} bytes")
    view = memoryview(packet)
    frames = []
    at = 0
    while at < len(view):
        if len(view) - at < _LENGTH.size:
            raise ChannelError(_F.PROTOCOL, "truncated packet")
        (length,) = _LENGTH.unpack_from(view, at)
        start = at + _LENGTH.size
        if start + length > len(view):
            raise ChannelError(_F.PROTOCOL, "frame past the end of its packet")
        frames.append(view[start : start + length])
        at = start + length
    if not frames:
        raise ChannelError(_F.PROTOCOL, "empty packet")
    return frames


_F = ChannelFailure


# -- configuration -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChannelIdentity:
    """Who this side is: its history, its Noise static key (in a vault), the attestation that
    binds that key to the identity, and the credential chains it presents."""

    history: bytes
    static: DhKey
    attestation: bytes
    credentials: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class VerifiedPeer:
    identity: VerifiedIdentity
    credentials: tuple[VerifiedCredential, ...]

    @property
    def identifier(self) -> Identifier:
        return self.identity.identifier


class PeerPolicy(Protocol):
    def admit(self, peer: VerifiedPeer) -> bool:
        """Whether to talk to this (authenticated) peer."""
        ...


Feeds = Callable[[], Mapping[Identifier, VerifiedFeed]]


@dataclass(frozen=True, slots=True)
class ChannelTrust:
    """How this side judges peers. `verifier` checks credential chains (None: ignore them);
    `known` raises IdentityError for a history that forks from or rolls back a stored copy."""

    policy: PeerPolicy
    verifier: ChainVerifier | None = None
    feeds: Feeds = dict
    known: Callable[[VerifiedIdentity], None] | None = None


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    cipher: str = "AESGCM"
    replay_window: int = 2048
    rekey_interval: int = 1 << 16
    padding: int = 0
    max_message: int = limits.MAX_APPLICATION_MESSAGE

    def __post_init__(self) -> None:
        if self.rekey_interval < self.replay_window:
            raise ValueError("rekey_interval must be at least the replay window")
        if not 0 <= self.padding <= MAX_PADDING:
            raise ValueError(f"padding must be 0-{MAX_PADDING} bytes")
        if self.protocol_name not in PROTOCOL_NAMES:
            raise ValueError(f"unknown cipher {self.cipher!r}")

    @property
    def protocol_name(self) -> str:
        return f"Noise_XX_25519_{self.cipher}_SHA256"


# -- events --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Established:
    peer: VerifiedPeer
    handshake_hash: bytes


@dataclass(frozen=True, slots=True)
class Received:
    payload: bytes | memoryview


@dataclass(frozen=True, slots=True)
class Accepted:
    """The responder verified and admitted us (the initiator): XX lets the initiator finish
    first, so only this tells it the channel is really open."""


@dataclass(frozen=True, slots=True)
class Dropped:
    nonce: int
    why: str


@dataclass(frozen=True, slots=True)
class Closed:
    reason: ChannelFailure
    detail: str
    by_peer: bool


Event = Established | Accepted | Received | Dropped | Closed


class ChannelState(enum.Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSED = "closed"


# -- the channel ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Reassembly:
    total: int
    started: int
    chunks: dict[int, memoryview] = field(default_factory=dict)
    got: int = 0  # message bytes received
    held: int = 0  # decrypted-frame bytes kept alive for them


class _Receiver:
    """The receiving keys: the current epoch's and the previous one's (for late messages)."""

    __slots__ = ("epochs",)

    def __init__(self, base: CipherState) -> None:
        self.epochs = {0: base}

    def cipher_for(self, epoch: int) -> CipherState:
        """The key for `epoch` (the next epoch's is derived, not yet kept: see `commit`)."""
        cipher = self.epochs.get(epoch)
        if cipher is not None:
            return cipher
        top = max(self.epochs)
        if epoch == top + 1:
            return self.epochs[top].rekeyed()
        if epoch < top:
            raise ChannelError(_F.REPLAY, f"epoch {epoch} keys are gone")
        raise ChannelError(_F.PROTOCOL, f"nonce from epoch {epoch}, holding {top}")

    def commit(self, epoch: int, cipher: CipherState) -> None:
        """A frame of `epoch` authenticated: keep its key (and only the one before it)."""
        if epoch not in self.epochs:
            top = max(self.epochs)
            self.epochs = {top: self.epochs[top], epoch: cipher}


class SecureChannel:
    """One end of a secure channel. Create with `initiator` or `responder`; feed it every frame
    from the peer with `receive`; take frames to send from `outgoing()`."""

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
        self.state = ChannelState.HANDSHAKE
        self.peer: VerifiedPeer | None = None
        self.close_reason: ChannelFailure | None = None
        self.accepted = False  # initiator: set when the responder's ACCEPTED frame arrives
        self._handshake: HandshakeState | None = HandshakeState(
            self.settings.protocol_name, initiator=initiator, prologue=PROLOGUE, static=me.static
        )
        self._outgoing: list[bytes | bytearray] = []
        self._send: CipherState | None = None
        self._send_epoch = 0
        self._receiver: _Receiver | None = None
        self._next_nonce = 0
        self._window = ReplayWindow(self.settings.replay_window)
        self._reassembly: dict[int, _Reassembly] = {}  # by message id
        self._reassembling = 0  # bytes held by all reassemblies
        self.handshake_hash = b""

    @classmethod
    def initiate(
        cls, *, me: ChannelIdentity, trust: ChannelTrust, settings: ChannelSettings | None = None
    ) -> SecureChannel:
        channel = cls(initiator=True, me=me, trust=trust, settings=settings)
        channel._write_handshake(b"")  # message 1: -> e
        return channel

    # -- outgoing --------------------------------------------------------------------------------

    def outgoing(self) -> list[bytes | bytearray]:
        frames, self._outgoing = self._outgoing, []
        return frames

    def send(self, payload: bytes | memoryview) -> None:
        """Queue an application message (fragmented when over one frame)."""
        if self.state is not ChannelState.OPEN:
            raise ChannelError(_F.PROTOCOL, f"channel is {self.state.value}")
        if len(payload) > self.settings.max_message:
            raise ChannelError(_F.TOO_LARGE, f"{len(payload)} bytes")
        padding = self.settings.padding
        capacity = MAX_PLAINTEXT - (MAX_PLAINTEXT % padding if padding > 1 else 0)
        chunk = capacity - HEADER.size  # the kind and length header
        if len(payload) <= chunk:
            self._emit([(Kind.DATA, (payload,))])
            return
        chunk -= FRAGMENT.size
        message_id = self._next_nonce
        view = memoryview(payload)
        self._emit(
            [
                (
                    Kind.FRAGMENT,
                    (
                        FRAGMENT.pack(message_id, len(payload), offset),
                        view[offset : offset + chunk],
                    ),
                )
                for offset in range(0, len(payload), chunk)
            ]
        )

    def send_credentials(self, chains: tuple[bytes, ...]) -> None:
        """In-band credential refresh: present (new) chains to the peer."""
        if self.state is not ChannelState.OPEN:
            raise ChannelError(_F.PROTOCOL, f"channel is {self.state.value}")
        self._emit([(Kind.CREDENTIALS, (cbor.encode(list(chains)),))])

    def close(self, reason: ChannelFailure = _F.NORMAL, detail: str = "") -> Closed:
        """Close locally; tell the peer when the transport is up."""
        if self.state is ChannelState.OPEN:
            self._emit([(Kind.CLOSE, (bytes((int(reason),)), detail.encode()[:200]))])
        return self._closed(reason, detail, by_peer=False)

    def _emit(self, frames: list[tuple[Kind, tuple[bytes | memoryview, ...]]]) -> None:
        """Encrypt frames straight into packets (length-prefixed frames, up to PACKET_LIMIT
        bytes each), so a fragmented message leaves as one packet and is copied once."""
        padding = self.settings.padding
        plains = [pack(kind, parts, padding) for kind, parts in frames]
        group: list[bytes] = []
        size = 0
        for plain in plains:
            need = _LENGTH.size + _OVERHEAD + len(plain)
            if group and size + need > PACKET_LIMIT:
                self._seal(group, size)
                group, size = [], 0
            group.append(plain)
            size += need
        if group:
            self._seal(group, size)

    def _seal(self, plains: list[bytes], size: int) -> None:
        packet = bytearray(size)
        view = memoryview(packet)
        at = 0
        for plain in plains:
            nonce = self._next_nonce
            cipher = self._cipher_for_sending(nonce)
            self._next_nonce += 1
            length = _OVERHEAD + len(plain)
            _LENGTH.pack_into(packet, at, length)
            packet[at + 2] = TRANSPORT_FRAME
            _NONCE.pack_into(packet, at + 3, nonce)
            body = at + 3 + _NONCE.size
            cipher.encrypt_at_into(nonce, b"", plain, view[body : body + len(plain) + TAGLEN])
            at += _LENGTH.size + length
        self._outgoing.append(packet)

    def _cipher_for_sending(self, nonce: int) -> CipherState:
        cipher = self._send
        if cipher is None:
            raise ChannelError(_F.PROTOCOL, "no transport keys")
        epoch = nonce // self.settings.rekey_interval
        while self._send_epoch < epoch:
            cipher = self._send = cipher.rekeyed()
            self._send_epoch += 1
        return cipher

    # -- incoming --------------------------------------------------------------------------------

    def receive(self, packet: bytes | bytearray | memoryview, now: int) -> list[Event]:
        """Process one packet (one or more frames) from the peer. Errors close the channel
        and come back as a Closed event."""
        events: list[Event] = []
        try:
            for frame in split_packet(packet):
                if self.state is ChannelState.CLOSED:
                    break
                events += self._receive_frame(frame, now)
        except ChannelError as exc:
            if self.state is not ChannelState.CLOSED:
                events.append(self.close(exc.reason, exc.detail))
        return events

    def _receive_frame(self, frame: memoryview, now: int) -> list[Event]:
        if not frame:
            raise ChannelError(_F.PROTOCOL, "empty frame")
        if frame[0] == HANDSHAKE_FRAME and self.state is ChannelState.HANDSHAKE:
            return self._read_handshake(bytes(frame[1:]), now)
        if frame[0] == TRANSPORT_FRAME and self.state is ChannelState.OPEN:
            return self._read_transport(frame, now)
        raise ChannelError(_F.PROTOCOL, f"unexpected frame {frame[0]} while {self.state.value}")

    def _write_handshake(self, payload: bytes) -> None:
        if self._handshake is None:
            raise ChannelError(_F.PROTOCOL, "handshake over")
        frame = bytes((HANDSHAKE_FRAME,)) + self._handshake.write_message(payload)
        if len(frame) > MAX_MESSAGE:
            raise ChannelError(_F.TOO_LARGE, f"handshake frame of {len(frame)} bytes")
        self._outgoing.append(_LENGTH.pack(len(frame)) + frame)

    def _auth_payload(self) -> bytes:
        return AuthPayload(self.me.history, self.me.attestation, self.me.credentials).encode()

    def _read_handshake(self, message: bytes, now: int) -> list[Event]:
        handshake = self._handshake
        if handshake is None:
            raise ChannelError(_F.PROTOCOL, "handshake over")
        payload = handshake.read_message(message)
        step = handshake.messages_done  # 1-3
        if step == 1:  # responder read "-> e": answer with "<- e, ee, s, es" + our identity
            if payload:
                raise ChannelError(_F.HANDSHAKE_FAILED, "message 1 carries no payload")
            self._write_handshake(self._auth_payload())
            return []
        if step == 2:  # initiator read message 2: check the responder, then "-> s, se"
            peer = self._verify_peer(AuthPayload.decode(payload), handshake, now)
            self._write_handshake(self._auth_payload())
            self._establish(handshake, peer)
            return [Established(peer, self.handshake_hash)]
        try:  # responder read message 3
            peer = self._verify_peer(AuthPayload.decode(payload), handshake, now)
        except ChannelError as exc:
            # The initiator already considers the handshake done (XX): tell it why, under the
            # keys the handshake just agreed, before closing.
            self._establish(handshake, None)
            return [self.close(exc.reason, exc.detail)]
        self._establish(handshake, peer)
        self.accepted = True
        self._emit([(Kind.ACCEPTED, ())])
        return [Established(peer, self.handshake_hash)]

    def _establish(self, handshake: HandshakeState, peer: VerifiedPeer | None) -> None:
        c1, c2 = handshake.split()
        send, receive = (c1, c2) if self.initiator else (c2, c1)
        self._send = send
        self._receiver = _Receiver(receive)
        self.handshake_hash = handshake.handshake_hash
        self._handshake = None  # ephemeral keys dropped: forward secrecy
        self.peer = peer
        self.state = ChannelState.OPEN

    def _verify_peer(self, auth: AuthPayload, handshake: HandshakeState, now: int) -> VerifiedPeer:
        try:
            identity = verify_history(auth.history, now=now)
            if self.trust.known is not None:
                self.trust.known(identity)
            key = verify_attestation(
                identity, auth.attestation, purpose=KeyPurpose.SECURE_CHANNEL, now=now
            )
        except IdentityError as exc:
            raise ChannelError(_F.PEER_INVALID, str(exc)) from None
        if key.key != handshake.rs:
            raise ChannelError(_F.PEER_INVALID, "attested key is not the Noise static key")
        self._check_identity_revoked(identity.identifier)
        credentials = self._verify_credentials(identity.identifier, auth.credentials, now)
        peer = VerifiedPeer(identity, credentials)
        if not self.trust.policy.admit(peer):
            raise ChannelError(_F.PEER_NOT_ALLOWED, str(identity.identifier))
        return peer

    def _check_identity_revoked(self, identifier: Identifier) -> None:
        for feed in self.trust.feeds().values():
            if identifier.digest in feed.revoked_identities:
                raise ChannelError(_F.REVOKED, f"{identifier} is revoked by {feed.authority}")

    def _verify_credentials(
        self, presenter: Identifier, chains: tuple[bytes, ...], now: int
    ) -> tuple[VerifiedCredential, ...]:
        verifier = self.trust.verifier
        if verifier is None or not chains:
            return ()
        if len(chains) > limits.MAX_CHANNEL_CREDENTIALS:
            raise ChannelError(_F.CREDENTIAL_INVALID, "too many credentials")
        feeds = self.trust.feeds()
        verified = []
        for chain in chains:
            try:
                verified.append(verifier.verify(chain, presenter=presenter, feeds=feeds, now=now))
            except CredentialError as exc:
                reason = (
                    _F.REVOKED if exc.reason is CredentialFailure.REVOKED else _F.CREDENTIAL_INVALID
                )
                raise ChannelError(reason, str(exc)) from None
        return tuple(verified)

    def _read_transport(self, frame: memoryview, now: int) -> list[Event]:
        if len(frame) < _OVERHEAD:
            raise ChannelError(_F.PROTOCOL, "short transport frame")
        (nonce,) = _NONCE.unpack_from(frame, 1)
        verdict = self._window.check(nonce)
        if verdict is Verdict.DUPLICATE:
            return [Dropped(nonce, "duplicate")]
        if verdict is Verdict.TOO_OLD:
            raise ChannelError(_F.REPLAY, f"nonce {nonce} is below the window")
        receiver = self._receiver
        if receiver is None:
            raise ChannelError(_F.PROTOCOL, "no transport keys")
        epoch = nonce // self.settings.rekey_interval
        cipher = receiver.cipher_for(epoch)
        plain = cipher.decrypt_at(nonce, b"", memoryview(frame)[1 + _NONCE.size :])
        receiver.commit(epoch, cipher)  # only an authenticated frame changes any state
        self._window.accept(nonce)
        kind, body = unpack(plain)
        if kind is Kind.DATA:
            return [Received(body)]  # a view of the decrypted plaintext, not a copy
        if kind is Kind.FRAGMENT:
            return self._reassemble(body, now)
        if kind is Kind.ACCEPTED:
            if not self.initiator or self.accepted:
                raise ChannelError(_F.PROTOCOL, "unexpected acceptance")
            self.accepted = True
            return [Accepted()]
        if kind is Kind.CREDENTIALS:
            return self._refresh(bytes(body), now)
        try:
            reason = ChannelFailure(body[0])
        except (IndexError, ValueError):
            reason = _F.PROTOCOL
        return [self._closed(reason, bytes(body[1:]).decode(errors="replace"), by_peer=True)]

    def _reassemble(self, body: memoryview, now: int) -> list[Event]:
        """Collect fragments. Memory is bounded: a chunk is kept as a view of its decrypted
        frame and the whole frame counts against the limit (so padding or trailing bytes
        cannot make a small chunk pin more than it is charged for); all reassemblies together
        hold at most `max_message` bytes; every fragment but the last carries at least
        MIN_FRAGMENT bytes; an incomplete message is dropped after REASSEMBLY_TIMEOUT s."""
        if len(body) < FRAGMENT.size:
            raise ChannelError(_F.PROTOCOL, "short fragment")
        message_id, total, offset = FRAGMENT.unpack_from(body)
        chunk = body[FRAGMENT.size :]
        size = len(chunk)
        if total > self.settings.max_message or offset + size > total or not size:
            raise ChannelError(_F.TOO_LARGE, f"fragment of a {total}-byte message")
        if size < MIN_FRAGMENT and offset + size != total:
            raise ChannelError(_F.PROTOCOL, f"a {size}-byte fragment that is not the last")
        self._expire_reassemblies(now)
        entry = self._reassembly.get(message_id)
        if entry is None:
            if len(self._reassembly) >= limits.MAX_REASSEMBLIES:
                raise ChannelError(_F.PROTOCOL, "too many messages in reassembly")
            entry = _Reassembly(total, now)
            self._reassembly[message_id] = entry
        if entry.total != total or offset in entry.chunks:
            raise ChannelError(_F.PROTOCOL, "inconsistent fragments")
        held = len(body.obj)  # type: ignore[arg-type]  # the whole decrypted frame stays alive
        if self._reassembling + held > self.settings.max_message + MAX_MESSAGE:
            raise ChannelError(_F.TOO_LARGE, "reassembly over the message limit")
        entry.chunks[offset] = chunk
        entry.got += size
        entry.held += held
        self._reassembling += held
        if entry.got < total:
            return []
        del self._reassembly[message_id]
        self._reassembling -= entry.held
        message = b"".join(entry.chunks[o] for o in sorted(entry.chunks))
        if len(message) != total:
            raise ChannelError(_F.PROTOCOL, "fragments overlap")
        return [Received(message)]

    def _expire_reassemblies(self, now: int) -> None:
        for message_id, entry in list(self._reassembly.items()):
            if now - entry.started > REASSEMBLY_TIMEOUT:
                del self._reassembly[message_id]
                self._reassembling -= entry.held

    def _refresh(self, body: bytes, now: int) -> list[Event]:
        peer = self.peer
        if peer is None:
            raise ChannelError(_F.PROTOCOL, "refresh before the handshake")
        try:
            chains = tuple(
                cbor.expect_bytes(c, "chain")
                for c in cbor.expect_array(cbor.decode(body), "chains")
            )
        except DecodeError as exc:
            raise ChannelError(_F.PROTOCOL, str(exc)) from None
        credentials = self._verify_credentials(peer.identifier, chains, now)
        updated = VerifiedPeer(peer.identity, credentials)
        if not self.trust.policy.admit(updated):
            raise ChannelError(
                _F.PEER_NOT_ALLOWED, "refreshed credentials no longer admit the peer"
            )
        self.peer = updated
        return [Established(updated, self.handshake_hash)]

    # -- continuous evaluation -------------------------------------------------------------------

    def check_peer(self, now: int) -> list[Event]:
        """Re-check the peer's credentials against the current feeds (and their expiry); close
        when the peer is revoked or no longer admitted."""
        peer = self.peer
        if self.state is not ChannelState.OPEN or peer is None:
            return []
        chains = tuple(c.chain for c in peer.credentials)
        try:
            self._check_identity_revoked(peer.identifier)
            credentials = self._verify_credentials(peer.identifier, chains, now)
            if not self.trust.policy.admit(VerifiedPeer(peer.identity, credentials)):
                raise ChannelError(_F.PEER_NOT_ALLOWED, "the peer is no longer admitted")
        except ChannelError as exc:
            return [self.close(exc.reason, exc.detail)]
        return []

    def _closed(self, reason: ChannelFailure, detail: str, *, by_peer: bool) -> Closed:
        self.state = ChannelState.CLOSED
        self.close_reason = reason
        self._handshake = None
        self._send = None
        self._receiver = None
        self._reassembly.clear()
        return Closed(reason, detail, by_peer)
