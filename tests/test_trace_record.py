"""The record payload and its envelope: canonical JSON (= RFC 8785), strict decoding, salted
commitments, and every verification step of one record refused when tampered."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.traces import DAY, NOW, Held, tool_call
from troth.errors import DecodeError, DecodeProblem, TraceError, TraceFailure
from troth.identity import Identifier
from troth.trace.dsse import decode_envelope, encode_envelope, pae
from troth.trace.record import (
    PAYLOAD_TYPE,
    Authority,
    Decision,
    Disclosure,
    Kind,
    Links,
    RecordIds,
    SpanTimes,
    ToolCall,
    TraceRecord,
    canonical_json,
    commitment,
    disclosure_value,
    is_canonical_value,
    new_record_id,
)
from troth.trace.record_decode import decode_payload
from troth.trace.recorder import RandomPool
from troth.trace.signing import (
    RecordContent,
    keyid_of,
    resolve_key,
    sign_record,
    verify_envelope,
)

texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    min_size=1,
    max_size=40,
).filter(lambda t: not any("\ufdd0" <= c <= "\ufdef" for c in t))
hex32 = st.binary(min_size=16, max_size=16).map(bytes.hex)


@st.composite
def records(draw: st.DrawFn) -> TraceRecord:
    seq = draw(st.integers(0, 2**53 - 1))
    kind = draw(st.sampled_from(list(Kind)))
    return TraceRecord(
        id=draw(hex32),
        agent=Identifier(draw(st.binary(min_size=32, max_size=32))),
        key=draw(st.binary(min_size=32, max_size=32)).hex(),
        seq=seq,
        prev=None if seq == 0 else draw(st.binary(min_size=32, max_size=32)),
        time=draw(st.integers(0, 2**53 - 1)),
        kind=kind,
        tool=draw(st.none() | st.builds(ToolCall, texts, st.none() | texts)),
        digests=draw(
            st.dictionaries(
                st.sampled_from(["args", "result", "inputs", "reasoning"]),
                st.binary(min_size=32, max_size=32),
            )
        ),
        decision=draw(
            st.none()
            | st.builds(Decision, texts, st.none() | texts, st.lists(texts, max_size=3).map(tuple))
        ),
        authority=draw(
            st.none()
            | st.builds(
                Authority,
                st.binary(min_size=32, max_size=32),
                st.lists(
                    st.tuples(
                        st.binary(min_size=16, max_size=16), st.binary(min_size=32, max_size=32)
                    ),
                    min_size=1,
                    max_size=3,
                ).map(tuple),
                texts,
            )
        ),
        links=draw(
            st.builds(
                Links,
                st.none() | hex32,
                st.none() | texts,
                st.none() | texts,
                st.none() | texts,
                st.none() | texts,
            )
        ),
        escalation_to=(
            Identifier(draw(st.binary(min_size=32, max_size=32)))
            if kind is Kind.ESCALATION and draw(st.booleans())
            else None
        ),
        span=draw(
            st.none()
            | st.builds(
                SpanTimes,
                st.integers(0, 2**40),
                st.integers(2**40, 2**53 - 1),
                st.sampled_from(["ok", "error", None]),
            )
        ),
        version=draw(st.sampled_from([1, 2])),  # both read (docs/formats.md, the version rule)
    )


@settings(max_examples=200, deadline=None)
@given(records())
def test_payload_is_rfc8785_and_round_trips(record: TraceRecord) -> None:
    """The fast encoder writes exactly what the rfc8785 library writes, and decoding gives the
    record back."""
    payload = record.encode()
    assert payload == rfc8785.dumps(record.to_json())
    assert decode_payload(payload) == record


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | texts,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
        max_leaves=10,
    )
)
def test_disclosed_values_are_rfc8785(value: Any) -> None:
    assert disclosure_value(value) == rfc8785.dumps(value)


def _payload(**changes: Any) -> bytes:
    agent = Held()
    record = sign_record(agent.signer(), tool_call(), seq=0, prev=None, time=NOW).record
    value = record.to_json()
    value.update(changes)
    return canonical_json(value)


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda p: p.replace(b'"seq":0', b'"seq": 0'), DecodeProblem.NON_CANONICAL),
        (
            lambda p: b'{"version":2,' + p[1:].replace(b',"version":2', b""),
            DecodeProblem.NON_CANONICAL,
        ),
        (lambda p: p[:-1] + b',"seq":0}', DecodeProblem.NON_CANONICAL),  # duplicate member
        (lambda p: p.replace(b'"seq":0', b'"seq":0.0'), DecodeProblem.MALFORMED),
        (lambda p: p.replace(b'"seq":0', b'"seq":1e0'), DecodeProblem.MALFORMED),
        (lambda p: p.replace(b'"time":', b'"time":9007199254740993,"x":'), DecodeProblem.MALFORMED),
        (
            lambda p: p.replace(b"troth.trace.record", b"troth.trace.other"),
            DecodeProblem.UNKNOWN_TYPE,
        ),
        (lambda p: p.replace(b'"version":2', b'"version":4'), DecodeProblem.UNKNOWN_VERSION),
        (lambda p: p.replace(b'"version":2', b'"version":true'), DecodeProblem.UNKNOWN_VERSION),
        (
            lambda p: p.replace(b'"kind":"tool_invocation"', b'"kind":"nap"'),
            DecodeProblem.MALFORMED,
        ),
        (lambda p: p.replace(b'"id":"', b'"id":"A'), DecodeProblem.MALFORMED),
        (lambda p: b"[" + p + b"]", DecodeProblem.MALFORMED),
        (lambda p: p + b" ", DecodeProblem.NON_CANONICAL),
        (lambda p: p.replace(b"refund", b"ref\\u0075nd", 1), DecodeProblem.NON_CANONICAL),
        (lambda p: p.replace(b"conv-1", b"\\ud800"), DecodeProblem.MALFORMED),
        (lambda p: p.replace(b"conv-1", b"\xff"), DecodeProblem.MALFORMED),
    ],
)
def test_decoding_refuses(mutate: Any, problem: DecodeProblem) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_payload(mutate(_payload()))
    assert caught.value.problem is problem


def test_unknown_member_refused() -> None:
    with pytest.raises(DecodeError, match="unknown member 'extra'"):
        decode_payload(_payload(extra=1))


def test_payload_size_limit() -> None:
    with pytest.raises(DecodeError) as caught:
        decode_payload(b"{" + b" " * 20_000 + b"}")
    assert caught.value.problem is DecodeProblem.OVER_LIMIT


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.binary(min_size=16, max_size=16)), max_size=60))
def test_record_id_sequence_grows_within_a_second(steps: list[tuple[int, bytes]]) -> None:
    """Each id of a sequence is UUIDv7-shaped and above the previous one of its second; the
    first of a second is `new_record_id` itself."""
    ids = RecordIds()
    previous: dict[int, str] = {}
    for offset, random16 in steps:
        time = NOW + offset
        record_id = ids.next(time, random16)
        value = int(record_id, 16)
        assert (value >> 80, value >> 76 & 0xF, value >> 62 & 0x3) == (time * 1000, 7, 2)
        last = previous.get(time)
        if last is None:
            assert record_id == new_record_id(time, random16)
        else:
            assert record_id > last
        previous = {time: record_id}  # a sequence restarts when the second changes


def test_record_id_sequence_is_unique_across_threads() -> None:
    ids = RecordIds()
    # the second's first id from zero random bits: 8,000 steps of at most 2^48 stay within the
    # 74 bits, so no thread meets the fresh start past an overflow (its own test, below), which
    # a random first id within ~2^61 of the top met once in ~16,000 runs
    ids.next(NOW, bytes(16))
    made: list[list[str]] = [[] for _ in range(4)]

    def work(out: list[str]) -> None:
        out.extend(ids.next(NOW, os.urandom(16)) for _ in range(2000))

    threads = [threading.Thread(target=work, args=(out,)) for out in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(out == sorted(out) for out in made)
    assert len({record_id for out in made for record_id in out}) == 8000


def test_record_id_sequence_starts_afresh_before_it_would_overflow() -> None:
    ids = RecordIds()
    top = ids.next(NOW, b"\x00" * 6 + b"\xff" * 10)  # every random bit of the id set
    assert ids.next(NOW, bytes(range(16))) == new_record_id(NOW, bytes(range(16))) < top


def test_record_ids_are_uuidv7_shaped() -> None:
    record_id = new_record_id(NOW, bytes(range(16)))
    value = int(record_id, 16)
    assert value >> 80 == NOW * 1000
    assert value >> 76 & 0xF == 7
    assert value >> 62 & 0x3 == 2
    later = new_record_id(NOW + 1, b"\x00" * 16)
    assert later > record_id  # ids grow with time


# -- commitments ------------------------------------------------------------------------------


def test_commitment_is_salted_and_bound_to_the_field() -> None:
    value = disclosure_value("approve")
    first, second = Disclosure(b"\x01" * 16, value), Disclosure(b"\x02" * 16, value)
    assert commitment("result", first) != commitment("result", second)
    assert commitment("result", first) != commitment("args", first)


def test_small_domain_values_are_not_found_by_hashing_candidates() -> None:
    """Without the salt, hashing every candidate value finds nothing."""
    agent = Held()
    record = sign_record(
        agent.signer(), tool_call(result="deny"), seq=0, prev=None, time=NOW
    ).record
    digest = record.digests["result"]
    for candidate in ("allow", "deny", "approve", ""):
        for salt in (b"", b"\x00" * 16):
            unsalted = Disclosure(salt.ljust(16, b"\x00"), disclosure_value(candidate))
            assert commitment("result", unsalted) != digest


# -- signing and verifying one record ---------------------------------------------------------


def _signed(agent: Held) -> Any:
    return sign_record(agent.signer(), tool_call(), seq=0, prev=None, time=NOW)


def test_signed_record_verifies_and_keeps_exact_bytes() -> None:
    agent = Held()
    signed = _signed(agent)
    verified = verify_envelope(
        signed.envelope,
        signer=agent.identity,
        attestation=agent.signer().attestation,
        disclosures=signed.disclosures,
    )
    assert verified.envelope == signed.envelope
    assert verified.record == signed.record
    envelope, keyid = decode_envelope(signed.envelope)
    assert keyid == keyid_of(agent.signer().attestation) == signed.record.key
    assert envelope.payload_type == PAYLOAD_TYPE


def _reason(call: Any) -> TraceFailure:
    with pytest.raises(TraceError) as caught:
        call()
    return caught.value.reason


def test_every_byte_of_an_envelope_is_covered() -> None:
    """Flip any byte of a record's envelope: verifying it fails (never passes)."""
    agent = Held()
    signed = _signed(agent)
    attestation = agent.signer().attestation
    for position in range(len(signed.envelope)):
        data = bytearray(signed.envelope)
        data[position] ^= 0x01
        with pytest.raises(TraceError):
            verify_envelope(bytes(data), signer=agent.identity, attestation=attestation)


