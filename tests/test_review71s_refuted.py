"""Review 71s: attacks on the cut-off marks of relaywait 1 that did not work.

1. Making a connection's allow-set mark addresses it never reached as cut off (so the hub
   would answer a probe of them with a no-route notice, telling whether they exist: review
   50f, relays 3), or grow its marks without bound by cuts of many addresses: `forget_each`
   marks only what the set allowed, and keeps at most `max_reply_paths` marks, the oldest
   forgotten first.
"""

from __future__ import annotations

from troth.routing import Address, AllowSet


def test_a_cut_marks_only_what_was_reached_and_at_most_max_reply_paths() -> None:
    """Refuted 1."""
    allowed = AllowSet(max_reply_paths=4)
    reached = [Address("worker", f"tcp-{n}") for n in range(4)]
    held = [Address("worker", f"end-{n}.dec") for n in range(3)]
    for address in reached:
        allowed.allow(address)
    for address in held:
        allowed.hold(address)
    probes = {Address("worker", f"probe-{n}") for n in range(50)}
    allowed.forget_each(probes | set(reached) | set(held))
    assert not any(allowed.cut_from(a) for a in probes)
    marked = [a for a in (*reached, *held) if allowed.cut_from(a)]
    assert len(marked) == 4
    assert not any(allowed.allows(a) for a in (*reached, *held))
    allowed.forget_each(probes)  # the smaller side is what the set holds now: nothing
    assert len([a for a in (*reached, *held) if allowed.cut_from(a)]) == 4
