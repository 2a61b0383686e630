"""`troth trace ...`: show, verify, prove, export, checkpoint, redact, resolve (the node's trace
log); outbox (what waits for the node's trace service)."""

from __future__ import annotations

import json
import re
import sys
import urllib.parse
from collections.abc import Mapping
from contextlib import closing, nullcontext
from pathlib import Path
from typing import Any, Final, NoReturn

import click

from troth import limits
from troth.cli.common import (
    CLOCK,
    INPUT_FILE,
    KEPT_FILE,
    OUTPUT_FILE,
    as_option,
    names_terminal,
    node_option,
    open_cli_node,
    output_file,
    stdin_bytes,
    write_output,
)
from troth.cli.output import (
    EXIT_INVALID,
    Reporter,
    escape_text,
    json_command,
    logs_dropped,
    terminal_json,
)
from troth.cli.text import timestamp
from troth.errors import NotFound, StorageError, TraceError
from troth.identity import Identifier
from troth.node.trace_checks import Stream, TraceVerdict, verify_trace
from troth.node.trace_reads import (
    TraceShown,
    agent_of,
    export_node_otel,
    exported_bundles,
    prove_record,
    show_trace,
)
from troth.node.traces import escalating_agent, resolve_escalation
from troth.trace.export import bundle_text
from troth.trace.log import LOG_FILE, open_node_log
from troth.trace.log_identity import declare_lost
from troth.trace.outbox import redact_outbox
from troth.trace.outbox_store import OutboxStore, outbox_exists
from troth.trace.record import REDACTABLE
from troth.trace.store import open_trace_store
from troth.trace.view import TraceNode, pieces


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


_PLAIN: Final = re.compile(r"[A-Za-z0-9_.:/@+-]+")


def _field(text: object) -> str:
    """A caller-chosen text of a record (tool, server, decision, policy, bundle) as one field
    of a shown line: as is when plain, else quoted as JSON, so that spaces or brackets in it are
    never read as the line's other fields (review 62b, traces 2); `-` too, which the line
    writes for none (review 62k, traces 2: a revision `-` was drawn as no revision)."""
    shown = str(text)
    return shown if _PLAIN.fullmatch(shown) and shown != "-" else json.dumps(shown)


def _tree_line(
    node: TraceNode, names: Mapping[Identifier, str], depth: int, under: TraceNode | None
) -> str:
    item = node.summary(names)
    parts = [f"#{item['index']}", item["agent"], item["kind"]]
    if "tool" in item:
        server = f" of server {_field(item['server'])}" if "server" in item else ""  # 53l
        parts.append(f"tool {_field(item['tool'])}{server}")
    if "decision" in item:
        policies = ",".join(_field(policy) for policy in item["policies"]) or "-"
        bundle = _field(item["bundle"]) if item["bundle"] else "-"
        parts.append(f"{_field(item['decision'])} by [{policies}] rev {bundle}")
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
    with open_cli_node(node_name) as node:
        shown = show_trace(node, agent_ref, clock=CLOCK)
    text = reporter.names.brief_text("\n".join(_tree_lines(shown.roots, shown.names)))
    reporter.result(shown.to_json(), text)
    _outbox_note(shown, reporter)


def _outbox_note(shown: TraceShown, reporter: Reporter) -> None:
    """Say (stderr) what the node's trace outbox holds: records not in this log yet."""
    if shown.outbox is not None:
        queued, refused = shown.outbox
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
    source = (
        None if file_path is None else Stream("-", stdin_bytes) if file_path == "-" else file_path
    )
    try:
        with open_cli_node(node_name) as node:
            verdict = verify_trace(
                node, kept=anchor_file, file=source, clock=CLOCK, notes=reporter, write=_write
            )
    except TraceError as exc:
        _invalid(reporter, exc)
    data_out = verdict.to_json()
    reporter.result(data_out, _verdict_text(verdict, data_out, file_path is not None))
    if require_anchor and verdict.status != "valid":
        sys.exit(EXIT_INVALID)


def _write(path: Path, note: bytes) -> None:
    """The kept file written as `--out` writes a file (`write_output`)."""
    write_output(str(path), note)


