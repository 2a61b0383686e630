"""Enrolling a local identity with an authority, recoverable from a crash on either side
(docs/storage.md, "Recovery rules").

The holder's steps, as a sans-IO generator (it yields the signed request to carry to the
authority and is sent the answer, or thrown the error that carrying it raised):

1. record the pending enrollment (identity, authority, ticket, address): its own commit;
2. sign an enroll request; the caller carries it (in process to a local authority, or over a
   secure channel to `/service/authority`);
3. store the credential the authority answered and clear the pending record: one commit.

The authority records each redemption with the credential it issued, in the transaction that
takes the ticket's use, and answers a repeat of the same enrollment (same identity, same
ticket, within the ticket's window) with that credential. So a crash anywhere leaves either
the credential held, or a pending record (and a ticket that still works for this identity):
the next `troth enroll` with the same ticket, or `troth credential refresh`, sends the
enrollment again and completes it, and the authority never issues a second credential for one
redemption (but one its refresh would give, once the recorded one expired or was retired by a
rotation: review 55c, enroll 1).

`enroll` and `enroll_async` drive the steps with a blocking or an awaitable `send`; a runtime
that keeps storage work off its event loop runs `request_of`, `complete` and `refused` (each
synchronous) in a worker thread and carries the request itself.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, Final, NoReturn

from troth.authority import Ticket
from troth.authority.client import (
    TicketBinds,
    accept_ticket,
    authority_refusal,
    check_ticket,
    copy_holds_ticket,
    enroll_request,
)
from troth.authority.core import NOT_ITS_OWN_MEMBER
from troth.authority.tickets import check_address
from troth.clock import Clock
from troth.credentials.verify import VerifiedCredential
from troth.credentials.wallet import CredentialWallet
from troth.errors import (
    ArgumentError,
    AuthorityError,
    AuthorityFailure,
    DecodeError,
    IdentityError,
    IdentityFailure,
    RemoteError,
)
from troth.identity import Identifier, IdentityService
from troth.storage import PendingEnrollmentRecord

__all__ = [
    "OVER_COPY_NEEDS_PIN",
    "AuthorityCopy",
    "Enrolled",
    "EnrollmentSteps",
    "check_over_copy",
    "complete",
    "enroll",
    "enroll_async",
    "enrollment",
    "over_copy_remote",
    "refused",
    "request_of",
    "resume",
    "resume_async",
    "resumption",
]


class AuthorityCopy(enum.Enum):
    """What became of this node's copy of the authority's history once the authority answered
    (`Enrolled.authority_copy`): with `over_copy` the enrollment can succeed while a
    conflicting copy stands (stored or linked meanwhile: review 68a, refuted 4), so the
    operator is told (review 68l, enroll 2)."""

    AGREED = "agreed"
    """The ticket's history agreed with the copy held (or none was): stored as the ticket's;
    or the copy held extends it (the authority rotated since it made the ticket: review 68w,
    pin 1), nothing to store."""
    REPLACED = "replaced"
    """The ticket's history replaced a conflicting copy (`over_copy`), its changes refuted."""
    STANDS = "stands"
    """A conflicting copy stands: the ticket's history was not stored."""


@dataclass(frozen=True, slots=True)
class Enrolled:
    """An enrollment completed: the credential now held, the interrupted enrollment it
    resumed (same ticket), and the oldest of the interrupted ones with another ticket for that
    authority it gave up (past MAX_PENDING_PER_AUTHORITY when it started, or recorded before
    it when it completed: troth.credentials.pending), if any; and what became of the node's
    copy of the authority's history (`AuthorityCopy`)."""

    identity: str
    authority: Identifier
    credential: VerifiedCredential
    resumed: PendingEnrollmentRecord | None = None
    replaced: PendingEnrollmentRecord | None = None
    authority_copy: AuthorityCopy = AuthorityCopy.AGREED

    def to_json(self) -> dict[str, Any]:
        return {
            **self.credential.to_json(),
            "identity": self.identity,
            "enrolled_with": str(self.authority),
            "credential": self.credential.links[-1].hash.hex(),
            "resumed_from": None if self.resumed is None else self.resumed.started_at,
            "authority_copy": self.authority_copy.value,
        }


EnrollmentSteps = Generator[bytes, bytes, Enrolled]
"""Yields the enroll request to send; is sent the authority's answer (the chain's bytes)."""

OVER_COPY_NEEDS_PIN: Final = (
    "get it from the authority's operator, out of band (troth authority list, on its machine), "
    "and compare it with the ticket's pin the COPY_CONFLICT refusal names"
)
"""What `over_copy` without the authority's pin is refused with (`check_over_copy`)."""


