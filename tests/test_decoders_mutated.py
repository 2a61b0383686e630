"""Mutation fuzzing of every decoder against its golden vectors (tests/vectors/*/).

Each property starts from a valid golden encoding, mutates it (tests/support/mutations.py: a
byte flipped or replaced, truncated, extended, a range deleted, duplicated or inserted; for CBOR
and JSON also a drawn value at a drawn path, into nested CBOR bodies and JSON texts; some signed
again with the vectors' fixed keys so the checks after the signature see hostile values) and
feeds it to the public entry point that reads such bytes from a peer, a file or a member. The
rule (src/troth/errors.py, src/troth/limits.py): the entry point answers, or raises one
TrothError subclass — never a bare KeyError, TypeError, IndexError, ValueError,
UnicodeDecodeError, OverflowError, RecursionError, MemoryError, nor hangs. Where an answer
means "valid", it must be for a semantically valid input (`typed(valid_if=...)`: the same
identity, key, head or body, in canonical form).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fixed_vault import FixedKeyVault
from tests.support.mutations import (
    as_text,
    canonical,
    cbor_mutation,
    jwt_mutation,
    mutated,
    resigned_text,
    typed,
)
from tests.support.parties import Party, make_party
from troth.channel import parse_route_error, split_packet
from troth.channel.noise import CipherState, HandshakeState
from troth.channel.payloads import AuthPayload, unpack
from troth.channel.policy import AnyAuthenticatedIdentity
from troth.channel.verification import ChannelTrust, HandshakeClaim, verify_peer
from troth.credentials import (
    ChainVerifier,
    CredentialBody,
    CredentialChain,
    RevocationEntry,
    TrustPolicy,
    VerifiedCredential,
    VerifiedFeed,
    feed_genesis,
    next_head,
    verify_feed,
    verify_page,
)
from troth.credentials.revocation import feed_authority
from troth.credentials.revocation_held import feed_from_store
from troth.credentials.revocation_pages import read_page_sequence, write_page_sequence
from troth.credentials.vc import did_key_resolver, vc_issuer, verify_eddsa_jcs_2022, verify_troth_vc
from troth.credentials.verify import chain_actor
from troth.crypto import Aead, AeadAlgorithm, KeyType, sha256
from troth.crypto.private import load_private_key
from troth.encoding import cbor
from troth.encoding.ijson import load_json
from troth.errors import (
    CredentialError,
    CredentialFailure,
    DecodeError,
    DecodeProblem,
    TraceError,
    TraceFailure,
)
from troth.gates import BundleStore, DecisionPoint, ServiceCall, ToolCall, verify_bundle
from troth.gates.bundles import VerifiedBundle, decode_bundle
from troth.identity import (
    Checkpoint,
    Identifier,
    VerifiedIdentity,
    indexed_hashes,
    verify_attestation,
    verify_history,
)
from troth.integrations.mcp.frames import McpFrame
from troth.limits import MAX_VC_BYTES
from troth.secrets import Jwks, LeaseId, validate_token
from troth.secrets.lease import LeaseHandle
from troth.trace import export
from troth.trace.checkpoint import (
    parse_checkpoint,
    parse_checkpoint_text,
    parse_note,
    verify_checkpoint,
    verify_note,
)
from troth.trace.dsse import decode_envelope, parse_envelope
from troth.trace.merkle import MemoryTree
from troth.trace.record import Disclosure
from troth.trace.record_decode import decode_payload
from troth.trace.signing import keyid_of, verify_envelope
from troth.vault import KeyPurpose, SealKey, SoftwareVault

VECTORS = Path(__file__).parent / "vectors"
FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def vectors(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return data.get("vectors", data)  # type: ignore[no-any-return]


IDENTITY: list[dict[str, Any]] = vectors("identity/identity_vectors.json")  # type: ignore[assignment]
CREDENTIALS = vectors("credentials/credential_vectors.json")
GATES = vectors("gates/bundle_vectors.json")
MCP = vectors("mcp/frame_vectors.json")
SECRETS = vectors("secrets/secret_vectors.json")
TRACE = vectors("trace/trace_vectors.json")
VC = vectors("vc/troth_vc.json")
CHANNEL = vectors("channel/keepalive_vectors.json")


# -- identity ---------------------------------------------------------------------------------

ED, P256 = IDENTITY
AT = ED["rotated_at"] + 3600


def attests(vector: dict[str, Any]) -> Callable[[Checkpoint, bytes], bool]:
    """The verifier's judgement of the vector's checkpoint: that one, at change 1, only."""
    expected = Checkpoint(
        Identifier.parse(vector["identifier"]).digest,
        bytes.fromhex(vector["checkpoint_authority"]),
        1,
    )
    change1 = sha256(bytes.fromhex(vector["change1_body"]))
    return lambda checkpoint, change: (checkpoint, change) == (expected, change1)


@pytest.mark.parametrize("vector", IDENTITY, ids=lambda v: v["key_type"])
@pytest.mark.parametrize("name", ["history1", "history2", "history2_from_change1"])
@FUZZ
@given(data=st.data())
def test_identity_history(vector: dict[str, Any], name: str, data: st.DataObject) -> None:
    mutant = data.draw(mutated(bytes.fromhex(vector[name]), is_cbor=True))
    # a valid answer: the same identity (a prefix of its history is one), in canonical form
    typed(
        lambda b: verify_history(b, now=AT, checkpoints=attests(vector)),
        mutant,
        valid_if=lambda i: str(i.identifier) == vector["identifier"] and i.history == mutant,
    )


@cache
def identity_two(label: str) -> VerifiedIdentity:
    vector = next(v for v in IDENTITY if v["key_type"] == label)
    return verify_history(bytes.fromhex(vector["history2"]), now=AT)


@pytest.mark.parametrize("vector", IDENTITY, ids=lambda v: v["key_type"])
@FUZZ
@given(data=st.data())
def test_identity_attestation(vector: dict[str, Any], data: st.DataObject) -> None:
    original = bytes.fromhex(vector["channel_attestation"])
    identity = identity_two(vector["key_type"])
    key = verify_attestation(identity, original, purpose=KeyPurpose.SECURE_CHANNEL, now=AT).key
    mutant = data.draw(mutated(original, is_cbor=True))
    typed(
        lambda b: verify_attestation(identity, b, purpose=KeyPurpose.SECURE_CHANNEL, now=AT),
        mutant,
        valid_if=lambda a: a.key == key and canonical(mutant),
    )


@FUZZ
@given(data=st.data())
def test_identifier_text(data: st.DataObject) -> None:
    original = (ED["identifier"] if data.draw(st.booleans()) else ED["did"]).encode()
    # "raise ValueError otherwise" (its docstring): callers reading peer text turn it into
    # their layer's error, which the properties of those formats check
    typed(
        lambda b: Identifier.parse(as_text(b)),
        data.draw(mutated(original)),
        documented=(ValueError,),
    )


# -- credentials, chains, revocation feeds ---------------------------------------------------

CT = CREDENTIALS["created_at"] + 300
AUTHORITY = Identifier.parse(CREDENTIALS["authority"])


@cache
def feed() -> VerifiedFeed:
    return verify_feed(
        bytes.fromhex(CREDENTIALS["feed"]), authority=AUTHORITY, now=CT, max_staleness=600
    )


@pytest.mark.parametrize(
    "name",
    [
        "root_credential_body",
        "delegation_body",
        "revocation_entries",
    ],
)
@FUZZ
@given(data=st.data())
def test_credential_parts(name: str, data: st.DataObject) -> None:
    if name == "revocation_entries":
        entries = CREDENTIALS[name]
        original = bytes.fromhex(entries[data.draw(st.integers(0, len(entries) - 1))])
        decode: Callable[[bytes], object] = RevocationEntry.decode
    else:
        original = bytes.fromhex(CREDENTIALS[name])
        decode = CredentialBody.decode
    typed(decode, data.draw(mutated(original, is_cbor=True)))


@pytest.mark.parametrize("name", ["chain1", "chain2"])
@FUZZ
@given(data=st.data())
def test_credential_chain(name: str, data: st.DataObject) -> None:
    original = bytes.fromhex(CREDENTIALS[name])
    mutant = data.draw(mutated(original, is_cbor=True))
    typed(CredentialChain.decode, mutant)
    verifier = ChainVerifier(TrustPolicy(frozenset({AUTHORITY})))
    typed(
        lambda b: verifier.verify_structure(b, now=CT),
        mutant,
        valid_if=lambda c: c.chain == mutant and canonical(mutant),
    )
    presenter = Identifier.parse(CREDENTIALS["sub" if name == "chain2" else "member"])
    typed(
        lambda b: verifier.verify(b, presenter=presenter, feeds={AUTHORITY: feed()}, now=CT),
        mutant,
        valid_if=lambda c: c.actor == presenter and canonical(mutant),
    )


ROOT_BODY = cbor.decode(bytes.fromhex(CREDENTIALS["root_credential_body"]))
ATTRIBUTES_AT = 5  # [type, version, id, subject, issuer, attributes, ...] (docs/formats.md)


@pytest.mark.parametrize("value", [[[]], ["read", ["write"]], [{"a": "b"}]])
def test_attribute_values_not_all_text_refused(value: list[Any]) -> None:
    """Found by test_credential_parts: a set of attribute values holding an array (unhashable)
    escaped CredentialBody.decode as TypeError; every decoder of a credential (chains, the
    verifier) shares it. The array must hold only text: DecodeError."""
    assert ROOT_BODY[ATTRIBUTES_AT] == {
        "orders.access": ["read", "write"],
        "orders.customer": "4471",
    }
    body = cbor.encode([*ROOT_BODY[:ATTRIBUTES_AT], {"orders.access": value}, *ROOT_BODY[6:]])
    with pytest.raises(DecodeError) as raised:
        CredentialBody.decode(body)
    assert raised.value.problem is DecodeProblem.MALFORMED
    chain = cbor.decode(bytes.fromhex(CREDENTIALS["chain1"]))
    chain[2][0][0] = body
    verifier = ChainVerifier(TrustPolicy(frozenset({AUTHORITY})))
    with pytest.raises(CredentialError) as refused:
        verifier.verify_structure(cbor.encode(chain), now=CT)
    assert refused.value.reason is CredentialFailure.MALFORMED


@FUZZ
@given(data=st.data())
def test_revocation_feed(data: st.DataObject) -> None:
    original = bytes.fromhex(CREDENTIALS["feed"])
    mutant = data.draw(mutated(original, is_cbor=True))
    typed(
        lambda b: verify_feed(b, authority=AUTHORITY, now=CT, max_staleness=600),
        mutant,
        valid_if=lambda f: f.head == feed().head and canonical(mutant),
    )


@cache
def held_two() -> VerifiedFeed:
    first_two = [
        RevocationEntry.decode(bytes.fromhex(e)) for e in CREDENTIALS["revocation_entries"]
    ]
    return feed_from_store(
        AUTHORITY,
        count=2,
        head=bytes.fromhex(CREDENTIALS["feed_head_after_2"]),
        latest=2,
        issued_at=CREDENTIALS["created_at"],
        rows=[(e.seq, int(e.kind), e.target, None, None) for e in first_two[:2]],
    )


@FUZZ
@given(data=st.data())
def test_revocation_page(data: st.DataObject) -> None:
    original = bytes.fromhex(CREDENTIALS["feed_page_from_2"])
    mutant = data.draw(mutated(original, is_cbor=True))
    typed(
        lambda b: verify_page(b, authority=AUTHORITY, now=CT, previous=held_two()),
        mutant,
        valid_if=lambda f: f.head == feed().head and canonical(mutant),
    )


# -- troth's W3C VC (JSON text, as `troth credential verify --format vc` reads it) -----------


@cache
def vc_issuer_identity() -> VerifiedIdentity:
    return verify_history(bytes.fromhex(VC["authority_history"]), now=CT)


def read_vc(data: bytes) -> object:
    """What troth.node.verify.verify_vc does with a file's bytes (without a node home)."""
    try:
        document = load_json(data, max_bytes=MAX_VC_BYTES, what="VC")
    except DecodeError:
        return None  # verify_vc turns this into CredentialError MALFORMED
    vc_issuer(document)
    return verify_troth_vc(
        document,
        policy=TrustPolicy(frozenset({AUTHORITY}), max_feed_staleness=600),
        issuer=vc_issuer_identity(),
        feeds={AUTHORITY: feed()},
        now=CT,
    )