def _verdict_text(verdict: TraceVerdict, data_out: dict[str, Any], of_file: bool) -> str:
    """The verdict as `troth trace verify` says it (without --json)."""
    status = data_out["status"]
    # The verdict leads: `unanchored` is not `valid` (docs/traces.md, "Proof rules").
    text = f"{status}: {data_out.get('records', 1)} record(s) verified"
    if of_file and data_out.get("checkpoint"):  # whose (review 49j, logs 1)
        text += f" in log {data_out['checkpoint']['log']}"
    if status == "valid" and data_out.get("anchor"):  # which of the log's: an older one kept
        # in place of the newest, the log rolled back to it, is valid too (review 51g, anchor 1)
        kept = data_out["anchor"]
        whose = "the node's accepted" if verdict.anchor_source == "accepted" else "the kept"
        text += (
            f", against {whose} checkpoint of {kept['size']} record(s), signed"
            f" {timestamp(kept['time'])}"
        )
    if data_out.get("checkpoint", True) is None and of_file:
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
    elif status == "unanchored" and verdict.compared:  # another log's, or a size this
        # answer holds no proof against: not "pass --checkpoint", which was (review 48b, 3)
        text += " (the kept checkpoint is another log's, or of another size: not compared)"
    elif status == "unanchored" and verdict.kept_file is not None:  # passed, nothing there
        # yet: not "pass --checkpoint" (review 51g, cli 1)
        text += f" (nothing kept at {escape_text(str(verdict.kept_file))} yet" + (
            ")" if of_file else ": the newest checkpoint is kept there now)"
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
    held, newest = data_out.get("records"), data_out.get("checkpoint")
    if of_file and type(held) is int and newest and held < newest["size"]:  # an export of some
        # lines: `valid` speaks for the lines it holds, not for the log (review 69m, verify 2)
        text += (
            f"; the file holds {held} of the {newest['size']} record(s) its checkpoint covers"
            " (the others left out: not verified)"
        )
    elsewhere = data_out.get("chains_elsewhere")
    if type(elsewhere) is int and elsewhere:  # said, not only counted (75e, traceverify 2)
        text += (
            f"; {elsewhere} record(s) name a delegation chain kept elsewhere than the log:"
            " not checked"
        )
    for lost in data_out.get("lost_logs", ()):  # said as long as the node is (58h, trace 2)
        text += (
            f"; this node's earlier log {lost['log']} was declared lost {timestamp(lost['time'])}"
        )
    return text


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
    with open_cli_node(node_name) as node:
        bundle = prove_record(node, record_id, agent_ref, clock=CLOCK)
    text = bundle_text(bundle, lines=True)
    if out is not None:
        if names_terminal(out):  # its controls escaped, as with no --out (61n, cli 5)
            text = terminal_json(text)
        write_output(out, (text + "\n").encode())
        reporter.result({"record": record_id, "out": out, "index": bundle["index"]}, out)
    else:  # the bundle itself, as --out writes it (a terminal's controls escaped)
        reporter.document(text, escaped=_terminal())


def _endpoint_shown(endpoint: str) -> str:
    """The OTLP endpoint as a result names it: its scheme, host, port and path, never its user
    information or query (a collector's key: review 64i, otel 2, it was printed with --json)."""
    parts = urllib.parse.urlsplit(endpoint)
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


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
    if fmt == "otel" and out is not None:  # (review 64i, otel 3: ignored, the spans sent)
        raise click.UsageError("--out writes --format jsonl; --format otel sends to --endpoint")
    if fmt != "otel" and endpoint is not None:  # (64i, otel 3: ignored, JSONL on stdout)
        raise click.UsageError("--endpoint needs --format otel (the default is jsonl)")
    if fmt == "otel":
        if endpoint is None:
            raise click.UsageError("--format otel needs --endpoint")
        # the SDK's log lines: past --json's document, and a retry's named the endpoint with
        # its query (a collector's key, from argv, in a job's log; review 63e, cli 3)
        with open_cli_node(node_name) as node, logs_dropped("opentelemetry"):
            count = export_node_otel(node, endpoint, agent_ref, clock=CLOCK)
        named = _endpoint_shown(endpoint)
        reporter.result({"spans": count, "endpoint": named}, f"{count} spans sent")
        return
    with (
        open_cli_node(node_name) as node,
        exported_bundles(node, agent_ref, clock=CLOCK) as (checkpoint, bundles),
    ):  # one bundle at a time
        if out is None and reporter.as_json:  # one JSON document, not JSONL (review 44c, CLI 3)
            document: dict[str, Any] = {
                "out": None,
                "proofs": [],
                "checkpoint": checkpoint.to_json(),
            }
            reporter.result_listing(document, "proofs", bundles)  # (review 56f, exports 1)
            return
        if out is None and _terminal():  # its controls escaped, as prove's (57h, cli 1)
            for bundle in bundles:
                reporter.document(bundle_text(bundle))
            return
        target: Any = output_file(out, text=True) if out else nullcontext(sys.stdout)
        shown = terminal_json if out and names_terminal(out) else str  # (61n, cli 5)
        with target as stream:
            for bundle in bundles:  # as `troth.trace.export.export_jsonl` writes them
                stream.write(shown(bundle_text(bundle)) + "\n")
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
        agent = agent_of(node, agent_ref)
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
            agent = agent_of(node, agent_ref)
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
@click.option(
    "--requeue",
    "requeue",
    multiple=True,
    metavar="RECORD_ID",
    help="Queue a record set aside again (signed again when sent: one an older version set "
    "aside as dated before a checkpoint, its log's clock having run ahead).",
)
@node_option
@json_command
def outbox(
    discard: tuple[str, ...], requeue: tuple[str, ...], node_name: str, reporter: Reporter
) -> None:
    """What the node's trace outbox holds: the records queued for the trace service node.json
    names, and those set aside because the service refused them (with the reason)."""
    with open_cli_node(node_name) as node:
        data: dict[str, Any] = {"to": node.config.traces, "agents": [], "refused": []}
        if outbox_exists(node.db) or discard or requeue:
            store = OutboxStore(node.db)
            for asked, change, key in (
                (discard, store.discard, "discarded"),
                (requeue, store.requeue, "requeued"),
            ):
                if not asked:
                    continue
                with store.transaction():
                    done = change(asked)
                missing = sorted(set(asked) - set(done))
                if missing:
                    raise NotFound(f"no record set aside with id {', '.join(missing)}")
                data[key] = done
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
    for record in data.get("requeued", ()):
        lines.append(f"queued again {record}")
    return "\n".join(lines)