def check_over_copy(call: str, over_copy: bool, authority_pin: str | None) -> None:
    """ArgumentError for `over_copy` without `authority_pin`: the operator's word over a
    conflicting copy is the pin the authority's operator read out, checked against the
    ticket's history, never a bare "yes, it sent a ticket" (a thief's fork replaced the
    authority's real later history on it: review 68l, enroll 1; deny when in doubt)."""
    if over_copy and authority_pin is None:
        expected = f"the authority's pin (IDENTIFIER:KEY) with over_copy: {OVER_COPY_NEEDS_PIN}"
        raise ArgumentError(call, "authority_pin", expected, "None")


def enrollment(
    identities: IdentityService,
    wallet: CredentialWallet,
    ref: str,
    ticket: str | Ticket,
    *,
    clock: Clock,
    authority_pin: str | None = None,
    over_copy: bool = False,
) -> EnrollmentSteps:
    """Enroll local identity `ref` with the ticket's authority (the steps above). An
    interrupted enrollment with the same ticket is resumed; one with another ticket for that
    authority stays pending until this one completes (troth.credentials.pending).
    `authority_pin` (`IDENTIFIER:KEY`) confirms the authority (`check_ticket`: required for a
    ticket that gives an unknown authority's history from a checkpoint). `over_copy`: the
    operator's explicit word, for this enrollment only (never recorded), that the ticket's
    authority history is the authority's, over a stored copy this node never linked that it
    conflicts with (`check_ticket`: COPY_CONFLICT without it; review 67i, enroll), only with
    `authority_pin` (ArgumentError without it: `check_over_copy`)."""
    check_over_copy("enrollment", over_copy, authority_pin)
    if not isinstance(ticket, Ticket):
        ticket = _parse(ticket)
    else:  # built in code, not parsed: its address is checked here (review 45e, address 1)
        check_address(ticket.address)
    now = clock.now()
    binds = _ticket_binds(wallet)
    authority = check_ticket(
        identities, ticket, now=now, authority_pin=authority_pin, binds=binds, over_copy=over_copy
    )
    # NotFound before anything is recorded; nor is an authority's own identity's enrollment
    if identities.find(ref).identifier == authority.digest:  # (review 64h, enroll 3)
        raise AuthorityError(AuthorityFailure.REQUEST_INVALID, NOT_ITS_OWN_MEMBER)
    # checked, and bound to its identifier (its first change, a stored copy, or the pin): stored
    # now, so the channel to the authority can attest the history the authority presents; but
    # a copy from a checkpoint it conflicts with (`over_copy`) is replaced only once the
    # authority answered: a ticket is text anyone can write (review 31a, enrollment 1)
    pinned = authority_pin is not None
    with contextlib.suppress(IdentityError):  # only such a copy refuses it here
        accept_ticket(identities, ticket, now=now, pinned=pinned)
    recorded = wallet.record_enrollment(ref, authority, str(ticket), ticket.address, now=now)
    given_up = recorded.given_up[0] if recorded.given_up else None
    return (
        yield from _exchange(
            identities,
            wallet,
            ref,
            recorded.record,
            ticket,
            clock,
            recorded.resumed,
            given_up,
            pinned=pinned,
            over_copy=over_copy,
        )
    )


OVER_COPY_LOCAL_ONLY: Final = (
    "; --over-copy cannot take it over that copy here: the ticket's authority is reached over "
    "the network, and the secure channel to it judges its history against that copy (and every "
    "feed held) before it answers, and refuses it (review 67y, remote; review 31a, enrollment "
    "3, left). --over-copy works when the ticket's authority is on this machine (a node:NAME "
    "ticket, enrolled through its node) or when the exchange is sent by the caller "
    "(troth.enrollment.enroll with `send`). Nothing was stored"
)
"""What a COPY_CONFLICT refusal adds on the network path with `over_copy` (`over_copy_remote`)."""


def over_copy_remote(refusal: IdentityError) -> IdentityError:
    """The refusal of an enrollment with `over_copy` whose authority a node reaches over a
    secure channel (troth.node.membership): a COPY_CONFLICT saying why the flag cannot apply
    there (`OVER_COPY_LOCAL_ONLY`); any other refusal as it is. The channel to the authority
    judges its history against a conflicting copy, never overridden (an override there would
    admit the authority's history to a channel, and that channel's reuse, before the authority
    answered), so such an enrollment is judged without the flag, before anything is recorded:
    it passed the check, stored a pending record resumed in vain for RESUME_FOR and failed at
    the channel with a misleading "history is older than the stored copy" (review 67y, remote
    1; review 68a, enroll 2: a copy stored after a separate check up front, the same)."""
    if refusal.reason is not IdentityFailure.COPY_CONFLICT:
        return refusal
    return IdentityError(refusal.reason, refusal.detail + OVER_COPY_LOCAL_ONLY, refusal.change)