@FUZZ
@given(data=st.data())
def test_troth_vc(data: st.DataObject) -> None:
    original = json.dumps(VC["document"], indent=data.draw(st.sampled_from([None, 2]))).encode()
    assert read_vc(original) is not None
    typed(read_vc, data.draw(mutated(original, is_json=True)))


# -- policy bundles ---------------------------------------------------------------------------

GT = GATES["issued_at"] + 60


@cache
def gates_feed() -> VerifiedFeed:
    return verify_feed(bytes.fromhex(GATES["feed"]), authority=AUTHORITY, now=GT, max_staleness=300)


@pytest.mark.parametrize("name", ["bundle_by_authority", "bundle_by_admin"])
@FUZZ
@given(data=st.data())
def test_policy_bundle(name: str, data: st.DataObject) -> None:
    original = bytes.fromhex(GATES[name])
    mutant = data.draw(mutated(original, is_cbor=True))
    verifier = ChainVerifier(TrustPolicy(frozenset({AUTHORITY})))
    typed(
        lambda b: verify_bundle(b, verifier=verifier, feeds={AUTHORITY: gates_feed()}, now=GT),
        mutant,
        valid_if=lambda v: v.body == decode_bundle(original) and canonical(mutant),
    )


# -- MCP frames -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["message_frame", "end_frame"])
@FUZZ
@given(data=st.data())
def test_mcp_frame(name: str, data: st.DataObject) -> None:
    typed(McpFrame.decode, data.draw(mutated(bytes.fromhex(MCP[name]), is_cbor=True)))


