"""The PKCS#11 vault: keys generated inside a token (an HSM, or SoftHSM2 for tests) as sensitive,
non-extractable objects. The private value never leaves the token; this module only asks the
token to sign.

- Ed25519: CKK_EC_EDWARDS, CKA_EC_PARAMS = OID 1.3.101.112, CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA
  (PKCS#11 v3.0 §2.3).
- P-256: CKK_EC on secp256r1, CKM_EC_KEY_PAIR_GEN; we hash with SHA-256 on the host and sign the
  digest with plain CKM_ECDSA (SoftHSM2 has no CKM_ECDSA_SHA256), then normalise to low-s.
- CKA_EC_POINT is a DER OCTET STRING around the raw point (PKCS#11 v3.0 §2.3.3).
- X25519 is not offered: SoftHSM2 2.6 and python-pkcs11 have no CKK_EC_MONTGOMERY. A PKCS#11 node
  keeps its secure-channel keys in its software vault (troth.vault.composite).
- Key pairs: the private key signs and nothing else (CKA_DERIVE false, not modifiable); its
  label names its purpose (`troth:<purpose>:<key id>`), set once by a PIN holder.
- A key is used (signs, seals, shows its public key) only if the token generated it and never let
  it out (CKA_LOCAL, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE): not one a session with the PIN
  swapped in under its CKA_ID, whose value it knows (review 60e, pkcs11 1-2).
- Retirement (review 48k, pkcs11 3; docs/vault.md, "PKCS#11 vault"): node.db's records of
  retired keys are no proof (a writer without the PIN plants them). `retire` makes, before the
  retiring commit, a private data object (a PIN session only: PKCS#11 v3.0 §4.4) holding a
  random proof the commit records; `delete_retired` destroys a key with that proof only (the
  secrets broker records one too: review 48r, pkcs11 1); `unretire` undoes a retirement whose
  write failed; `delete` destroys only a key this object made (review 53m, pkcs11 1 and 3).
- Seal keys: CKK_AES, 256 bits, CKM_AES_KEY_GEN, sensitive and never extractable, usable only to
  encrypt/decrypt (no wrap/unwrap), not modifiable (review 53f, pkcs11 1); sealing is
  CKM_AES_GCM (PKCS#11 v3.0 §2.12.5) with a 96-bit nonce drawn on the host and a 128-bit tag,
  in the `SealingVault` blob format.

python-pkcs11 is the optional `hsm` extra; it is imported when this vault is opened.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import re
import sys
import threading
from typing import Any, Final

from troth.crypto import KeyType, PublicKey, verify_signature
from troth.crypto.private import p256_raw_low_s
from troth.errors import (
    ConfigError,
    CryptoError,
    KeyNotFound,
    TrothError,
    UnsupportedKeyType,
    VaultError,
)
from troth.vault.base import (
    RETIRE_PROOF_SIZE,
    SEAL_VERSION,
    KeyHandle,
    KeyPurpose,
    SealKey,
    check_seal_key,
    seal_aad,
    split_sealed,
)
from troth.vault.pkcs11_fork import watch as watch_forks
from troth.vault.pkcs11_session import (
    MapErrors,
    SharedSession,
    forget_forked,
    module_spelling,
    note_dead,
    open_session,
    recorded_serial,
    twinned,
)

__all__ = ["Pkcs11Vault"]

_log = logging.getLogger("troth.vault.pkcs11")
"""Logged to with no session lock held: a handler is the application's code, and one that
forked waited for ever in `hold_sessions` for the lock its own thread held (review 67r)."""
_module = module_spelling  # (module attributes: a test replaces `_open_session`)
_open_session = open_session
_WARNED_MODIFIABLE: set[str] = set()
"""The seal keys found modifiable or copyable by this process (`Pkcs11Vault._warn_modifiable`:
warned once)."""
_WARNED_COPYABLE: set[str] = set()  # the key pairs found copyable here (`_sign_only`, once)

_KEY_ID: Final = re.compile(r"[0-9a-f]{32}")  # a token object's CKA_ID, its one spelling
_PROOF: Final = re.compile(f"[0-9a-f]{{{2 * RETIRE_PROOF_SIZE}}}")  # `retire`'s, as recorded


_OID_ED25519 = "1.3.101.112"
_CURVE_P256 = "secp256r1"
_LABEL_PREFIX = "troth:"
_SEAL_LABEL_PREFIX = "troth-seal:"
_RETIRED_LABEL_PREFIX = "troth-retired:"
_PURPOSE_LABELS: Final = {
    KeyPurpose.PRIMARY: "primary",
    KeyPurpose.SECURE_CHANNEL: "secure-channel",
    KeyPurpose.SIGNING: "signing",
}
_PURPOSES: Final = {label: purpose for purpose, label in _PURPOSE_LABELS.items()}
_NONCE_SIZE = 12
_TAG_BITS = 128


_STALE_OBJECT: Final = ("ObjectHandleInvalid", "KeyHandleInvalid")
"""python-pkcs11's errors for a key object the token no longer knows (`sign`'s cached object:
destroyed by another process): SoftHSM2's, and CKR_KEY_HANDLE_INVALID, what PKCS#11 lists for
C_SignInit (review 57k, pkcs11 2: only SoftHSM2's was known)."""
_PIN_REFUSED: Final = ("PinIncorrect", "PinLocked", "PinExpired", "PinInvalid", "PinLenRange")
"""python-pkcs11's errors for a PIN the token refuses at a login: never tried again (each failed
C_Login counts towards locking the token's user PIN; review 53j, pkcs11 2)."""


_SESSIONS: dict[tuple[str, str], SharedSession] = {}
_SERIALS: dict[tuple[str, str], bytes] = {}
"""The serial number of the token each (module, label) named at its first login in this process:
a vault opened after every one of it closed logs in to no other (review 67b, pkcs11 3)."""
_SESSIONS_LOCK = threading.RLock()  # (re-entrant: `hold_sessions`)


_FORK_HOOKS: Final = watch_forks(sys.modules[__name__])  # (troth.vault.pkcs11_fork)


class Pkcs11Vault:
    """Keys inside one PKCS#11 token, found by label; the user PIN comes from the caller."""

    name = "pkcs11"

    def __init__(
        self, module_path: str, token_label: str, pin: str, *, serial: bytes | None = None
    ) -> None:
        """A vault on the token labelled `token_label`; with `serial` (its node's record,
        node.json's `token_serial`), none on a token of another serial number (review 67j)."""
        try:
            import pkcs11
            from pkcs11 import exceptions as p11_errors
        except ImportError as exc:
            raise ConfigError(
                "the PKCS#11 vault needs the 'hsm' extra: pip install 'troth[hsm]'"
            ) from exc
        self._p11 = pkcs11
        self._errors = p11_errors
        self._objects: dict[str, Any] = {}
        self._made: set[str] = set()  # the keys made here and not deleted (`delete`)
        self._probed: dict[str, bytes] = {}  # key id: its point, as a signature chose it of
        # the public key objects or the token made it here (`public_key`; reviews 55k, 62d)
        self._key = (_module(module_path), token_label)  # one session per module (`_module`)
        try:  # review 57b, pkcs11 4: a bare UnicodeEncodeError (exit 2) before
            pin_digest = hashlib.sha256(pin.encode()).digest()
        except UnicodeEncodeError:  # bytes os.environ could not decode: python-pkcs11 takes text
            raise ConfigError(f"the PIN for token {token_label!r} is not UTF-8 text") from None
        with _SESSIONS_LOCK:
            forget_forked(_SESSIONS)
            shared = _SESSIONS.get(self._key)
            recorded = serial
            serial = recorded_serial(token_label, recorded, _SERIALS.get(self._key), shared)
            if shared is None:
                opened = {"recorded": True} if recorded is not None else {}
                session = _open_session(pkcs11, module_path, token_label, pin, serial, **opened)
                shared = SharedSession(session, pin, pin_digest)
                with contextlib.suppress(self._errors.PKCS11Error):  # one reopened: `_revive`
                    serial = serial or bytes(session.token.serial)
                if serial is not None:
                    shared.serial = _SERIALS.setdefault(self._key, serial)
                _SESSIONS[self._key] = shared
            elif not hmac.compare_digest(shared.pin_digest, pin_digest):
                raise ConfigError(f"token {token_label!r} is already open here with another PIN")
            shared.refs += 1
        self._shared = shared
        self._session = shared.session
        self._generation = shared.generation
        self._lock = shared.lock
        self._closed = False

    @property
    def token_serial(self) -> bytes | None:
        """The serial number of the token logged in to (None if it gave none)."""
        return self._shared.serial

    def _revive(self) -> None:
        """Open the shared session again if an operation found it dead (one vault does it, the
        others then take it), and forget the objects found through an older one. A closed
        vault does nothing (review 57b, pkcs11 2: its next call, a signer kept past its node's
        close, found its session closed, and the call after logged in again on a session of
        its own, which signed on and left the process logged in: every later vault on the
        token then failed to open, `UserAlreadyLoggedIn`, until the process ended). It is
        looked at again under `_SESSIONS_LOCK`, which `close` holds: a close while this waited
        for it left the process logged in so (review 57k, pkcs11 1)."""
        if self._closed:
            raise VaultError(f"the PKCS#11 vault of token {self._key[1]!r} is closed")
        shared = self._shared
        if shared.pid != os.getpid():  # a forked child: its parent's session (review 67b)
            raise VaultError(
                f"the PKCS#11 vault of token {self._key[1]!r} was opened by process "
                f"{shared.pid}, before a fork: open it again in this process"
            )
        if shared.dead:
            with _SESSIONS_LOCK, shared.lock:
                if self._closed:  # closed while this waited (review 57k, pkcs11 1)
                    raise VaultError(f"the PKCS#11 vault of token {self._key[1]!r} is closed")
                if shared.refused is not None:  # no login with a PIN the token refused
                    raise VaultError(shared.refused)
                if shared.dead:
                    with contextlib.suppress(self._errors.PKCS11Error):
                        shared.session.close()
                    module, label = self._key
                    try:
                        shared.session = _open_session(
                            self._p11, module, label, shared.pin, shared.serial
                        )
                    except ConfigError as exc:  # an operation's error is the vault's
                        refused = type(exc.__cause__).__name__
                        if refused in _PIN_REFUSED:
                            shared.refused = (
                                f"PKCS#11 token {label!r} refused the PIN at a new login "
                                f"({refused}); it is not tried again: restart with its PIN"
                            )
                            raise VaultError(shared.refused) from exc
                        raise VaultError(f"PKCS#11 session not opened again: {exc}") from exc
                    shared.dead = False
                    shared.generation += 1
        if self._generation != shared.generation:
            with shared.lock:
                self._session = shared.session
                self._objects.clear()
                self._generation = shared.generation

    def close(self) -> None:
        with _SESSIONS_LOCK:
            if self._closed:
                return
            self._closed = True
            self._shared.refs -= 1
            if self._shared.pid != os.getpid():  # the parent's, left to it (`forget_forked`)
                return
            if self._shared.refs == 0:
                del _SESSIONS[self._key]
                with self._lock, contextlib.suppress(self._errors.PKCS11Error):  # a dead one
                    self._shared.session.close()

    # -- the Vault interface ------------------------------------------------------------------

    def generate(self, key_type: KeyType, purpose: KeyPurpose) -> KeyHandle:
        self._revive()
        p11 = self._p11
        from pkcs11.util.ec import encode_named_curve_parameters

        if key_type is KeyType.ED25519:
            params = encode_named_curve_parameters(_OID_ED25519)
            p11_type, mechanism = p11.KeyType.EC_EDWARDS, p11.Mechanism.EC_EDWARDS_KEY_PAIR_GEN
        elif key_type is KeyType.P256:
            params = encode_named_curve_parameters(_CURVE_P256)
            p11_type, mechanism = p11.KeyType.EC, p11.Mechanism.EC_KEY_PAIR_GEN
        else:
            raise UnsupportedKeyType(f"the PKCS#11 vault cannot hold {key_type.label} keys")
        key_id = os.urandom(16).hex()
        attr = p11.Attribute
        common = {
            attr.TOKEN: True,
            attr.ID: bytes.fromhex(key_id),
            # what `delete_retired` reads: a PIN holder says here, once, what the key is for
            attr.LABEL: f"{_LABEL_PREFIX}{_PURPOSE_LABELS[purpose]}:{key_id}",
            # no twin (C_CopyObject): two objects of one CKA_ID, the key not found by the next
            # process, so neither signed nor retired (review 64f, pkcs11 1)
            attr.COPYABLE: False,
        }
        with self._lock, self._mapped("generate"):
            public, private = self._session.generate_keypair(
                p11_type,
                mechanism=mechanism,
                # a private object (PKCS#11 v3.0 §4.4): a session without the user PIN can
                # neither see nor destroy it; else it destroys the committed next key's, the
                # one place its public value is kept, and the identity can never rotate again
                # (review 34a, pkcs11 1); not modifiable: its point stays the key's
                public_template={
                    **common,
                    attr.EC_PARAMS: params,
                    attr.VERIFY: True,
                    attr.PRIVATE: True,
                    attr.MODIFIABLE: False,
                },
                # a signing key only: python-pkcs11 asks for an EC key's default capabilities
                # (derive among them), and a P-256 key with CKA_DERIVE ran CKM_ECDH1_DERIVE for
                # any PIN session, a Diffie-Hellman oracle on the identity's key (review 48d,
                # pkcs11 1); not modifiable, so no session turns it back on
                private_template={
                    **common,
                    attr.SENSITIVE: True,
                    attr.EXTRACTABLE: False,
                    attr.SIGN: True,
                    attr.DERIVE: False,
                    attr.PRIVATE: True,
                    attr.MODIFIABLE: False,
                },
                store=True,
            )
            # where `sign` looks and `delete` removes (review 48d, pkcs11 2: under the bare
            # key id, one dead entry per key made, for the life of the process)
            self._objects[f"{key_type.label}:{key_id}"] = private
            self._made.add(key_id)
            # the pair's point as the token made it, shown with no probe (`public_key`); one
            # not read is probed then (the key made is never lost to a failed read here)
            with contextlib.suppress(self._errors.PKCS11Error, ValueError, TypeError):
                self._probed[key_id] = _point(public[attr.EC_POINT])
        return KeyHandle(self.name, key_type, key_id)

    def public_key(self, handle: KeyHandle) -> PublicKey:
        """The point of one of the key's public key objects that a signature of its private
        object (`sign`: one the token generated and never let out) verifies under, probed once
        (review 55k, pkcs11 1: at every call before) and kept while the token holds the point;
        the point of a pair this object generated needs no probe. Several objects (a pair made
        before review 34a, its public object public, and one a session without the PIN planted
        beside it with its CKA_ID): before review 55d (pkcs11 2) none, and the identity never
        rotated again. A public key object is never taken on its own word: the token generated
        it (CKA_LOCAL) says nothing of whether a session read its pair's private value before
        making it sensitive, or whether it is the private key's pair at all (review 62d, pkcs11
        2: such a point was shown, and the broker published the planter's key; review 60e,
        pkcs11 2, for one the token did not generate)."""
        points = self._points(handle)
        chosen = self._probed.get(handle.key_id)
        if chosen is not None and chosen in points:  # told apart once: a token signature
            return PublicKey(handle.key_type, chosen)  # each call, before (review 55k)
        if points:
            probe = os.urandom(32)
            signature = self.sign(handle, probe)
            for point in points:
                with contextlib.suppress(TrothError, TypeError, ValueError):
                    key = PublicKey(handle.key_type, bytes(point))
                    verify_signature(key, signature, probe)
                    self._probed[handle.key_id] = bytes(point)
                    return key
        raise KeyNotFound(f"no key {handle} in the token")

    def sign(self, handle: KeyHandle, data: bytes) -> bytes:
        """Sign with the key's private object, cached once found. A cached object the token
        no longer knows (`_STALE_OBJECT`: another process destroyed the key, the CLI
        rotating beside a running node) is dropped and the key looked up again: KeyNotFound
        when it is gone, what every holder of a signer takes as "rotated elsewhere: ask
        again" (review 57b, pkcs11 1: a VaultError, for good, and a running node's trace
        recorder refused every record until its next look at its signer, 60 s)."""
        self._revive()
        cached = f"{handle.key_type.label}:{handle.key_id}"
        private = self._objects.get(cached) if handle.vault == self.name else None
        stale = None
        if private is not None:
            try:
                return self._sign_with(private, handle.key_type, data)
            except VaultError as exc:
                stale = type(exc.__cause__).__name__
                if stale not in _STALE_OBJECT:
                    raise
                self._objects.pop(cached, None)
        try:  # _find refuses a handle of another vault or key type
            private = self._find(handle, self._p11.ObjectClass.PRIVATE_KEY, used=True)
        except KeyNotFound:
            if stale:
                raise KeyNotFound(
                    f"no key {handle} in the token (destroyed: its cached object {stale})"
                ) from None
            raise
        self._sign_only(handle, private)
        self._objects[cached] = private
        return self._sign_with(private, handle.key_type, data)

    def _sign_with(self, private: Any, key_type: KeyType, data: bytes) -> bytes:
        mechanism = self._p11.Mechanism
        with self._lock, self._mapped("sign"):
            if key_type is KeyType.ED25519:
                return bytes(private.sign(data, mechanism=mechanism.EDDSA))
            raw = bytes(private.sign(hashlib.sha256(data).digest(), mechanism=mechanism.ECDSA))
        return p256_raw_low_s(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))

    def dh(self, handle: KeyHandle, peer: PublicKey) -> bytes:
        raise UnsupportedKeyType("the PKCS#11 vault holds no X25519 keys")

    def delete(self, handle: KeyHandle) -> None:
        """Destroy a key pair only when this vault made it (a creation, rotation or renewal
        that failed undoes its keys): else KeyNotFound, the key kept. The secrets broker
        deleted its token keys this way, from its rows of node.db, and a writer of node.db
        without the PIN pointed one at an identity's current key (review 48k, pkcs11 4; at its
        signing key, review 48r, pkcs11 1); a retired key is destroyed by `delete_retired`,
        with the exact proof. A retirement object alone no longer lets `delete` destroy a
        key: a write that failed or a crash before its commit left one for a key still in
        use (review 53m, pkcs11 1 and 3)."""
        if handle.key_id not in self._made:
            self._find(handle, self._p11.ObjectClass.PRIVATE_KEY)  # KeyNotFound if none
            raise KeyNotFound(f"{handle} is a key the token has not retired")
        self._destroy(handle)

    def _destroy(self, handle: KeyHandle) -> None:
        """Destroy a key pair, private key first, and its retirement objects (of no use once
        the key is gone: key ids are not reused); KeyNotFound when the token holds no such
        private key. Every public key object of its CKA_ID goes (`_public_objects`): looked up
        as one, a public twin planted without the PIN beside a pair made before review 34a
        failed the look-up, and the retired private key was kept, reported gone (review 55d,
        pkcs11 1)."""
        privates = self._privates(handle)
        rest = [*self._public_objects(handle), *self._retirement_objects(handle)]
        with self._lock, self._mapped("delete"):
            for private in privates:
                private.destroy()
            self._objects.pop(f"{handle.key_type.label}:{handle.key_id}", None)
            self._made.discard(handle.key_id)
            self._probed.pop(handle.key_id, None)
            for obj in rest:
                obj.destroy()

    def _public_objects(self, handle: KeyHandle) -> list[Any]:
        """The public key objects of `handle`'s CKA_ID: the private ones (every pair troth has
        made since review 34a), else the public ones (a pair made before, and whatever a
        session without the PIN planted beside it)."""
        attr = self._p11.Attribute
        query = self._of(handle, self._p11.ObjectClass.PUBLIC_KEY)
        with self._lock, self._mapped("find key"):
            found = list(self._session.get_objects({**query, attr.PRIVATE: True}))
            return found or list(self._session.get_objects({**query, attr.PRIVATE: False}))

    def _points(self, handle: KeyHandle) -> list[bytes]:
        """The points of `handle`'s public key objects (`public_key` probes them): the private
        objects the token generated (CKA_LOCAL: one a session with the PIN created is refused,
        review 60e, pkcs11 2), else the public ones (a pair made before review 34a, and what a
        session without the PIN planted beside it)."""
        attr = self._p11.Attribute
        query = self._of(handle, self._p11.ObjectClass.PUBLIC_KEY)
        local = self._generated(query[attr.CLASS])
        points: list[bytes] = []
        with self._lock, self._mapped("read public key"):
            found = list(self._session.get_objects({**query, **local, attr.PRIVATE: True}))
            if not found:
                found = list(self._session.get_objects({**query, attr.PRIVATE: False}))
            for obj in found:
                with contextlib.suppress(ValueError, TypeError):  # not DER: planted, skipped
                    points.append(_point(obj[attr.EC_POINT]))
        if not found:
            self._refuse_planted(handle, query)
        return points

    # -- retirement (the RetiringVault interface; review 48k, pkcs11 3) ------------------------

    def retire(self, handle: KeyHandle, purpose: KeyPurpose) -> str:
        """In the transaction that retires the key, before its commit: a private data object
        (`troth-retired:<key id>`, a random proof as its value) only a PIN session can make;
        the proof (hex) is what the commit records. KeyNotFound when the token holds no such
        key of `purpose` (its label says another; a key made before review 48k, whose label
        says none, is retired as an identity key only: a purpose key record pointed at an
        identity's key does not get it destroyed at its renewal)."""
        # one of them labelled for `purpose` is the key: its twins are retired with it, whatever
        # their labels say (review 64q, pkcs11 1: a twin labelled for another purpose, made
        # with the PIN, kept the key in the token through `rotate --compromised`)
        made_for = {self._purpose(private) for private in self._privates(handle)}
        if purpose not in made_for and not (None in made_for and purpose is KeyPurpose.PRIMARY):
            raise KeyNotFound(f"{handle} is no {_PURPOSE_LABELS[purpose]} key in the token")
        proof = os.urandom(RETIRE_PROOF_SIZE)
        attr = self._p11.Attribute
        with self._lock, self._mapped("record a retirement"):
            self._session.create_object(
                {
                    attr.CLASS: self._p11.ObjectClass.DATA,
                    attr.TOKEN: True,
                    attr.PRIVATE: True,
                    attr.MODIFIABLE: False,
                    attr.LABEL: _RETIRED_LABEL_PREFIX + handle.key_id,
                    attr.APPLICATION: "troth",
                    attr.VALUE: proof,
                }
            )
        return proof.hex()

    def delete_retired(self, handle: KeyHandle, proof: str | None) -> None:
        """Destroy a retired key: one `retire` made `proof` for (then every retirement object
        of it). KeyNotFound for any other, a record with no proof included (planted without
        the PIN, or a broker's token key recorded before review 48r: the key stays), and for a
        key the token no longer holds. Review 48k, pkcs11 5: a key whose label said signing
        was destroyed with no proof (the secrets broker recorded none), so a planted record
        destroyed an identity's current signing key. A key of its CKA_ID held under the other
        type is no key gone: KeyNotFound, its retirement objects kept (review 62l, vault 1:
        they went, the record was dropped, and the retired key stayed in the token for good)."""
        if proof is None:
            raise KeyNotFound(f"{handle}: no proof of its retirement in the token")
        self._retirements(handle, proof)  # KeyNotFound unless the token retired it
        try:
            self._destroy(handle)  # the key, then its public key and retirement objects
        except KeyNotFound:  # gone already (a call killed before its objects went)
            attr = self._p11.Attribute
            other = {
                attr.CLASS: self._p11.ObjectClass.PRIVATE_KEY,
                attr.ID: bytes.fromhex(handle.key_id),
                attr.PRIVATE: True,
            }
            with self._lock, self._mapped("find key"):
                held = list(self._session.get_objects(other))  # of the other type
            if held:
                raise KeyNotFound(f"no key {handle} in the token (its id is another's)") from None
            rest = [*self._public_objects(handle), *self._retirement_objects(handle)]
            with self._lock, self._mapped("delete a retirement"):
                for obj in rest:
                    obj.destroy()

    def unretire(self, handle: KeyHandle, proof: str) -> None:
        """Destroy the retirement objects `retire` made for `handle` with `proof`, whose write
        failed before its commit (review 53m, pkcs11 1: they stayed, a retirement of a key
        still in use). Those of other proofs stay; nothing when there is none."""
        try:
            found = self._retirements(handle, proof)
        except KeyNotFound:
            return
        with self._lock, self._mapped("undo a retirement"):
            for obj in found:
                obj.destroy()

    def _retirements(self, handle: KeyHandle, proof: str) -> list[Any]:
        """The private objects `retire` made for `handle` with `proof`; KeyNotFound if none."""
        if not _PROOF.fullmatch(proof):
            raise KeyNotFound(f"{handle} was not retired in the token")
        wanted = bytes.fromhex(proof)
        value = self._p11.Attribute.VALUE
        objects = self._retirement_objects(handle)
        with self._lock, self._mapped("read a retirement"):
            found = [obj for obj in objects if hmac.compare_digest(bytes(obj[value]), wanted)]
        if not found:
            raise KeyNotFound(f"{handle} was not retired in the token")
        return found

    def _retirement_objects(self, handle: KeyHandle) -> list[Any]:
        """The private objects `retire` made for `handle` (not one made without the PIN)."""
        self._check_handle(handle)
        attr = self._p11.Attribute
        query = {
            attr.CLASS: self._p11.ObjectClass.DATA,
            attr.LABEL: _RETIRED_LABEL_PREFIX + handle.key_id,
            attr.PRIVATE: True,
        }
        with self._lock, self._mapped("find a retirement"):
            return list(self._session.get_objects(query))

    def _purpose(self, private: Any) -> KeyPurpose | None:
        """What the key's label says it is for; None for a key made before review 48k."""
        with self._lock, self._mapped("read key label"):
            label = str(private[self._p11.Attribute.LABEL])
        purpose, _, key_id = label.removeprefix(_LABEL_PREFIX).rpartition(":")
        return _PURPOSES.get(purpose) if _KEY_ID.fullmatch(key_id) else None

    # -- sealing (the SealingVault interface) ---------------------------------------------------

    def generate_seal_key(self) -> SealKey:
        self._revive()
        p11 = self._p11
        attr = p11.Attribute
        key_id = os.urandom(16).hex()
        template = {
            attr.TOKEN: True,
            attr.ID: bytes.fromhex(key_id),
            attr.LABEL: _SEAL_LABEL_PREFIX + key_id,
            attr.PRIVATE: True,
            attr.SENSITIVE: True,
            attr.EXTRACTABLE: False,
            attr.ENCRYPT: True,
            attr.DECRYPT: True,
            attr.WRAP: False,
            attr.UNWRAP: False,
            attr.SIGN: False,
            attr.VERIFY: False,
            attr.DERIVE: False,
            # as a key pair's (review 48d, pkcs11 1): no PIN session gives it back what this
            # withholds, nor moves its CKA_ID (review 53f, pkcs11 1)
            attr.MODIFIABLE: False,
            attr.COPYABLE: False,  # no twin under its CKA_ID (review 64f, pkcs11 1)
        }
        with self._lock, self._mapped("generate seal key"):
            key = self._session.generate_key(p11.KeyType.AES, 256, template=template, store=True)
            self._objects[_SEAL_LABEL_PREFIX + key_id] = key
        return SealKey(self.name, key_id)

    def seal(self, key: SealKey, plaintext: bytes, aad: bytes) -> bytes:
        from pkcs11.mechanisms import GCMParams

        secret = self._seal_object(key)
        nonce = os.urandom(_NONCE_SIZE)
        params = GCMParams(nonce, seal_aad(key, aad), _TAG_BITS)
        with self._lock, self._mapped("seal"):
            sealed = bytes(
                secret.encrypt(
                    plaintext, mechanism=self._p11.Mechanism.AES_GCM, mechanism_param=params
                )
            )
        return bytes((SEAL_VERSION,)) + nonce + sealed

    def unseal(self, key: SealKey, sealed: bytes, aad: bytes) -> bytes:
        from pkcs11.mechanisms import GCMParams

        secret = self._seal_object(key)
        session = self._session  # the one `secret` was found through
        failed = VaultError(f"cannot unseal under {key} (tampered, moved or another key)")
        try:
            nonce, ciphertext = split_sealed(key, sealed)
        except CryptoError:
            raise failed from None
        params = GCMParams(nonce, seal_aad(key, aad), _TAG_BITS)
        try:
            with self._lock:
                return bytes(
                    secret.decrypt(
                        ciphertext, mechanism=self._p11.Mechanism.AES_GCM, mechanism_param=params
                    )
                )
        except self._errors.PKCS11Error as exc:  # SoftHSM2: a bad tag is CKR_GENERAL_ERROR
            note_dead(self._shared, exc, session)
            raise failed from None

    def delete_seal_key(self, key: SealKey) -> None:
        secret = self._seal_object(key)
        with self._lock, self._mapped("delete seal key"):
            secret.destroy()
            self._objects.pop(_SEAL_LABEL_PREFIX + key.key_id, None)

    def _seal_object(self, key: SealKey) -> Any:
        self._revive()
        cached = self._objects.get(_SEAL_LABEL_PREFIX + key.key_id)
        if cached is not None and key.vault == self.name:
            return cached
        check_seal_key(self.name, key)
        if not _KEY_ID.fullmatch(key.key_id):
            raise KeyNotFound(f"{key} is not a key of this vault")
        key_id = bytes.fromhex(key.key_id)
        p11 = self._p11
        query = {
            p11.Attribute.CLASS: p11.ObjectClass.SECRET_KEY,
            p11.Attribute.KEY_TYPE: p11.KeyType.AES,
            p11.Attribute.ID: key_id,
            p11.Attribute.PRIVATE: True,  # not one planted without the PIN (review 35b, pkcs11 1)
        }
        guard = self._generated(p11.ObjectClass.SECRET_KEY)  # nor one with it (60e, pkcs11 1)
        with self._lock, self._mapped("find seal key"):
            found = list(self._session.get_objects({**query, **guard}))
        if not found:
            self._refuse_planted(key, query)
        if len(found) > 1:
            raise twinned(key, len(found))
        if not found:
            raise KeyNotFound(f"no seal key {key} in the token")
        self._warn_modifiable(key, found[0])
        self._objects[_SEAL_LABEL_PREFIX + key.key_id] = found[0]
        return found[0]

    def _warn_modifiable(self, key: SealKey, secret: Any) -> None:
        """Log once a process a seal key made before review 53f, pkcs11 1 (modifiable: a
        session with the PIN can turn on wrap or move its CKA_ID, and PKCS#11 fixes
        CKA_MODIFIABLE at creation; docs/vault.md, "Sealing: data encrypted by a key that
        never leaves the vault"), or one made before review 64f (copyable: a twin made with
        the PIN leaves it unused; review 66a2, pkcs11 1). Best effort: a token that does not
        say is left alone."""
        if key.key_id in _WARNED_MODIFIABLE:
            return
        attr, warning = self._p11.Attribute, ""
        with self._lock, contextlib.suppress(self._errors.PKCS11Error):
            if secret[attr.MODIFIABLE]:
                warning = (
                    "seal key %s is modifiable (made before troth review 53f): a session with "
                    "the token's PIN can change what it may do; see docs/vault.md, on sealing"
                )
            elif secret[attr.COPYABLE]:
                warning = (
                    "seal key %s is copyable (made before troth review 64f): a session with "
                    "the token's PIN can twin it, and the vault then uses neither; see "
                    "docs/vault.md, on sealing"
                )
        if warning:  # no lock held (`_log`)
            _WARNED_MODIFIABLE.add(key.key_id)
            _log.warning(warning, key)

    # -- internals ----------------------------------------------------------------------------

    def _check_handle(self, handle: KeyHandle) -> None:
        self._revive()
        if handle.vault != self.name or handle.key_type not in (KeyType.ED25519, KeyType.P256):
            raise KeyNotFound(f"{handle} is not a key of this vault")
        if not _KEY_ID.fullmatch(handle.key_id):  # one spelling: cache and token agree
            raise KeyNotFound(f"{handle} is not a key of this vault")

    def _find(self, handle: KeyHandle, object_class: Any, *, used: bool = False) -> Any:
        """`handle`'s object of `object_class`; `used` (to sign with it): only one the token
        generated and never let out (`_generated`)."""
        attr = self._p11.Attribute
        query = self._of(handle, object_class)
        guard = self._generated(object_class) if used else {}
        # among the private objects only: every object troth makes is one, and a session
        # without the user PIN creates public ones with any CKA_ID (taken from a copy of
        # node.db): two objects found, the key failed to sign, rotate or be deleted (review
        # 35b, pkcs11 1). A public key object made before review 34a, pkcs11 1 is public: it
        # is looked up among those when no private one is.
        with self._lock, self._mapped("find key"):
            found = list(self._session.get_objects({**query, **guard, attr.PRIVATE: True}))
            if not found and object_class == self._p11.ObjectClass.PUBLIC_KEY:
                found = list(self._session.get_objects({**query, **guard, attr.PRIVATE: False}))
        if used and not found:
            self._refuse_planted(handle, query)
        if len(found) > 1:
            raise twinned(handle, len(found))
        if not found:
            raise KeyNotFound(f"no key {handle} in the token")
        return found[0]

    def _privates(self, handle: KeyHandle) -> list[Any]:
        """Every private key object under `handle`'s CKA_ID and type, a twin a session with
        the PIN made among them: what retiring the key retires and destroys (review 64k, pkcs11
        1: a twin left the key `KeyNotFound`, so a rotation kept it in the token for good)."""
        query = self._of(handle, self._p11.ObjectClass.PRIVATE_KEY)
        with self._lock, self._mapped("find key"):
            found = list(self._session.get_objects({**query, self._p11.Attribute.PRIVATE: True}))
        if not found:
            raise KeyNotFound(f"no key {handle} in the token")
        return found

    def _of(self, handle: KeyHandle, object_class: Any) -> dict[Any, Any]:
        """The search for `handle`'s objects of `object_class`: its CKA_ID and its key type (review
        62d, pkcs11 1: by CKA_ID alone, a handle naming the other type found the key)."""
        self._check_handle(handle)
        p11 = self._p11
        key_type = p11.KeyType.EC_EDWARDS if handle.key_type is KeyType.ED25519 else p11.KeyType.EC
        attr = p11.Attribute
        return {
            attr.CLASS: object_class,
            attr.ID: bytes.fromhex(handle.key_id),
            attr.KEY_TYPE: key_type,
        }

    def _generated(self, object_class: Any) -> dict[Any, bool]:
        """What a search adds to find only a key the token generated itself (CKA_LOCAL) and,
        a private or secret key, never let out (CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE):
        the token sets those, no session can. Review 60e, pkcs11 1-2: a session with the PIN
        destroyed a key and created one with its CKA_ID and label whose value it chose (or
        read, before making it sensitive), and the vault sealed and signed with it, so the
        planter unsealed, and signed under the public key the vault showed, offline."""
        attr = self._p11.Attribute
        if object_class == self._p11.ObjectClass.PUBLIC_KEY:
            return {attr.LOCAL: True}
        return {attr.LOCAL: True, attr.ALWAYS_SENSITIVE: True, attr.NEVER_EXTRACTABLE: True}

    def _refuse_planted(self, key: KeyHandle | SealKey, query: dict[Any, Any]) -> None:
        """VaultError when the token holds a private object `query` finds (so made by a session
        with the PIN) that a search for generated ones (`_generated`) did not find."""
        with self._lock, self._mapped("find key"):
            planted = list(self._session.get_objects({**query, self._p11.Attribute.PRIVATE: True}))
        if planted:
            raise VaultError(
                f"{key} was not generated in the token, or was let out of it (CKA_LOCAL, "
                "CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE): a session with its PIN may know "
                'its value, so it is not used (docs/vault.md, "PKCS#11 vault")'
            )

    def _sign_only(self, handle: KeyHandle, private: Any) -> None:
        """Clear CKA_DERIVE of a private key made before review 48d, pkcs11 1 (made with it,
        and modifiable), the first time this process signs with it. Best effort: a token that
        refuses keeps the key as it was, and it still signs. A key made before review 64f
        (copyable, which no call clears) is logged once a process (review 66a2, pkcs11 1)."""
        attr = self._p11.Attribute
        with self._lock, contextlib.suppress(self._errors.PKCS11Error):
            if private[attr.DERIVE]:
                private[attr.DERIVE] = False
        copyable = False
        with self._lock, contextlib.suppress(self._errors.PKCS11Error):
            copyable = handle.key_id not in _WARNED_COPYABLE and private[attr.COPYABLE]
        if copyable:  # no lock held (`_log`)
            _WARNED_COPYABLE.add(handle.key_id)
            _log.warning(
                "key %s is copyable (made before troth review 64f): a session with the "
                "token's PIN can twin it, and the vault then uses neither; replace it with "
                "`troth identity rotate --compromised` (docs/vault.md)",
                handle,
            )

    def _mapped(self, what: str) -> MapErrors:
        return MapErrors(what, self._errors.PKCS11Error, self._shared, self._session)


def _point(ec_point: Any) -> bytes:
    """The raw point of a CKA_EC_POINT (a DER OCTET STRING around it: PKCS#11 v3.0 §2.3.3)."""
    from asn1crypto.core import OctetString

    return bytes(OctetString.load(ec_point).native)
