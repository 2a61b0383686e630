"""Review 56i: attacks on the identity core (canonical CBOR, the change history, rotation and the
identifier) that did not work. Each test is a real attempt, and fails if the defence breaks."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from random import Random
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from tests.support.histories import (
    DAY,
    T0,
    body_for,
    encode,
    extend,
    honest_history,
    raw_history,
    sign_change,
)
from tests.support.limit_mutations import QUICK
from tests.test_encoding import VALUES
from tests.test_identity_observe import observer
from troth import limits
from troth.crypto import KeyType, sha256
from troth.crypto.private import generate_private_key, load_private_key
from troth.encoding import cbor
from troth.errors import DecodeError, IdentityError, IdentityFailure
from troth.identity import ChangeBody, Checkpoint, verify_history
from troth.identity.change import SignedChange, UnverifiedHistory
from troth.identity.history import change_hashes, check_extends

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "vectors" / "identity" / "identity_vectors.json").read_text()
)["vectors"]
ED = VECTORS[0]
AT = ED["rotated_at"] + 3600


# -- a non-canonical encoder: every other byte form of a value ------------------------------------


def _head(rng: Random, major: int, argument: int) -> bytes:
    """A header of `major` with `argument`: mostly in its shortest form, else a longer one."""
    widths = [
        w for w, bound in ((0, 24), (1, 1 << 8), (2, 1 << 16), (4, 1 << 32)) if argument < bound
    ]
    widths.append(8)
    width = widths[0] if rng.randint(0, 7) or len(widths) == 1 else rng.choice(widths[1:])
    if width == 0:
        return bytes([major << 5 | argument])
    info = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    return bytes([major << 5 | info]) + argument.to_bytes(width, "big")


def _chunks(rng: Random, major: int, data: bytes) -> bytes:
    """`data` as an indefinite-length string of definite chunks."""
    cut = rng.randint(0, len(data))
    parts = [data[:cut], data[cut:]]
    return (
        bytes([major << 5 | 31]) + b"".join(_head(rng, major, len(p)) + p for p in parts) + b"\xff"
    )


def alternative(rng: Random, value: Any) -> bytes:
    """One byte form of `value` (drawn): non-shortest arguments, indefinite lengths, unsorted or
    duplicated map keys, a tag around an item, an integer written as a float, or the canonical
    form. Every form but the canonical one must be refused."""
    if rng.randint(0, 15) == 0:  # a tag around the item (0: date, 2: bignum, 55799: magic)
        tag = rng.choice([0, 2, 24, 55799])
        return _head(rng, 6, tag) + alternative(rng, value)
    if value is False or value is True or value is None:
        return bytes([{False: 0xF4, True: 0xF5, None: 0xF6}[value]])
    if type(value) is int:
        if -(2**24) < value < 2**24 and rng.randint(0, 7) == 0:
            return b"\xfb" + struct.pack(">d", float(value))  # a float where an int belongs
        if value >= 0:
            return _head(rng, 0, value)
        return _head(rng, 1, -1 - value)
    if type(value) in (bytes, str):
        major = 2 if type(value) is bytes else 3
        data = value if type(value) is bytes else value.encode()
        if rng.randint(0, 7) == 0:
            return _chunks(rng, major, data)
        return _head(rng, major, len(data)) + data
    if type(value) is list:
        items = b"".join(alternative(rng, item) for item in value)
        if rng.randint(0, 7) == 0:
            return b"\x9f" + items + b"\xff"
        return _head(rng, 4, len(value)) + items
    pairs = [(cbor.encode(k), alternative(rng, v)) for k, v in value.items()]
    if rng.randint(0, 3) == 0 and pairs:
        rng.shuffle(pairs)
    if rng.randint(0, 7) == 0 and pairs:
        pairs = [*pairs, pairs[rng.randrange(len(pairs))]]
    items = b"".join(k + v for k, v in pairs)
    if rng.randint(0, 7) == 0:
        return b"\xbf" + items + b"\xff"
    return _head(rng, 5, len(pairs)) + items


def forms(value: Any) -> st.SearchStrategy[bytes]:
    """Byte forms of `value`, each from a drawn seed (one draw: the forms are many choices)."""
    return st.integers(0, 2**32).map(lambda seed: alternative(Random(seed), value))


@QUICK
@given(value=VALUES, data=st.data())
def test_every_other_byte_form_of_a_value_is_refused(value: Any, data: st.DataObject) -> None:
    """The brief's CBOR angles at once: a value written with non-shortest integers or lengths,
    indefinite lengths, duplicate or unsorted map keys, tags, floats for integers decodes only
    when the bytes are the canonical encoding; every other form is DecodeError."""
    canonical = cbor.encode(value)
    form = data.draw(forms(value))
    if form == canonical:
        assert cbor.decode(form) == value
        return
    with pytest.raises(DecodeError):
        cbor.decode(form)


def _key(vector: dict[str, Any], index: int) -> Any:
    label = vector["key_type"]
    return load_private_key(KeyType.from_label(label), bytes.fromhex(vector["private_keys"][index]))


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["key_type"])
@pytest.mark.parametrize("change", [0, 1])
@QUICK
@given(data=st.data())
def test_a_change_written_another_way_is_refused_before_its_signatures(
    vector: dict[str, Any], change: int, data: st.DataObject
) -> None:
    """The owner's change with the same fields (same keys, commitment, link and times) written
    in another byte form and signed again by its keys: a first change so would hash to a second
    identifier claiming the same keys, a rotation to a second change hash. verify_history
    refuses it as malformed at that change, before any signature."""
    original = bytes.fromhex(vector[f"change{change}_body"])
    form = data.draw(forms(cbor.decode(original)))
    if form == original:
        return
    if change == 0:
        entries = [[form, _key(vector, 0).sign(form), None]]
    else:
        first = cbor.decode(bytes.fromhex(vector["history1"]))[2][0]
        entries = [first, [form, _key(vector, 1).sign(form), _key(vector, 0).sign(form)]]
    with pytest.raises(IdentityError) as caught:
        verify_history(raw_history(entries), now=vector["rotated_at"] + 3600)
    assert caught.value.reason in (IdentityFailure.MALFORMED, IdentityFailure.TRAILING_BYTES)
    assert caught.value.change == change


@QUICK
@given(data=st.data())
def test_a_history_envelope_written_another_way_is_refused(data: st.DataObject) -> None:
    """history2 with its envelope in another byte form: UnverifiedHistory.decode and
    verify_history refuse it with their own error types, or it is the same bytes."""
    original = bytes.fromhex(ED["history2"])
    form = data.draw(forms(cbor.decode(original)))
    if form == original:
        assert verify_history(form, now=AT).history == original
        return
    with pytest.raises(DecodeError):
        UnverifiedHistory.decode(form)
    with pytest.raises(IdentityError):
        verify_history(form, now=AT)


# -- the golden vector derived by hand (cbor2, hashlib, cryptography: none of troth's encoders) ---


_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class _HandKey:
    """A vector's private key through pyca alone: its public key as a change carries it, and
    its signatures as formats.md describes them (Ed25519; P-256 RFC 6979, r || s, low s)."""

    def __init__(self, label: str, raw: bytes) -> None:
        self.label = label
        if label == "ed25519":
            self.ed = ed25519.Ed25519PrivateKey.from_private_bytes(raw)
            self.public = self.ed.public_key().public_bytes_raw()
        else:
            self.ec = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
            self.public = self.ec.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )

    def sign(self, data: bytes) -> bytes:
        if self.label == "ed25519":
            return self.ed.sign(data)
        der = self.ec.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        r, s = decode_dss_signature(der)
        s = min(s, _P256_N - s)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["key_type"])
def test_a_golden_vector_is_what_formats_md_describes(vector: dict[str, Any]) -> None:
    """Every identity vector (change bodies, histories from change 0 and from a checkpoint, the
    identifier, the channel-key attestation) rebuilt from docs/formats.md's layouts with cbor2
    (canonical), hashlib and pyca alone: none of troth's encoders, hashes or signers."""
    number = {"ed25519": 1, "p256": 2}[vector["key_type"]]
    keys = [_HandKey(vector["key_type"], bytes.fromhex(k)) for k in vector["private_keys"]]

    def dumps(value: Any) -> bytes:
        return cbor2.dumps(value, canonical=True)

    def commit(key: _HandKey) -> bytes:
        encoded = dumps([number, key.public])
        return hashlib.sha256(b"troth.identity.next-key/1\x00" + encoded).digest()

    def body(index: int, previous: bytes | None, at: int) -> bytes:
        window = [at, at, at + vector["valid_for"]]
        return dumps(
            ["troth.identity.change", 2, index, previous, [number, keys[index].public],
             commit(keys[index + 1]), *window]
        )  # fmt: skip

    body0 = body(0, None, vector["created_at"])
    body1 = body(1, hashlib.sha256(body0).digest(), vector["rotated_at"])
    identifier = hashlib.sha256(body0).digest()
    assert (body0.hex(), body1.hex()) == (vector["change0_body"], vector["change1_body"])
    assert vector["identifier"] == "T" + identifier.hex()
    assert vector["did"] == "did:troth:" + identifier.hex()
    change0 = [body0, keys[0].sign(body0), None]
    change1 = [body1, keys[1].sign(body1), keys[0].sign(body1)]
    assert dumps(["troth.identity.history", 2, [change0], None]).hex() == vector["history1"]
    assert (
        dumps(["troth.identity.history", 2, [change0, change1], None]).hex() == (vector["history2"])
    )
    checkpoint = [identifier, bytes.fromhex(vector["checkpoint_authority"]), 1]
    assert (
        dumps(["troth.identity.history", 2, [change1], checkpoint]).hex()
        == (vector["history2_from_change1"])
    )
    channel = x25519.X25519PrivateKey.from_private_bytes(
        bytes.fromhex(vector["x25519_private_key"])
    ).public_key()
    attested = dumps(
        ["troth.identity.purpose-key", 1, identifier, hashlib.sha256(body1).digest(), 1,
         [3, channel.public_bytes_raw()], vector["rotated_at"], vector["rotated_at"] + 30 * DAY]
    )  # fmt: skip
    assert dumps([attested, keys[1].sign(attested)]).hex() == vector["channel_attestation"]