def test_wrong_key_other_agent_and_bad_disclosure() -> None:
    agent, other = Held(), Held()
    signed = _signed(agent)
    attestation = agent.signer().attestation
    assert (
        _reason(
            lambda: verify_envelope(signed.envelope, signer=other.identity, attestation=attestation)
        )
        is TraceFailure.SIGNER_INVALID
    )
    assert (
        _reason(
            lambda: verify_envelope(
                signed.envelope, signer=agent.identity, attestation=other.signer().attestation
            )
        )
        is TraceFailure.UNKNOWN_KEY
    )
    # a record signed by another key under the agent's keyid
    payload = signed.record.encode()
    forged = encode_envelope(
        PAYLOAD_TYPE, payload, signed.record.key, other.signer().sign(pae(PAYLOAD_TYPE, payload))
    )
    assert (
        _reason(lambda: verify_envelope(forged, signer=agent.identity, attestation=attestation))
        is TraceFailure.BAD_SIGNATURE
    )
    lying = {"result": Disclosure(signed.disclosures["result"].salt, disclosure_value("nope"))}
    assert (
        _reason(
            lambda: verify_envelope(
                signed.envelope, signer=agent.identity, attestation=attestation, disclosures=lying
            )
        )
        is TraceFailure.DISCLOSURE_MISMATCH
    )


