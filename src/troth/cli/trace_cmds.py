"""`troth trace ...`: show, verify, prove, export, checkpoint, redact, resolve (the node's trace
log); outbox (what waits for the node's trace service)."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Generator, Mapping
from contextlib import closing, nullcontext
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import click

from troth import limits
from troth.cli.common import (
    CLOCK,
    INPUT_FILE,
    KEPT_FILE,
    OUTPUT_FILE,
    as_option,
    node_option,
    open_cli_node,
    output_file,
    read_input,
    stdin_bytes,
    write_output,
)
from troth.cli.output import EXIT_INVALID, Reporter, escape_text, json_command
from troth.cli.text import timestamp
from troth.errors import NotFound, StorageError, TraceError, TraceFailure
from troth.identity import Identifier
from troth.node import Node
from troth.node.traces import escalating_agent, resolve_escalation
from troth.node.verify import trace_checkpoints, trace_issuers, trace_known
from troth.trace.accepted import AcceptedCheckpoints
from troth.trace.checkpoint import Checkpoint, log_origin, parse_checkpoint
from troth.trace.export import (
    bundle_text,
    export_bundles,
    export_jsonl,
    prove,
    verify_bundle,
    verify_export,
)
from troth.trace.log import LOG_FILE, TraceLog, open_node_log
from troth.trace.log_identity import declare_lost, lost_logs
from troth.trace.merkle import verify_consistency
from troth.trace.outbox import redact_outbox
from troth.trace.outbox_store import OutboxStore, outbox_exists
from troth.trace.record import REDACTABLE
from troth.trace.store import open_trace_store
from troth.trace.verify import verify_log
from troth.trace.view import TraceNode, pieces, trace_tree


@click.group(
    "trace",
    epilog="""\b
Example:
  troth trace show --agent support-agent
  troth trace verify --checkpoint last.checkpoint
  troth trace export --format jsonl --out eval.jsonl
  troth trace outbox            (what waits for the trace service node.json names)
  troth trace resolve RECORD_ID --as alice --outcome approved --considered "history" \\
      --reasoning "a loyal customer\"""",
)
def trace_group() -> None:
    """Signed traces: every step signed by its agent, in a tamper-evident log."""


def _names(node: Node) -> dict[Identifier, str]:
    return {
        Identifier(r.identifier): r.name for r in node.identities.list_local() if r.name is not None
    }


def _agent(node: Node, ref: str | None) -> Identifier | None:
    if ref is None:
        return None
    if Identifier.looks_like(ref):
        return Identifier.parse(ref)
    return Identifier(node.identities.find(ref).identifier)


def _invalid(reporter: Reporter, exc: TraceError) -> NoReturn:
    reporter.fail(
        exc,
        EXIT_INVALID,
        {
            "valid": False,
            "verified": False,
            "reason": exc.reason.value,
            "index": exc.index,
            "record": exc.record,
            "detail": exc.detail,
        },
    )


def _tree_lines(roots: list[TraceNode], names: Mapping[Identifier, str]) -> list[str]:
    """The trees as indented text, without recursion and at most MAX_TRACE_SHOW_DEPTH levels
    deep: a subtree below that is drawn as a tree of its own, its first line saying which
    record it is under (`pieces`; review 38b, view 2)."""
    lines = []
    for top, under in pieces(roots):
        stack = [(top, 0)]
        while stack:
            node, depth = stack.pop()
            lines.append(_tree_line(node, names, depth, under if node is top else None))
            if depth < limits.MAX_TRACE_SHOW_DEPTH:
                stack.extend((child, depth + 1) for child in reversed(node.children))
    return lines


def _tree_line(
    node: TraceNode, names: Mapping[Identifier, str], depth: int, under: TraceNode | None
) -> str:
    item = node.summary(names)
    parts = [f"#{item['index']}", item["agent"], item["kind"]]
    if "tool" in item:
        server = f" of server {item['server']}" if "server" in item else ""  # review 53l
        parts.append(f"tool {item['tool']}{server}")
    if "decision" in item:
        policies = ",".join(item["policies"]) or "-"
        parts.append(f"{item['decision']} by [{policies}] rev {item['bundle'] or '-'}")
    if "authority" in item:
        via = " via " + " > ".join(item["delegated_by"]) if item["delegated_by"] else ""
        parts.append(f"under {item['authority']}{via}")
    if "escalated_to" in item:
        parts.append(f"asks {item['escalated_to']}")
    if under is not None:
        parts.append(f"(below #{under.index})")
    if node.children and depth >= limits.MAX_TRACE_SHOW_DEPTH:
        parts.append(f"({len(node.children)} below, drawn apart)")
    return "  " * depth + escape_text("  ".join(str(p) for p in parts))


