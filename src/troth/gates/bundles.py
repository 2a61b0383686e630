"""Signed policy bundles (docs/formats.md, "Policy bundles").

    body   = ["troth.policy.bundle", 1, authority (32), signer (32), revision, issued_at,
              expires_at, policies (text), schema fragment (text),
              {tool name: input schema as RFC 8785 canonical JSON text},
              {service name: [method, ...] (sorted, unique)}]
    bundle = ["troth.policy.bundle.signed", 1, body (bstr), signature (64), signer's
              signing-key attestation, signer's history, signer's credential chain / null]

The signer is the authority itself (chain null) or an identity whose chain from that authority
grants `troth.role` = `policy-admin`. A bundle verifies when: it decodes canonically; its
authority is a trust anchor; the signature is by the signer's signing key, attested under the
carried history and valid at `issued_at`, which the bundle does not outlive; `issued_at` is
not in the future and the bundle lives at most MAX_POLICY_BUNDLE_TTL; the authority's feed is
complete and fresh, and supersedes neither the signer's history nor (revoking any link or
identity of it) the signer's chain, checked at `issued_at` with the current feed; and the
policies compile (troth.gates.policies).

A verified bundle keeps what stays in force only while the authority's current feed allows it
(`VerifiedBundle.check_signer`, at every decision): its signer's chain links and identities
(none revoked), and the histories its signer and its chain's issuers were verified with (none
superseded: a signer that rotated, e.g. after its key was stolen, no longer vouches for what
its old history signed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import InitVar, dataclass, field
from typing import Any, Final

from troth import limits
from troth.authority.core import ROLE
from troth.credentials import (
    ChainVerifier,
    CredentialBody,
    CredentialChain,
    VerifiedCredential,
    VerifiedFeed,
)
from troth.credentials.revocation_held import feed_checkpoints
from troth.crypto import sha256
from troth.encoding import cbor
from troth.encoding.ijson import load_json
from troth.errors import (
    CredentialError,
    CredentialFailure,
    DecodeError,
    DecodeProblem,
    IdentityError,
    IdentityFailure,
    PolicyError,
    PolicyFailure,
)
from troth.gates.arguments import check_bundle_inputs, check_policy_inputs
from troth.gates.policies import CompiledPolicies, compile_policies
from troth.gates.toolschema import canonical_json, check_name
from troth.identity import (
    Checkpoints,
    Identifier,
    Signer,
    VerifiedIdentity,
    verify_history,
    verify_signed_by,
)
from troth.sealed import sealed

__all__ = [
    "BUNDLE_TYPE",
    "DEFAULT_POLICY_BUNDLE_TTL",
    "POLICY_ADMIN",
    "SIGNED_BUNDLE_TYPE",
    "BundleBody",
    "KnownIn",
    "VerifiedBundle",
    "bundle_claims",
    "create_bundle",
    "decode_bundle",
    "default_bundle_ttl",
    "load_stored_bundle",
    "resign_bundle",
    "verify_bundle",
]

BUNDLE_TYPE: Final = "troth.policy.bundle"
SIGNED_BUNDLE_TYPE: Final = "troth.policy.bundle.signed"
VERSION: Final = 1
POLICY_ADMIN: Final = "policy-admin"
"""The `troth.role` value that lets a member sign its authority's policy bundles."""
DEFAULT_POLICY_BUNDLE_TTL: Final = 7 * 86_400
"""How long a bundle lives when its signer names no ttl, unless its signer's key or chain
expires first (`default_bundle_ttl`)."""
_P = PolicyFailure
_DECODE_REASONS: Final = {
    DecodeProblem.UNKNOWN_TYPE: _P.UNKNOWN_TYPE,
    DecodeProblem.UNKNOWN_VERSION: _P.UNKNOWN_VERSION,
    DecodeProblem.OVER_LIMIT: _P.OVER_LIMIT,
}
_CHAIN_REASONS: Final = {
    CredentialFailure.REVOKED: _P.SIGNER_REVOKED,
    CredentialFailure.SUPERSEDED: _P.SIGNER_SUPERSEDED,
}
_VERIFIED: Final = object()
Known = Callable[[VerifiedIdentity], None]
KnownIn = Callable[[VerifiedIdentity, Identifier], None]
"""A `Known` told the authority of the bundle too (the root of the signer's chain, verified):
it has standing over the signer's history (docs/formats.md, "A stored copy from a
checkpoint"; review 30a, bundles 1)."""


