"""Review 75n, refuted: attacks on the payload of a gate's records and on signing's entries
(review 75k) that did not work."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import troth
from tests.support.traces import NOW, Held
from tests.test_review75k_batcher2 import _batcher
from troth import limits
from troth.errors import TraceFailure
from troth.gates import DecisionRecord, Outcome, PolicyDecision
from troth.gates import ToolCall as GateCall
from troth.trace import Authority, Decision, Kind, Links, RecordContent, ToolCall
from troth.trace.adapters import decision_content
from troth.trace.signing import check_content

_WIDE = "\U0001f600" * limits.MAX_TRACE_TEXT  # a record text of the most bytes


def test_a_bundles_most_policy_ids_fit_a_record_whatever_its_other_members() -> None:
    """Tried: a gate decision naming MAX_TRACE_POLICY_IDS bundle `@id`s of MAX_POLICY_ID_TEXT
    characters (the most a bundle holds), with every other member at its limit (links of
    4-byte characters, a made-up tool name of them, a server name of MAX_TOOL_NAME, the most
    credentials, the largest revision) past MAX_TRACE_PAYLOAD_BYTES at the chain's farthest
    place. It fits (15,621 bytes): MAX_TRACE_POLICY_BYTES is what those ids take, and the
    recorder keeps them all."""
    ids = tuple(f"{n:02d}" + "p" * (limits.MAX_POLICY_ID_TEXT - 2) for n in range(64))
    decision = PolicyDecision(
        False, Outcome.FORBIDDEN, "forbidden", ids, revision=2**53 - 1, digest="a" * 64
    )
    call = GateCall(_WIDE, {"a": 1}, server="s" * limits.MAX_TOOL_NAME)  # (a server: NAME)
    links = Links(
        parent="a" * 32, trace=_WIDE, span=_WIDE, parent_span=_WIDE, conversation=_WIDE,
        parent_agent=Held().identifier,
    )  # fmt: skip
    content, _ = decision_content(DecisionRecord(NOW, None, call, decision), Held().identifier)
    credentials = ((b"i" * 16, b"h" * 32),) * (limits.MAX_DELEGATION_LINKS + 1)
    content = dataclasses.replace(content, links=links, authority=Authority(b"c" * 32, credentials))
    assert content.decision is not None
    assert content.decision.policies == ids
    assert set(check_content(content)) == {"args", "result"}


def test_a_queued_content_swapped_after_add_is_not_signed_unchecked() -> None:
    """Tried (75k batcher2 1-2, signing's private `_sign`): replace the `Queued.content` that
    `add` handed back (a public field) by a content over MAX_TRACE_PAYLOAD_BYTES before the
    batch is signed, so that `_sign`, given the values' checked bytes, signs what no check
    saw. Sealing checks the payload again near the bound: it is refused (OVER_LIMIT)."""
    batcher = _batcher(Held())
    queued = batcher.add(RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("t")), now=NOW)
    over = tuple(f"{n:02d}" + "p" * (limits.MAX_TRACE_TEXT - 2) for n in range(64))
    queued.content = RecordContent(
        Kind.TOOL_INVOCATION, tool=ToolCall("t"), decision=Decision("allow", None, over)
    )
    assert batcher.next_batch(NOW) is None
    assert queued.error is not None
    assert queued.error.reason is TraceFailure.OVER_LIMIT


_SIGNING = frozenset({"sign_record", "sign_next", "check_content", "resign_record"})


def _calls(nodes: list[ast.stmt]) -> set[str]:
    return {
        node.func.id if isinstance(node.func, ast.Name) else node.func.attr
        for stmt in nodes
        for node in ast.walk(stmt)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute)
    }


def test_no_caller_of_signing_takes_its_content_error_for_another_value_error() -> None:
    """Tried (75k made ContentError a TraceError and a ValueError): a handler of ValueError
    alone around a signing call (`sign_record`, `sign_next`, `check_content`,
    `resign_record`) in src/troth, which would take a content signing refuses for another
    mistake and go on. None: each catches TraceError (or TrothError) beside it."""
    found, seen = [], 0
    for path in Path(troth.__file__).parent.rglob("*.py"):
        text = path.read_text()
        if not any(name in text for name in _SIGNING):  # (parsed only where called: fast)
            continue
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.Try) or not _SIGNING & _calls(node.body):
                continue
            seen += 1
            for handler in node.handlers:
                caught = handler.type
                names = {
                    n.id for n in ast.walk(caught) if isinstance(n, ast.Name)
                } if caught is not None else {"BaseException"}  # fmt: skip
                if "ValueError" in names and not names & {"TraceError", "TrothError"}:
                    found.append(f"{path}:{node.lineno}")
    assert seen
    assert found == []
