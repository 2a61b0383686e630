"""Whether a delegation chain a record names is signed (review 56f, chains 1; docs/traces.md,
"What verification detects").

A record names the chain it acted under; a chain kept "at log" is stored beside it and carried
by its export lines. Matching the record (`verify.check_chain`: its credentials' ids and
hashes, the agent its last subject) says nothing of who signed them: an agent could name a
chain it wrote itself, naming a real authority as issuer, and its export verified. Here each
credential is checked by the bytes alone, as `ChainVerifier.verify_structure` does (each
signed by its issuer's key under the issuer history the chain carries, each issued by the
subject of the one before, narrowing, depth), with the chain's own root as the anchor: which
authorities to trust, the chain's windows and revocation are the verifier's own question
(`ChainVerifier.verify` against its policy and feeds), as a chain kept elsewhere is. Its issuer
histories are judged at the latest time the chain names (`_made_at`), not a record's: the
answer is the chain's alone, so once per chain is enough (review 56k, chains 2).

A log checks a chain given with a record it appends, once (`TraceLog`, `check_appended`): a
chain a trace service verified against its node's trust (`ChainVerifier.verify`, which checks
all this and more) is not checked again; any other judges an issuer's checkpointed history by
the log's `issuers` (a node's stored copies and held feeds), refused without, as a
verification judges it by the verifier's store (`checkpoints`). The first change of a history
presented from a checkpoint is vouched for by the checkpoint alone: taken as carried, an
attacker's own key presented as change 1 of a real authority's identity signed a chain "by its
issuer" (review 56k, chains 1). A verifier with change rows of its own (a node: the log's
append, `troth trace verify`) also refuses a link made after the change that retired its key
(`check_unretired`; review 56q, chains 2). A node also judges each issuer history the
chain carries against its stored copy (`issuers`: `node.verify.trace_issuers`, the check of a
chain's issuer histories at a handshake, an older prefix passing): taken on `checkpoints`
alone, any authority the node trusts attested a "change" of another's identity, its own key,
and a chain "by" the node's own identity, which the node's full history refuses as a fork,
was appended and verified (review 56y, chains 2). Once per chain, as the rest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from troth.credentials import ChainVerifier, TrustPolicy, VerifiedCredential
from troth.credentials.format import CredentialBody, CredentialChain
from troth.errors import CredentialError, DecodeError, IdentityError, TraceError, TraceFailure
from troth.identity import (
    ChangeBody,
    Checkpoints,
    Identifier,
    UnverifiedHistory,
    VerifiedChange,
    VerifiedIdentity,
)
from troth.trace.export_memo import Memo

__all__ = ["IssuerCheck", "check_appended", "check_chain_signed", "check_unretired"]

Rows = Callable[[bytes, bytes], bytes | None]
"""A verifier's own change rows (`trace.verify.Rows`: `IdentityService.window_around`)."""

IssuerCheck = Callable[[VerifiedIdentity, Identifier], None]
"""A node's check of a chain's issuer history against its stored copy, given the chain's root
(IdentityError when refused: `node.verify.trace_issuers`)."""


def check_chain_signed(
    chain: bytes,
    checkpoints: Checkpoints | None = None,
    signed: Memo[bytes, bool] | None = None,
    rows: Rows | None = None,
    issuers: IssuerCheck | None = None,
) -> None:
    """Raise TraceError(CREDENTIAL_INVALID) unless every credential of `chain` is signed by
    its issuer (`checkpoints` attests a checkpointed issuer history: none, it is refused),
    with a key not retired by then as far as `rows` know (`check_unretired`), each issuer
    history as `issuers` takes it (a node's stored copies). `signed`: the chains that
    verified before (by their bytes), added to."""
    if signed is not None and signed.get(chain):
        return
    try:
        decoded = CredentialChain.decode(chain)
        root = CredentialBody.decode(decoded.credentials[0].body).issuer
        verifier = ChainVerifier(TrustPolicy(frozenset({root})))
        verified = verifier.verify_structure(chain, now=_made_at(decoded), checkpoints=checkpoints)
    except DecodeError as exc:
        raise TraceError(TraceFailure.CHAIN_MISMATCH, str(exc)) from None
    except CredentialError as exc:
        raise TraceError(TraceFailure.CREDENTIAL_INVALID, str(exc)) from None
    check_unretired(verified, rows)
    check_issuers(verified, issuers)
    if signed is not None:
        signed.put(chain, True)