@dataclass(frozen=True, slots=True)
class BundleBody:
    """What a bundle's signer states (decoded, not verified)."""

    authority: Identifier
    signer: Identifier
    revision: int
    issued_at: int
    expires_at: int
    policies: str
    schema: str
    tools: Mapping[str, str]
    services: Mapping[str, tuple[str, ...]]

    def encode(self) -> bytes:
        return cbor.encode(
            [
                BUNDLE_TYPE,
                VERSION,
                self.authority.digest,
                self.signer.digest,
                self.revision,
                self.issued_at,
                self.expires_at,
                self.policies,
                self.schema,
                dict(self.tools),
                {name: list(methods) for name, methods in self.services.items()},
            ]
        )

    @classmethod
    def decode(cls, data: bytes, *, schemas: bool = True) -> BundleBody:
        """The body in `data`; with `schemas` False its tool schemas are taken as the texts
        they are, not parsed (`bundle_claims`)."""
        value = cbor.expect_array(
            cbor.decode(data, max_bytes=limits.MAX_POLICY_BUNDLE_BYTES), "policy bundle", 11
        )
        cbor.expect_header(value, BUNDLE_TYPE, VERSION, "policy bundle")
        policies = cbor.expect_text(value[7], "policies")
        schema = cbor.expect_text(value[8], "schema")
        if len(policies) > limits.MAX_POLICY_TEXT or len(schema) > limits.MAX_POLICY_SCHEMA_TEXT:
            raise DecodeError("policy bundle: text over its limit", DecodeProblem.OVER_LIMIT)
        body = cls(
            Identifier(cbor.expect_bytes(value[2], "authority", 32)),
            Identifier(cbor.expect_bytes(value[3], "signer", 32)),
            _revision(value[4]),
            cbor.expect_int(value[5], "issued_at"),
            cbor.expect_int(value[6], "expires_at"),
            policies,
            schema,
            _decode_tools(value[9], schemas=schemas),
            _decode_services(value[10]),
        )
        if body.expires_at <= body.issued_at:
            raise DecodeError("policy bundle: expires before it is issued")
        return body

    def to_json(self) -> dict[str, Any]:
        return {
            "authority": str(self.authority),
            "signer": str(self.signer),
            "revision": self.revision,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "tools": sorted(self.tools),
            "services": {name: list(methods) for name, methods in self.services.items()},
        }


def _decode_tools(value: Any, *, schemas: bool) -> dict[str, str]:
    if type(value) is not dict:
        raise DecodeError("tools: expected a map")
    if len(value) > limits.MAX_TOOLS:
        raise DecodeError("tools: too many", DecodeProblem.OVER_LIMIT)
    tools: dict[str, str] = {}
    for name, text in value.items():
        schema_text = cbor.expect_text(text, "tool schema")
        if not schemas:
            tools[name] = schema_text
            continue
        try:
            check_name(name)
            parsed = load_json(schema_text.encode(), max_bytes=limits.MAX_TOOL_SCHEMA_BYTES)
            canonical = canonical_json(parsed)
        except PolicyError as exc:
            raise DecodeError(f"tool {name!r}: {exc}") from None
        if canonical != schema_text:
            raise DecodeError(
                f"tool {name}: schema not canonical JSON", DecodeProblem.NON_CANONICAL
            )
        tools[name] = schema_text
    return tools


def _decode_services(value: Any) -> dict[str, tuple[str, ...]]:
    if type(value) is not dict:
        raise DecodeError("services: expected a map")
    if len(value) > limits.MAX_SERVICES:
        raise DecodeError("services: too many", DecodeProblem.OVER_LIMIT)
    services: dict[str, tuple[str, ...]] = {}
    for name, methods in value.items():
        listed = [cbor.expect_text(m, "method") for m in cbor.expect_array(methods, "methods")]
        if listed != sorted(set(listed)):
            raise DecodeError(f"service {name}: methods not sorted or repeated")
        services[name] = tuple(listed)
    return services