# -- rotation ------------------------------------------------------------------------------------


def _rotation(history: Any, revealed: Any, signer: Any, previous_signer: Any) -> bytes:
    """`history` with one more change revealing `revealed`, signed by `signer` (as its own key)
    and `previous_signer` (as the previous key's)."""
    body = body_for(
        revealed, sha256(history.changes[-1].body), T0 + 5 * DAY, index=len(history.changes)
    )
    encoded = body.encode()
    change = SignedChange(encoded, signer.sign(encoded), previous_signer.sign(encoded))
    return encode([*history.changes, change])


def _reason(data: bytes, now: int = T0 + 6 * DAY) -> tuple[IdentityFailure, int | None]:
    with pytest.raises(IdentityError) as caught:
        verify_history(data, now=now)
    return caught.value.reason, caught.value.change


def test_a_rotation_revealing_the_committed_key_but_signed_by_the_current_key_is_refused() -> None:
    """The thief of the current key reveals the committed public key (which it learns from
    nothing, but may guess) and signs the change with the current key in both places."""
    history = honest_history(2)
    data = _rotation(history, history.next_key, history.keys[-1], history.keys[-1])
    assert _reason(data) == (IdentityFailure.BAD_SIGNATURE, 2)


def test_rotations_with_equal_or_decreasing_indexes_or_times() -> None:
    history = honest_history(2)
    keys = history.keys
    previous = sha256(history.changes[-1].body)
    for index in (0, 1, 3):  # a repeated, a decreasing, a skipped index: broken hash link
        body = body_for(history.next_key, previous, T0 + 2 * DAY, index=index)
        data = encode([*history.changes, sign_change(body, history.next_key, keys[-1])])
        assert _reason(data) == (IdentityFailure.BROKEN_LINK, 2)
    before = body_for(history.next_key, previous, T0 + DAY - 1, index=2)
    data = encode([*history.changes, sign_change(before, history.next_key, keys[-1])])
    assert _reason(data) == (IdentityFailure.TIME_REVERSED, 2)
    # the same second as the change before: allowed (formats.md, rule 5: created_at_i >= ...)
    same = body_for(history.next_key, previous, T0 + DAY, index=2)
    data = encode([*history.changes, sign_change(same, history.next_key, keys[-1])])
    assert verify_history(data, now=T0 + 2 * DAY).change_count == 3