@trace_group.command("show")
@click.option("--agent", "agent_ref", help="Only the trees an agent (name or identifier) is in.")
@node_option
@json_command
def show(agent_ref: str | None, node_name: str, reporter: Reporter) -> None:
    """The trace as a tree: who did what, under whose authority, which policy."""
    with open_cli_node(node_name) as node, open_node_log(node, clock=CLOCK) as log:
        names = _names(node)
        roots = trace_tree(log, agent=_agent(node, agent_ref))
        text = reporter.names.brief_text("\n".join(_tree_lines(roots, names)))
        shown = []
        for top, under in pieces(roots):
            value = top.to_json(names)
            if under is not None:  # drawn apart: past MAX_TRACE_SHOW_DEPTH levels
                value["below"] = under.index
            shown.append(value)
        reporter.result(shown, text)
        _outbox_note(node, reporter)


def _outbox_note(node: Node, reporter: Reporter) -> None:
    """Say (stderr) what the node's trace outbox holds: records not in this log yet."""
    if not outbox_exists(node.db):
        return
    counts = OutboxStore(node.db).counts()
    queued, refused = sum(c[1] for c in counts), sum(c[3] for c in counts)
    if queued or refused:
        reporter.info(
            f"the trace outbox holds {queued} record(s) for the trace service and {refused} "
            "set aside (refused): troth trace outbox"
        )


