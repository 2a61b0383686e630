"""What to do next, for the refusals people meet most: a delegation that would amplify, and a
chain that does not verify. Each explanation names the thing, the reason and the next step;
the exit code and the `--json` object stay the library error's."""

from __future__ import annotations

from collections.abc import Iterable

from troth.cli.names import Directory
from troth.cli.output import Explained
from troth.cli.text import attributes, duration, moment
from troth.credentials import Attributes, VerifiedCredential
from troth.errors import CredentialError, CredentialFailure
from troth.identity import Identifier

__all__ = ["delegation_refused", "not_verified", "presented_by"]

_F = CredentialFailure


def _ttl_hint(seconds: int) -> str:
    """The longest --ttl that fits in `seconds`, in whole minutes when there are any."""
    return duration(seconds - seconds % 60 if seconds >= 60 else seconds)


def delegation_refused(
    exc: CredentialError,
    parent: VerifiedCredential,
    requested: Attributes,
    *,
    ttl: int,
    now: int,
) -> Exception:
    """Why a delegation was refused, in the terms of the command line (--ttl, --attr,
    --depth), or `exc` itself when there is nothing to add."""
    if exc.reason is _F.AMPLIFIED and now + ttl > parent.expires_at:
        return Explained(
            exc,
            f"delegation expires after its parent (parent expires "
            f"{moment(parent.expires_at, now)}): use --ttl {_ttl_hint(parent.expires_at - now)} "
            "or less",
        )
    excess = requested.first_excess_over(parent.attributes)
    if exc.reason is _F.AMPLIFIED and excess is not None:
        held = parent.attributes.values_of(excess)
        if not held:
            return Explained(
                exc,
                f"delegation amplifies authority: {excess} is not held (the parent chain holds "
                f"{attributes(parent.attributes)}): leave it out of --attr",
            )
        missing = attributes({excess: sorted(requested.values_of(excess) - held)})
        return Explained(
            exc,
            f"delegation amplifies authority: {missing} is not held (the parent chain holds "
            f"{attributes({excess: sorted(held)})}): pass on only what is held",
        )
    if exc.reason is _F.AMPLIFIED and parent.links:
        return Explained(
            exc, f"{exc}: use --depth {parent.links[-1].depth - 1} or less (or leave it out)"
        )
    if exc.reason is _F.DEPTH_EXCEEDED:
        return Explained(
            exc, f"{exc}: whoever issued it allowed no further link (its --depth was 0)"
        )
    return exc


def _labels(names: Directory, identifiers: Iterable[Identifier]) -> str:
    return ", ".join(names.label(i) for i in sorted(identifiers, key=lambda i: i.digest))


def not_verified(
    exc: CredentialError, names: Directory, anchors: frozenset[Identifier], now: int
) -> Exception:
    """Why a chain did not verify, and what to do about it."""
    feed_hint = "troth revocations show --authority NAME --out FILE"
    hints = {
        _F.NO_FEED: "without a revocation feed there is no verdict: give --authority NAME (an "
        f"authority on this machine) or --feed FILE ({feed_hint})",
        _F.STALE_FEED: f"get a fresh feed ({feed_hint}), or accept an older one with "
        "--max-feed-age (at most 30d)",
        _F.UNTRUSTED_ISSUER: f"the trusted authorities are {_labels(names, anchors)}: add "
        "--trust for this one if you trust it",
        _F.EXPIRED: "its holder needs a fresh credential (troth credential refresh IDENTITY) or "
        "a new delegation",
        _F.NOT_YET_VALID: "it starts later: check the clocks of the issuer and of this machine",
        _F.WRONG_SUBJECT: "--presenter must be the chain's last subject, or the VC's subject "
        "(or leave it out)",
        _F.SUPERSEDED: "the identity rotated its key after signing with this history (an old "
        "copy, or a stolen backup): ask for a chain made with its current history",
        _F.REVOKED: "a revocation is permanent: ask the issuer for a new credential",
    }
    hint = hints.get(exc.reason)
    return exc if hint is None else Explained(exc, f"{exc}: {hint}")


def presented_by(subject: Identifier, presenter: str | None, names: Directory) -> None:
    """CredentialError WRONG_SUBJECT when --presenter is given and is not the VC's `subject`,
    as a chain's last subject must be --presenter: it was ignored, and anyone's VC was valid
    for a verifier naming who presented it (review 65h, cli 1)."""
    if presenter is not None and names.identifier(presenter) != subject:
        raise CredentialError(_F.WRONG_SUBJECT, f"the VC is {subject}'s, not {presenter}'s")