@dataclass(frozen=True, slots=True)
class _Signed:
    body: bytes
    signature: bytes
    attestation: bytes
    history: bytes
    chain: bytes | None

    def encode(self) -> bytes:
        return cbor.encode(
            [
                SIGNED_BUNDLE_TYPE,
                VERSION,
                self.body,
                self.signature,
                self.attestation,
                self.history,
                self.chain,
            ]
        )


def _decode_signed(data: bytes, *, schemas: bool = True) -> tuple[_Signed, BundleBody]:
    """The signed envelope and its body (`schemas`: `BundleBody.decode`)."""
    try:
        value = cbor.expect_array(
            cbor.decode(data, max_bytes=limits.MAX_POLICY_BUNDLE_BYTES), "signed bundle", 7
        )
        cbor.expect_header(value, SIGNED_BUNDLE_TYPE, VERSION, "signed bundle")
        chain = None if value[6] is None else cbor.expect_bytes(value[6], "chain")
        signed = _Signed(
            cbor.expect_bytes(value[2], "body"),
            cbor.expect_bytes(value[3], "signature", 64),
            cbor.expect_bytes(value[4], "attestation"),
            cbor.expect_bytes(value[5], "history"),
            chain,
        )
        return signed, _decode_body(signed.body, schemas=schemas)
    except DecodeError as exc:
        raise _decode_refusal(exc) from None


def _decode_body(data: bytes, *, schemas: bool = True) -> BundleBody:
    try:
        return BundleBody.decode(data, schemas=schemas)
    except DecodeError as exc:
        raise _decode_refusal(exc) from None


def _decode_refusal(exc: DecodeError) -> PolicyError:
    return PolicyError(_DECODE_REASONS.get(exc.problem, _P.MALFORMED), str(exc))


def decode_bundle(data: bytes) -> BundleBody:
    """A bundle's body, decoded but NOT verified (to show what a file claims)."""
    return _decode_signed(data)[1]


def bundle_claims(data: bytes) -> BundleBody:
    """What a bundle claims (its authority, signer, revision, lifetime), decoded but NOT
    verified, and its tool schemas not parsed: read on every bundle a peer sends, before its
    signature is checked (review 54h, bundles 1-2: a peer's junk, or the held bundle sent
    again, had each of its up to MAX_TOOLS schemas parsed up to three times first). PolicyError
    when it does not decode; `decode_bundle` checks the schemas too."""
    return _decode_signed(data, schemas=False)[1]


@sealed  # no pickle, no __setstate__ (review 64n, api 4)
@dataclass(frozen=True, slots=True, eq=False)
class VerifiedBundle:
    """A verified bundle: its body, its compiled policies, and what the current feed must
    never revoke for it to stay in force (its signer's chain links and identities) nor
    supersede (`signer_histories`: the signer's history, then those its chain's issuers
    carried). `digest` is the SHA-256 of `data`."""

    body: BundleBody
    compiled: CompiledPolicies
    signer_links: frozenset[bytes]
    signer_identities: frozenset[bytes]
    signer_histories: tuple[VerifiedIdentity, ...] = field(repr=False)
    data: bytes = field(repr=False)
    digest: bytes = field(repr=False)
    _token: InitVar[object]  # not a field: replace() cannot pass it on (review 51e, verified 11)

    def __post_init__(self, _token: object) -> None:
        if _token is not _VERIFIED:
            raise TypeError("VerifiedBundle is made by verify_bundle or load_stored_bundle")

    def revoked_by(self, feed: VerifiedFeed) -> bool:
        """Whether `feed` revokes a link or an identity of the signer's chain."""
        credentials, identities = feed.revoked_credentials, feed.revoked_identities
        return any(h in credentials for h in self.signer_links) or any(
            d in identities for d in self.signer_identities
        )

    def superseded_by(self, feed: VerifiedFeed) -> str | None:
        """Why `feed` supersedes the signer's history or a history its chain carried (the
        owner rotated since: docs/credentials.md, "Superseded histories"), or None."""
        for identity in self.signer_histories:
            try:
                feed.check_current(identity)
            except CredentialError as exc:
                return exc.detail
        return None

    def unbound_by(self, feed: VerifiedFeed) -> str | None:
        """Why `feed` (the authority's) does not tie a history the bundle was verified with to
        its identifier (one presented from a checkpoint it names no change of: another
        authority's word: review 63m, gates 1), or None."""
        for identity in self.signer_histories:
            if not feed.binds(identity):
                return _unbound(identity, feed.authority)
        return None

    def check_signer(self, feed: VerifiedFeed) -> None:
        """Raise PolicyError unless the signer still vouches for this bundle by `feed` (the
        authority's current feed): SIGNER_REVOKED when it revokes a link or identity of the
        signer's chain, SIGNER_SUPERSEDED when it supersedes a history the bundle was verified
        with, SIGNER_INVALID when it does not bind one (`unbound_by`)."""
        if self.revoked_by(feed):
            raise PolicyError(_P.SIGNER_REVOKED, str(self.body.signer))
        superseded = self.superseded_by(feed)
        if superseded is not None:
            raise PolicyError(_P.SIGNER_SUPERSEDED, superseded)
        unbound = self.unbound_by(feed)
        if unbound is not None:
            raise PolicyError(_P.SIGNER_INVALID, unbound)

    def signer_in_force(self, feed: VerifiedFeed) -> bool:
        """Whether `check_signer(feed)` passes."""
        return (
            not self.revoked_by(feed)
            and self.superseded_by(feed) is None
            and self.unbound_by(feed) is None
        )

    def to_json(self) -> dict[str, Any]:
        return {
            **self.body.to_json(),
            "digest": self.digest.hex(),
            "policies": list(self.compiled.policy_ids),
        }