@trace_group.command("verify")
@click.option(
    "--checkpoint",
    "anchor_path",
    type=KEPT_FILE,
    help="The checkpoint this verifier keeps: compared with, then replaced by the newest.",
)
@click.option(
    "--file",
    "file_path",
    type=INPUT_FILE,
    help="Verify an export or proof bundle (with the histories the node knows).",
)
@click.option("--require-anchor", is_flag=True, help="Exit 1 when the answer is 'unanchored'.")
@node_option
@json_command
def verify(
    anchor_path: str | None,
    file_path: str | None,
    require_anchor: bool,
    node_name: str,
    reporter: Reporter,
) -> None:
    """Every signature, every agent's chain, the Merkle root against the checkpoints; exit 1
    naming the first bad record and why. Without --checkpoint (or with one where none is kept
    yet) the node's log, or the export, is compared with the newest checkpoint the node accepted
    of it; with neither it is 'unanchored'."""
    anchor_file = Path(anchor_path) if anchor_path else None
    anchor = (
        read_input(str(anchor_file), limits.MAX_TRACE_CHECKPOINT_BYTES, "checkpoint")
        if anchor_file is not None and anchor_file.exists()
        else None
    )
    node_anchor: bytes | None = None  # the node's accepted checkpoint, anchoring in no file's
    gone: list[dict[str, Any]] = []  # the node's earlier logs declared lost (58h, trace 2)
    fresh = f"no checkpoint kept at {anchor_file} yet" if anchor_file and anchor is None else ""
    try:
        if file_path is not None:  # against the histories the node knows, as its own log
            with open_cli_node(node_name) as node:
                report: Any = _verify_file(file_path, anchor, node)
                # older than accepted (review 52a, anchor 1): the file read again, against the
                # accepted note (review 52d, anchor 1), unless stdin (read once)
                again = None if file_path == "-" else _again_file(file_path, node)
                accepted = AcceptedCheckpoints(node.db)
                if report.anchor is None:  # none kept, or not compared: the node's accepted
                    # one (review 59f, trace 1 to 3)
                    report, node_anchor = _against_accepted(
                        report, accepted, again, reporter, kept=anchor, node=node
                    )
                if fresh and node_anchor is None:  # a first run, or a mistyped path
                    reporter.info(f"{fresh}: this answer is unanchored")
                report = accepted.anchored(report, again)
        else:
            with open_cli_node(node_name) as node, open_node_log(node, clock=CLOCK) as log:
                identities = node.identities  # its stored copies judge forks
                known = trace_known(node)  # a rotation it verifies is stored (54i, identity 1)
                attests = trace_checkpoints(node, now=CLOCK.now())  # (review 56q, chains 1)
                issuers = trace_issuers(node)  # as its log's append (review 56y, chains 2)

                def against(note: bytes | None) -> Any:
                    return verify_log(
                        log,
                        anchor=note,
                        known=known,
                        checkpoints=attests,
                        rows=identities.window_around,
                        issuers=issuers,
                    )

                gone = [{"log": str(i), "time": at} for i, at in lost_logs(node)]
                accepted = AcceptedCheckpoints(node.db)
                if anchor is None:  # no kept file (or none kept there yet): the node's own
                    # accepted checkpoint (review 58c, trace 2: a log rolled back read as a new
                    # log, `unanchored`; review 58w, cli 3: so it did with a new kept file)
                    anchor = node_anchor = accepted.note_of(log.log_identity)
                if fresh and node_anchor is None:  # a first run, or a mistyped path
                    reporter.info(f"{fresh}: this answer is unanchored")
                report = against(anchor)  # the node's accepted one, not the file's: a kept
                # file swapped back is refused (52a, anchor 1), another verifier's newer is not
                report = accepted.anchored(report, against)  # (review 52d, anchor 1)
                if anchor_file is not None and report.newest is not None:
                    path = str(anchor_file)
                    accepted.keep(  # onto a log consistent with it only (55b, accepted 1)
                        report.anchor,
                        report.newest,
                        lambda n: write_output(path, n),
                        proof=log.consistency_proof,
                    )
                elif node_anchor is not None and report.newest is not None:  # moved on to
                    # what it verified (review 58h, trace 1: left behind, a log rolled back
                    # below what this answered valid read valid again)
                    accepted.keep(report.anchor, report.newest, proof=log.consistency_proof)
    except TraceError as exc:
        _invalid(reporter, exc)
    data_out = report.to_json()
    if gone:
        data_out["lost_logs"] = gone
    status = data_out["status"]
    # The verdict leads: `unanchored` is not `valid` (docs/traces.md, "Proof rules").
    text = f"{status}: {data_out.get('records', 1)} record(s) verified"
    if file_path is not None and data_out.get("checkpoint"):  # whose (review 49j, logs 1)
        text += f" in log {data_out['checkpoint']['log']}"
    if status == "valid" and data_out.get("anchor"):  # which of the log's: an older one kept
        # in place of the newest, the log rolled back to it, is valid too (review 51g, anchor 1)
        kept = data_out["anchor"]
        whose = "the node's accepted" if node_anchor is not None else "the kept"
        text += (
            f", against {whose} checkpoint of {kept['size']} record(s), signed"
            f" {timestamp(kept['time'])}"
        )
    if data_out.get("checkpoint", True) is None and file_path is not None:
        text += " (the file holds no record)"  # not the log's (review 46b, cli 1)
    elif data_out.get("lacks_kept_checkpoint"):  # its checkpoints missing, not "none yet"
        newest = data_out["checkpoint"]  # (review 52a, anchor 2)
        text += (
            " (the log holds no checkpoint, not even the kept one: its checkpoints are missing"
            if newest is None
            else f" (the log's newest checkpoint is of {newest['size']} record(s), smaller than"
            " the kept one: its later checkpoints are missing"
        ) + ", not its records)"
    elif data_out.get("checkpoint", True) is None:
        text += " (the log has no checkpoint yet: troth trace checkpoint)"
    elif status == "unanchored" and anchor is not None:  # another log's, or a size this
        # answer holds no proof against: not "pass --checkpoint", which was (review 48b, 3)
        text += " (the kept checkpoint is another log's, or of another size: not compared)"
    elif status == "unanchored" and anchor_file is not None:  # passed, nothing there yet: not
        # "pass --checkpoint" (review 51g, cli 1)
        text += f" (nothing kept at {escape_text(str(anchor_file))} yet" + (
            ")" if file_path is not None else ": the newest checkpoint is kept there now)"
        )
    elif status == "unanchored":
        text += " (no kept checkpoint to compare with: pass --checkpoint FILE)"
    covering = data_out.get("checkpoint") or data_out.get("anchor")  # the kept one when the
    if covering and data_out.get("after_checkpoint"):  # log lacks it (52a, anchor 2): signed,
        # chained, but no checkpoint covers them: `valid` spoke for the whole log (49m, cli 1)
        text += (
            f"; {data_out['after_checkpoint']} record(s) after the checkpoint, not covered by"
            " it (troth trace checkpoint)"
        )
    for lost in gone:  # said as long as the node is (review 58h, trace 2)
        text += (
            f"; this node's earlier log {lost['log']} was declared lost {timestamp(lost['time'])}"
        )
    reporter.result(data_out, text)
    if require_anchor and status != "valid":
        sys.exit(EXIT_INVALID)