# -- secure channel: packets, keepalive frames, route errors ----------------------------------

KEEPALIVE = [(name, algorithm) for name in ("ping", "pong") for algorithm in AeadAlgorithm]


@pytest.mark.parametrize(
    ("name", "algorithm"), KEEPALIVE, ids=lambda v: str(getattr(v, "value", v))
)
@FUZZ
@given(data=st.data())
def test_keepalive_frame(name: str, algorithm: AeadAlgorithm, data: st.DataObject) -> None:
    vector = CHANNEL["keepalive"][name]
    cipher = CipherState(algorithm, bytes.fromhex(CHANNEL["key"]))
    frame = data.draw(mutated(bytes.fromhex(vector[f"frame_{algorithm.value}"])))
    plain = typed(lambda b: cipher.decrypt_at(int.from_bytes(b[1:9], "big"), b"", b[9:]), frame)
    typed(unpack, data.draw(mutated(bytes.fromhex(vector["plaintext"]))))
    if plain is not None:
        typed(unpack, plain)  # type: ignore[arg-type]
    # the same bytes as a packet (length-prefixed frames) a relay splits
    typed(split_packet, frame)


@cache
def auth_payload(chains: int) -> bytes:
    """A handshake payload from the vectors: the Ed25519 identity's history, its channel-key
    attestation (the RFC 7748 X25519 key), and `chains` chains (not its own: refused)."""
    chain = bytes.fromhex(CREDENTIALS["chain1"])
    history, attestation = (bytes.fromhex(ED[n]) for n in ("history2", "channel_attestation"))
    return AuthPayload(history, attestation, (chain,) * chains).encode()


