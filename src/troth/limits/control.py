"""The hard limits of a node's control socket (troth.node.daemon) added since review 64z, and
the encoder's item limit, which is its answers' (troth.encoding.cbor: review 65b, cbor 1).

Part of `troth.limits`, which re-exports every one of them (`troth.limits.X`), as
`troth.limits.otel` is: the module itself is near the 800-line cap.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "MAX_CBOR_ENCODE_BYTES",
    "MAX_CBOR_ENCODE_ITEMS",
    "MAX_CONTROL_ANSWER_ITEMS",
    "MAX_NODES_TOLD_AT_ONCE",
]

MAX_CONTROL_ANSWER_ITEMS: Final = 1 << 20
"""Most CBOR data items a control answer holds (the CLI decodes it with this, its depth within
`MAX_CBOR_DEPTH`, its bytes within `MAX_CONTROL_ANSWER`; the node checks its answer against the
same limits and answers one past them as an error: review 64z, formats 1). The generic 65,536
refused the answer of a hub's channel list or a large MCP catalogue (a few thousand maps) after
the node had done the operation; this many hold some 60 MB decoded in the CLI's memory, up to
some 110 MB at worst (one-entry maps of distinct keys, measured: review 64a2), from its own
node only (the CLI checks the listener's pid; the node, its client's uid)."""

MAX_CBOR_ENCODE_ITEMS: Final = MAX_CONTROL_ANSWER_ITEMS
"""Most data items `troth.encoding.cbor.encode` writes (counted as the decoder counts them: the
value one, each array element one, each map entry two): the most any decoder reads, a control
answer's. A value sharing its sub-objects is written once per path (cbor2 writes no
references): 40 lists each holding the one before twice are 2**41 items, which the encoder's
walks and cbor2 went on writing until the process's memory ran out (review 65b, cbor 1); past
this limit the walks stop and the value is refused. Beside it, `MAX_CBOR_ENCODE_DEPTH`."""

MAX_CBOR_ENCODE_BYTES: Final = 16 * 1024 * 1024
"""Most bytes of an encoding `troth.encoding.cbor.encode` writes: the most any decoder reads (a
control answer's, `MAX_CONTROL_ANSWER`). Its item limit does not bound what it writes: one
string shared by many paths is written once per path, and a list holding a 1 MiB string a
million times, within `MAX_CBOR_ENCODE_ITEMS`, made cbor2 write 1 TiB, its allocation failing
aborted the process (review 65q, cbor 1); past this limit the value is refused: cbor2 writes
into a writer that refuses past it, cbor2 handing it the encoding in chunks of some KiB
(review 65y)."""

MAX_NODES_TOLD_AT_ONCE: Final = 16
"""Most daemons running here asked at once to sync a feed after a revocation or a rotation
(`troth.node.traces.tell_nodes_here`, daemon threads: review 69k, wave1 1): one after the
other, each that does not answer held the telling its control timeout (30 s) in turn (review
69d, notify 2); this many at a time, a home of up to this many silent nodes holds it one
timeout per authority told."""