def _ticket_binds(wallet: CredentialWallet) -> TicketBinds | None:
    """The node's rule on stored copies from a checkpoint, given a ticket's authority history:
    the authority the operator chose to enroll with has standing over its own history
    (docs/formats.md, "A stored copy from a checkpoint"; review 30a, enrollment 2): what the
    operator's `over_copy` may override (review 67i, enroll)."""
    binds_over = wallet.binds_over
    if binds_over is None:
        return None
    return lambda identity: binds_over(identity, {identity.identifier})


def resumption(
    identities: IdentityService,
    wallet: CredentialWallet,
    pending: PendingEnrollmentRecord,
    *,
    clock: Clock,
    over_copy: bool = False,
    authority_pin: str | None = None,
) -> EnrollmentSteps:
    """Send an interrupted enrollment again (its pending record names everything needed).
    The record is kept only for a ticket `check_ticket` tied to its authority's identifier (a
    full history, a copy this node linked, or the authority's pin confirmed): its history is
    judged as tied (`pinned`), as it was started, without the pin kept; a copy stored since
    that it does not extend refuses it still (review 67e, enroll 1: a pin ties nothing over a
    copy holding other changes). `over_copy` is not recorded: given again, or a copy stored
    meanwhile that the ticket conflicts with refuses it (COPY_CONFLICT: review 67i, enroll);
    with `authority_pin` only, checked against the ticket's history (`check_over_copy`)."""
    check_over_copy("resumption", over_copy, authority_pin)
    ticket = _parse(pending.ticket)
    if authority_pin is not None:  # checked as `enrollment` checks it; nothing stored here
        binds, now, pin = _ticket_binds(wallet), clock.now(), authority_pin
        check_ticket(
            identities, ticket, now=now, authority_pin=pin, binds=binds, over_copy=over_copy
        )
    ref = "T" + pending.identifier.hex()
    return (
        yield from _exchange(
            identities,
            wallet,
            ref,
            pending,
            ticket,
            clock,
            pending,
            None,
            pinned=True,
            over_copy=over_copy,
        )
    )


def _exchange(
    identities: IdentityService,
    wallet: CredentialWallet,
    ref: str,
    pending: PendingEnrollmentRecord,
    ticket: Ticket,
    clock: Clock,
    resumed: PendingEnrollmentRecord | None,
    given_up: PendingEnrollmentRecord | None,
    *,
    pinned: bool = False,
    over_copy: bool = False,
) -> EnrollmentSteps:
    binds = _ticket_binds(wallet)
    now = clock.now()
    request = enroll_request(
        identities, ref, ticket, now=now, binds=binds, pinned=pinned, over_copy=over_copy
    )
    try:
        answer = yield request
    except (AuthorityError, RemoteError) as exc:
        refusal = authority_refusal(exc)  # typed, however it came (review 64h, enroll 1)
        if refusal is not None and refusal.reason in _FOR_GOOD:
            # this ticket's record only: another ticket's of that authority stays, whose
            # member the authority may have made, its answer lost (review 61c, enrollment 1,
            # refused at once; review 61l, enrollment 1, when resumed after a passing failure)
            wallet.forget_enrollment(pending)
        if refusal is None or refusal is exc:
            raise
        raise refusal from None
    held, older = wallet.complete_enrollment(pending, answer, now=clock.now())
    # the authority answered (a chain rooted at it, signed by its key): a copy from a
    # checkpoint the operator's word overrides (`over_copy`) is replaced now (review 31a,
    # enrollment 1); a copy stored meanwhile that refuses it stays (the credential is held)
    copy = _take_history(identities, ticket, clock.now(), binds, pinned=pinned, over_copy=over_copy)
    name = identities.find(ref).name or ref
    replaced = given_up if given_up is not None else next(iter(older), None)
    return Enrolled(name, Identifier(pending.authority), held, resumed, replaced, copy)


def _take_history(
    identities: IdentityService,
    ticket: Ticket,
    now: int,
    binds: TicketBinds | None,
    *,
    pinned: bool,
    over_copy: bool,
) -> AuthorityCopy:
    """Store the ticket's authority history once the authority answered, and say what became
    of the copy held (`AuthorityCopy`): judged without `over_copy` first, so a replacement is
    told from a history that agreed (each judged in the store's own transaction); a history
    the copy held extends (the authority rotated since it made the ticket) agreed with it,
    nothing to store (review 68w, pin 1: it said a conflicting copy stands)."""
    try:
        accept_ticket(identities, ticket, now=now, binds=binds, pinned=pinned)
        return AuthorityCopy.AGREED
    except IdentityError:
        if copy_holds_ticket(identities, ticket, now=now, binds=binds, pinned=pinned):
            return AuthorityCopy.AGREED
        if not over_copy:
            return AuthorityCopy.STANDS
    try:
        accept_ticket(identities, ticket, now=now, binds=binds, pinned=pinned, over_copy=True)
    except IdentityError:
        return AuthorityCopy.STANDS
    return AuthorityCopy.REPLACED