def read_auth(data: bytes) -> object:
    """What a channel does with the peer's handshake payload: decode, then verify_peer."""
    payload = AuthPayload.decode(data)
    static = load_private_key(KeyType.X25519, bytes.fromhex(ED["x25519_private_key"]))
    trust = ChannelTrust(
        AnyAuthenticatedIdentity(),
        ChainVerifier(TrustPolicy(frozenset({AUTHORITY}))),
        feeds=lambda: {AUTHORITY: feed()},
    )
    claim = HandshakeClaim(payload.history, payload.attestation, static.public_key)
    return verify_peer(trust, claim, payload.credentials, AT)


@FUZZ
@given(data=st.data())
def test_channel_auth_payload(data: st.DataObject) -> None:
    assert read_auth(auth_payload(0)) is not None
    original = auth_payload(data.draw(st.integers(0, 1)))
    typed(read_auth, data.draw(mutated(original, is_cbor=True)))


@FUZZ
@given(data=st.data())
def test_route_error(data: st.DataObject) -> None:
    original = bytes.fromhex(CHANNEL["route_error"]["bytes"])
    typed(parse_route_error, data.draw(mutated(original, is_cbor=True)))


# -- leased secrets: lease ids, tokens, JWKS, sealed blobs ------------------------------------


@FUZZ
@given(data=st.data())
def test_lease_text(data: st.DataObject) -> None:
    lease = SECRETS["lease"]
    typed(lambda b: LeaseId.parse(as_text(b)), data.draw(mutated(lease["text"].encode())))
    typed(lambda b: LeaseHandle.parse(as_text(b)), data.draw(mutated(lease["handle"].encode())))


