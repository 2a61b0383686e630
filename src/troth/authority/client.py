"""The member's side of talking to an authority: signed enroll, refresh, revoke and rotated
requests."""

from __future__ import annotations

import re
from collections.abc import Callable

from troth.authority.requests import make_request
from troth.authority.tickets import Ticket
from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    ConfigError,
    IdentityError,
    IdentityFailure,
    RemoteError,
    TrothError,
)
from troth.identity import (
    Checkpoint,
    Identifier,
    IdentityService,
    UnverifiedHistory,
    VerifiedIdentity,
    verify_history,
)
from troth.identity.known import Binds, OverCopy, copy_conflict, refuted_changes

__all__ = [
    "TicketBinds",
    "accept_ticket",
    "authority_pin_of",
    "authority_refusal",
    "check_ticket",
    "copy_holds_ticket",
    "enroll_request",
    "parse_authority_pin",
    "refresh_request",
    "revoke_request",
    "rotated_request",
    "ticket_authority",
    "ticket_vouches",
]


_REFUSED = f"{AuthorityError.__name__}: "
"""How an authority's refusal carried over a channel begins: a service's failure is answered
`<error class>: <message>` (troth.node.services.protocol, `failure_response`)."""
_BY_LENGTH = sorted(AuthorityFailure, key=lambda reason: len(reason.value), reverse=True)


def authority_refusal(exc: TrothError) -> AuthorityError | None:
    """The authority's refusal `exc` is: itself, in process; over a channel, the service's
    answer (a RemoteError, `AuthorityError: <reason>` and ` (<detail>)` if any) made the
    AuthorityError it was, so a refusal says its reason whichever way it came (review 64h,
    enroll 1: `troth enroll` over the network reported a RemoteError, no `reason`). None for
    any other error."""
    if isinstance(exc, AuthorityError):
        return exc
    text = str(exc)
    if not isinstance(exc, RemoteError) or not text.startswith(_REFUSED):
        return None
    text = text[len(_REFUSED) :]
    for reason in _BY_LENGTH:
        if not text.startswith(reason.value):
            continue
        rest = text[len(reason.value) :]
        if not rest:
            return AuthorityError(reason)
        if rest.startswith(" (") and rest.endswith(")"):
            return AuthorityError(reason, rest[2:-1])
    return None


def ticket_vouches(checkpoint: Checkpoint, change_hash: bytes) -> bool:
    """A ticket's word on its authority's history: an authority past 64 changes presents it
    from a checkpoint of its own feed, which a new member cannot check against anything; the
    ticket (handed over out of band by the operator) is what it trusts the authority on."""
    return checkpoint.identifier == checkpoint.authority


TicketBinds = Callable[[VerifiedIdentity], Binds]
"""Given a ticket's authority history, which stored copies from a checkpoint bind it (a node's
rule, the ticket's authority having standing over its own history: `CredentialWallet.binds_over`;
review 30a, enrollment 2): since review 67i, enroll, what the operator's `over_copy` may
override; without it every copy binds a ticket."""


def _judging(binds: TicketBinds | None, over_copy: bool) -> TicketBinds | None:
    """The rule a ticket's history is judged by: with `over_copy` (the operator's explicit
    word), a copy this node never linked that `binds` says does not bind it (`OverCopy`); else
    every copy binds (None)."""
    if not over_copy or binds is None:
        return None
    return lambda history: OverCopy(binds(history))


def accept_ticket(
    identities: IdentityService,
    ticket: Ticket,
    *,
    now: int,
    binds: TicketBinds | None = None,
    pinned: bool = False,
    over_copy: bool = False,
) -> Identifier:
    """Store the ticket's authority history (on a first sight, on the ticket's word): once
    `check_ticket` bound it (`enrollment` does so before the channel to the authority opens),
    or for a holder that completes an enrollment itself. A copy from a checkpoint that does
    not bind it (`binds`) is replaced. `pinned`: `check_ticket` confirmed the authority's pin
    for it, so a history from a checkpoint is stored linked (the operator's word ties it to
    the identifier: the next ticket of that authority needs no pin, review 30a, enrollment 7).
    `over_copy`: the operator's word (`check_ticket`): it replaces a stored copy this node never
    linked that it conflicts with, the copy's changes recorded refuted."""
    return identities.import_history(
        ticket.authority_history,
        now=now,
        checkpoints=ticket_vouches,
        binds=_judging(binds, over_copy),
        linked=pinned,
    ).identifier