def _revision(value: Any) -> int:
    revision = cbor.expect_int(value, "revision", 1)
    if revision > limits.MAX_POLICY_REVISION:
        raise DecodeError("policy bundle: revision over 2^53 - 1", DecodeProblem.OVER_LIMIT)
    return revision


def _check_revision(revision: int, *, by_authority: bool) -> None:
    """A member's revision stays below the authority's range (troth.limits)."""
    top = limits.MAX_POLICY_REVISION if by_authority else limits.MAX_MEMBER_POLICY_REVISION
    if not 1 <= revision <= top:
        raise PolicyError(
            _P.MALFORMED if by_authority else _P.NOT_POLICY_ADMIN,
            f"a revision {'' if by_authority else 'by a policy-admin '}is 1 to {top}",
        )


def create_bundle(
    signer: Signer,
    *,
    authority: Identifier,
    policies: str,
    schema: str,
    tools: Mapping[str, Any],
    revision: int,
    now: int,
    ttl: int,
    services: Mapping[str, Iterable[str]] | None = None,
    chain: bytes | None = None,
) -> bytes:
    """Compile (refusing what does not validate, with the validator's messages), then sign a
    bundle as `signer`: the authority itself (no chain), or a policy-admin whose credential
    `chain` is from `authority`. It expires after `ttl` seconds. Arguments of other types
    are an ArgumentError (review 54n, api 11-12)."""
    check_bundle_inputs(signer, revision, now, ttl)
    check_policy_inputs("create_bundle", policies, schema, tools, services)
    _check_revision(revision, by_authority=signer.identity.identifier == authority)
    # nor past its signer's primary key, which every node loading it refuses from then on
    # (`Signer.key_end`; review 75l, issuance 3)
    if not 0 < ttl <= limits.MAX_POLICY_BUNDLE_TTL or now + ttl > _keys_end(signer):
        raise PolicyError(
            _P.EXPIRED,
            f"a bundle lives 1-{limits.MAX_POLICY_BUNDLE_TTL} s and not past its key (its "
            f"signing key ends at {signer.expires_at}, its primary key at {signer.key_end})",
        )
    is_authority = signer.identity.identifier == authority
    if is_authority != (chain is None):
        raise PolicyError(_P.NOT_POLICY_ADMIN, "only a policy-admin's bundle carries a chain")
    if chain is not None:
        chain_expires = _check_admin_chain(chain, signer.identity.identifier, authority)
        if now + ttl > chain_expires:
            raise PolicyError(
                _P.EXPIRED,
                f"a bundle does not outlive its signer's chain (it expires at {chain_expires})",
            )
    compiled = compile_policies(policies, schema, tools, services)
    body = BundleBody(
        authority,
        signer.identity.identifier,
        revision,
        now,
        now + ttl,
        policies,
        schema,
        {name: compiled.tools[name].canonical for name in compiled.tools},
        {name: tuple(sorted(methods)) for name, methods in compiled.services.items()},
    ).encode()
    signed = _Signed(
        body, signer.sign(body), signer.attestation, signer.identity.history, chain
    ).encode()
    if len(signed) > limits.MAX_POLICY_BUNDLE_BYTES:  # what every reader refuses first
        raise PolicyError(
            _P.OVER_LIMIT,
            f"the signed bundle is {len(signed)} bytes, over {limits.MAX_POLICY_BUNDLE_BYTES} "
            "(MAX_POLICY_BUNDLE_BYTES): fewer or smaller tools, policies or schema",
        )
    return signed