@FUZZ
@given(data=st.data())
def test_token(data: st.DataObject) -> None:
    vector = SECRETS["token"]
    jwks = {"keys": [vector["jwk"]]}
    token = as_text(
        data.draw(
            st.one_of(
                mutated(vector["token"].encode()),
                jwt_mutation(vector["token"], vector["signing_key"]),
            )
        )
    )
    typed(
        lambda _: validate_token(token, jwks, audience="payments", now=vector["issued_at"] + 1),
        b"",
    )


@FUZZ
@given(data=st.data())
def test_jwks(data: st.DataObject) -> None:
    vector = SECRETS["token"]
    original = json.dumps({"keys": [vector["jwk"]]}).encode()
    typed(Jwks.parse, data.draw(mutated(original, is_json=True)))


@cache
def sealing_vault() -> SoftwareVault:
    vault = SoftwareVault()
    key = SealKey.parse(SECRETS["sealed"]["seal_key_handle"])
    # test-only key injection, as tests/test_secrets_vectors.py does
    vault._seal_keys[key.key_id] = Aead(
        AeadAlgorithm.AES_256_GCM, bytes.fromhex(SECRETS["sealed"]["seal_key"])
    )
    return vault


@FUZZ
@given(data=st.data())
def test_sealed_blob(data: st.DataObject) -> None:
    vector = SECRETS["sealed"]
    key = SealKey.parse(vector["seal_key_handle"])
    aad = bytes.fromhex(vector["aad"])
    original = bytes.fromhex(vector["sealed"])
    mutant = data.draw(mutated(original))
    typed(
        lambda b: sealing_vault().unseal(key, b, aad), mutant, valid_if=lambda _: mutant == original
    )
    handle = vector["seal_key_handle"].encode()  # local configuration: ValueError, as documented
    typed(lambda b: SealKey.parse(as_text(b)), data.draw(mutated(handle)), documented=(ValueError,))


# -- trace records, envelopes, checkpoints, proof bundles -------------------------------------

RECORDS = TRACE["records"]


@cache
def trace_identities() -> tuple[VerifiedIdentity, VerifiedIdentity]:
    at = TRACE["created_at"]
    return (
        verify_history(bytes.fromhex(TRACE["agent_history"]), now=at),
        verify_history(bytes.fromhex(TRACE["log_history"]), now=at),
    )


@pytest.mark.parametrize("index", [0, 1])
@FUZZ
@given(data=st.data())
def test_trace_envelope(index: int, data: st.DataObject) -> None:
    stored = RECORDS[index]
    agent, _ = trace_identities()
    attestation = bytes.fromhex(TRACE["agent_attestation"])
    disclosures = {n: Disclosure.from_json(v, n) for n, v in stored["disclosures"].items()}
    envelope = data.draw(mutated(stored["envelope"].encode(), is_json=True))
    typed(parse_envelope, envelope)
    typed(
        lambda b: verify_envelope(
            b, signer=agent, attestation=attestation, disclosures=disclosures
        ),
        envelope,
    )
    typed(decode_payload, data.draw(mutated(stored["payload"].encode(), is_json=True)))


@FUZZ
@given(data=st.data())
def test_trace_disclosure(data: st.DataObject) -> None:
    name, value = next(iter(sorted(RECORDS[0]["disclosures"].items())))
    original = json.dumps(value).encode()

    def read(b: bytes) -> object:
        return Disclosure.from_json(load_json(b, max_bytes=1 << 16), name)

    typed(read, data.draw(mutated(original, is_json=True)))


@FUZZ
@given(data=st.data())
def test_trace_checkpoint(data: st.DataObject) -> None:
    _, log = trace_identities()
    attestation = bytes.fromhex(TRACE["log_attestation"])
    note = data.draw(mutated(TRACE["checkpoint"].encode()))
    typed(parse_checkpoint, note)
    typed(lambda b: verify_checkpoint(b, log, {keyid_of(attestation): attestation}), note)