_HEX = re.compile("[0-9a-fA-F]+")


def authority_pin_of(identity: VerifiedIdentity) -> str:
    """What an authority's operator tells a new member out of band: `IDENTIFIER:KEY`, the
    authority's identifier and its current public key (hex) — `troth authority list` prints it."""
    return f"{identity.identifier}:{identity.current_key.data.hex()}"


def parse_authority_pin(authority_pin: str) -> tuple[Identifier, str]:
    """The identifier and the key (hex) of `IDENTIFIER:KEY`; ConfigError for a pin that is not
    one (`troth.Node.enroll` checks it before anything is done: review 64n, api 8)."""
    identifier, _, key = authority_pin.strip().rpartition(":")
    if not Identifier.looks_like(identifier) or not _HEX.fullmatch(key):
        raise ConfigError(f"not an authority pin (IDENTIFIER:KEY in hex): {authority_pin!r}")
    return Identifier.parse(identifier), key


def check_ticket(
    identities: IdentityService,
    ticket: Ticket,
    *,
    now: int,
    authority_pin: str | None = None,
    binds: TicketBinds | None = None,
    over_copy: bool = False,
) -> Identifier:
    """The authority `ticket` names, its history checked (against a stored copy too). A
    history from a checkpoint, of an authority this node stores no copy of (or only a copy from
    a checkpoint, another authority's word), binds nothing to the identifier it names (anyone
    can write one for any identifier, even with another authority's real changes): it is
    taken only with the authority's pin confirmed out of band
    (`authority_pin`: `IDENTIFIER:KEY`, `authority_pin_of`), identifier and current key both.
    A pin given is always checked; over a copy that is only a checkpoint's word (another
    authority's) it attests the history's checkpoint, so a history extending that copy is
    taken, but one forking from it or rolling it back is refused by it still: a pin does not
    say it is current, and a thief's fork ending with a key the authority rotated away from
    (signed with a stolen key and the next one it committed to) under the authority's real
    later history looks as the authority's real ticket under a made-up copy (reviews 66g and
    67e, enroll 1). Nothing is stored here. ConfigError for a pin that is not one. `binds`:
    which stored copy from a checkpoint binds the authority's history (None: every one).

    A history (full, or from a checkpoint with the pin) that forks from or is behind a stored
    copy this node never linked (another authority's word) is refused as COPY_CONFLICT, naming
    the copy's attester and the change where they disagree: the node cannot tell a thief's fork
    from a stolen backup of the authority's keys under its real later history from the
    authority's real history under a copy made up (review 67i, enroll). `over_copy` is the
    operator's explicit word, given for this enrollment only, that the ticket's history is the
    authority's: it is judged over such a copy (replaced once the authority answered,
    `accept_ticket(over_copy=)`); never over a linked copy or a local identity's."""
    pin = None if authority_pin is None else parse_authority_pin(authority_pin)
    pinned = pin is not None
    history = _ticket_history(
        identities, ticket, now=now, binds=binds, pinned=pinned, over_copy=over_copy, pin=pin
    )
    # a stored copy ties it to the identifier only when this node checked that link (a full
    # history, or one extending it): a copy from a checkpoint is only its attesters' word, and
    # a co-trusted authority may have made it up (review 30a, enrollment 5)
    untied = history.first_index > 0 and not identities.linked(history.identifier)
    if pin is None:
        if untied:
            raise IdentityError(
                IdentityFailure.UNATTESTED_CHECKPOINT,
                f"the ticket gives {history.identifier}'s history from change "
                f"{history.first_index}, which nothing here can tie to that identifier: ask the "
                "authority's operator for its pin (troth authority list, on its machine) and "
                "pass it with --authority-pin",
            )
        return history.identifier
    _check_pin(history, pin)
    return history.identifier


