"""The public face of a node's signed trace log (`Node.traces`): verify it, or an export of
it; show it as trees; prove one record offline; export every record with its proof.

The calls are the ones `troth trace verify`, `show`, `prove` and `export` make
(`troth.node.trace_checks`, `troth.node.trace_reads`): the same answers, the same refusals.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from troth._api.arguments import check_file, check_peer, check_text
from troth.errors import ArgumentError
from troth.identity import Identifier
from troth.kinds import check_kind, got
from troth.node.home import inside_nodes
from troth.node.trace_checks import TraceVerdict, verify_trace
from troth.node.trace_reads import export_node_jsonl, prove_record, show_trace
from troth.trace.checkpoint import Checkpoint
from troth.trace.export import bundle_text
from troth.trace.log import open_node_log

if TYPE_CHECKING:
    from troth._api.node import Node, PeerRef

__all__ = ["Traces"]


class Traces:
    """The node's signed trace log (`Node.traces`): each step an agent takes (a delegation, a
    revocation, a tool call, a policy decision) signed by that agent and appended to a
    tamper-evident Merkle log, checkpointed by the node (docs/traces.md)."""

    def __init__(self, node: Node) -> None:
        from troth._api.node import Node

        self._node = check_kind("Traces", "node", node, Node, "a Node (use node.traces)")

    def verify(
        self, *, checkpoint: Path | str | None = None, file: Path | str | None = None
    ) -> TraceVerdict:
        """Verify every signature, every agent's chain and the Merkle root against the
        checkpoints, of the node's log or of `file` (an export, `export_jsonl`'s, or a proof
        bundle, `prove`'s), with the histories the node knows. `checkpoint`: the file this
        verifier keeps its checkpoint in, compared with, then (verifying the node's log)
        replaced by the newest verified: not there yet, the answer is "unanchored" and the
        newest is kept there (`kept_fresh`, `kept_written`). Without one the node's newest
        accepted checkpoint of the log is the anchor (a `file` that is no regular file, a FIFO,
        is read once: not compared with it, said in `warnings`). The verdict's `status` is
        "valid" when judged against a checkpoint kept before, else "unanchored" (not "valid").
        An invalid log or file raises TraceError naming the first bad record (`index`,
        `record`, `reason`); a kept checkpoint older than one the node accepted (a log or a
        kept file rolled back) is TraceError ROLLED_BACK. A path that is not a Path or a str is
        an ArgumentError; one that cannot be read, an OSError."""
        call = "Traces.verify"
        kept = check_file(call, "checkpoint", checkpoint)
        source = check_file(call, "file", file)
        node = self._node
        if kept is not None and inside_nodes(kept, node._stored.path.parent):
            raise ArgumentError(  # where node databases and vault keys are (as the CLI's)
                call, "checkpoint", "a file outside the home's node directories", str(kept)
            )
        return verify_trace(node._stored, kept=kept, file=source, clock=node._clock)

    def show(self, agent: PeerRef | None = None) -> list[dict[str, Any]]:
        """The log as trees, as `troth trace show --json` prints them: each record with who
        did what (`agent`, `kind`, `tool`), under whose authority, which policy decided, and
        the records under it (`children`); the node's identities named. With `agent` (an
        identity's name, an `Identity`, an `Identifier` or its text), only the trees it is
        in (NotFound for a name the node has not)."""
        node = self._node
        who = self._agent("Traces.show", agent)
        return show_trace(node._stored, who, clock=node._clock).to_json()

    def prove(self, record_id: str, *, agent: PeerRef | None = None) -> bytes:
        """The offline proof bundle of record `record_id` (JSON, as `troth trace prove --out`
        writes it): the signed record, its inclusion proof and a fresh checkpoint; verify it
        with `verify(file=...)`. `agent`: whose record, needed when several agents have one
        under the id (ids are unique per agent). NotFound when there is none."""
        call = "Traces.prove"
        check_text(call, "record_id", record_id)
        node = self._node
        who = self._agent(call, agent)
        bundle = prove_record(node._stored, record_id, who, clock=node._clock)
        return (bundle_text(bundle, lines=True) + "\n").encode()

    def export_jsonl(self, stream: IO[str], *, agent: PeerRef | None = None) -> Checkpoint:
        """Write every record (of `agent`, or all) to the text `stream` as JSONL, each line a
        record, its inclusion proof and the checkpoint (an evaluation set, as `troth trace
        export` writes it); returns that checkpoint, signed for the export. A `stream` with no
        `write`, a binary one or a closed one is an ArgumentError."""
        call = "Traces.export_jsonl"
        if not callable(getattr(stream, "write", None)):
            raise ArgumentError(call, "stream", "a text stream (with a write method)", got(stream))
        if isinstance(stream, io.RawIOBase | io.BufferedIOBase):  # before a checkpoint is
            # signed for it: a bare TypeError after (review 60j, traces 2)
            raise ArgumentError(call, "stream", "a text stream, not a binary one", got(stream))
        if getattr(stream, "closed", False) is True:
            raise ArgumentError(call, "stream", "an open text stream", "a closed one")
        node = self._node
        who = self._agent(call, agent)
        return export_node_jsonl(node._stored, stream, who, clock=node._clock)

    def _agent(self, call: str, agent: PeerRef | None) -> Identifier | None:
        """The identifier `agent` names (None: every agent's records)."""
        if agent is None:
            return None
        return self._node._identifier_of(check_peer(call, "agent", agent))

    def checkpoint(self) -> Checkpoint:
        """Sign a checkpoint of the log as it is now (a C2SP signed note: `.note`), as `troth
        trace checkpoint` does: records appended after the newest checkpoint are signed and
        chained, but no checkpoint covers them until the next."""
        node = self._node
        with open_node_log(node._stored, clock=node._clock) as log:
            return log.checkpoint()
