"""Golden vectors of the formats that had none (review 48g, formats): enrollment tickets and
requests to an authority (tests/vectors/authority), trace submissions of versions 1 and 2 and
their receipts (tests/vectors/trace/submit_vectors.json), a channel's auth payload and service
requests and responses (tests/vectors/protocol), trace proof bundles of version 1
(tests/vectors/trace/proof_vectors.json). Each is rebuilt byte for byte by its
generator, built again here from docs/formats.md's layout (so the doc and the encoder agree),
and decoded into the fields it was made of."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.vectors.authority.generate import CHAIN, CODE, CREDENTIAL_HASH
from tests.vectors.authority.generate import build as build_authority
from tests.vectors.protocol.generate import build as build_protocol
from tests.vectors.trace.generate_proof import build as build_proof
from tests.vectors.trace.generate_submit import build as build_submit
from troth import limits
from troth.authority import Ticket, verify_request
from troth.authority.tickets import code_hash
from troth.channel.payloads import AuthPayload
from troth.credentials.revocation_pages import read_page_sequence, write_page_sequence
from troth.crypto import sha256
from troth.encoding import cbor
from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    Busy,
    DecodeError,
    DecodeProblem,
    Denied,
    TraceError,
    TraceFailure,
)
from troth.identity import Identifier
from troth.node.services.protocol import decode_request, decode_response, result_of
from troth.trace.checkpoint import AnchorStatus
from troth.trace.export import verify_bundle
from troth.trace.record import canonical_json
from troth.trace.submit import Receipts, Status, Submission

VECTORS = Path(__file__).parent / "vectors"
AUTHORITY: dict[str, Any] = json.loads(
    (VECTORS / "authority" / "authority_vectors.json").read_text()
)["vectors"]
SUBMIT: dict[str, Any] = json.loads((VECTORS / "trace" / "submit_vectors.json").read_text())[
    "vectors"
]
TRACE: dict[str, Any] = json.loads((VECTORS / "trace" / "trace_vectors.json").read_text())[
    "vectors"
]


def _hex(name: str) -> bytes:
    return bytes.fromhex(AUTHORITY[name])


# -- tickets and requests --------------------------------------------------------------------


def test_the_authority_vectors_regenerate_byte_for_byte() -> None:
    assert build_authority() == AUTHORITY


def test_a_ticket_is_the_documented_array_in_base64url_without_padding() -> None:
    history = _hex("authority_history")
    documented = cbor.encode(["troth.ticket", 1, CODE, history, "/tcp/127.0.0.1:4000"])
    assert documented == _hex("ticket_cbor")
    text = AUTHORITY["ticket"]
    assert text.startswith("troth-ticket:")
    assert "=" not in text
    assert base64.urlsafe_b64decode(text[13:] + "=" * (-len(text[13:]) % 4)) == documented


@pytest.mark.parametrize(
    ("name", "address"), [("ticket", "/tcp/127.0.0.1:4000"), ("ticket_local", "node:acme")]
)
def test_a_stored_ticket_parses_into_its_fields(name: str, address: str) -> None:
    ticket = Ticket.parse(AUTHORITY[name])
    assert ticket.code == CODE
    assert ticket.authority_history == _hex("authority_history")
    assert ticket.address == address
    assert str(ticket) == AUTHORITY[name]


def test_the_authority_stores_the_documented_hash_of_the_code() -> None:
    documented = sha256(b"troth.ticket-code/1" + b"\x00" + CODE)
    assert code_hash(CODE) == documented == _hex("code_hash")


ARGUMENTS: dict[str, list[Any]] = {
    "enroll": [CODE],
    "refresh": [],
    "revoke": [CREDENTIAL_HASH, CHAIN, "order history sent"],
    "rotated": [],
}


@pytest.mark.parametrize("kind", sorted(ARGUMENTS))
def test_a_stored_request_has_the_documented_fields_and_verifies(kind: str) -> None:
    data = bytes.fromhex(AUTHORITY["requests"][kind])
    authority = Identifier.parse(AUTHORITY["authority"])
    body, signature, attestation, history = cbor.decode(data)
    assert cbor.decode(body) == [
        "troth.authority.request",
        1,
        kind,
        authority.digest,
        AUTHORITY["requested_at"],
        ARGUMENTS[kind],
    ]
    assert len(signature) == 64
    assert attestation == _hex("member_attestation")
    assert history == _hex("member_history")
    now = AUTHORITY["requested_at"]
    verified = verify_request(data, authority=authority, kind=kind, now=now)
    assert verified.kind == kind
    assert verified.requester.identifier == Identifier.parse(AUTHORITY["member"])
    assert verified.arguments == ARGUMENTS[kind]
    assert verified.requested_at == now


def test_a_stored_request_is_refused_as_another_kind_or_out_of_its_window() -> None:
    data = bytes.fromhex(AUTHORITY["requests"]["refresh"])
    authority = Identifier.parse(AUTHORITY["authority"])
    now = AUTHORITY["requested_at"]
    refused = AuthorityFailure.REQUEST_INVALID, AuthorityFailure.CLOCK_SKEW  # review 48s, skew 1
    for (kind, at), reason in zip((("enroll", now), ("refresh", now + 301)), refused, strict=True):
        with pytest.raises(AuthorityError) as caught:
            verify_request(data, authority=authority, kind=kind, now=at)
        assert caught.value.reason is reason


# -- trace submissions and receipts ----------------------------------------------------------


def test_the_submit_vectors_regenerate_byte_for_byte() -> None:
    assert build_submit() == SUBMIT


def _documented_records() -> list[list[Any]]:
    return [
        [
            record["envelope"].encode(),
            {
                name: [bytes.fromhex(shown["salt"]), canonical_json(shown["value"])]
                for name, shown in record["disclosures"].items()
            },
        ]
        for record in TRACE["records"][:2]
    ]


def test_a_submission_is_the_documented_array_in_each_version() -> None:
    history = bytes.fromhex(TRACE["agent_history"])
    attestation = bytes.fromhex(TRACE["agent_attestation"])
    v1 = ["troth.trace.submit", 1, history, [attestation], [], _documented_records()]
    assert cbor.encode(v1) == bytes.fromhex(SUBMIT["submit_v1"])
    v2 = ["troth.trace.submit", 2, history, [attestation], [], _documented_records(), [history]]
    assert cbor.encode(v2) == bytes.fromhex(SUBMIT["submit_v2"])


@pytest.mark.parametrize(("name", "windows"), [("submit_v1", 0), ("submit_v2", 1)])
def test_a_stored_submission_decodes_into_its_fields(name: str, windows: int) -> None:
    submission = Submission.from_cbor(cbor.decode(bytes.fromhex(SUBMIT[name])))
    assert submission.history == bytes.fromhex(TRACE["agent_history"])
    assert submission.attestations == (bytes.fromhex(TRACE["agent_attestation"]),)
    assert submission.chains == ()
    assert len(submission.windows) == windows
    assert [r.envelope.decode() for r in submission.records] == [
        r["envelope"] for r in TRACE["records"][:2]
    ]
    shown = submission.records[0].disclosures["args"]
    assert json.loads(shown.value) == TRACE["records"][0]["disclosures"]["args"]["value"]


def test_stored_receipts_decode_into_their_fields() -> None:
    value = cbor.decode(bytes.fromhex(SUBMIT["receipts"]))
    assert value[:2] == ["troth.trace.receipts", 1]
    assert value[2] == [[0, 0], [1, 1], [2, "malformed", "not a record"]]
    receipts = Receipts.from_cbor(value, expected=3)
    assert [r.status for r in receipts.results] == [Status.APPENDED, Status.ALREADY, Status.REFUSED]
    assert receipts.results[2].reason is TraceFailure.MALFORMED
    assert receipts.head is not None
    assert receipts.head.seq == 1
    assert receipts.head.hash.hex() == TRACE["records"][1]["record_hash"]
    assert receipts.checkpoint == (3, TRACE["checkpoint"].encode())


# -- channel auth payloads and service messages ----------------------------------------------

PROTOCOL: dict[str, Any] = json.loads((VECTORS / "protocol" / "protocol_vectors.json").read_text())[
    "vectors"
]
IDENTITY: dict[str, Any] = json.loads((VECTORS / "identity" / "identity_vectors.json").read_text())[
    "vectors"
][0]
CREDENTIALS: dict[str, Any] = json.loads(
    (VECTORS / "credentials" / "credential_vectors.json").read_text()
)["vectors"]


def _protocol(name: str) -> bytes:
    return bytes.fromhex(PROTOCOL[name])


def test_the_protocol_vectors_regenerate_byte_for_byte() -> None:
    assert build_protocol() == PROTOCOL


@pytest.mark.parametrize(("name", "chains"), [("auth_payload", 1), ("auth_payload_no_chain", 0)])
def test_an_auth_payload_is_the_documented_array(name: str, chains: int) -> None:
    history = bytes.fromhex(IDENTITY["history1"])
    attestation = bytes.fromhex(IDENTITY["channel_attestation"])
    chain = [bytes.fromhex(CREDENTIALS["chain1"])][:chains]
    documented = cbor.encode(["troth.channel.auth", 1, history, attestation, chain])
    assert documented == _protocol(name)
    decoded = AuthPayload.decode(_protocol(name))
    assert (decoded.history, decoded.attestation, decoded.credentials) == (
        history,
        attestation,
        tuple(chain),
    )


def test_service_requests_are_the_documented_arrays() -> None:
    assert _protocol("request") == cbor.encode(["troth.service.request", 2, 7, "status", "4471"])
    assert decode_request(_protocol("request")) == (7, "status", "4471")
    largest = decode_request(_protocol("request_largest_id"))
    assert largest == (2**64 - 1, "echo", b"\x00")


def test_service_responses_are_the_documented_arrays_and_decode_to_their_results() -> None:
    documented = cbor.encode(["troth.service.response", 2, 7, True, "shipped"])
    assert _protocol("response_ok") == documented
    request_id, response = decode_response(documented)
    assert (request_id, result_of(response)) == (7, "shipped")
    denied = cbor.decode(_protocol("response_denied"))
    assert denied == [
        "troth.service.response",
        2,
        7,
        False,
        {
            "error": "denied",
            "message": "denied: peer not allowed; no permit",
            "reasons": ["peer not allowed", "no permit"],
        },
    ]
    with pytest.raises(Denied) as refused:
        result_of(decode_response(_protocol("response_denied"))[1])
    assert refused.value.reasons == ("peer not allowed", "no permit")
    request_id, busy = decode_response(_protocol("response_busy"))
    assert request_id == 8
    assert busy[4]["error"] == "busy"
    with pytest.raises(Busy):
        result_of(busy)


# -- trace proof bundles -----------------------------------------------------------------------

PROOF_VECTORS: dict[str, Any] = json.loads((VECTORS / "trace" / "proof_vectors.json").read_text())[
    "vectors"
]
PROOFS: list[str] = PROOF_VECTORS["bundles"]
BRIDGED: str = PROOF_VECTORS["bundle_v2"]


def test_the_proof_vectors_regenerate_byte_for_byte() -> None:
    assert build_proof() == PROOF_VECTORS


@pytest.mark.parametrize("index", range(3))
def test_a_stored_proof_bundle_has_the_documented_fields_and_verifies(index: int) -> None:
    stored = TRACE["records"][index]
    bundle = json.loads(PROOFS[index])
    assert list(bundle) == [
        "type",
        "version",
        "index",
        "envelope",
        "record",
        "disclosures",
        "proof",
        "checkpoint",
        "signer",
        "log",
    ]
    assert (bundle["type"], bundle["version"], bundle["index"]) == ("troth.trace.proof", 1, index)
    assert bundle["envelope"] == stored["envelope"]
    assert bundle["record"] == json.loads(stored["payload"])
    assert bundle["disclosures"] == stored["disclosures"]
    assert bundle["checkpoint"] == TRACE["checkpoint"]
    assert set(bundle["signer"]) == {"history", "attestation"}
    assert set(bundle["log"]) == {"history", "attestations"}
    if index == 0:
        assert bundle["proof"] == TRACE["inclusion_proof_0"]
    report = verify_bundle(PROOFS[index].encode(), anchor=TRACE["checkpoint"].encode())
    assert report.status is AnchorStatus.VALID
    assert (report.index, report.hash.hex()) == (index, stored["record_hash"])
    assert report.checkpoint.root.hex() == TRACE["root"]
    assert sorted(report.disclosed) == sorted(stored["disclosures"])


def test_a_stored_proof_bundle_with_one_byte_changed_is_refused() -> None:
    changed = PROOFS[0].replace('"amount":20', '"amount":21')
    assert changed != PROOFS[0]
    with pytest.raises(TraceError):
        verify_bundle(changed.encode(), anchor=TRACE["checkpoint"].encode())


def test_a_stored_version_2_bundle_carries_the_documented_windows_and_verifies() -> None:
    """docs/formats.md, "Proof bundle", version 2: `signer.windows` (1 to 4 histories, oldest
    first) and `signer.at` link the history that holds the record's key (the log's window of
    changes 0-63) to the agent's newest the log holds (from change 70): windows 63-70 and 70
    after it (`at` 0)."""
    bundle = json.loads(BRIDGED)
    assert (bundle["type"], bundle["version"]) == ("troth.trace.proof", 2)
    signer = bundle["signer"]
    assert list(signer) == ["history", "attestation", "windows", "at"]
    assert signer["at"] == 0
    histories = [base64.b64decode(w) for w in (signer["history"], *signer["windows"])]
    spans = []
    for history in histories:
        changes, checkpoint = cbor.decode(history)[2:]
        first = 0 if checkpoint is None else checkpoint[2]
        spans.append((first, first + len(changes) - 1))
    assert spans == [(0, 63), (63, 70), (70, 70)]
    report = verify_bundle(BRIDGED.encode(), anchor=bundle["checkpoint"].encode())
    assert report.status is AnchorStatus.VALID
    assert (report.index, report.record.seq) == (0, 0)


@pytest.mark.parametrize("change", ["window dropped", "windows swapped", "at past them"])
def test_a_stored_version_2_bundle_whose_windows_do_not_chain_is_refused(change: str) -> None:
    bundle = json.loads(BRIDGED)
    windows = bundle["signer"]["windows"]
    if change == "window dropped":
        bundle["signer"]["windows"] = windows[1:]
    elif change == "windows swapped":
        bundle["signer"]["windows"] = windows[::-1]
    else:
        bundle["signer"]["at"] = 3
    with pytest.raises(TraceError) as refused:
        verify_bundle(bundle)
    # the doc's words: windows that do not chain `signer identity invalid`, a bad `at` malformed
    expected = TraceFailure.MALFORMED if change == "at past them" else TraceFailure.SIGNER_INVALID
    assert refused.value.reason is expected


# -- feed files --------------------------------------------------------------------------------


def test_a_feed_file_is_the_documented_cbor_sequence_of_the_vector_pages() -> None:
    """docs/formats.md, "Feed files": a CBOR sequence (RFC 8742) of byte strings, each one page,
    from entry 0 on; a reader takes each item's size from its header and refuses one over
    512 KiB before reading it."""
    pages = [bytes.fromhex(CREDENTIALS["feed"]), bytes.fromhex(CREDENTIALS["feed_page_from_2"])]
    data = b"".join(write_page_sequence(pages))
    assert data == b"".join(b"\x59" + len(p).to_bytes(2, "big") + p for p in pages)
    assert list(read_page_sequence(io.BytesIO(data).read)) == pages
    huge = b"\x5a" + (limits.MAX_FEED_PAGE_BYTES + 1).to_bytes(4, "big")
    with pytest.raises(DecodeError) as refused:
        list(read_page_sequence(io.BytesIO(huge).read))
    assert refused.value.problem is DecodeProblem.OVER_LIMIT