def _b64(hex_text: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_text)).decode()


def proof_bundle(index: int) -> dict[str, Any]:
    """Record `index`'s proof bundle (docs/traces.md, "Exports"), from the trace vectors (the
    agent's records: 0 and 1), its inclusion proof in the vectors' tree of every record."""
    record = RECORDS[index]
    tree = MemoryTree([bytes.fromhex(r["leaf_hash"]) for r in RECORDS])
    return {
        "type": export.BUNDLE_TYPE,
        "version": 1,
        "index": index,
        "envelope": record["envelope"],
        "record": json.loads(record["payload"]),
        "disclosures": record["disclosures"],
        "checkpoint": TRACE["checkpoint"],
        "proof": [p.hex() for p in tree.inclusion_proof(index)],
        "signer": {k: _b64(TRACE[f"agent_{k}"]) for k in ("history", "attestation")},
        "log": {
            "history": _b64(TRACE["log_history"]),
            "attestations": [_b64(TRACE["log_attestation"])],
        },
    }


PROOF_BUNDLE = proof_bundle(0)
EXPORT = "\n".join(export.bundle_text(proof_bundle(i)) for i in (0, 1)).encode()


def test_the_assembled_proof_bundle_verifies() -> None:
    report = export.verify_bundle(export.bundle_text(PROOF_BUNDLE).encode())
    assert (report.index, report.checkpoint.root.hex()) == (0, TRACE["root"])
    assert export.verify_export(EXPORT.split(b"\n")).records == 2


@FUZZ
@given(data=st.data())
def test_trace_proof_bundle(data: st.DataObject) -> None:
    original = export.bundle_text(PROOF_BUNDLE, lines=data.draw(st.booleans())).encode()
    typed(export.verify_bundle, data.draw(mutated(original, is_json=True)))
    typed(lambda b: export.verify_export(b.split(b"\n")), data.draw(mutated(EXPORT)))


# -- readers of unverified bytes, and the public vectors troth reads --------------------------


@FUZZ
@given(data=st.data())
def test_unverified_readers(data: st.DataObject) -> None:
    """What tools read before verifying: a chain's actor, a page's authority, a history's
    change hashes, the pages of a feed file."""
    typed(chain_actor, data.draw(mutated(bytes.fromhex(CREDENTIALS["chain2"]), is_cbor=True)))
    typed(feed_authority, data.draw(mutated(bytes.fromhex(CREDENTIALS["feed"]), is_cbor=True)))
    typed(indexed_hashes, data.draw(mutated(bytes.fromhex(ED["history2"]), is_cbor=True)))
    pages = (bytes.fromhex(CREDENTIALS[n]) for n in ("feed", "feed_page_from_2"))
    stream = data.draw(mutated(b"".join(write_page_sequence(pages))))
    typed(lambda b: list(read_page_sequence(io.BytesIO(b).read)), stream)


W3C = vectors("vc/eddsa_jcs_2022.json")


@FUZZ
@given(data=st.data())
def test_w3c_eddsa_jcs_2022_vector(data: st.DataObject) -> None:
    proof = {**W3C["proof_options"], "@context": W3C["unsecured_document"]["@context"]}
    secured = {**W3C["unsecured_document"], "proof": {**proof, "proofValue": W3C["proof_value"]}}

    def read(b: bytes) -> object:
        document = load_json(b, max_bytes=MAX_VC_BYTES)
        if type(document) is not dict:
            return None  # verify_vc reads the issuer first: vc_issuer refuses a non-object
        return verify_eddsa_jcs_2022(document, did_key_resolver)

    typed(read, data.draw(mutated(json.dumps(secured).encode(), is_json=True)))


MERKLE = vectors("merkle/rfc9162_transparency_dev.json")


@pytest.mark.parametrize("case", MERKLE["signed_notes"], ids=lambda c: c["vkey"].split("+")[0])
@FUZZ
@given(data=st.data())
def test_signed_note(case: dict[str, Any], data: st.DataObject) -> None:
    note = data.draw(mutated(case["note"].encode()))
    typed(parse_note, note)
    typed(lambda b: verify_note(b, case["vkey"]), note)
    typed(
        lambda b: verify_note(case["note"].encode(), as_text(b)),
        data.draw(mutated(case["vkey"].encode())),
    )


