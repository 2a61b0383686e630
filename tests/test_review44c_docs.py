"""Review 44c, docs: the Python in docs/traces.md against the current API.

1. Its `alice.resolve(...)` lacked `of=`, the agent whose escalation the human resolves
   (keyword-only and required since record ids became unique per agent, review 36e): copied,
   it raised TypeError. The snippet is a fragment (its node, chain and identities come from
   elsewhere), so each call it makes on a `TraceRecorder` is bound to the method's signature.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from troth.trace import TraceRecorder

TRACES = Path(__file__).resolve().parent.parent / "docs" / "traces.md"
RECORDERS = {"agent", "alice"}  # the snippet's TraceRecorder variables


def _calls() -> list[ast.Call]:
    blocks = re.findall(r"```python\n(.*?)```", TRACES.read_text(), re.S)
    assert blocks
    tree = ast.parse("\n".join(blocks))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in RECORDERS
    ]


def test_the_snippet_calls_recorders() -> None:
    assert {call.func.attr for call in _calls()} >= {"record", "escalate", "resolve"}  # type: ignore[attr-defined]


def test_every_recorder_call_in_docs_traces_binds_to_its_signature() -> None:
    for call in _calls():
        method = getattr(TraceRecorder, call.func.attr)  # type: ignore[attr-defined]
        positional = [None] * len(call.args)
        keywords = {keyword.arg: None for keyword in call.keywords if keyword.arg is not None}
        inspect.signature(method).bind(None, *positional, **keywords)  # TypeError if not