def _lines(stream: BinaryIO, path: str) -> Generator[bytes, None, None]:
    """The lines of `stream` (file `path`), each read up to MAX_TRACE_LINE_BYTES."""
    limit = limits.MAX_TRACE_LINE_BYTES
    for number in itertools.count(1):
        line = stream.readline(limit + 1)
        if not line:
            return
        if len(line) > limit:  # named by its number, as a line that is no bundle (48b)
            raise OSError(f"{path}: line {number} is longer than {limit} bytes")
        yield line


def _against_accepted(
    report: Any,
    accepted: AcceptedCheckpoints,
    again: Callable[[bytes], Any] | None,
    reporter: Reporter,
    *,
    kept: bytes | None,
    node: Node,
) -> tuple[Any, bytes | None]:
    """An export or bundle compared with no kept checkpoint (no --checkpoint, none kept at it
    yet, or the `kept` one another log's or of a size the file holds no proof against),
    verified `again` against the newest checkpoint the node accepted of its log, and that note
    (None: none accepted, or not compared: the file holds no proof against its size). An
    export of the node's log rolled back below it read `unanchored`, exit 0 (review 59f, trace
    1, as review 58w cli 3 for the log itself; trace 2, with another log's kept note; trace 3,
    with an older one of its own log). A kept note of its own log only refuses so: the answer
    stays the kept note's (review 52d, anchor 1). Stdin is read once: said, not compared. An
    export smaller than the accepted checkpoint that the node's log proves a prefix of it is
    one made before, not refused (review 59k, trace 1: an honest older export read as a
    rollback, exit 1)."""
    checkpoint = report.checkpoint
    newest = None if checkpoint is None else accepted.newest(checkpoint.origin)
    if newest is None:
        return report, None
    if again is None:  # a warning: a note, which --json drops, left a script's result
        # silent on the comparison skipped (review 59k, trace 2)
        reporter.warn(
            f"the node accepted a checkpoint of {newest.size} record(s) of this log: stdin is"
            " read once, so not compared with it (name the file to compare)"
        )
        return report, None
    try:
        against = again(newest.note)  # TraceError: shorter than it, or not consistent with it
    except TraceError as exc:
        if exc.reason is not TraceFailure.TRUNCATED or not _prefix_in_log(node, checkpoint, newest):
            raise
        reporter.info(
            f"this export's checkpoint of {checkpoint.size} record(s) is older than, and by the"
            f" node's log a prefix of, the node's accepted checkpoint of {newest.size} record(s)"
        )
        return report, None
    if kept is not None and parse_checkpoint(kept)[0].origin == checkpoint.origin:
        return report, None
    if against.anchor is None:  # its size unproved by the file: not compared
        return report, None
    return against, newest.note


def _prefix_in_log(node: Node, export: Checkpoint, accepted: Checkpoint) -> bool:
    """Whether the node's log holds a tree of `accepted`'s size and proves `export`'s (smaller)
    a prefix of it: an export made before the node accepted `accepted` (review 59k, trace 1),
    not one of the log rolled back below it (review 59f, trace 1: that log holds no such tree,
    or one of another root). A log declared lost is not opened (a new one would be made), nor
    one not there (review 59m, trace 1: opening it made an empty trace.db in the place of one
    moved aside)."""
    if export.size >= accepted.size or not (node.path / LOG_FILE).is_file():
        return False
    if accepted.origin in {log_origin(identifier) for identifier, _ in lost_logs(node)}:
        return False
    try:
        with open_node_log(node, clock=CLOCK) as log:
            if log_origin(log.log_identity) != accepted.origin or log.size() < accepted.size:
                return False
            proof = log.consistency_proof(export.size, accepted.size) if export.size else []
        verify_consistency(export.size, accepted.size, export.root, accepted.root, proof)
    except (NotFound, StorageError, TraceError, ValueError):  # damaged, another, not a prefix
        return False
    return True