def default_bundle_ttl(
    signer: Signer, *, authority: Identifier, now: int, chain: bytes | None = None
) -> int:
    """The ttl of a bundle whose signer names none: DEFAULT_POLICY_BUNDLE_TTL, or less when
    `signer`'s key or (a policy-admin's) `chain` expires sooner, so the bundle ends with it
    instead of being refused by `create_bundle` (review 47a, defaults 1: a policy-admin's 1 h
    credential could never sign a 7 d bundle). PolicyError when the chain cannot make `signer`
    `authority`'s policy-admin; a ttl below 1 when the key or chain has already expired (which
    `create_bundle` refuses). Nor past its primary key's end (review 75l, issuance 3)."""
    ends = _keys_end(signer)
    if chain is not None:
        ends = min(ends, _check_admin_chain(chain, signer.identity.identifier, authority))
    return min(DEFAULT_POLICY_BUNDLE_TTL, ends - now)


def _keys_end(signer: Signer) -> int:
    """When what `signer` signs ends at the latest: its signing key's end, or its primary
    key's (`Signer.key_end`) when sooner."""
    return min(signer.expires_at, signer.key_end)


def resign_bundle(data: bytes, signer: Signer, *, now: int) -> bytes:
    """The authority's own bundle `data` signed again by `signer` — the authority under its
    newer history, after a rotation made what its older history signed out of force — one
    revision up, with the same policies, schema, tools and services and the same lifetime from
    `now` (within its key's). PolicyError unless `signer` is the bundle's authority and signer,
    or when the revision is already the top one (a rotated authority then signs a bundle of
    its choice: any revision replaces one out of force), or when it expired."""
    _signed, body = _decode_signed(data)
    if now >= body.expires_at:
        raise PolicyError(_P.EXPIRED, "the bundle expired: sign a new one")
    if not body.authority == body.signer == signer.identity.identifier:
        raise PolicyError(
            _P.NOT_POLICY_ADMIN, "only the authority re-signs, and only the bundles it signed"
        )
    if body.revision >= limits.MAX_POLICY_REVISION:
        raise PolicyError(_P.ROLLBACK, "the bundle is at the top revision: sign a new one")
    lifetime = body.expires_at - body.issued_at
    return create_bundle(
        signer,
        authority=body.authority,
        policies=body.policies,
        schema=body.schema,
        tools={name: json.loads(text) for name, text in body.tools.items()},
        revision=body.revision + 1,
        now=now,
        ttl=max(1, min(lifetime, _keys_end(signer) - now, limits.MAX_POLICY_BUNDLE_TTL)),
        services=body.services,
    )


_CAVEATED: Final = (
    "a caveated chain grants no policy-admin role (a caveat bounds tool calls; nothing can "
    "evaluate it on a bundle, so it fails closed)"
)


def _check_admin_chain(chain: bytes, signer: Identifier, authority: Identifier) -> int:
    """An early, structural refusal of a chain that cannot make `signer` a policy-admin;
    returns when the chain expires (its earliest link's expiry)."""
    try:
        bodies = [CredentialBody.decode(c.body) for c in CredentialChain.decode(chain).credentials]
    except DecodeError as exc:
        raise PolicyError(_P.SIGNER_INVALID, f"chain: {exc}") from None
    leaf, root = bodies[-1], bodies[0]
    if leaf.subject != signer or root.issuer != authority:
        raise PolicyError(_P.SIGNER_INVALID, "the chain is not the signer's from the authority")
    if POLICY_ADMIN not in leaf.attributes.values_of(ROLE):
        raise PolicyError(_P.NOT_POLICY_ADMIN, f"the chain grants no {ROLE}={POLICY_ADMIN}")
    if any(body.delegation is not None and body.delegation.caveats for body in bodies):
        raise PolicyError(_P.NOT_POLICY_ADMIN, _CAVEATED)
    return min(body.expires_at for body in bodies)


