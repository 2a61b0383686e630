"""What links an old signer history to its agent's newest in a proof bundle (version 2;
docs/formats.md, "Trace log and checkpoints"; docs/traces.md, "Signer histories"; review 47o,
bundles 1). A record signed under a history its log keeps only as a window (the agent rotated
past 64 changes since) carries, with that history, the log's windows that link it forward to
the agent's newest history the log holds and back towards change 0: a verifier whose stored
copy of the agent moved past the record's history, or that holds none, checks the chain as
the collector checks the windows a batch carries (`verify_windows`, `check_windows`) and
judges its newest by its stored copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from troth import limits
from troth.errors import IdentityError, TraceError, TraceFailure
from troth.identity import Checkpoints, Identifier, VerifiedIdentity, indexed_hashes
from troth.trace.bridge import check_windows
from troth.trace.signing import KeyEpoch
from troth.trace.verify import Known, no_fork, retired_by, verify_identity, verify_windows

__all__ = ["chain_retired", "check_one_branch", "link_windows", "verify_linked"]

_Span = tuple[int, list[bytes]]


def _end(span: _Span) -> int:
    return span[0] + len(span[1]) - 1


def _follows(before: _Span, after: _Span, *, last: bool) -> bool:
    """Whether a history `after` (its first change and hashes) may follow `before` in a chain
    `check_windows` takes: it starts at a change `before` holds, agrees with it on every change
    both hold, and ends later (`last`, the newest: or where it does)."""
    first, hashes = before
    start, following = after
    if not first <= start <= _end(before):
        return False
    both = min(_end(before), _end(after)) - start + 1
    if hashes[start - first : start - first + both] != following[:both]:
        return False
    return _end(after) > _end(before) or (last and _end(after) == _end(before))


def link_windows(
    history: bytes, windows: Sequence[bytes], newest: bytes | None
) -> tuple[list[bytes], int] | None:
    """(the windows, oldest first, and the place of `history` among them) that link `history`
    forward to `newest` (the agent's newest history its log holds) and back towards its change
    0, of `windows` (the log's windows of the agent, `history_windows`): each starts at a
    change the one before it holds, agrees with it there and ends later (the newest may end
    where the last does), as the verifier's `check_windows` asks. Back as far as the windows
    go (a verifier's stored copy may attest where they stop), those nearest `history` kept
    first within MAX_TRACE_PROOF_WINDOWS. None when none is needed, when no chain of them
    reaches `newest`, or when reaching it takes more than MAX_TRACE_PROOF_WINDOWS: the bundle
    is then version 1 (it verifies where the verifier's copy still holds `history`)."""
    candidates = [w for w in windows if w != history]
    if newest is not None and newest != history:
        candidates.append(newest)
    spans = {w: indexed_hashes(w) for w in [history, *candidates]}
    after: list[bytes] = []
    current = history
    while newest is not None and current != newest:
        following = [w for w in candidates if _follows(spans[current], spans[w], last=w == newest)]
        if not following:
            return None
        current = newest if newest in following else max(following, key=lambda w: _end(spans[w]))
        after.append(current)
    before: list[bytes] = []
    current = history
    while spans[current][0] > 0:
        preceding = [
            w for w in candidates if w != newest and _follows(spans[w], spans[current], last=False)
        ]
        if not preceding:
            break
        current = min(preceding, key=lambda w: spans[w][0])
        before.insert(0, current)
    room = limits.MAX_TRACE_PROOF_WINDOWS - len(after)
    before = before[max(0, len(before) - room) :]
    if room < 0 or not (before or after):
        return None
    return [*before, *after], len(before)


def verify_linked(
    agent: Identifier,
    chain: Sequence[bytes],
    at: int,
    known: Known | None,
    checkpoints: Checkpoints | None,
) -> tuple[VerifiedIdentity, list[VerifiedIdentity]]:
    """(the history at `at` of `chain`, the whole chain, oldest first) verified: the first
    from change 0 or a checkpoint the verifier attests (`checkpoints`), each next one from a
    change the one before it holds (`verify_windows`), the whole as `check_windows` takes it
    (each agrees with the one before on every change both hold, no fork, no rollback, each
    adds changes), and its last judged by the verifier's stored copy (`known`). The history at
    `at` is then a prefix of a history the verifier's copy does not refuse, or, with no copy,
    of one tied to the identifier from change 0 (or a change the verifier attests).
    TraceError SIGNER_INVALID otherwise."""
    head = verify_identity(agent, chain[0], None, checkpoints)
    hashes = [change.change_hash for change in head.changes]
    rest = verify_windows(agent, head.first_index, hashes, chain[1:], checkpoints)
    newest = rest[-1]
    try:
        check_windows(head.first_index, hashes, rest[:-1], newest)
        if known is not None:
            known(newest)
    except IdentityError as exc:
        raise TraceError(TraceFailure.SIGNER_INVALID, f"{agent}: the windows: {exc}") from None
    histories = [head, *rest]
    return histories[at], histories


def check_one_branch(
    agent: Identifier,
    carried: Sequence[VerifiedIdentity],
    branches: dict[Identifier, dict[int, bytes]],
    *,
    index: int,
    record: str,
) -> None:
    """Raise TraceError SIGNER_INVALID (at the line: `index`, `record`) when the histories
    of `agent` a line carries (its history, and its windows) and those the lines before it
    carried (`branches`: the hashes of each agent's changes, by index, added to) hold a change
    with two hashes: lines of two branches of one identity, each verifying alone from change
    0 (a stolen key backup's fork beside the agent's real history), as `LogVerifier` refuses
    of the windows a log kept (`no_fork`; review 47r, bundles 1)."""
    try:
        no_fork(
            agent, carried, branches.setdefault(agent, {}), what="the histories the lines carry"
        )
    except TraceError as exc:
        raise exc.located(index=index, record=record) from None


def chain_retired(
    epoch: KeyEpoch, identity: VerifiedIdentity, carried: Sequence[VerifiedIdentity]
) -> KeyEpoch:
    """`epoch` (a key resolved in `identity`, a record's history, or the verifier's rows), and
    when current there, retired when a later history of the chain a bundle carries
    (`carried`, oldest first, `identity` among them) holds its change and the next one
    (`retired_by`, as `LogVerifier` dates a kept window's key): a bundle with a history that
    ends at the key's change, the windows after it showing the next, presented the key as
    current (review 47r, bundles 2)."""
    if epoch.retired_at is not None or not 0 <= epoch.change - identity.first_index < len(
        identity.changes
    ):
        return epoch
    mine = identity.changes[epoch.change - identity.first_index].change_hash
    at = next((i for i, h in enumerate(carried) if h is identity), len(carried))
    later = carried[at + 1 :]
    following = retired_by(epoch.change, mine, later)
    if following is None:
        return epoch
    return replace(epoch, is_current=False, retired_at=following)
