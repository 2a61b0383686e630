"""Credential, delegation and chain formats (docs/formats.md, "Credentials").

    body       = ["troth.credential", 1, id (16 bytes), subject (32), issuer (32),
                  attributes, created_at, not_before, expires_at, depth,
                  null / [parent credential hash (32), purpose, [caveat, ...]]]
    credential = [body (bstr), signature (bstr), issuer's signing-key attestation (bstr)]
    chain      = ["troth.credential.chain", 1, [credential, ...], [issuer history, ...]]

The signature is made by the issuer's signing purpose key over the body bytes; the attestation
proves that key belongs to the issuer, so a verifier needs only the issuer's change history.
A credential's hash is SHA-256(body); a delegation names its parent by that hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from troth import limits
from troth.credentials.attributes import Attributes
from troth.crypto import sha256
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem
from troth.identity import Identifier, UnverifiedHistory

__all__ = [
    "CHAIN_TYPE",
    "CREDENTIAL_TYPE",
    "STORED_LATEST",
    "CredentialBody",
    "CredentialChain",
    "Delegation",
    "SignedCredential",
]

CREDENTIAL_TYPE: Final = "troth.credential"
CHAIN_TYPE: Final = "troth.credential.chain"
VERSION: Final = 1
_LARGEST: Final = 2**64 - 1  # the largest integer a CBOR reader takes
STORED_LATEST: Final = 2**63 - 1
"""The latest expiry a store records for a held chain (a signed 64-bit INTEGER): a credential may
expire as late as 2**64 - 1, no clock reads past this (review 61a, credentials 1)."""


def _text(value: Any, what: str, limit: int) -> str:
    text = cbor.expect_text(value, what)
    if len(text) > limit:
        raise DecodeError(f"{what}: longer than {limit} characters", DecodeProblem.OVER_LIMIT)
    return text


def _check_unicode(text: str) -> None:
    """ValueError for text a credential cannot carry (a lone surrogate: no UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a purpose or caveat is not valid Unicode text") from None


@dataclass(frozen=True, slots=True)
class Delegation:
    """What a delegation link adds: its parent, why, and the conditions it imposes."""

    parent: bytes
    purpose: str
    caveats: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if type(self.parent) is not bytes or len(self.parent) != 32:  # review 61a, credentials 4
            raise ValueError("a parent credential hash is 32 bytes")
        if type(self.purpose) is not str or not all(type(c) is str for c in self.caveats):
            raise ValueError("a purpose and caveats are text")
        if len(self.purpose) > limits.MAX_PURPOSE_TEXT:
            raise ValueError(f"purpose longer than {limits.MAX_PURPOSE_TEXT} characters")
        if len(self.caveats) > limits.MAX_CAVEATS:
            raise ValueError(f"more than {limits.MAX_CAVEATS} caveats")
        for caveat in self.caveats:
            if not caveat.strip() or len(caveat) > limits.MAX_CAVEAT_TEXT:
                raise ValueError(f"a caveat is 1-{limits.MAX_CAVEAT_TEXT} characters")
        for text in (self.purpose, *self.caveats):  # carried as UTF-8 (review 53e, attributes 2)
            if not text.isascii():
                _check_unicode(text)


@dataclass(frozen=True, slots=True, init=False)
class CredentialBody:
    """The signed body of a credential (docs/formats.md, "Credentials"): its id, subject,
    issuer, attributes, validity window and, for a delegation link, what it delegates.
    Checked against the limits when made and when decoded."""

    id: bytes
    subject: Identifier
    issuer: Identifier
    attributes: Attributes
    created_at: int
    not_before: int
    expires_at: int
    depth: int
    delegation: Delegation | None

    def __init__(
        self,
        id: bytes,
        subject: Identifier,
        issuer: Identifier,
        attributes: Attributes,
        created_at: int,
        not_before: int,
        expires_at: int,
        depth: int,
        delegation: Delegation | None,
    ) -> None:
        if type(id) is not bytes or len(id) != 16:  # a str of 16 was signed (review 61a, 4)
            raise ValueError("a credential id is 16 bytes")
        # what a reader takes (review 56a, credentials 1: a bool or a negative time was signed)
        if not (
            type(created_at) is int
            and type(not_before) is int
            and type(expires_at) is int
            and type(depth) is int
        ):
            raise ValueError("times and depth are integers")
        if min(created_at, not_before) < 0 or max(created_at, expires_at) > _LARGEST:
            raise ValueError(f"times are Unix seconds, 0 to {_LARGEST}")
        if not not_before <= expires_at:
            raise ValueError("not_before is after expires_at")
        if not 0 <= depth <= limits.MAX_DELEGATION_LINKS:
            raise ValueError(f"depth must be 0-{limits.MAX_DELEGATION_LINKS}")
        # frozen: the fields are set through their slots (the generated __init__ goes through
        # object.__setattr__, ~3x slower; every link verified decodes one)
        _set_body_id(self, id)
        _set_body_subject(self, subject)
        _set_body_issuer(self, issuer)
        _set_body_attributes(self, attributes)
        _set_body_created_at(self, created_at)
        _set_body_not_before(self, not_before)
        _set_body_expires_at(self, expires_at)
        _set_body_depth(self, depth)
        _set_body_delegation(self, delegation)

    def encode(self) -> bytes:
        delegation = self.delegation
        return cbor.encode(
            [
                CREDENTIAL_TYPE,
                VERSION,
                self.id,
                self.subject.digest,
                self.issuer.digest,
                self.attributes.to_cbor(),
                self.created_at,
                self.not_before,
                self.expires_at,
                self.depth,
                None
                if delegation is None
                else [delegation.parent, delegation.purpose, list(delegation.caveats)],
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> CredentialBody:
        value = cbor.expect_array(
            cbor.decode(data, max_bytes=limits.MAX_CREDENTIAL_BYTES), "credential"
        )
        cbor.expect_header(value, CREDENTIAL_TYPE, VERSION, "credential")
        if len(value) != 11:
            raise DecodeError(f"credential: expected 11 elements, got {len(value)}")
        delegation = None
        if value[10] is not None:
            parent, purpose, caveats = cbor.expect_array(value[10], "delegation", 3)
            caveat_list = cbor.expect_array(caveats, "caveats")
            if len(caveat_list) > limits.MAX_CAVEATS:
                raise DecodeError("too many caveats", DecodeProblem.OVER_LIMIT)
            try:
                delegation = Delegation(
                    cbor.expect_bytes(parent, "parent", 32),
                    _text(purpose, "purpose", limits.MAX_PURPOSE_TEXT),
                    tuple(_text(c, "caveat", limits.MAX_CAVEAT_TEXT) for c in caveat_list),
                )
            except ValueError as exc:
                raise DecodeError(f"delegation: {exc}") from None
        _, _, id_, subject, issuer, attributes, created_at, not_before, expires_at, depth, _ = value
        if not (  # hot path: exact types at once; on failure each field names its own error
            type(id_) is bytes
            and len(id_) == 16
            and type(subject) is bytes
            and len(subject) == 32
            and type(issuer) is bytes
            and len(issuer) == 32
            and type(created_at) is int
            and type(not_before) is int
            and type(expires_at) is int
            and type(depth) is int
            and min(created_at, not_before, expires_at, depth) >= 0
        ):
            cbor.expect_bytes(id_, "id", 16)
            cbor.expect_bytes(subject, "subject", 32)
            cbor.expect_bytes(issuer, "issuer", 32)
            Attributes.from_cbor(attributes)  # its errors first, as in the fields' order
            cbor.expect_int(created_at, "created_at")
            cbor.expect_int(not_before, "not_before")
            cbor.expect_int(expires_at, "expires_at")
            cbor.expect_int(depth, "depth")
        try:  # __post_init__ checks the window and the depth
            return cls(
                id_,
                Identifier(subject),
                Identifier(issuer),
                Attributes.from_cbor(attributes),
                created_at,
                not_before,
                expires_at,
                depth,
                delegation,
            )
        except ValueError as exc:
            raise DecodeError(f"credential: {exc}") from None


(
    _set_body_id,
    _set_body_subject,
    _set_body_issuer,
    _set_body_attributes,
    _set_body_created_at,
    _set_body_not_before,
    _set_body_expires_at,
    _set_body_depth,
    _set_body_delegation,
) = (vars(CredentialBody)[name].__set__ for name in CredentialBody.__slots__)  # slot descriptors


@dataclass(frozen=True, slots=True)
class SignedCredential:
    """A credential as carried: not verified."""

    body: bytes
    signature: bytes
    attestation: bytes

    @property
    def hash(self) -> bytes:
        return sha256(self.body)

    def to_cbor(self) -> list[bytes]:
        return [self.body, self.signature, self.attestation]

    def encode(self) -> bytes:
        return cbor.encode(self.to_cbor())

    @classmethod
    def from_cbor(cls, value: Any, what: str = "credential") -> SignedCredential:
        body, signature, attestation = cbor.expect_array(value, what, 3)
        return cls(
            cbor.expect_bytes(body, f"{what} body"),
            cbor.expect_bytes(signature, f"{what} signature", 64),
            cbor.expect_bytes(attestation, f"{what} attestation"),
        )


_new: Final = object.__new__
_set_signed_body, _set_signed_signature, _set_signed_attestation = (
    vars(SignedCredential)[name].__set__ for name in SignedCredential.__slots__
)


@dataclass(frozen=True, slots=True)
class CredentialChain:
    """Credentials root first (the root issued by an authority), and the change histories of
    every issuer in the chain. Not verified: `troth.credentials.verify` does that."""

    credentials: tuple[SignedCredential, ...]
    histories: tuple[bytes, ...]

    def encode(self) -> bytes:
        return cbor.encode(
            [CHAIN_TYPE, VERSION, [c.to_cbor() for c in self.credentials], list(self.histories)]
        )

    @classmethod
    def decode(cls, data: bytes) -> CredentialChain:
        value = cbor.expect_array(cbor.decode(data, max_bytes=limits.MAX_CHAIN_BYTES), "chain")
        cbor.expect_header(value, CHAIN_TYPE, VERSION, "chain")
        if len(value) != 4:
            raise DecodeError(f"chain: expected 4 elements, got {len(value)}")
        entries = cbor.expect_array(value[2], "credentials")
        histories = cbor.expect_array(value[3], "histories")
        if not entries:
            raise DecodeError("chain: no credentials")
        if len(entries) > limits.MAX_DELEGATION_LINKS + 1 or len(histories) > len(entries) + 1:
            raise DecodeError("chain: too many links or histories", DecodeProblem.OVER_LIMIT)
        credentials = []
        for index, entry in enumerate(entries):
            # hot path: exact types checked inline, the message built only on failure
            if type(entry) is list and len(entry) == 3:
                body, signature, attestation = entry
                if (
                    type(body) is bytes
                    and type(signature) is bytes
                    and len(signature) == 64
                    and type(attestation) is bytes
                ):
                    credential = _new(SignedCredential)  # through its slots (the generated
                    _set_signed_body(credential, body)  # frozen __init__ goes through
                    _set_signed_signature(credential, signature)  # object.__setattr__)
                    _set_signed_attestation(credential, attestation)
                    credentials.append(credential)
                    continue
            credentials.append(SignedCredential.from_cbor(entry, f"credential {index}"))
        for history in histories:
            cbor.expect_bytes(history, "history")
        chain = _new(cls)
        _set_chain_credentials(chain, tuple(credentials))
        _set_chain_histories(chain, tuple(histories))
        return chain

    def extended(self, link: SignedCredential, issuer_history: bytes) -> CredentialChain:
        """This chain with a delegation link appended, and the delegator's history in place of
        any other history of the delegator the chain carried (review 63n, credentials 1: a
        chain handed to the delegate with an older history of hers, or any other, beside what
        its issuers need was extended with her current one, and every verifier refused the
        delegation she signed, `malformed`: two histories for one identity)."""
        delegator = _history_identifier(issuer_history)
        kept = tuple(
            h for h in self.histories if h == issuer_history or _history_identifier(h) != delegator
        )
        if issuer_history not in kept:
            kept = (*kept, issuer_history)
        return CredentialChain((*self.credentials, link), kept)


def _history_identifier(history: bytes) -> bytes | None:
    """The identifier digest of a history's bytes (None: it does not decode; kept as it was,
    for the verifier to refuse)."""
    try:
        return UnverifiedHistory.decode(history).identifier_digest
    except DecodeError:
        return None


_set_chain_credentials, _set_chain_histories = (
    vars(CredentialChain)[name].__set__ for name in CredentialChain.__slots__
)