def check_issuers(credential: VerifiedCredential, issuers: IssuerCheck | None) -> None:
    """Raise TraceError(CREDENTIAL_INVALID) when `issuers` (a node's check against its stored
    copies) refuses an issuer history of `credential`, its root given (review 56y, chains 2).
    Without (offline) the verifier's `checkpoints` alone vouch for a checkpointed history."""
    if issuers is None:
        return
    for link, issuer in zip(credential.links, credential.issuers, strict=True):
        try:
            issuers(issuer, credential.authority)
        except IdentityError as exc:
            raise TraceError(
                TraceFailure.CREDENTIAL_INVALID,
                f"delegation chain link {link.index}: {link.issuer}'s history: {exc}",
            ) from None


def _made_at(chain: CredentialChain) -> int:
    """The time the chain's issuer histories are judged at: the latest its bytes name (a
    credential made, a change of an issuer), so the answer is the chain's alone, the same for
    every record under it (review 56k, chains 2: judged at the record's time, a chain was
    judged once, at its first record's, by the log and `verify_log`, and an export's answer
    hung on the order of its lines)."""
    times = [0]
    for signed in chain.credentials:
        with contextlib.suppress(DecodeError):  # refused as such by `verify_structure`
            times.append(CredentialBody.decode(signed.body).created_at)
    for history in chain.histories:
        with contextlib.suppress(DecodeError):
            changes = UnverifiedHistory.decode(history).changes
            times.extend(ChangeBody.decode(change.body).created_at for change in changes)
    return max(times)


def check_unretired(credential: VerifiedCredential, rows: Rows | None) -> None:
    """Raise TraceError(CREDENTIAL_INVALID) when `rows` (a node's own: the change of a hash
    and the next one) hold the change after the one each link's key was attested under (the
    current one of the issuer history the chain carries) and it was made before the link:
    the key had retired, as an agent's record key is refused after its retirement (review
    56q, chains 2: a copy of an issuer's key signing after its rotation, the chain carrying
    the history from before, was "signed"). Without rows (offline) nothing tells of it here:
    the verifier's feeds do (`ChainVerifier.verify`; docs/traces.md). The time is the link's
    own, its signer's choice: a thief dating it before the rotation is taken, as an honest
    credential made then is (review 56y, chains 1: a revocation in the feeds answers it)."""
    if rows is None:
        return
    for link, signed, issuer in zip(
        credential.links,
        CredentialChain.decode(credential.chain).credentials,
        credential.issuers,
        strict=True,
    ):
        current = issuer.current
        retired_at = _retired_at(rows(issuer.identifier.digest, current.change_hash), current)
        made = CredentialBody.decode(signed.body).created_at
        if retired_at is not None and made > retired_at:
            raise TraceError(
                TraceFailure.CREDENTIAL_INVALID,
                f"delegation chain link {link.index}: signed at {made} by {link.issuer}'s key "
                f"of change {current.index}, retired at {retired_at} by the next change",
            )


def _retired_at(window: bytes | None, current: VerifiedChange) -> int | None:
    """When the change after `current` in `window` (its change and the next, a node's own
    rows) was made; None when it holds none."""
    if window is None:
        return None
    with contextlib.suppress(DecodeError):
        history = UnverifiedHistory.decode(window)
        for index, change in enumerate(history.changes, history.first_index):
            body = ChangeBody.decode(change.body)
            if index == current.index + 1 and body.previous == current.change_hash:
                return body.created_at
    return None


def check_appended(
    chain: bytes,
    credential: VerifiedCredential | None,
    checkpoints: Checkpoints | None,
    rows: Rows | None = None,
    issuers: IssuerCheck | None = None,
) -> None:
    """`check_chain_signed` of a chain given with a record a log appends (see above), unless
    `credential` is its verification by a trace service (then only `check_unretired`: the
    node's rows, not the feeds it verified by; its issuer histories were judged against the
    node's copies then, as at a handshake); `checkpoints` attests a checkpointed issuer
    history (none: it is refused), `issuers` judges each against the node's copies."""
    if credential is not None and credential.chain == chain:
        check_unretired(credential, rows)
        return
    check_chain_signed(chain, checkpoints, rows=rows, issuers=issuers)
