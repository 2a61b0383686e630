"""The Noise Protocol Framework, revision 34, for the XX pattern: sans-IO, exactly per the
spec's own objects (§5: CipherState, SymmetricState, HandshakeState), so stock test vectors
pass. Supported: Noise_XX_25519_AESGCM_SHA256 and Noise_XX_25519_ChaChaPoly_SHA256.

    XX:  -> e
         <- e, ee, s, es
         -> s, se

Private keys are `DhKey`s (troth.vault.ephemeral): the static key stays in the vault, the
ephemeral key in memory for one handshake.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final

from troth import limits
from troth.crypto import Aead, AeadAlgorithm, KeyType, PublicKey, noise_hkdf, sha256
from troth.errors import ChannelError, ChannelFailure, CryptoError
from troth.vault.ephemeral import DhKey, EphemeralKey

__all__ = [
    "MAX_MESSAGE",
    "PROTOCOL_NAMES",
    "CipherState",
    "HandshakeState",
    "SymmetricState",
]

MAX_MESSAGE: Final = limits.MAX_CHANNEL_FRAME  # §3: every Noise message is at most 65535 bytes
DHLEN: Final = 32
HASHLEN: Final = 32
TAGLEN: Final = 16
MAX_NONCE: Final = 2**64 - 1  # §5.1: reserved, never used to encrypt
_ZEROS32: Final = bytes(32)
PROTOCOL_NAMES: Final = frozenset(f"Noise_XX_25519_{a.value}_SHA256" for a in AeadAlgorithm)
# XX message patterns (§7.5): tokens per message, alternating initiator / responder
XX: Final = (("e",), ("e", "ee", "s", "es"), ("s", "se"))


def _fail(reason: ChannelFailure, detail: str) -> ChannelError:
    return ChannelError(reason, detail)


class CipherState:
    """§5.1: a key k (or none) and a 64-bit nonce n."""

    __slots__ = ("_aead", "_algorithm", "_nonce", "n")

    def __init__(self, algorithm: AeadAlgorithm, key: bytes | None = None) -> None:
        self._algorithm = algorithm
        self._aead: Aead | None = None
        self.n = 0
        # §12.1 / §12.3: AESGCM nonces are big-endian, ChaChaPoly little-endian, after 4 zeros
        self._nonce: Callable[[int], bytes] = (
            _nonce_big if algorithm is AeadAlgorithm.AES_256_GCM else _nonce_little
        )
        if key is not None:
            self.initialize_key(key)

    def copy(self) -> CipherState:
        """An independent copy (the AEAD object, immutable, is shared)."""
        twin = CipherState(self._algorithm)
        twin._aead, twin.n = self._aead, self.n
        return twin

    def initialize_key(self, key: bytes) -> None:
        """§5.1 InitializeKey(key): k = key, n = 0."""
        self._aead = Aead(self._algorithm, key)
        self.n = 0

    def has_key(self) -> bool:
        """§5.1 HasKey()."""
        return self._aead is not None

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        """§5.1 EncryptWithAd (plaintext returned as it is while there is no key)."""
        if self._aead is None:
            return plaintext
        if self.n >= MAX_NONCE:
            raise _fail(ChannelFailure.NONCE_EXHAUSTED, "nonce 2^64-1 is reserved")
        ciphertext = self._aead.encrypt(self._nonce(self.n), plaintext, ad)
        self.n += 1
        return ciphertext

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        """On failure raises and leaves n unchanged (§5.1)."""
        if self._aead is None:
            return ciphertext
        if self.n >= MAX_NONCE:
            raise _fail(ChannelFailure.NONCE_EXHAUSTED, "nonce 2^64-1 is reserved")
        try:
            plaintext = self._aead.decrypt(self._nonce(self.n), ciphertext, ad)
        except CryptoError:
            raise _fail(ChannelFailure.DECRYPT_FAILED, "authentication failed") from None
        self.n += 1
        return plaintext

    def encrypt_at_into(self, nonce: int, ad: bytes, plaintext: bytes, out: memoryview) -> None:
        """ENCRYPT(k, nonce, ad, plaintext) with an explicit nonce (transport messages carry
        theirs), writing ciphertext || tag into `out` (len(plaintext) + 16 bytes)."""
        if self._aead is None or nonce >= MAX_NONCE:
            raise _fail(ChannelFailure.NONCE_EXHAUSTED, "no key or reserved nonce")
        self._aead.encrypt_into(self._nonce(nonce), plaintext, ad, out)

    def decrypt_at(self, nonce: int, ad: bytes, ciphertext: bytes | memoryview) -> bytes:
        """DECRYPT(k, nonce, ad, ciphertext) with an explicit nonce (ChannelError
        DECRYPT_FAILED when it does not authenticate)."""
        if self._aead is None or nonce >= MAX_NONCE:
            raise _fail(ChannelFailure.DECRYPT_FAILED, "no key or reserved nonce")
        try:
            return self._aead.decrypt(self._nonce(nonce), ciphertext, ad)
        except CryptoError:
            raise _fail(ChannelFailure.DECRYPT_FAILED, "authentication failed") from None

    def decrypt_at_into(
        self, nonce: int, ad: bytes, ciphertext: bytes | memoryview, out: bytearray | memoryview
    ) -> None:
        """`decrypt_at`, writing the plaintext into `out` (len(ciphertext) - 16 bytes)."""
        if self._aead is None or nonce >= MAX_NONCE:
            raise _fail(ChannelFailure.DECRYPT_FAILED, "no key or reserved nonce")
        try:
            self._aead.decrypt_into(self._nonce(nonce), ciphertext, ad, out)
        except CryptoError:
            raise _fail(ChannelFailure.DECRYPT_FAILED, "authentication failed") from None

    def rekey(self) -> None:
        """§5.1 Rekey(): k = REKEY(k); n is kept."""
        n = self.n
        self.initialize_key(self._next_key())
        self.n = n

    def rekeyed(self) -> CipherState:
        """A new state with REKEY(k) and n = 0 (this state is unchanged)."""
        return CipherState(self._algorithm, self._next_key())

    def _next_key(self) -> bytes:
        """§4.2 REKEY(k) = the first 32 bytes of ENCRYPT(k, 2^64-1, zerolen, zeros)."""
        if self._aead is None:
            raise _fail(ChannelFailure.PROTOCOL, "rekey without a key")
        return self._aead.encrypt(self._nonce(MAX_NONCE), _ZEROS32, b"")[:32]


# 32 bits of zeros, then the 64-bit counter: big-endian for AESGCM (§12.4), little-endian
# for ChaChaPoly (§12.3). Packed in C: one Python call less per frame sealed or opened
# (review 68q, rtt); every caller keeps n within 64 bits (MAX_NONCE is checked first).
_nonce_big: Final[Callable[[int], bytes]] = struct.Struct(">4xQ").pack
_nonce_little: Final[Callable[[int], bytes]] = struct.Struct("<4xQ").pack


class SymmetricState:
    """§5.2: the chaining key ck, the handshake hash h, and a CipherState."""

    __slots__ = ("_algorithm", "cipher", "ck", "h")

    def __init__(self, protocol_name: str) -> None:
        if protocol_name not in PROTOCOL_NAMES:
            raise ValueError(f"unsupported Noise protocol {protocol_name!r}")
        self._algorithm = AeadAlgorithm(protocol_name.split("_")[3])
        name = protocol_name.encode("ascii")
        self.h = name.ljust(HASHLEN, b"\x00") if len(name) <= HASHLEN else sha256(name)
        self.ck = self.h
        self.cipher = CipherState(self._algorithm)

    def copy(self) -> SymmetricState:
        """An independent copy (to try a handshake message without committing to it)."""
        twin = SymmetricState.__new__(SymmetricState)
        twin._algorithm, twin.ck, twin.h = self._algorithm, self.ck, self.h
        twin.cipher = self.cipher.copy()
        return twin

    def mix_key(self, input_key_material: bytes) -> None:
        """§5.2 MixKey."""
        self.ck, temp_k = noise_hkdf(self.ck, input_key_material, 2)
        self.cipher.initialize_key(temp_k)

    def mix_hash(self, data: bytes) -> None:
        """§5.2 MixHash."""
        self.h = sha256(self.h + data)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        """§5.2 EncryptAndHash."""
        ciphertext = self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        """§5.2 DecryptAndHash."""
        plaintext = self.cipher.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        """§5.2 Split."""
        temp_k1, temp_k2 = noise_hkdf(self.ck, b"", 2)
        return CipherState(self._algorithm, temp_k1), CipherState(self._algorithm, temp_k2)


class HandshakeState:
    """§5.3 for XX. `write_message` / `read_message` alternate; after the third message
    `split()` gives (initiator->responder, responder->initiator) CipherStates (§5.2 Split)."""

    def __init__(
        self,
        protocol_name: str,
        *,
        initiator: bool,
        prologue: bytes,
        static: DhKey,
        ephemeral: DhKey | None = None,
        make_ephemeral: Callable[[], DhKey] = EphemeralKey,
    ) -> None:
        self.symmetric = SymmetricState(protocol_name)
        self.symmetric.mix_hash(prologue)
        self.initiator = initiator
        self.s = static
        self.e = ephemeral
        self._make_ephemeral = make_ephemeral
        self.rs: PublicKey | None = None
        self.re: PublicKey | None = None
        self._index = 0
        self._failed = False

    def copy(self) -> HandshakeState:
        """An independent copy: a handshake message is read on a copy, which replaces this
        state only when the message authenticates (junk leaves the handshake as it was)."""
        twin = HandshakeState.__new__(HandshakeState)
        twin.__dict__.update(self.__dict__)
        twin.symmetric = self.symmetric.copy()
        return twin

    @property
    def handshake_hash(self) -> bytes:
        """§5.2 GetHandshakeHash()."""
        return self.symmetric.h

    @property
    def messages_done(self) -> int:
        """How many of the three XX messages have been written or read."""
        return self._index

    @property
    def complete(self) -> bool:
        """Whether all three messages are done."""
        return self._index == len(XX)

    def _my_turn(self) -> bool:
        return (self._index % 2 == 0) == self.initiator

    def _check(self, writing: bool) -> None:
        if self._failed:
            raise _fail(ChannelFailure.PROTOCOL, "handshake already failed")
        if self.complete or self._my_turn() != writing:
            raise _fail(ChannelFailure.PROTOCOL, "out of turn")

    def _dh(self, token: str) -> bytes:
        """§5.3: ee = DH(e, re); es = DH(e, rs) as initiator, DH(s, re) as responder;
        se = DH(s, re) as initiator, DH(e, rs) as responder."""
        mine, theirs = (
            token[0] if self.initiator else token[1],
            token[1] if self.initiator else token[0],
        )
        key = self.e if mine == "e" else self.s
        peer = self.re if theirs == "e" else self.rs
        if key is None or peer is None:
            raise _fail(ChannelFailure.PROTOCOL, f"missing key for {token}")
        return key.dh(peer)

    def write_message(self, payload: bytes) -> bytes:
        """§5.3 WriteMessage: the next XX message carrying `payload`."""
        self._check(writing=True)
        try:
            out = bytearray()
            for op in XX[self._index]:  # the pattern's tokens (e, s, ee, es, se)
                if op == "e":
                    if self.e is None:
                        self.e = self._make_ephemeral()
                    out += self.e.public_key.data
                    self.symmetric.mix_hash(self.e.public_key.data)
                elif op == "s":
                    out += self.symmetric.encrypt_and_hash(self.s.public_key.data)
                else:
                    self.symmetric.mix_key(self._dh(op))
            out += self.symmetric.encrypt_and_hash(payload)
        except CryptoError as exc:  # e.g. a low-order peer key (all-zero DH) or a bad key
            self._failed = True
            raise _fail(ChannelFailure.HANDSHAKE_FAILED, str(exc)) from None
        except BaseException:
            self._failed = True
            raise
        if len(out) > MAX_MESSAGE:
            self._failed = True
            raise _fail(ChannelFailure.TOO_LARGE, f"{len(out)} bytes")
        self._index += 1
        return bytes(out)

    def read_message(self, message: bytes) -> bytes:
        """§5.3 ReadMessage: the payload of the peer's next XX message (ChannelError when it is
        malformed or does not authenticate)."""
        self._check(writing=False)
        if len(message) > MAX_MESSAGE:
            self._failed = True
            raise _fail(ChannelFailure.TOO_LARGE, f"{len(message)} bytes")
        try:
            view = memoryview(message)
            for op in XX[self._index]:  # the pattern's tokens (e, s, ee, es, se)
                if op == "e":
                    if len(view) < DHLEN:
                        raise _fail(ChannelFailure.HANDSHAKE_FAILED, "message too short")
                    self.re = PublicKey(KeyType.X25519, bytes(view[:DHLEN]))
                    self.symmetric.mix_hash(self.re.data)
                    view = view[DHLEN:]
                elif op == "s":
                    size = DHLEN + (TAGLEN if self.symmetric.cipher.has_key() else 0)
                    if len(view) < size:
                        raise _fail(ChannelFailure.HANDSHAKE_FAILED, "message too short")
                    self.rs = PublicKey(
                        KeyType.X25519, self.symmetric.decrypt_and_hash(bytes(view[:size]))
                    )
                    view = view[size:]
                else:
                    self.symmetric.mix_key(self._dh(op))
            payload = self.symmetric.decrypt_and_hash(bytes(view))
        except CryptoError as exc:  # e.g. an all-zero DH result from a low-order point, a bad key
            self._failed = True
            raise _fail(ChannelFailure.HANDSHAKE_FAILED, str(exc)) from None
        except BaseException:
            self._failed = True
            raise
        self._index += 1
        return payload

    def split(self) -> tuple[CipherState, CipherState]:
        """(c1, c2): c1 encrypts initiator -> responder, c2 responder -> initiator."""
        if not self.complete or self._failed:
            raise _fail(ChannelFailure.PROTOCOL, "handshake not complete")
        return self.symmetric.split()