@pytest.mark.parametrize("case", MERKLE["checkpoint_text_examples"], ids=["gosum", "c2sp"])
@FUZZ
@given(data=st.data())
def test_checkpoint_text(case: dict[str, Any], data: st.DataObject) -> None:
    typed(parse_checkpoint_text, data.draw(mutated(case["text"].encode())))


def test_checkpoint_text_not_utf8_refused() -> None:
    """Found by test_checkpoint_text: parse_checkpoint_text (public; parse_checkpoint calls it
    on a note's text that parse_note checked) let UnicodeDecodeError out for bytes that are
    not UTF-8. TraceError CHECKPOINT_INVALID, like parse_note."""
    text = MERKLE["checkpoint_text_examples"][0]["text"].encode()
    with pytest.raises(TraceError) as caught:
        parse_checkpoint_text(b"\x80" + text[1:])
    assert caught.value.reason is TraceFailure.CHECKPOINT_INVALID


@FUZZ
@given(data=st.data())
def test_dsse_spec_vector(data: st.DataObject) -> None:
    original = json.dumps(vectors("dsse/dsse_spec_vector.json")["envelope"]).encode()
    mutant = data.draw(mutated(original, is_json=True))
    typed(parse_envelope, mutant)
    typed(decode_envelope, mutant)


NOISE: list[dict[str, Any]] = vectors("noise/cacophony_xx.json")  # type: ignore[assignment]


@pytest.mark.parametrize("vector", NOISE, ids=lambda v: v["protocol_name"])
@FUZZ
@given(data=st.data())
def test_noise_handshake_message(vector: dict[str, Any], data: st.DataObject) -> None:
    """Noise XX (tests/test_noise_vectors.py): the handshake runs to message `at`, which the
    reader gets mutated: ChannelError, never another exception."""
    sides = [
        HandshakeState(
            vector["protocol_name"],
            initiator=role == "init",
            prologue=bytes.fromhex(vector[f"{role}_prologue"]),
            static=load_private_key(KeyType.X25519, bytes.fromhex(vector[f"{role}_static"])),
            ephemeral=load_private_key(KeyType.X25519, bytes.fromhex(vector[f"{role}_ephemeral"])),
        )
        for role in ("init", "resp")
    ]
    at = data.draw(st.integers(0, 2))
    for index, message in enumerate(vector["messages"][: at + 1]):
        writer, reader = sides[index % 2], sides[1 - index % 2]
        ciphertext = writer.write_message(bytes.fromhex(message["payload"]))
        if index == at:
            typed(reader.read_message, data.draw(mutated(ciphertext)))
        else:
            reader.read_message(ciphertext)


# -- re-signed mutations: what only a signer could send reaches the checks after the signature --


@cache
def parties() -> tuple[Party, Party]:
    """The authority and the member (gates: the policy-admin) of the credential and bundle
    vectors: their generate.py's first two parties, from the fixed keys 01..01 to 06..06."""
    vault = FixedKeyVault([(KeyType.ED25519, bytes([n]) * 32) for n in range(1, 7)])
    authority, member = make_party(vault, now=CT - 300), make_party(vault, now=CT - 300)
    assert str(member.identifier) == CREDENTIALS["member"] == GATES["admin"]
    return authority, member


