"""Signed requests to an authority (enroll, refresh, revoke a link). The requester signs with
its signing purpose key and ships its change history, so the authority needs nothing else.
Over a secure channel (the channels issue) the same bytes travel as a message.

    body    = ["troth.authority.request", 1, kind, authority (32), requested_at, arguments]
    request = [body (bstr), signature (bstr), attestation (bstr), requester history (bstr)]

kind "enroll": arguments = [ticket code]; "refresh": []; "revoke": [credential hash, chain,
reason]; "rotated": [] (the requester's history is the rotated one it announces).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from troth import limits
from troth.encoding import cbor
from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    DecodeError,
    IdentityError,
    IdentityFailure,
)
from troth.identity import (
    Checkpoints,
    Identifier,
    Signer,
    VerifiedIdentity,
    verify_history,
    verify_signed_by,
)

__all__ = ["VerifiedRequest", "make_request", "verify_request"]

REQUEST_TYPE: Final = "troth.authority.request"
VERSION: Final = 1
MAX_BODY_BYTES: Final = limits.MAX_CHAIN_BYTES + 2048
"""A request body: a chain bundle, a reason of up to 1,024 bytes, the header."""
MAX_REQUEST_BYTES: Final = (
    MAX_BODY_BYTES + limits.MAX_IDENTITY_HISTORY_BYTES + limits.MAX_ATTESTATION_BYTES + 128
)
"""A signed request: its body, the signature, the attestation and the requester's history."""


def make_request(
    signer: Signer, kind: str, authority: Identifier, arguments: list[Any], *, now: int
) -> bytes:
    """A signed request of `kind` to `authority` with `arguments`, made at `now`
    (docs/formats.md, "Requests to an authority"): the body, the signer's signature, its
    key's attestation and its history."""
    body = cbor.encode([REQUEST_TYPE, VERSION, kind, authority.digest, now, arguments])
    return cbor.encode([body, signer.sign(body), signer.attestation, signer.identity.history])


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """A request `verify_request` accepted: its kind, the requester's verified identity, the
    arguments (not yet checked: each kind's handler reads its own) and when it was made."""

    kind: str
    requester: VerifiedIdentity
    arguments: list[Any]
    requested_at: int


def verify_request(
    data: bytes,
    *,
    authority: Identifier,
    kind: str,
    now: int,
    known: Callable[[VerifiedIdentity], None] | None = None,
    checkpoints: Checkpoints | None = None,
) -> VerifiedRequest:
    """Verify a request of `kind` addressed to `authority`, made within the clock skew of `now`;
    `known` raises IdentityError when the requester's history forks from or rolls back a copy
    the authority stored; `checkpoints` judges a checkpointed requester history."""
    fail = AuthorityFailure.REQUEST_INVALID
    try:
        body, signature, attestation, history = cbor.expect_array(
            cbor.decode(data, max_bytes=MAX_REQUEST_BYTES), "request", 4
        )
        body = cbor.expect_bytes(body, "body")
        value = cbor.expect_array(cbor.decode(body, max_bytes=MAX_BODY_BYTES), "request", 6)
        cbor.expect_header(value, REQUEST_TYPE, VERSION, "request")
        request_kind = cbor.expect_text(value[2], "kind")
        addressed = Identifier(cbor.expect_bytes(value[3], "authority", 32))
        requested_at = cbor.expect_int(value[4], "requested_at")
        arguments = cbor.expect_array(value[5], "arguments")
        _check_skew(requested_at, now)
        identity = verify_history(
            cbor.expect_bytes(history, "history"), now=now, checkpoints=checkpoints
        )
        verify_signed_by(
            identity,
            cbor.expect_bytes(attestation, "attestation"),
            body,
            cbor.expect_bytes(signature, "signature", 64),
            at=requested_at,
        )
        if known is not None:  # once the request is known to be the requester's
            known(identity)
    except IdentityError as exc:
        if exc.reason is IdentityFailure.FUTURE_CHANGE:  # dated by a clock ahead of ours
            raise AuthorityError(AuthorityFailure.CLOCK_SKEW, f"{exc}; now {now}") from None
        raise AuthorityError(fail, str(exc)) from None
    except DecodeError as exc:
        raise AuthorityError(fail, str(exc)) from None
    if request_kind != kind:
        raise AuthorityError(fail, f"a {request_kind!r} request where {kind!r} was expected")
    if addressed != authority:
        raise AuthorityError(fail, "addressed to another authority")
    return VerifiedRequest(request_kind, identity, arguments, requested_at)


def _check_skew(requested_at: int, now: int) -> None:
    """CLOCK_SKEW when a request was made more than MAX_CLOCK_SKEW_SECONDS from `now`, naming
    both times: checked before the requester's history, whose changes a clock ahead also
    dated in the future, so a member whose clock is off is told so, not `request invalid`
    (review 48s, skew 1). Nothing is recorded before the signature is checked; a forger only
    learns the authority's time, which every answer it signs already carries."""
    if abs(now - requested_at) > limits.MAX_CLOCK_SKEW_SECONDS:
        raise AuthorityError(
            AuthorityFailure.CLOCK_SKEW,
            f"request made at {requested_at}, the authority's time is {now}: "
            f"{requested_at - now:+d} s, at most {limits.MAX_CLOCK_SKEW_SECONDS} s either way",
        )