def _again_file(path: str, node: Node) -> Callable[[bytes], Any]:
    """`_verify_file` of `path` against another kept note (review 52d, anchor 1)."""
    return lambda note: _verify_file(path, note, node)


def _verify_file(path: str, anchor: bytes | None, node: Node) -> Any:
    """A JSONL export (one bundle per line) or one proof bundle (as `prove` writes it), with
    the histories the node stores (forks refused, an extension stored: `trace_known`,
    checkpointed histories attested). The file is opened and read once (`-`: stdin): a pipe or
    a FIFO cannot be read again (review 30c, files 1)."""
    identities = node.identities
    known = trace_known(node)  # 54i, identity 1
    attests = trace_checkpoints(node, now=CLOCK.now())  # its stored copies and held feeds (56q)
    rows = identities.window_around
    issuers = trace_issuers(node)  # each chain's issuer histories (review 56y, chains 2)
    limit = limits.MAX_TRACE_LINE_BYTES
    if path == "-":
        stream = stdin_bytes()
    else:
        try:
            stream = open(path, "rb")  # noqa: SIM115
        except OSError as exc:
            raise OSError(f"cannot read {path}: {exc.strerror or exc}") from None
    with nullcontext() if path == "-" else stream:
        lines = _lines(stream, path)
        first = next(lines, b"")
        if first.strip() == b"{":  # an indented bundle: the rest of it, from the same stream
            data = first + stream.read(limit + 1 - len(first))
            if len(data) > limit:
                raise OSError(f"proof bundle {path}: file is larger than {limit} bytes")
            return verify_bundle(
                data, anchor=anchor, known=known, checkpoints=attests, rows=rows, issuers=issuers
            )
        everything = itertools.chain([first], lines)
        return verify_export(
            everything, anchor=anchor, known=known, checkpoints=attests, rows=rows, issuers=issuers
        )


@trace_group.command("prove")
@click.argument("record_id")
@click.option("--out", type=OUTPUT_FILE, metavar="FILE", help="Write the bundle here.")
@click.option(
    "--agent",
    "agent_ref",
    help="Whose record (name or identifier): ids are unique per agent; needed when several "
    "agents have a record under the id.",
)
@node_option
@json_command
def prove_cmd(
    record_id: str, out: str | None, agent_ref: str | None, node_name: str, reporter: Reporter
) -> None:
    """An offline proof bundle for one record (verify it with: troth trace verify --file)."""
    with open_cli_node(node_name) as node, open_node_log(node, clock=CLOCK) as log:
        bundle = prove(log, record_id, _agent(node, agent_ref))
    text = bundle_text(bundle, lines=True)
    if out is not None:
        write_output(out, (text + "\n").encode())
        reporter.result({"record": record_id, "out": out, "index": bundle["index"]}, out)
    else:  # the bundle itself, as --out writes it (a terminal's controls escaped)
        reporter.document(text)


@trace_group.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "otel"]),
    default="jsonl",
    show_default=True,
    help="jsonl: an evaluation set (records, proofs, checkpoint); otel: OpenTelemetry spans.",
)
@click.option("--out", type=OUTPUT_FILE, metavar="FILE", help="JSONL file (default: stdout).")
@click.option("--endpoint", help="OTLP/HTTP endpoint, e.g. http://localhost:4318/v1/traces.")
@click.option("--agent", "agent_ref", help="Only this agent's records (name or identifier).")
@node_option
@json_command
def export(
    fmt: str,
    out: str | None,
    endpoint: str | None,
    agent_ref: str | None,
    node_name: str,
    reporter: Reporter,
) -> None:
    """An evaluation set (JSONL: each line a record, its inclusion proof and the checkpoint) or
    OpenTelemetry spans (GenAI conventions + troth.*) sent to an OTLP endpoint. With --json and
    no --out, one JSON object: the lines in `proofs`, beside the `checkpoint`."""
    with open_cli_node(node_name) as node, open_node_log(node, clock=CLOCK) as log:
        agent = _agent(node, agent_ref)
        if fmt == "otel":
            if endpoint is None:
                raise click.UsageError("--format otel needs --endpoint")
            count = _export_otel(log, endpoint, agent)
            reporter.result({"spans": count, "endpoint": endpoint}, f"{count} spans sent")
            return
        if out is None and reporter.as_json:  # one JSON document, not JSONL (review 44c, CLI 3)
            checkpoint, bundles = export_bundles(log, agent=agent)  # one bundle at a time
            document: dict[str, Any] = {
                "out": None,
                "proofs": [],
                "checkpoint": checkpoint.to_json(),
            }
            reporter.result_listing(document, "proofs", bundles)  # (review 56f, exports 1)
            return
        if out is None and _terminal():  # its controls escaped, as prove's (57h, cli 1)
            checkpoint, bundles = export_bundles(log, agent=agent)
            for bundle in bundles:
                reporter.document(bundle_text(bundle))
            return
        target: Any = output_file(out, text=True) if out else nullcontext(sys.stdout)
        with target as stream:
            checkpoint = export_jsonl(log, stream, agent=agent)
        if out is not None:
            reporter.result({"out": out, "checkpoint": checkpoint.to_json()}, out)