def _check_pin(history: VerifiedIdentity, pin: tuple[Identifier, str]) -> None:
    """Raise UNATTESTED_CHECKPOINT unless `pin` names `history`'s identifier and current key."""
    identifier, key = pin
    if identifier != history.identifier:
        raise IdentityError(
            IdentityFailure.UNATTESTED_CHECKPOINT,
            f"the ticket's authority is {history.identifier}, not {identifier}: this ticket is not "
            "from the authority you confirmed",
        )
    current = authority_pin_of(history).rpartition(":")[2]
    if key.lower() != current:
        raise IdentityError(
            IdentityFailure.UNATTESTED_CHECKPOINT,
            f"the ticket's history of {identifier} ends with key {current}, not "
            "the pinned one: if the authority rotated since it made this ticket, ask it for a "
            "new ticket; else this ticket is not from the authority you confirmed",
        )


def _ticket_history(
    identities: IdentityService,
    ticket: Ticket,
    *,
    now: int,
    binds: TicketBinds | None,
    pinned: bool = False,
    over_copy: bool = False,
    pin: tuple[Identifier, str] | None = None,
) -> VerifiedIdentity:
    """The ticket's authority history, checked against a stored copy (`binds`, `pinned`,
    `over_copy`: as `check_ticket`; `pinned` only once the pin is checked or its check is to
    follow, `pin` when it is to follow): equal to it, extending it, or an older prefix of it;
    COPY_CONFLICT for one a stored copy never linked here refuses (`_copy_conflict`)."""
    try:
        return _judged(identities, ticket, now=now, binds=_judging(binds, over_copy), pinned=pinned)
    except IdentityError as exc:
        if over_copy or exc.reason not in _CONFLICTING:
            raise
        conflict = _copy_conflict(identities, ticket, now=now, binds=binds, pinned=pinned, pin=pin)
        if conflict is None:
            raise
        raise conflict from None


_CONFLICTING = (
    IdentityFailure.FORK,
    IdentityFailure.ROLLBACK,
    IdentityFailure.UNATTESTED_CHECKPOINT,
)
"""How a stored copy refuses a ticket's history it conflicts with (UNATTESTED_CHECKPOINT: a
history ending before a copy from a checkpoint begins, `check_no_fork`)."""


def _copy_conflict(
    identities: IdentityService,
    ticket: Ticket,
    *,
    now: int,
    binds: TicketBinds | None,
    pinned: bool,
    pin: tuple[Identifier, str] | None,
) -> IdentityError | None:
    """COPY_CONFLICT when the ticket's history, tied to its identifier (a full history, or
    `pinned` with `pin` matching it), conflicts with a stored copy from a checkpoint this node
    never linked (`copy_conflict`) that `binds` says does not bind it (so `over_copy` would
    admit it): its message names the copy's attester, the change where they disagree, the
    ticket's authority pin (what the authority's operator confirms, or not: review 68a, enroll
    1) and how the operator decides. None otherwise (the refusal stands as it was: a copy whose
    attester has standing over the ticket's history, say)."""
    try:
        history = verify_history(ticket.authority_history, now=now, checkpoints=ticket_vouches)
        if history.first_index > 0:
            if not pinned:
                return None
            if pin is not None:
                _check_pin(history, pin)
    except IdentityError:
        return None  # refused for another reason: that refusal stands
    digest = history.identifier.digest
    stored = identities.store.get_history(digest)
    if stored is None or identities.store.history_linked(digest):
        return None
    copy = UnverifiedHistory.decode(stored[0])
    index = copy_conflict(copy, history)
    if copy.checkpoint is None or index is None:
        return None
    if binds is None or binds(history)(refuted_changes(copy)):
        return None
    attester = Identifier(copy.checkpoint.authority)
    last = copy.first_index + len(copy.changes) - 1
    return IdentityError(
        IdentityFailure.COPY_CONFLICT,
        f"this node holds {history.identifier}'s changes {copy.first_index} to {last} on the "
        f"word of {attester} (its checkpoint), and the ticket's history (changes "
        f"{history.first_index} to {history.current.index}) disagrees with that copy at change "
        f"{index}: either that copy is made up, or the ticket's history is a fork from a stolen "
        "backup of the authority's keys, and this node cannot tell which. The ticket's "
        f"authority pin is {authority_pin_of(history)}: ask the authority's operator, out of "
        "band, for its pin (troth authority list, on its machine); only if it is this one, "
        "enroll again with --over-copy --authority-pin PIN, PIN the one it read you (checked: "
        "its history replaces that copy, whose changes are recorded refuted; when the "
        "authority is on this machine, a node:NAME ticket, not over the network)",
        index,
    )


