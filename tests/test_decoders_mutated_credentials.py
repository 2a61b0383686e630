"""Mutation fuzzing of the decoders of identities, credentials, chains, revocation feeds,
troth's W3C VCs and policy bundles, including re-signed mutations.

The mutations and the rule every property checks: tests/support/decoder_vectors.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.decoder_vectors import (
    AT,
    AUTHORITY,
    CREDENTIALS,
    CT,
    ED,
    FUZZ,
    GATES,
    IDENTITY,
    VC,
    feed,
)
from tests.support.fixed_vault import FixedKeyVault
from tests.support.mutations import as_text, canonical, cbor_mutation, mutated, resigned_text, typed
from tests.support.parties import Party, make_party
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
from troth.credentials.revocation_held import feed_from_store
from troth.credentials.vc import vc_issuer, verify_troth_vc
from troth.crypto import KeyType, sha256
from troth.encoding import cbor
from troth.encoding.ijson import load_json
from troth.errors import CredentialError, CredentialFailure, DecodeError, DecodeProblem
from troth.gates import BundleStore, DecisionPoint, ServiceCall, ToolCall, verify_bundle
from troth.gates.bundles import VerifiedBundle, decode_bundle
from troth.identity import (
    Checkpoint,
    Identifier,
    VerifiedIdentity,
    verify_attestation,
    verify_history,
)
from troth.limits import MAX_VC_BYTES
from troth.vault import KeyPurpose

# -- identity ---------------------------------------------------------------------------------


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