def test_two_forks_after_change_k_each_refuses_the_other_whichever_arrives_first() -> None:
    """Two validly signed continuations of [c0, c1] (someone holds both keys: a whole backup):
    a stateless verifier accepts each (formats.md: the feed decides), a store keeps the first
    it saw and refuses the other as a fork at change 2, in either order."""
    base = honest_history(2)
    one = extend(base, T0 + 2 * DAY)
    other = extend(base, T0 + 3 * DAY)
    now = T0 + 4 * DAY
    first = verify_history(encode(one.changes), now=now)
    second = verify_history(encode(other.changes), now=now)
    assert first.identifier == second.identifier
    for stored, candidate in ((first, second), (second, first)):
        with pytest.raises(IdentityError) as caught:
            check_extends(change_hashes(stored.history), candidate)
        assert (caught.value.reason, caught.value.change) == (IdentityFailure.FORK, 2)
        check_extends(change_hashes(encode(base.changes)), candidate)  # both extend [c0, c1]


def test_a_history_at_the_change_limit_verifies_and_one_more_is_over_it() -> None:
    """MAX_IDENTITY_CHANGES honest changes verify whole; one more is refused before any
    signature is checked (the owner presents it from a checkpoint instead)."""
    history = honest_history(limits.MAX_IDENTITY_CHANGES, start=T0)
    now = T0 + limits.MAX_IDENTITY_CHANGES * DAY
    data = encode(history.changes)
    assert verify_history(data, now=now).change_count == limits.MAX_IDENTITY_CHANGES
    longer = extend(history, now)
    assert _reason(encode(longer.changes), now) == (IdentityFailure.OVER_LIMIT, None)