def _judged(
    identities: IdentityService,
    ticket: Ticket,
    *,
    now: int,
    binds: TicketBinds | None,
    pinned: bool,
) -> VerifiedIdentity:
    """`_ticket_history`'s judgment. A ticket made before its authority rotated
    names the same authority once the node stored the rotation (the channel to the authority
    shows it, and is checked against it): refused as a ROLLBACK, an enrollment whose answer a
    crash lost, and the authority rotated meanwhile, could never be sent again, and the member
    held nothing though its ticket was redeemed (review 57e, rotation 1)."""
    try:
        return identities.check_history(
            ticket.authority_history,
            now=now,
            checkpoints=ticket_vouches,
            binds=binds,
            linked=pinned,
        )
    except IdentityError as exc:
        if exc.reason is not IdentityFailure.ROLLBACK:
            raise
        rollback = exc
    # verified as `check_history` did (a stored copy exists: only its word on a checkpoint)
    history = verify_history(
        ticket.authority_history, now=now, checkpoints=identities.attested_by_store
    )
    try:
        identities.check_no_fork(history)  # an older prefix; a fork is refused
    except IdentityError as refused:
        if refused.reason is IdentityFailure.FORK:
            raise
        raise rollback from None  # nothing here shows it is a prefix: the rollback stands
    return history


def copy_holds_ticket(
    identities: IdentityService,
    ticket: Ticket,
    *,
    now: int,
    binds: TicketBinds | None = None,
    pinned: bool = False,
) -> bool:
    """Whether the copy held of the ticket's authority holds the ticket's history (nothing
    stored): an older prefix of it is (the authority rotated since it made the ticket: what
    `accept_ticket` refuses as a ROLLBACK, `_judged`), judged as `enroll_request` judges it
    without `over_copy` (every copy it conflicts with binds it), so an enrollment that
    completes says the ticket's history agreed, not that a conflicting copy stands (review
    68w, pin 1)."""
    try:
        _ticket_history(identities, ticket, now=now, binds=binds, pinned=pinned)
    except IdentityError:
        return False
    return True


def ticket_authority(ticket: Ticket, *, now: int) -> Identifier:
    """The authority a ticket names (its history verified)."""
    return verify_history(ticket.authority_history, now=now, checkpoints=ticket_vouches).identifier


def enroll_request(
    identities: IdentityService,
    ref: str,
    ticket: Ticket,
    *,
    now: int,
    binds: TicketBinds | None = None,
    pinned: bool = False,
    over_copy: bool = False,
) -> bytes:
    """The signed enroll request for `ticket`. Its authority's history is checked (against a
    stored copy too, which binds it as `binds`, `pinned` and `over_copy` say: `check_ticket`,
    which must have confirmed the pin for `pinned`) but not stored: `accept_ticket` stores it
    (after `check_ticket`), so a forged ticket, refused, leaves nothing behind."""
    history = _ticket_history(
        identities, ticket, now=now, binds=binds, pinned=pinned, over_copy=over_copy
    )
    authority = history.identifier
    return make_request(
        identities.signer(ref, now=now), "enroll", authority, [ticket.code], now=now
    )


def refresh_request(
    identities: IdentityService, ref: str, authority: Identifier, *, now: int
) -> bytes:
    return make_request(identities.signer(ref, now=now), "refresh", authority, [], now=now)


def revoke_request(
    identities: IdentityService,
    ref: str,
    authority: Identifier,
    *,
    credential_hash: bytes,
    chain: bytes,
    reason: str,
    now: int,
) -> bytes:
    arguments = [credential_hash, chain, reason]
    return make_request(identities.signer(ref, now=now), "revoke", authority, arguments, now=now)


def rotated_request(
    identities: IdentityService, ref: str, authority: Identifier, *, now: int
) -> bytes:
    """Announce `ref`'s (rotated) history to `authority`: the request carries it."""
    return make_request(identities.signer(ref, now=now), "rotated", authority, [], now=now)