_FOR_GOOD = (AuthorityFailure.TICKET_UNKNOWN, AuthorityFailure.NOT_A_MEMBER)
"""The authority refused the ticket itself (unknown, used up, or expired without a redemption
by this identity), or this identity with it (`not a member`: removed since it redeemed the
ticket, or revoked for good; only another ticket makes it a member again: review 56g,
removal 1): nothing is left to resume with this ticket."""


def _parse(ticket_text: str) -> Ticket:
    try:
        return Ticket.parse(ticket_text)
    except DecodeError as exc:
        raise DecodeError(f"not a troth ticket ({exc})", exc.problem) from None


# -- drivers: three synchronous steps (a runtime may run each in a worker thread) -----------------


def request_of(steps: EnrollmentSteps) -> bytes:
    """Start the steps: record the pending enrollment; the signed request to carry."""
    return next(steps)


def complete(steps: EnrollmentSteps, answer: bytes) -> Enrolled:
    """Finish the steps with the authority's answer (the chain's bytes): held, and cleared."""
    try:
        steps.send(answer)
    except StopIteration as done:
        enrolled: Enrolled = done.value
        return enrolled
    raise RuntimeError("enrollment steps went on after the answer")  # pragma: no cover - a bug


def refused(steps: EnrollmentSteps, exc: AuthorityError | RemoteError) -> NoReturn:
    """Finish the steps with the error carrying the request raised (re-raised; a ticket the
    authority refused for good leaves nothing pending)."""
    steps.throw(exc)
    raise exc  # pragma: no cover - the steps re-raise it


def drive(steps: EnrollmentSteps, send: Callable[[bytes], bytes]) -> Enrolled:
    """Run enrollment steps, carrying the request with a blocking `send`."""
    request = request_of(steps)
    try:
        answer = send(request)
    except (AuthorityError, RemoteError) as exc:
        refused(steps, exc)
    return complete(steps, answer)


async def drive_async(
    steps: EnrollmentSteps, send: Callable[[bytes], Awaitable[bytes]]
) -> Enrolled:
    """Run enrollment steps, carrying the request with an awaitable `send` (a secure channel)."""
    request = request_of(steps)
    try:
        answer = await send(request)
    except (AuthorityError, RemoteError) as exc:
        refused(steps, exc)
    return complete(steps, answer)


def enroll(
    identities: IdentityService,
    wallet: CredentialWallet,
    ref: str,
    ticket: str | Ticket,
    *,
    clock: Clock,
    send: Callable[[bytes], bytes],
    authority_pin: str | None = None,
    over_copy: bool = False,
) -> Enrolled:
    """Enroll `ref` with the ticket's authority; `send(request)` returns the chain's bytes
    (`authority_pin`, `over_copy`: `enrollment`)."""
    steps = enrollment(
        identities,
        wallet,
        ref,
        ticket,
        clock=clock,
        authority_pin=authority_pin,
        over_copy=over_copy,
    )
    return drive(steps, send)


async def enroll_async(
    identities: IdentityService,
    wallet: CredentialWallet,
    ref: str,
    ticket: str | Ticket,
    *,
    clock: Clock,
    send: Callable[[bytes], Awaitable[bytes]],
    authority_pin: str | None = None,
    over_copy: bool = False,
) -> Enrolled:
    """`enroll` with an awaitable `send` (the node runtime, over a secure channel)."""
    steps = enrollment(
        identities,
        wallet,
        ref,
        ticket,
        clock=clock,
        authority_pin=authority_pin,
        over_copy=over_copy,
    )
    return await drive_async(steps, send)


def resume(
    identities: IdentityService,
    wallet: CredentialWallet,
    pending: PendingEnrollmentRecord,
    *,
    clock: Clock,
    send: Callable[[bytes], bytes],
    over_copy: bool = False,
    authority_pin: str | None = None,
) -> Enrolled:
    """Complete an interrupted enrollment; `send(request)` returns the chain's bytes
    (`over_copy`, `authority_pin`: `resumption`)."""
    steps = resumption(
        identities, wallet, pending, clock=clock, over_copy=over_copy, authority_pin=authority_pin
    )
    return drive(steps, send)


async def resume_async(
    identities: IdentityService,
    wallet: CredentialWallet,
    pending: PendingEnrollmentRecord,
    *,
    clock: Clock,
    send: Callable[[bytes], Awaitable[bytes]],
    over_copy: bool = False,
    authority_pin: str | None = None,
) -> Enrolled:
    """`resume` with an awaitable `send`."""
    steps = resumption(
        identities, wallet, pending, clock=clock, over_copy=over_copy, authority_pin=authority_pin
    )
    return await drive_async(steps, send)