def _signer(
    signed: _Signed, body: BundleBody, now: int, checkpoints: Checkpoints | None
) -> VerifiedIdentity:
    """The signer's identity, once the signature is its attested signing key's. A history
    presented from a checkpoint (a signer past MAX_IDENTITY_CHANGES changes) is judged by
    `checkpoints`, as a chain's issuer is (review 63f, identity 2)."""
    try:
        identity = verify_history(signed.history, now=now, checkpoints=checkpoints)
        if identity.identifier != body.signer:
            raise PolicyError(_P.SIGNER_INVALID, "the history is not the signer's")
        key = verify_signed_by(
            identity, signed.attestation, signed.body, signed.signature, at=body.issued_at
        )
    except IdentityError as exc:
        if exc.reason is IdentityFailure.BAD_SIGNATURE:
            raise PolicyError(_P.BAD_SIGNATURE, str(exc)) from None
        raise PolicyError(_P.SIGNER_INVALID, str(exc)) from None
    if body.expires_at > key.expires_at:
        raise PolicyError(_P.SIGNER_INVALID, "the bundle outlives the signer's signing key")
    return identity


def _unbound(identity: VerifiedIdentity, authority: Identifier) -> str:
    """A checkpointed history the bundle authority's feed does not bind: its checkpoint is
    another authority's word, which counts for that authority's own chains and bundles only;
    `feed_checkpoints` takes any trusted feed's word, so a co-trusted authority made up a
    change of this one and signed its bundles (review 63m, gates 1; review 23a)."""
    return (
        f"{identity.identifier}'s history from change {identity.first_index} is attested by "
        f"another authority, not by {authority}, whose feed names none of its changes"
    )


def _signer_chain(
    signed: _Signed,
    body: BundleBody,
    identity: VerifiedIdentity,
    verifier: ChainVerifier,
    feed: VerifiedFeed | None,
    now: int,
    checkpoints: Checkpoints | None,
) -> tuple[frozenset[bytes], frozenset[bytes], tuple[VerifiedIdentity, ...]]:
    """The signer's chain links and identities and its issuers' histories, the chain checked
    to grant policy-admin (with `feed` at issued_at; None: from the holder's own store,
    structure only)."""
    if body.signer == body.authority:
        if signed.chain is not None:
            raise PolicyError(_P.MALFORMED, "the authority's bundle carries a chain")
        return frozenset(), frozenset({body.authority.digest}), ()
    if signed.chain is None:
        raise PolicyError(_P.NOT_POLICY_ADMIN, "a member's bundle without a chain")
    try:
        credential: VerifiedCredential
        if feed is None:
            credential = verifier.verify_structure(signed.chain, now=now, checkpoints=checkpoints)
        else:
            credential = verifier.verify(
                signed.chain,
                presenter=identity,
                feeds={body.authority: feed},
                now=min(body.issued_at, now),
            )
    except CredentialError as exc:
        reason = _CHAIN_REASONS.get(exc.reason, _P.SIGNER_INVALID)
        raise PolicyError(reason, str(exc)) from None
    if credential.authority != body.authority or credential.actor != body.signer:
        raise PolicyError(_P.SIGNER_INVALID, "the chain is not the signer's from the authority")
    if body.expires_at > credential.expires_at:
        # the chain is checked at issued_at, which the signer chose: a bundle that could
        # outlive the grant would let a former policy-admin backdate new bundles forever
        raise PolicyError(_P.SIGNER_INVALID, "the bundle outlives the signer's chain")
    if POLICY_ADMIN not in credential.attributes.values_of(ROLE):
        raise PolicyError(_P.NOT_POLICY_ADMIN, f"the chain grants no {ROLE}={POLICY_ADMIN}")
    if credential.caveats:
        raise PolicyError(_P.NOT_POLICY_ADMIN, _CAVEATED)
    links = frozenset(link.hash for link in credential.links)
    identities = {link.subject.digest for link in credential.links}
    return links, frozenset(identities | {body.authority.digest}), credential.issuers


