"""What one side may send, the other accepts (review 48g, limits): properties over the largest
objects a sender makes, for bounds no test held at their edges — a request to an authority
(MAX_REQUEST_BYTES, its body MAX_BODY_BYTES), a revocation entry (MAX_REVOCATION_ENTRY_BYTES),
and the size a trace client packs a submission by (`Submission.size`, an upper bound of its
encoding: an underestimate would send batches the service refuses)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from troth import limits
from troth.authority.requests import MAX_BODY_BYTES, MAX_REQUEST_BYTES, make_request
from troth.credentials import RevocationEntry, RevocationKind, Supersession
from troth.encoding import cbor
from troth.identity import Identifier, Signer
from troth.trace.record import REDACTABLE, Disclosure
from troth.trace.submit import Submission, SubmittedRecord

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MOST_TIME = (1 << 63) - 1  # times are signed 64-bit integers where stored
# characters of each UTF-8 length, the 4-byte ones weighted: a limit in characters is widest
# in bytes with them
CHARACTERS = st.one_of(
    st.characters(codec="utf-8"),
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
)


@dataclass(frozen=True)
class _Identity:
    history: bytes


@dataclass(frozen=True)
class _LargestSigner:
    """A signer at every bound a request carries beside its body: a history of
    MAX_IDENTITY_HISTORY_BYTES, an attestation of MAX_ATTESTATION_BYTES, a 64-byte signature."""

    identity: _Identity
    attestation: bytes

    def sign(self, data: bytes) -> bytes:
        return bytes(64)


def _signer(history: int, attestation: int) -> Signer:
    return cast(Signer, _LargestSigner(_Identity(bytes(history)), bytes(attestation)))


@SETTINGS
@given(
    reason=st.text(CHARACTERS, max_size=limits.MAX_REVOCATION_REASON),
    chain=st.integers(0, limits.MAX_CHAIN_BYTES),
    history=st.integers(0, limits.MAX_IDENTITY_HISTORY_BYTES),
    attestation=st.integers(0, limits.MAX_ATTESTATION_BYTES),
    now=st.integers(0, MOST_TIME),
)
def test_every_revoke_request_a_member_makes_fits_what_the_authority_decodes(
    reason: str, chain: int, history: int, attestation: int, now: int
) -> None:
    authority = Identifier(bytes(32))
    arguments: list[Any] = [bytes(32), bytes(chain), reason]
    request = make_request(_signer(history, attestation), "revoke", authority, arguments, now=now)
    assert len(request) <= MAX_REQUEST_BYTES
    body = cbor.decode(request, max_bytes=MAX_REQUEST_BYTES)[0]
    assert len(body) <= MAX_BODY_BYTES
    assert cbor.decode(body, max_bytes=MAX_BODY_BYTES)[5] == arguments


def test_the_largest_revoke_request_fits_at_every_bound_at_once() -> None:
    authority = Identifier(bytes(32))
    reason = "\U0010ffff" * limits.MAX_REVOCATION_REASON
    signer = _signer(limits.MAX_IDENTITY_HISTORY_BYTES, limits.MAX_ATTESTATION_BYTES)
    arguments: list[Any] = [bytes(32), bytes(limits.MAX_CHAIN_BYTES), reason]
    request = make_request(signer, "revoke", authority, arguments, now=MOST_TIME)
    assert len(request) <= MAX_REQUEST_BYTES
    assert len(cbor.decode(request, max_bytes=MAX_REQUEST_BYTES)[0]) <= MAX_BODY_BYTES


ENTRIES = st.one_of(
    st.builds(
        RevocationEntry,
        st.integers(0, limits.MAX_FEED_ENTRIES - 1),
        st.sampled_from([RevocationKind.CREDENTIAL, RevocationKind.IDENTITY]),
        st.binary(min_size=32, max_size=32),
        st.builds(Identifier, st.binary(min_size=32, max_size=32)),
        st.integers(0, MOST_TIME),
        st.text(CHARACTERS, max_size=limits.MAX_REVOCATION_REASON),
    ),
    st.builds(
        RevocationEntry,
        st.integers(0, limits.MAX_FEED_ENTRIES - 1),
        st.just(RevocationKind.SUPERSEDED),
        st.binary(min_size=32, max_size=32),
        st.builds(Identifier, st.binary(min_size=32, max_size=32)),
        st.integers(0, MOST_TIME),
        st.just(""),
        st.builds(
            Supersession,
            st.integers(2, limits.MAX_CHANGE_INDEX + 1),
            st.binary(min_size=32, max_size=32),
        ),
    ),
)


@SETTINGS
@given(ENTRIES)
def test_every_revocation_entry_an_authority_makes_fits_and_decodes(entry: RevocationEntry) -> None:
    encoded = entry.encode()
    assert len(encoded) <= limits.MAX_REVOCATION_ENTRY_BYTES
    assert RevocationEntry.decode(encoded) == entry


def test_the_largest_revocation_entry_fits() -> None:
    entry = RevocationEntry(
        limits.MAX_FEED_ENTRIES - 1,
        RevocationKind.CREDENTIAL,
        bytes(32),
        Identifier(bytes(32)),
        MOST_TIME,
        "\U0010ffff" * limits.MAX_REVOCATION_REASON,
    )
    assert len(entry.encode()) <= limits.MAX_REVOCATION_ENTRY_BYTES
    assert RevocationEntry.decode(entry.encode()) == entry


DISCLOSURES = st.dictionaries(
    st.sampled_from(REDACTABLE),
    st.builds(
        Disclosure,
        st.binary(min_size=16, max_size=16),
        st.binary(max_size=limits.MAX_TRACE_DISCLOSURE_BYTES // 64),
    ),
)
RECORDS = st.builds(
    SubmittedRecord,
    st.binary(min_size=1, max_size=limits.MAX_TRACE_ENVELOPE_BYTES),
    DISCLOSURES,
)


@SETTINGS
@given(
    history=st.binary(max_size=limits.MAX_IDENTITY_HISTORY_BYTES),
    attestations=st.lists(
        st.binary(max_size=limits.MAX_ATTESTATION_BYTES),
        min_size=1,
        max_size=limits.MAX_TRACE_SUBMIT_KEYS,
    ),
    chains=st.lists(st.binary(max_size=4096), max_size=limits.MAX_TRACE_SUBMIT_CHAINS),
    records=st.lists(RECORDS, min_size=1, max_size=8),
    windows=st.lists(
        st.binary(max_size=limits.MAX_IDENTITY_HISTORY_BYTES),
        max_size=limits.MAX_TRACE_SUBMIT_WINDOWS,
    ),
)
def test_a_submission_never_encodes_larger_than_the_size_it_is_packed_by(
    history: bytes,
    attestations: list[bytes],
    chains: list[bytes],
    records: list[SubmittedRecord],
    windows: list[bytes],
) -> None:
    submission = Submission(
        history, tuple(attestations), tuple(chains), tuple(records), tuple(windows)
    )
    encoded = cbor.encode(submission.to_cbor())
    assert len(encoded) <= submission.size()
    assert Submission.from_cbor(cbor.decode(encoded)) == submission
