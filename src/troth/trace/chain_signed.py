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
(`ChainVerifier.verify` against its policy and feeds), as a chain kept elsewhere is.

A log checks a chain given with a record it appends, once (`TraceLog`): there an issuer's
checkpointed history (past 64 changes) is taken as carried (`issuers_carried`), since the node
stores it only once a record under the chain is appended (a trace service judged it against
its feeds first); a verification judges it by the verifier's store (`checkpoints`).
"""

from __future__ import annotations

from troth.credentials import ChainVerifier, TrustPolicy
from troth.credentials.format import CredentialBody, CredentialChain
from troth.errors import CredentialError, DecodeError, TraceError, TraceFailure
from troth.identity import Checkpoint, Checkpoints
from troth.trace.export_memo import Memo

__all__ = ["check_chain_signed", "issuers_carried"]


def issuers_carried(checkpoint: Checkpoint, change_hash: bytes) -> bool:
    """A `Checkpoints` that takes every checkpointed issuer history as carried (a log's append:
    see above); what follows each checkpoint is verified all the same."""
    del checkpoint, change_hash
    return True


def check_chain_signed(
    chain: bytes,
    at: int,
    checkpoints: Checkpoints | None = None,
    signed: Memo[bytes, bool] | None = None,
) -> None:
    """Raise TraceError(CREDENTIAL_INVALID) unless every credential of `chain` is signed by
    its issuer (the chain's issuer histories judged at `at`, the record's time; `checkpoints`
    attests a checkpointed one: none, it is refused). `signed`: the chains that verified
    before (by their bytes), added to."""
    if signed is not None and signed.get(chain):
        return
    try:
        root = CredentialBody.decode(CredentialChain.decode(chain).credentials[0].body).issuer
        verifier = ChainVerifier(TrustPolicy(frozenset({root})))
        verifier.verify_structure(chain, now=at, checkpoints=checkpoints)
    except DecodeError as exc:
        raise TraceError(TraceFailure.CHAIN_MISMATCH, str(exc)) from None
    except CredentialError as exc:
        raise TraceError(TraceFailure.CREDENTIAL_INVALID, str(exc)) from None
    if signed is not None:
        signed.put(chain, True)