@pytest.mark.parametrize("name", ["bundle_by_authority", "bundle_by_admin"])
@FUZZ
@given(data=st.data())
def test_policy_bundle_resigned(name: str, data: st.DataObject) -> None:
    """The bundle's body mutated (a CBOR value, or the text of its policies, schema or a tool's
    JSON schema) and signed again by its signer: PolicyError (Cedar's refusals included)."""
    signed = cbor.decode(bytes.fromhex(GATES[name]))
    body = cbor.decode(signed[2])
    text_at = [(7,), (8,), *((9, tool) for tool in sorted(body[9]))]
    signed[2] = data.draw(
        st.one_of(
            cbor_mutation(signed[2]), resigned_text(body, data.draw(st.sampled_from(text_at)))
        )
    )
    signed[3] = parties()[name == "bundle_by_admin"].signer.sign(signed[2])
    verifier, mutant = ChainVerifier(TrustPolicy(frozenset({AUTHORITY}))), cbor.encode(signed)
    feeds = {AUTHORITY: gates_feed()}
    verified = typed(lambda b: verify_bundle(b, verifier=verifier, feeds=feeds, now=GT), mutant)
    if isinstance(verified, VerifiedBundle):  # decisions under the hostile policies
        store = BundleStore(verifier)
        store.accept(mutant, feeds=feeds, now=GT)
        point = DecisionPoint(store, feeds.get)
        chain, admin_id = bytes.fromhex(GATES["admin_chain"]), parties()[1].identifier
        admin = verifier.verify(chain, presenter=admin_id, feeds=feeds, now=GT)

        def decide(call: ToolCall | ServiceCall) -> Callable[[bytes], object]:
            return lambda _: point.decide(admin, call, now=GT)

        typed(decide(ToolCall("refund", {"order_id": "o", "amount": 1})), b"")
        typed(decide(ServiceCall("orders", "status")), b"")


@pytest.mark.parametrize("link", [0, 1])
@FUZZ
@given(data=st.data())
def test_credential_chain_resigned(link: int, data: st.DataObject) -> None:
    """A link's body of the 2-link chain mutated (a CBOR value, or a caveat's or the purpose's
    text) and signed again by its issuer: CredentialError."""
    chain = cbor.decode(bytes.fromhex(CREDENTIALS["chain2"]))
    body = chain[2][link][0]
    texts = [(10, 1), (10, 2, 0)] if link else []  # the delegation's purpose and caveat
    choices = [cbor_mutation(body)]
    if texts:
        choices.append(resigned_text(cbor.decode(body), data.draw(st.sampled_from(texts))))
    chain[2][link][0] = data.draw(st.one_of(choices))
    chain[2][link][1] = parties()[link].signer.sign(chain[2][link][0])
    verifier = ChainVerifier(TrustPolicy(frozenset({AUTHORITY})))
    sub = Identifier.parse(CREDENTIALS["sub"])
    verified = typed(
        lambda b: verifier.verify(b, presenter=sub, feeds={AUTHORITY: feed()}, now=CT),
        cbor.encode(chain),
    )
    if isinstance(verified, VerifiedCredential):  # the decision point compiles the caveats
        call = ToolCall("refund", {"order_id": "4471", "amount": 20})
        typed(lambda _: decision_point().decide(verified, call, now=CT), b"")


@cache
def decision_point() -> DecisionPoint:
    store = BundleStore(ChainVerifier(TrustPolicy(frozenset({AUTHORITY}))))
    store.accept(bytes.fromhex(GATES["bundle_by_authority"]), feeds={AUTHORITY: feed()}, now=CT)
    return DecisionPoint(store, {AUTHORITY: feed()}.get)


@FUZZ
@given(data=st.data())
def test_revocation_feed_resigned(data: st.DataObject) -> None:
    """The feed's snapshot mutated, or one entry (the head chained again over the entries) or
    the page's start, and the snapshot signed again by the authority: CredentialError."""
    page = cbor.decode(bytes.fromhex(CREDENTIALS["feed"]))
    body, _, attestation = page[2]
    what = data.draw(st.sampled_from(("snapshot", "entry", "start")))
    if what == "snapshot":
        body = data.draw(cbor_mutation(body))
    elif what == "entry":
        at = data.draw(st.integers(0, len(page[4]) - 1))
        page[4][at] = data.draw(mutated(page[4][at], is_cbor=True))
        head = feed_genesis(AUTHORITY)
        for entry in page[4]:
            head = next_head(head, entry)
        body = cbor.encode([*cbor.decode(body)[:4], head, *cbor.decode(body)[5:]])
    else:
        page[3] = data.draw(st.sampled_from([1, 2, 3, 4, 2**32, 2**64 - 1]))
    page[2] = [body, parties()[0].signer.sign(body), attestation]
    mutant = cbor.encode(page)
    typed(lambda b: verify_feed(b, authority=AUTHORITY, now=CT, max_staleness=600), mutant)
    typed(lambda b: verify_page(b, authority=AUTHORITY, now=CT, previous=held_two()), mutant)