def test_the_body_limit_is_enforced_before_the_signature() -> None:
    """A change body one byte over MAX_CHANGE_BYTES (padded inside its own, signed fields)."""
    key = generate_private_key(KeyType.ED25519)
    fields = cbor.decode(body_for(key, None, T0).encode())
    fields.append(b"\x00" * (limits.MAX_CHANGE_BYTES - len(cbor.encode(fields)) - 2))
    padded = cbor.encode(fields)
    assert len(padded) > limits.MAX_CHANGE_BYTES
    with pytest.raises(DecodeError):
        ChangeBody.decode(padded)
    reason, change = _reason(raw_history([[padded, key.sign(padded), None]]), T0 + DAY)
    assert (reason, change) == (IdentityFailure.OVER_LIMIT, 0)


@pytest.mark.parametrize("first_seen", [0, 1])
def test_a_store_keeps_the_fork_it_saw_first_and_the_other_as_evidence(
    tmp_path: Path, first_seen: int
) -> None:
    """The same two forks after change 1 observed by a node in either order: the first stored,
    the second refused as a fork at change 2 and kept as evidence (formats.md, "Store-or-
    extend": whichever the node saw first; its authority's feed may outrank it)."""
    base = honest_history(2, start=T0)
    forks = [extend(base, T0 + 2 * DAY), extend(base, T0 + 3 * DAY)]
    now = T0 + 4 * DAY
    seen = [verify_history(encode(f.changes), now=now) for f in forks]
    first, second = seen[first_seen], seen[1 - first_seen]
    node = observer(tmp_path / "node.db")
    node.observe(first)
    with pytest.raises(IdentityError) as caught:
        node.observe(second)
    assert (caught.value.reason, caught.value.change) == (IdentityFailure.FORK, 2)
    assert node.stored_changes(first.identifier) == 3
    evidence = node.forks(first.identifier)
    assert [(e.index, e.change_hash, e.history) for e in evidence] == [
        (2, second.current_change_hash, second.history)
    ]


