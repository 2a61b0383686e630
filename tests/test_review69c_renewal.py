"""Review 69c (renewal: the replacement of a node's channels before its channel key's
attestation expires, reviews 68t and 68v) findings.

renewal 1 (low): nothing bounded the channels one maintenance round closed for the renewed
   key. Spread over the window a round finds a few, but a clock stepped forward over the
   window (an NTP step, a VM resumed) or a node down through it made every channel due at
   once: every channel of the node (up to MAX_OPEN_CHANNELS) closed in one round, every link
   and every peer reconnecting in the same second, the storm the spread was made to avoid. Now
   a round closes at most KEY_REPLACEMENTS_PER_ROUND, those whose last time came first; the
   rest follow in the next rounds, all well within KEY_REPLACE_MARGIN.
"""

from __future__ import annotations

from tests.support.channels import T
from tests.test_review68v_refuted import _attestation, _end, _idle
from troth.identity.attestation import PurposeKeyAttestation
from troth.limits import MAINTENANCE_SECONDS, MAX_OPEN_CHANNELS
from troth.node.key_renewal import (
    KEY_REPLACE_MARGIN,
    KEY_REPLACEMENTS_PER_ROUND,
    due_for_new_key,
    replace_times,
)
from troth.vault import SoftwareVault


def test_a_clock_stepped_over_the_window_replaces_channels_a_bounded_number_a_round() -> None:
    vault = SoftwareVault()
    old = _attestation(vault, now=T)
    renewed = frozenset({_attestation(vault, now=T + 29 * 86_400)})
    expires = PurposeKeyAttestation.decode(old).expires_at
    ends = [_end(old, f"chan-{n:016x}") for n in range(1000)]
    now = expires - KEY_REPLACE_MARGIN  # stepped past every channel's last time
    lasts = {}
    for end in ends:
        times = replace_times(old, end.id)
        assert times is not None and times[1] <= now
        lasts[end.id] = times[1]
    left, rounds = list(ends), 0
    while left:
        due = due_for_new_key(left, now, renewed=renewed, busy=_idle)
        assert 0 < len(due) <= KEY_REPLACEMENTS_PER_ROUND
        kept = [end for end in left if end not in due]
        # the most overdue first
        assert max(lasts[e.id] for e in due) <= min((lasts[e.id] for e in kept), default=now)
        left, rounds = kept, rounds + 1
    assert rounds == -(-1000 // KEY_REPLACEMENTS_PER_ROUND)
    # the most a node holds is replaced well within the margin at this pace
    rounds = -(-MAX_OPEN_CHANNELS // KEY_REPLACEMENTS_PER_ROUND)
    assert rounds * MAINTENANCE_SECONDS < KEY_REPLACE_MARGIN