def test_envelope_must_be_canonical() -> None:
    agent = Held()
    signed = _signed(agent)
    spaced = json.dumps(json.loads(signed.envelope)).encode()
    with pytest.raises(DecodeError) as caught:
        decode_envelope(spaced)
    assert caught.value.problem is DecodeProblem.NON_CANONICAL
    two = json.loads(signed.envelope)
    two["signatures"] = two["signatures"] * 2
    with pytest.raises(DecodeError, match="2 signatures"):
        decode_envelope(json.dumps(two, separators=(",", ":")).encode())
    loose = json.loads(signed.envelope)
    loose["payload"] = loose["payload"].rstrip("=")
    with pytest.raises(DecodeError) as raised:
        decode_envelope(json.dumps(loose, separators=(",", ":")).encode())
    assert raised.value.problem is DecodeProblem.MALFORMED


def test_payload_type_is_signed() -> None:
    agent = Held()
    signed = _signed(agent)
    data = json.loads(signed.envelope)
    data["payloadType"] = "application/vnd.troth.trace.v2+json"
    envelope = json.dumps(data, separators=(",", ":")).encode()
    assert (
        _reason(
            lambda: verify_envelope(
                envelope, signer=agent.identity, attestation=agent.signer().attestation
            )
        )
        is TraceFailure.UNKNOWN_TYPE
    )