_ED25519_L = 2**252 + 27742317777372353535851937790883648493


def _malleated(key_type: str, signature: bytes) -> bytes:
    """The other valid-looking form of `signature`: Ed25519 S + L, P-256 (r, n - s)."""
    if key_type == "ed25519":
        s = int.from_bytes(signature[32:], "little") + _ED25519_L
        return signature[:32] + s.to_bytes(32, "little")
    return signature[:32] + (_P256_N - int.from_bytes(signature[32:], "big")).to_bytes(32, "big")


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["key_type"])
@pytest.mark.parametrize(
    ("slot", "reason"),
    [(1, IdentityFailure.BAD_SIGNATURE), (2, IdentityFailure.BAD_PREVIOUS_SIGNATURE)],
)
def test_a_third_party_cannot_malleate_a_changes_signatures(
    vector: dict[str, Any], slot: int, reason: IdentityFailure
) -> None:
    """Rotation's signatures mutated into their second form (no key needed): a history of the
    same changes in other bytes. Refused (Ed25519 S < L, P-256 low s)."""
    value = cbor.decode(bytes.fromhex(vector["history2"]))
    value[2][1][slot] = _malleated(vector["key_type"], value[2][1][slot])
    with pytest.raises(IdentityError) as caught:
        verify_history(cbor.encode(value), now=vector["rotated_at"] + 3600)
    assert (caught.value.reason, caught.value.change) == (reason, 1)


def test_a_fork_is_found_whichever_parts_of_either_history_are_shown() -> None:
    """Two histories sharing changes 0-2 and forking at 3, each shown whole or from any
    checkpoint and up to any change: `check_extends` of every view of one against every view
    of the other says what the model says (a fork where they overlap past change 2, or where
    one starts right after the other's last change; else older, a gap, or an extension)."""
    shared = honest_history(3)
    owner, thief = shared, extend(shared, T0 + 3 * DAY + 5)
    for step in range(3):
        owner = extend(owner, T0 + (3 + step) * DAY)
    for step in range(2):
        thief = extend(thief, T0 + (4 + step) * DAY)
    now = T0 + 7 * DAY

    def views(history: Any) -> dict[tuple[int, int], Any]:
        shown = {}
        for last in range(6):
            whole = verify_history(encode(history.changes[: last + 1]), now=now)
            for first in range(last + 1):
                checkpoint = Checkpoint(whole.identifier.digest, bytes(32), first)
                shown[first, last] = whole.from_checkpoint(checkpoint) if first else whole
        return shown

    candidates = views(thief)
    for (stored_first, stored_last), stored in views(owner).items():
        hashes = [c.change_hash for c in stored.changes]
        for (first, last), candidate in candidates.items():
            if any(i >= 3 for i in range(max(stored_first, first), min(stored_last, last) + 1)):
                expected: IdentityFailure | None = IdentityFailure.FORK
            elif last < stored_last:
                expected = IdentityFailure.ROLLBACK
            elif first == stored_last + 1:
                expected = IdentityFailure.FORK if first >= 4 else None
            elif first > stored_last + 1:
                expected = IdentityFailure.UNATTESTED_CHECKPOINT
            else:
                expected = None
            try:
                check_extends(
                    hashes, candidate, stored_first=stored_first, stored_last=stored.current.signed
                )
                reason = None
            except IdentityError as exc:
                reason = exc.reason
            assert reason is expected, ((stored_first, stored_last), (first, last))
