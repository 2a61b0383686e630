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
from troth.credentials import Attributes
from troth.credentials.vc import (
    did_key_resolver,
    export_credential_vc,
    sign_eddsa_jcs_2022,
    troth_resolver,
    verify_eddsa_jcs_2022,
)
from troth.crypto import KeyType, sha256
from troth.crypto.private import PrivateKey, load_private_key
from troth.errors import CredentialError, CredentialFailure
from troth.identity import Identifier, IdentityService
from troth.node import init_node, open_node

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
    with pytest.raises(CredentialError):
        verify_eddsa_jcs_2022(secured, did_key_resolver)


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
        with pytest.raises(CredentialError):
            verify_eddsa_jcs_2022(secured, did_key_resolver)
    with pytest.raises(CredentialError):
        verify_eddsa_jcs_2022({"proof": "nope"}, did_key_resolver)
    context_mismatch = secured_vector()
    context_mismatch["@context"] = ["https://www.w3.org/ns/credentials/v2"]
    with pytest.raises(CredentialError):
        verify_eddsa_jcs_2022(context_mismatch, did_key_resolver)


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
        with pytest.raises(CredentialError):
            verify_eddsa_jcs_2022(other, troth_resolver(identity, at=NOW))
        service.create(now=NOW, name="other")
        foreign = service.signer("other", now=NOW).attestation
        other["proof"]["trothKeyAttestation"] = base64.urlsafe_b64encode(foreign).decode()
        with pytest.raises(CredentialError) as caught:
            verify_eddsa_jcs_2022(other, troth_resolver(identity, at=NOW))
        assert caught.value.reason is CredentialFailure.ATTESTATION_INVALID

        # after the authority rotates, its old signing key no longer resolves
        service.rotate("acme", now=NOW + 10)
        rotated = service.get("acme", now=NOW + 10).identity
        with pytest.raises(CredentialError):
            verify_eddsa_jcs_2022(secured, troth_resolver(rotated, at=NOW + 10))