def _terminal() -> bool:
    """Whether stdout is a terminal: an export's lines are then written as `Reporter.document`
    writes a proof bundle, the characters a terminal acts on (C1, bidi controls: a record's
    disclosed values are a caller's or a model's text) escaped, the same JSON (review 57h,
    cli 1). To a file or a pipe they are written as `--out` writes them: escaped, a line of a
    record at its limits could be past MAX_TRACE_LINE_BYTES, which verifiers read."""
    try:
        return sys.stdout is not None and sys.stdout.isatty()
    except ValueError:  # a closed stdout: writing says so (write_stdout)
        return False


def _export_otel(log: TraceLog, endpoint: str, agent: Identifier | None) -> int:
    from troth.trace.otel import export_otel, otlp_exporter

    return export_otel(log, otlp_exporter(endpoint), agent=None if agent is None else str(agent))


@trace_group.command("checkpoint")
@node_option
@json_command
def checkpoint(node_name: str, reporter: Reporter) -> None:
    """Sign a checkpoint of the log as it is now (C2SP signed note) and print it."""
    with open_cli_node(node_name) as node, open_node_log(node, clock=CLOCK) as log:
        signed = log.checkpoint()
    reporter.result(signed.to_json(), signed.note.decode().rstrip("\n"))


@trace_group.command("declare-lost")
@node_option
@json_command
def declare_lost_cmd(node_name: str, reporter: Reporter) -> None:
    """Declare the node's trace log lost: its trace.db gone (deleted, emptied) with no backup
    to restore. The next record starts a new log; `troth trace verify` names the lost one."""
    with open_cli_node(node_name) as node, closing(open_trace_store(node.path / LOG_FILE)) as store:
        lost = declare_lost(node, store, now=CLOCK.now())
    names = sorted(str(identifier) for identifier in lost)
    reporter.result(
        {"lost": names},
        f"declared lost: this node's log {' and '.join(names)}; the next record starts a new log",
    )


@trace_group.command("redact")
@click.argument("record_id")
@click.option(
    "--field",
    "name",
    type=click.Choice(REDACTABLE),
    required=True,
    help="The field whose value to delete (its salted hash stays in the signed record).",
)
@click.option(
    "--agent",
    "agent_ref",
    help="Whose record (name or identifier): ids are unique per agent; needed when several "
    "agents have a record under the id.",
)
@node_option
@json_command
def redact(
    record_id: str, name: str, agent_ref: str | None, node_name: str, reporter: Reporter
) -> None:
    """Delete a disclosed value; the record keeps its salted commitment and still verifies.
    A record still in the node's trace outbox (queued for the trace service, or set aside)
    loses the value there too, and is delivered without it."""
    with open_cli_node(node_name) as node, open_node_log(node, clock=CLOCK) as log:
        agent = _agent(node, agent_ref)
        unscrubbed: StorageError | None = None
        try:
            queued = redact_outbox(node.db, record_id, name, agent=agent)  # None: not there
        except StorageError as exc:  # the outbox's copy changed, node.db's WAL not truncated:
            queued, unscrubbed = True, exc  # the log's value is redacted all the same (46f)
        try:
            log.find(record_id, agent)
        except NotFound:
            if queued is None:
                raise
            removed = False
        else:
            removed = log.redact(record_id, name, agent=agent)
    if unscrubbed is not None:
        raise unscrubbed
    data: dict[str, Any] = {"record": record_id, "field": name, "redacted": removed or bool(queued)}
    if queued is not None:
        data["outbox"] = queued
    where = {True: " (the log's and the trace outbox's copy)", False: " (in the trace outbox)"}
    reporter.result(
        data,
        ("redacted" + (where[removed] if queued else ""))
        if data["redacted"]
        else "nothing to redact",
    )