def _verify(
    data: bytes,
    verifier: ChainVerifier,
    feeds: Mapping[Identifier, VerifiedFeed] | None,
    now: int,
    known: Known | None,
    known_in: KnownIn | None = None,
    stored: Checkpoints | None = None,
) -> VerifiedBundle:
    # the claims first, the tool schemas parsed only once the signature is the signer's
    # (review 54h, bundles 1: a peer's junk had them parsed before anything was checked)
    signed, claims = _decode_signed(data, schemas=False)
    if claims.authority not in verifier.policy.anchors:
        raise PolicyError(_P.UNTRUSTED_AUTHORITY, str(claims.authority))
    if claims.issued_at > now + verifier.policy.max_clock_skew:
        raise PolicyError(_P.NOT_YET_VALID, f"issued at {claims.issued_at}")
    if now >= claims.expires_at:
        raise PolicyError(_P.EXPIRED, f"at {claims.expires_at}")
    if claims.expires_at - claims.issued_at > limits.MAX_POLICY_BUNDLE_TTL:
        raise PolicyError(_P.OVER_LIMIT, "lives longer than MAX_POLICY_BUNDLE_TTL")
    _check_revision(claims.revision, by_authority=claims.signer == claims.authority)
    # checkpointed histories (the signer's, its chain's issuers'): by the feeds' word, or for
    # a bundle from the holder's own store by the store's (`stored`)
    checkpoints = stored
    if feeds is not None:
        staleness = verifier.policy.max_feed_staleness
        checkpoints = feed_checkpoints(feeds, now=now, max_staleness=staleness)
    identity = _signer(signed, claims, now, checkpoints)
    body = _decode_body(signed.body)
    feed = None
    if feeds is not None:
        feed = feeds.get(body.authority)
        try:
            if feed is None or feed.authority != body.authority:
                raise CredentialError(CredentialFailure.NO_FEED, str(body.authority))
            feed.check_fresh(now=now, max_staleness=verifier.policy.max_feed_staleness)
        except CredentialError as exc:
            raise PolicyError(_P.STALE_FEED, str(exc)) from None
        try:
            feed.check_current(identity)
        except CredentialError as exc:
            raise PolicyError(_P.SIGNER_SUPERSEDED, exc.detail) from None
        if not feed.binds(identity):
            raise PolicyError(_P.SIGNER_INVALID, _unbound(identity, body.authority))
    links, identities, issuers = _signer_chain(
        signed, body, identity, verifier, feed, now, checkpoints
    )
    tools = {
        name: load_json(text.encode(), max_bytes=limits.MAX_TOOL_SCHEMA_BYTES)
        for name, text in body.tools.items()
    }
    compiled = compile_policies(body.policies, body.schema, tools, body.services)
    if known is not None or known_in is not None:  # only once the signer may sign
        try:
            if known_in is not None:
                known_in(identity, body.authority)
            elif known is not None:
                known(identity)
        except IdentityError as exc:
            raise PolicyError(_P.SIGNER_INVALID, str(exc)) from None
    return VerifiedBundle(
        body, compiled, links, identities, (identity, *issuers), data, sha256(data), _VERIFIED
    )


def verify_bundle(
    data: bytes,
    *,
    verifier: ChainVerifier,
    feeds: Mapping[Identifier, VerifiedFeed],
    now: int,
    known: Known | None = None,
    known_in: KnownIn | None = None,
) -> VerifiedBundle:
    """Verify a bundle received from anywhere (see the module docstring); PolicyError says
    why it was refused. `known` raises IdentityError for a signer history that forks from or
    rolls back a stored copy; `known_in`, given instead, is told the bundle's authority too
    (the root of the signer's chain, which has standing over its history)."""
    return _verify(data, verifier, feeds, now, known, known_in)


def load_stored_bundle(
    data: bytes, *, verifier: ChainVerifier, now: int, checkpoints: Checkpoints | None = None
) -> VerifiedBundle:
    """A bundle from the holder's own store, which verified it in full when it stored it:
    decoded, signature checked and compiled again, the signer's chain checked for structure
    only (revocations and supersessions of the histories it carries are checked against the
    current feed at every decision, `VerifiedBundle.check_signer`). `checkpoints`: what
    attests a checkpointed signer or issuer history (the holder's store, which kept the
    history when it verified the bundle; none: such a bundle is refused)."""
    return _verify(data, verifier, None, now, None, stored=checkpoints)
