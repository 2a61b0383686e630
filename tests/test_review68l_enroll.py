"""Review 68l, enroll: `--over-copy` without the authority's pin, and what an over-copy
enrollment says it did.

1. The operator's word without the pin (medium, the lead's decision: deny when in doubt).
   Review 68a, enroll 1 made a COPY_CONFLICT name the ticket's authority pin and ask for
   `--over-copy --authority-pin PIN`, but `--over-copy` alone was still taken: an operator who
   asked the authority's operator "did you send me a ticket?" and heard "yes" (a thief's fork
   from a stolen early backup, ending with a key the authority rotated away from, having
   replaced the real ticket in transit) replaced the authority's real later history with the
   fork. Fixed: `over_copy` without `authority_pin` is refused before anything is read,
   stored or sent, as ArgumentError (`troth.enrollment.check_over_copy`: `enrollment`,
   `resumption`, `Node.enroll`, `RunningNode.enroll`, the node's `enroll` operation) and as a
   usage error by `troth enroll` (exit 2), each saying to get the pin from the authority's
   operator. `resume(over_copy=)` takes `authority_pin=` and checks it against the ticket's
   history (it had no pin at all).
"""

from __future__ import annotations
