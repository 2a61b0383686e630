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
issuer" (review 56k, chains 1).
"""

from __future__ import annotations

import contextlib

from troth.credentials import ChainVerifier, TrustPolicy, VerifiedCredential
from troth.credentials.format import CredentialBody, CredentialChain
from troth.errors import CredentialError, DecodeError, TraceError, TraceFailure
from troth.identity import ChangeBody, Checkpoints, UnverifiedHistory
from troth.trace.export_memo import Memo

__all__ = ["check_appended", "check_chain_signed"]


def check_chain_signed(
    chain: bytes,
    checkpoints: Checkpoints | None = None,
    signed: Memo[bytes, bool] | None = None,
) -> None:
    """Raise TraceError(CREDENTIAL_INVALID) unless every credential of `chain` is signed by
    its issuer (`checkpoints` attests a checkpointed issuer history: none, it is refused).
    `signed`: the chains that verified before (by their bytes), added to."""
    if signed is not None and signed.get(chain):
        return
    try:
        decoded = CredentialChain.decode(chain)
        root = CredentialBody.decode(decoded.credentials[0].body).issuer
        verifier = ChainVerifier(TrustPolicy(frozenset({root})))
        verifier.verify_structure(chain, now=_made_at(decoded), checkpoints=checkpoints)
    except DecodeError as exc:
        raise TraceError(TraceFailure.CHAIN_MISMATCH, str(exc)) from None
    except CredentialError as exc:
        raise TraceError(TraceFailure.CREDENTIAL_INVALID, str(exc)) from None
    if signed is not None:
        signed.put(chain, True)


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


def check_appended(
    chain: bytes, credential: VerifiedCredential | None, issuers: Checkpoints | None
) -> None:
    """`check_chain_signed` of a chain given with a record a log appends (see above), unless
    `credential` is its verification by a trace service; `issuers` attests a checkpointed
    issuer history (none: it is refused)."""
    if credential is not None and credential.chain == chain:
        return
    check_chain_signed(chain, issuers)