def test_keyid_must_be_the_records_key() -> None:
    agent = Held()
    signed = _signed(agent)
    data = json.loads(signed.envelope)
    data["signatures"][0]["keyid"] = "0" * 64
    envelope = json.dumps(data, separators=(",", ":")).encode()
    assert (
        _reason(
            lambda: verify_envelope(
                envelope, signer=agent.identity, attestation=agent.signer().attestation
            )
        )
        is TraceFailure.MALFORMED
    )


# -- keys and time: signatures outlive rotations ----------------------------------------------


def test_old_key_valid_before_its_retirement_refused_after() -> None:
    agent = Held()
    old = agent.signer()
    before = sign_record(old, tool_call(), seq=0, prev=None, time=NOW + 10)
    agent.rotate(NOW + DAY)
    rotated = agent.identity
    epoch = resolve_key(rotated, old.attestation)
    assert epoch.retired_at == NOW + DAY
    assert not epoch.is_current
    verified = verify_envelope(before.envelope, signer=rotated, attestation=old.attestation)
    assert verified.epoch.change == 0
    after = sign_record(old, tool_call(), seq=1, prev=before.hash, time=NOW + DAY + 1)
    assert (
        _reason(
            lambda: verify_envelope(after.envelope, signer=rotated, attestation=old.attestation)
        )
        is TraceFailure.KEY_RETIRED
    )


def test_attestation_window_and_foreign_change() -> None:
    agent, other = Held(), Held()
    signer = agent.signer()
    assert _reason(
        lambda: sign_record(signer, tool_call(), seq=0, prev=None, time=NOW + 31 * DAY)
    ) is (TraceFailure.ATTESTATION_INVALID)
    assert _reason(lambda: resolve_key(other.identity, signer.attestation)) is (
        TraceFailure.ATTESTATION_INVALID
    )


def test_content_validation() -> None:
    with pytest.raises(ValueError, match="tool name"):
        ToolCall("x" * 257)
    with pytest.raises(ValueError, match="control"):
        ToolCall("a\nb")
    with pytest.raises(ValueError, match="credentials"):
        Authority(bytes(32), ())
    with pytest.raises(ValueError, match="not a JSON value"):
        disclosure_value(float("nan"))
    agent = Held()
    with pytest.raises(ValueError, match="escalation"):
        sign_record(
            agent.signer(),
            RecordContent(Kind.DECISION, escalation_to=agent.identifier),
            seq=0,
            prev=None,
            time=NOW,
        )


def test_random_pool_hands_out_each_byte_once() -> None:
    """A recorder's salts and id bits come from a pool of os.urandom: no 16 bytes twice, over
    several refills."""
    pool = RandomPool()
    chunks = [draw[i : i + 16] for draw in (pool(48) for _ in range(1000)) for i in (0, 16, 32)]
    assert len(set(chunks)) == len(chunks) == 3000


def test_random_pool_draws_afresh_in_a_forked_child() -> None:
    """A forked child does not hand out the bytes its parent's pool holds (each would sign
    records with the same salts and ids)."""
    pool = RandomPool()
    pool(16)  # the pool now holds bytes the child inherits
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        os.write(write, pool(16))
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 16)
    os.close(read)
    assert len(child) == 16
    assert child != pool(16)


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        (disclosure_value({"b": 1, "a": [2, "x"]}), True),
        (disclosure_value("plain text"), True),
        (b'{"b":1,"a":2}', False),  # keys out of order
        (b'{"a": 2}', False),  # whitespace
        (b'{"a":2,"a":3}', False),  # a duplicate member
        (b"NaN", False),
        (b"1.0", False),  # RFC 8785 writes 1
        (b"not json", False),
        (b'"\xff"', False),  # not UTF-8
        (b"[" * 100_000 + b"]" * 100_000, False),  # deeper than any decoder goes
        ('"\ufdd0"'.encode(), False),  # canonical, but a noncharacter: not I-JSON
        (b"[" * 29 + b"]" * 29, True),  # as deep as an export line can carry
        (b"[" * 30 + b"]" * 30, False),
        (b"9007199254740993", False),  # beyond I-JSON's integers
    ],
)
def test_only_canonical_json_is_a_disclosure_value(value: bytes, canonical: bool) -> None:
    """What a collector admits as a disclosure is what an export's verifier recomputes."""
    assert is_canonical_value(value) is canonical