@trace_group.command("resolve")
@click.argument("record_id")
@as_option("The human deciding: the identity the escalation asks")
@click.option("--outcome", required=True, help="The decision, e.g. approved or refused.")
@click.option("--considered", required=True, help="What was considered (kept redactable).")
@click.option("--reasoning", required=True, help="Why (kept redactable).")
@click.option(
    "--agent",
    "agent_ref",
    help="The agent that escalated (name or identifier); default: the one whose record "
    "under the id is an escalation asking you.",
)
@node_option
@json_command
def resolve(
    record_id: str,
    as_name: str,
    outcome: str,
    considered: str,
    reasoning: str,
    agent_ref: str | None,
    node_name: str,
    reporter: Reporter,
) -> None:
    """Resolve an escalation in the log: the decision, what was considered and why, signed by
    the human it asks and linked to it (exit 1 when the record is not an escalation to them)."""
    with open_cli_node(node_name) as node:
        as_name = reporter.names.local(as_name, node)
        try:
            agent = _agent(node, agent_ref)
            if agent is None:  # the one agent whose record under the id asks them: named in
                # the answer, so the human sees whose escalation they resolved
                with open_node_log(node, clock=CLOCK) as log:
                    human = Identifier(node.identities.find(as_name).identifier)
                    agent = escalating_agent(log, record_id, human)
            receipt = resolve_escalation(
                node,
                as_name,
                record_id,
                outcome=outcome,
                considered=considered,
                reasoning=reasoning,
                clock=CLOCK,
                agent=agent,
            )
        except TraceError as exc:
            _invalid(reporter, exc)
    reporter.result(
        {"record": receipt.record, "index": receipt.index, "resolves": record_id, "of": str(agent)},
        f"resolved {escape_text(record_id)} of {agent}: {escape_text(outcome)} (record "
        f"{receipt.record}, index {receipt.index})",
    )


@trace_group.command("outbox")
@click.option(
    "--discard",
    "discard",
    multiple=True,
    metavar="RECORD_ID",
    help="Delete a record set aside (refused by the trace service), freeing its room.",
)
@node_option
@json_command
def outbox(discard: tuple[str, ...], node_name: str, reporter: Reporter) -> None:
    """What the node's trace outbox holds: the records queued for the trace service node.json
    names, and those set aside because the service refused them (with the reason)."""
    with open_cli_node(node_name) as node:
        data: dict[str, Any] = {"to": node.config.traces, "agents": [], "refused": []}
        if outbox_exists(node.db) or discard:
            store = OutboxStore(node.db)
            if discard:
                with store.transaction():
                    gone = store.discard(discard)
                missing = sorted(set(discard) - set(gone))
                if missing:
                    raise NotFound(f"no record set aside with id {', '.join(missing)}")
                data["discarded"] = gone
            data["agents"] = [
                {
                    "agent": str(Identifier(agent)),
                    "queued": queued,
                    "queued_bytes": queued_bytes,
                    "refused": refused,
                    "refused_bytes": refused_bytes,
                }
                for agent, queued, queued_bytes, refused, refused_bytes in store.counts()
            ]
            data["refused"] = [
                {"agent": str(Identifier(row.agent)), **row.to_json()}
                for row in store.refused(limit=limits.TRACE_OUTBOX_SHOWN)
            ]
    reporter.result(data, _outbox_text(data, reporter))


def _outbox_text(data: dict[str, Any], reporter: Reporter) -> str:
    lines = [f"trace service: {escape_text(data['to'] or 'none (records go to the node log)')}"]
    for row in data["agents"]:
        agent = escape_text(reporter.label(row["agent"]))
        lines.append(
            f"{agent}: {row['queued']} queued ({row['queued_bytes']} bytes), "
            f"{row['refused']} set aside ({row['refused_bytes']} bytes)"
        )
    if not data["agents"]:
        lines.append("nothing queued, nothing set aside")
    for row in data["refused"]:
        lines.append(
            f"  refused {row['record']} (seq {row['seq']}, time {row['time']}): "
            f"{escape_text(row['reason'])}"
            + (f" ({escape_text(row['detail'])})" if row["detail"] else "")
        )
    for record in data.get("discarded", ()):
        lines.append(f"discarded {record}")
    return "\n".join(lines)
