"""W3C VC Data Integrity eddsa-jcs-2022 against the published W3C vector, and troth's export."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import base58
import pytest
import rfc8785

from tests.conftest import NOW
from tests.support.fixed_vault import FixedKeyVault
from tests.support.parties import Party, make_party, verified_feed
from tests.vectors.vc.generate import build as build_troth_vc
from troth.credentials import Attributes, TrustPolicy, VerifiedFeed
from troth.credentials.vc import (
    did_key_resolver,
    export_credential_vc,
    sign_eddsa_jcs_2022,
    troth_resolver,
    vc_credential_hash,
    verify_eddsa_jcs_2022,
    verify_troth_vc,
)
from troth.crypto import KeyType, sha256
from troth.crypto.private import PrivateKey, generate_private_key, load_private_key
from troth.errors import CredentialError, CredentialFailure
from troth.identity import Identifier, IdentityService, verify_history
from troth.node import init_node, open_node
from troth.vault import SoftwareVault

F = CredentialFailure

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
VECTOR: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "vc" / "eddsa_jcs_2022.json").read_text()
)


def vector_key() -> PrivateKey:
    secret = base58.b58decode(VECTOR["key_pair"]["secretKeyMultibase"][1:])
    assert secret[:2] == b"\x80\x26"  # ed25519-priv multicodec
    return load_private_key(KeyType.ED25519, secret[2:])


def test_canonical_forms_and_hashes() -> None:
    document = VECTOR["unsecured_document"]
    assert rfc8785.dumps(document).decode() == VECTOR["canonical_document"]
    assert sha256(rfc8785.dumps(document)).hex() == VECTOR["document_hash"]
    config = {**VECTOR["proof_options"], "@context": document["@context"]}
    assert rfc8785.dumps(config).decode() == VECTOR["canonical_proof_config"]
    assert sha256(rfc8785.dumps(config)).hex() == VECTOR["proof_config_hash"]


def test_sign_reproduces_the_published_proof() -> None:
    key = vector_key()
    signed: list[bytes] = []

    def sign(data: bytes) -> bytes:
        signed.append(data)
        return key.sign(data)

    secured = sign_eddsa_jcs_2022(VECTOR["unsecured_document"], VECTOR["proof_options"], sign)
    assert signed[0].hex() == VECTOR["hash_data"]
    assert key.sign(signed[0]).hex() == VECTOR["signature"]
    assert secured["proof"]["proofValue"] == VECTOR["proof_value"]
    assert key.public_key == did_key_resolver(VECTOR["proof_options"]["verificationMethod"], {})


def secured_vector() -> dict[str, Any]:
    document = dict(VECTOR["unsecured_document"])
    proof = {**VECTOR["proof_options"], "@context": document["@context"]}
    proof["proofValue"] = VECTOR["proof_value"]
    return {**document, "proof": proof}


def test_verify_published_document() -> None:
    unsecured = verify_eddsa_jcs_2022(secured_vector(), did_key_resolver)
    assert unsecured == VECTOR["unsecured_document"]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.__setitem__("name", "Alumnus Credential"),
        lambda d: d["credentialSubject"].__setitem__("alumniOf", "Another School"),
        lambda d: d["proof"].__setitem__("created", "2023-02-24T23:36:39Z"),
        lambda d: d["proof"].pop("@context"),
        lambda d: d["proof"].__setitem__(
            "proofValue", VECTOR["older_draft_variants"][0]["proof_value"]
        ),
    ],
    ids=["document", "subject", "created", "proof-context", "older-draft-signature"],
)
def test_tampering_is_rejected(mutate: Any) -> None:
    secured = json.loads(json.dumps(secured_vector()))
    mutate(secured)
    with pytest.raises(CredentialError) as raised:
        verify_eddsa_jcs_2022(secured, did_key_resolver)
    assert raised.value.reason is CredentialFailure.BAD_SIGNATURE


def test_malformed_proofs() -> None:
    for change in (
        {"cryptosuite": "eddsa-rdfc-2022"},
        {"proofPurpose": "authentication"},
        {"proofValue": "u" + VECTOR["proof_value"][1:]},
        {"proofValue": "z0OIl"},
        {"created": "yesterday"},
        {"verificationMethod": "did:key:z6Mk#other"},
    ):
        secured = secured_vector()
        secured["proof"] = {**secured["proof"], **change}
        with pytest.raises(CredentialError) as raised:
            verify_eddsa_jcs_2022(secured, did_key_resolver)
        assert raised.value.reason is CredentialFailure.MALFORMED
    with pytest.raises(CredentialError) as raised:
        verify_eddsa_jcs_2022({"proof": "nope"}, did_key_resolver)
    assert raised.value.reason is CredentialFailure.MALFORMED
    context_mismatch = secured_vector()
    context_mismatch["@context"] = ["https://www.w3.org/ns/credentials/v2"]
    with pytest.raises(CredentialError) as raised:
        verify_eddsa_jcs_2022(context_mismatch, did_key_resolver)
    assert raised.value.reason is CredentialFailure.MALFORMED


def test_troth_export_round_trip(troth_home: Path) -> None:
    init_node("authority")
    with open_node("authority") as node:
        service: IdentityService = node.identities
        service.create(now=NOW, name="acme")
        signer = service.signer("acme", now=NOW)
        subject = Identifier(b"\x07" * 32)
        secured = export_credential_vc(
            signer,
            credential_id=b"\x01" * 16,
            subject=subject,
            attributes=Attributes({"orders.access": frozenset({"read", "write"})}),
            valid_from=NOW,
            valid_until=NOW + 3600,
            now=NOW,
        )
        identity = signer.identity
        unsecured = verify_eddsa_jcs_2022(secured, troth_resolver(identity, at=NOW))
        assert unsecured["issuer"] == identity.identifier.did
        assert unsecured["credentialSubject"]["attributes"] == {"orders.access": ["read", "write"]}
        assert secured["proof"]["verificationMethod"].startswith(
            identity.identifier.did + "#signing-"
        )

        tampered = json.loads(json.dumps(secured))
        tampered["credentialSubject"]["attributes"]["orders.access"] = ["read", "write", "admin"]
        with pytest.raises(CredentialError) as caught:
            verify_eddsa_jcs_2022(tampered, troth_resolver(identity, at=NOW))
        assert caught.value.reason is CredentialFailure.BAD_SIGNATURE

        # an attestation of another key, or none, does not resolve
        other = json.loads(json.dumps(secured))
        other["proof"].pop("trothKeyAttestation")
        with pytest.raises(CredentialError) as raised:
            verify_eddsa_jcs_2022(other, troth_resolver(identity, at=NOW))
        assert raised.value.reason is CredentialFailure.ATTESTATION_INVALID
        service.create(now=NOW, name="other")
        foreign = service.signer("other", now=NOW).attestation
        other["proof"]["trothKeyAttestation"] = base64.urlsafe_b64encode(foreign).decode()
        with pytest.raises(CredentialError) as caught:
            verify_eddsa_jcs_2022(other, troth_resolver(identity, at=NOW))
        assert caught.value.reason is CredentialFailure.ATTESTATION_INVALID

        # after the authority rotates, its old signing key no longer resolves
        service.rotate("acme", now=NOW + 10)
        rotated = service.get("acme", now=NOW + 10).identity
        with pytest.raises(CredentialError) as raised:
            verify_eddsa_jcs_2022(secured, troth_resolver(rotated, at=NOW + 10))
        assert raised.value.reason is CredentialFailure.ATTESTATION_INVALID


# -- @context as a string, proof sets, proof chains (Data Integrity §2.1.1, §2.1.2, §4.5) -------


def did_key_of(key: PrivateKey) -> str:
    multikey = "z" + base58.b58encode(b"\xed\x01" + key.public_key.data).decode()
    return f"did:key:{multikey}#{multikey}"


def signed_by(key: PrivateKey, document: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """`document` secured by `key` (did:key), the proof options of the W3C vector."""
    options = {**VECTOR["proof_options"], "verificationMethod": did_key_of(key), **extra}
    return sign_eddsa_jcs_2022(document, options, key.sign)


def with_proofs(document: dict[str, Any], *proofs: dict[str, Any]) -> dict[str, Any]:
    return {**document, "proof": list(proofs)}


def test_string_context_on_either_side() -> None:
    key = vector_key()
    document = {**VECTOR["unsecured_document"], "@context": VC_CONTEXT}
    secured = signed_by(key, document)
    assert secured["proof"]["@context"] == VC_CONTEXT
    assert verify_eddsa_jcs_2022(secured, did_key_resolver) == document
    # the proof's @context (a string) is a prefix of the document's (a list): the verified
    # document carries the proof's, as signed (vc-di-eddsa §3.3.2 step 4)
    extended = {**secured, "@context": [VC_CONTEXT, "https://example.org/extra/v1"]}
    assert verify_eddsa_jcs_2022(extended, did_key_resolver)["@context"] == VC_CONTEXT
    # a list proof @context against a string document @context that it does not prefix
    listed = json.loads(json.dumps(secured_vector()))
    listed["@context"] = VC_CONTEXT
    with pytest.raises(CredentialError) as caught:
        verify_eddsa_jcs_2022(listed, did_key_resolver)
    assert "does not start with" in caught.value.detail
    for bad in (17, None, {"a": 1}):
        broken = {**secured, "proof": {**secured["proof"], "@context": bad}}
        with pytest.raises(CredentialError) as raised:
            verify_eddsa_jcs_2022(broken, did_key_resolver)
        assert raised.value.reason is CredentialFailure.MALFORMED


def test_proof_set_every_proof_verifies() -> None:
    document = VECTOR["unsecured_document"]
    first, second = vector_key(), generate_private_key(KeyType.ED25519)
    both = with_proofs(
        document, signed_by(first, document)["proof"], signed_by(second, document)["proof"]
    )
    assert verify_eddsa_jcs_2022(both, did_key_resolver) == document


def test_proof_set_with_one_bad_proof_refused() -> None:
    document = VECTOR["unsecured_document"]
    good = signed_by(vector_key(), document)["proof"]
    other = generate_private_key(KeyType.ED25519)
    bad = signed_by(other, {**document, "name": "Another"})["proof"]  # over another document
    for proofs in ((good, bad), (bad, good)):
        with pytest.raises(CredentialError) as caught:
            verify_eddsa_jcs_2022(with_proofs(document, *proofs), did_key_resolver)
        assert caught.value.reason is F.BAD_SIGNATURE


def test_proof_set_other_suites_not_judged_but_one_of_ours_required() -> None:
    document = VECTOR["unsecured_document"]
    good = signed_by(vector_key(), document)["proof"]
    foreign = {**good, "cryptosuite": "ecdsa-rdfc-2019", "proofValue": "zNotChecked"}
    assert verify_eddsa_jcs_2022(with_proofs(document, good, foreign), did_key_resolver)
    with pytest.raises(CredentialError) as caught:
        verify_eddsa_jcs_2022(with_proofs(document, foreign), did_key_resolver)
    assert "no DataIntegrityProof with eddsa-jcs-2022" in caught.value.detail
    for proofs in ([], [good, "not an object"]):
        with pytest.raises(CredentialError) as raised:
            verify_eddsa_jcs_2022({**document, "proof": proofs}, did_key_resolver)
        assert raised.value.reason is CredentialFailure.MALFORMED
    with pytest.raises(CredentialError) as caught:
        verify_eddsa_jcs_2022(with_proofs(document, *[good] * 9), did_key_resolver)
    assert caught.value.reason is F.OVER_LIMIT


def test_proof_chains_refused_as_unsupported() -> None:
    document = VECTOR["unsecured_document"]
    first = signed_by(vector_key(), document, id="urn:uuid:1")["proof"]
    second = signed_by(generate_private_key(KeyType.ED25519), document, previousProof="urn:uuid:1")
    with pytest.raises(CredentialError) as caught:
        verify_eddsa_jcs_2022(with_proofs(document, first, second["proof"]), did_key_resolver)
    assert "not supported" in caught.value.detail


# -- troth VCs: credentialStatus against the issuer's feed, windows with skew ------------------

VALID_FROM = NOW
VALID_UNTIL = NOW + 3600
POLICY_SKEW = 60


class VcWorld:
    """An authority (fixed keys), a member, and a VC the authority issued to the member."""

    def __init__(self) -> None:
        self.vault = FixedKeyVault([(KeyType.ED25519, bytes([n]) * 32) for n in range(1, 7)])
        self.authority: Party = make_party(self.vault, now=NOW)
        self.member: Party = make_party(self.vault, now=NOW)
        self.vc = export_credential_vc(
            self.authority.signer,
            credential_id=b"\x01" * 16,
            subject=self.member.identifier,
            attributes=Attributes({"orders.access": frozenset({"read", "write"})}),
            valid_from=VALID_FROM,
            valid_until=VALID_UNTIL,
            now=NOW,
        )
        self.hash = vc_credential_hash(self.vc["id"])
        self.policy = TrustPolicy(frozenset({self.authority.identifier}))

    def feed(self, *revoked: tuple[int, bytes], now: int = NOW) -> dict[Identifier, VerifiedFeed]:
        feed = verified_feed(self.authority, list(revoked), now=now)
        return {self.authority.identifier: feed}

    def verify(
        self,
        document: dict[str, Any] | None = None,
        feeds: dict[Identifier, VerifiedFeed] | None = None,
        now: int = NOW + 1,
    ) -> Any:
        return verify_troth_vc(
            self.vc if document is None else document,
            policy=self.policy,
            issuer=self.authority.identity,
            feeds=self.feed(now=now) if feeds is None else feeds,
            now=now,
        )

    def resigned(self, document: dict[str, Any]) -> dict[str, Any]:
        """`document` signed again by the authority (a document the issuer really made)."""
        options = {k: v for k, v in self.vc["proof"].items() if k not in ("proofValue", "@context")}
        return sign_eddsa_jcs_2022(document, options, self.authority.signer.sign)


def rejects(reason: CredentialFailure, call: Any) -> CredentialError:
    with pytest.raises(CredentialError) as caught:
        call()
    assert caught.value.reason is reason, caught.value
    return caught.value


def test_exported_vc_names_its_status_entry() -> None:
    world = VcWorld()
    authority = world.authority.identifier
    assert world.hash == sha256(b"troth.vc/1\x00" + world.vc["id"].encode())
    assert world.vc["credentialStatus"] == {
        "id": f"urn:troth:revocation:{authority.digest.hex()}#{world.hash.hex()}",
        "type": "TrothRevocationFeedEntry",
        "statusPurpose": "revocation",
        "revocationFeed": authority.did,
        "credentialHash": world.hash.hex(),
    }
    verified = world.verify()
    assert verified.credential_hash == world.hash
    assert verified.subject == world.member.identifier
    assert verified.within_skew is False
    assert verified.to_json()["attributes"] == {"orders.access": ["read", "write"]}


def test_revoked_credential_subject_or_issuer_refused() -> None:
    world = VcWorld()
    for revoked in (
        (1, world.hash),
        (2, world.member.identifier.digest),
        (2, world.authority.identifier.digest),
    ):
        rejects(F.REVOKED, lambda r=revoked: world.verify(feeds=world.feed(r, now=NOW + 1)))
    # a CBOR credential's hash with the same bytes as the id does not revoke the VC
    unrelated = sha256(world.vc["id"].encode())
    world.verify(feeds=world.feed((1, unrelated), now=NOW + 1))


def test_no_fresh_feed_of_the_issuer_refused() -> None:
    world = VcWorld()
    rejects(F.NO_FEED, lambda: world.verify(feeds={}))
    stranger = make_party(SoftwareVault(), now=NOW)
    foreign = verified_feed(stranger, now=NOW + 1)
    rejects(F.NO_FEED, lambda: world.verify(feeds={world.authority.identifier: foreign}))
    stale = world.feed(now=NOW)
    rejects(F.STALE_FEED, lambda: world.verify(feeds=stale, now=NOW + 301))


def test_status_must_be_this_vcs_entry() -> None:
    world = VcWorld()
    unsecured = {k: v for k, v in world.vc.items() if k != "proof"}
    other_hash = {**unsecured["credentialStatus"], "credentialHash": "00" * 32}
    for status in (None, other_hash, {**other_hash, "type": "BitstringStatusListEntry"}):
        document = {**unsecured, "credentialStatus": status}
        if status is None:
            del document["credentialStatus"]
        rejects(F.MALFORMED, lambda d=document: world.verify(world.resigned(d)))
    no_id = {k: v for k, v in unsecured.items() if k != "id"}
    rejects(F.MALFORMED, lambda: world.verify(world.resigned(no_id)))


def test_window_with_skew() -> None:
    world = VcWorld()
    assert world.verify(now=VALID_UNTIL - 1).within_skew is False
    assert world.verify(now=VALID_UNTIL + POLICY_SKEW - 1).within_skew is True
    rejects(F.EXPIRED, lambda: world.verify(now=VALID_UNTIL + POLICY_SKEW))
    early = world.verify(now=VALID_FROM - POLICY_SKEW)
    assert early.within_skew is True
    assert early.to_json()["within_skew"] is True
    rejects(F.NOT_YET_VALID, lambda: world.verify(now=VALID_FROM - POLICY_SKEW - 1))


def test_untrusted_or_wrong_issuer_history_refused() -> None:
    world = VcWorld()
    world.policy = TrustPolicy(frozenset({world.member.identifier}))
    rejects(F.UNTRUSTED_ISSUER, world.verify)
    world.policy = TrustPolicy(frozenset({world.authority.identifier}))
    rejects(
        F.ISSUER_INVALID,
        lambda: verify_troth_vc(
            world.vc, policy=world.policy, issuer=world.member.identity, feeds=world.feed(), now=NOW
        ),
    )


def test_vc_shape_checked_on_the_signed_document() -> None:
    world = VcWorld()
    unsecured = {k: v for k, v in world.vc.items() if k != "proof"}
    for change in (
        {"@context": ["https://example.org/other/v1"]},
        {"type": ["TrothAttributeCredential"]},
        {"credentialSubject": {"id": "did:example:123"}},
        {"credentialSubject": {"id": world.member.identifier.did, "attributes": {"Bad": "x"}}},
        {"credentialSubject": {"id": world.member.identifier.did, "attributes": {"a.b": [1]}}},
        {"validUntil": "tomorrow"},
    ):
        rejects(F.MALFORMED, lambda c=change: world.verify(world.resigned({**unsecured, **c})))


TROTH_VC: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "vc" / "troth_vc.json").read_text()
)["vectors"]


def test_troth_vc_vector_regenerates_byte_for_byte() -> None:
    assert build_troth_vc() == TROTH_VC


def test_troth_vc_vector_verifies() -> None:
    at = TROTH_VC["created_at"]
    authority = verify_history(bytes.fromhex(TROTH_VC["authority_history"]), now=at)
    document = TROTH_VC["document"]
    verify_eddsa_jcs_2022(document, troth_resolver(authority, at=at))
    assert vc_credential_hash(document["id"]).hex() == TROTH_VC["credential_hash"]
    assert document["credentialStatus"]["credentialHash"] == TROTH_VC["credential_hash"]
    assert document["credentialStatus"]["revocationFeed"] == authority.identifier.did
