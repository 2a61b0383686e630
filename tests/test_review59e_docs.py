"""Review 59e: the docs as a new user runs them (README.md, docs/python.md, examples/).

- docs 1: docs/python.md ("Errors") says `serve` "of a node this process already serves" is a
  RuntimeError; a second handle of the node serves beside the first, by design (review 49a,
  handles 2: `connect`, `call` and `enroll` over the network serve the node for their block):
  only a handle already serving refuses. The guide and `Node.serve`'s docstring now say so.
- docs 2: examples/delegate.py shows "the sub-agent passes on write" refused, as its docstring
  says ("refuses a wider grant"), but it delegates to the customer, upstream of it in the
  chain: the refusal printed is "delegation cycle", the check of amplification is never
  reached, and the example would print a refusal all the same were a wider grant accepted.
  Fixed: it delegates to a fresh identity, `helper`.
- docs 3: docs/traces.md ("Use") opens a node's trace log with `open_node_log(node, ...)`; a
  user holding the `troth.Node` the README and the guide make gets a bare AttributeError
  ("'Node' object has no attribute 'path'") from troth.trace; now an ArgumentError naming what
  it takes (fixed by the lead).
- docs 4: README.md's `troth policy test` comment said "denied by caveat:1:0", the command
  prints "denied by policy caveat:1:0"; tests/test_readme.py now checks every decision comment
  against what the story prints.
"""

from __future__ import annotations

import asyncio
import runpy
from pathlib import Path

import pytest

import troth
from troth.clock import SystemClock

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "python.md"


def _said(path: Path) -> str:
    """The text of `path` with its line breaks and runs of spaces as one space."""
    return " ".join(path.read_text().split())


def test_the_guide_says_only_a_handle_already_serving_refuses_to_serve_again() -> None:
    assert "`serve` of a node this process already serves" not in _said(GUIDE)
    assert "`serve` through a `Node` that already serves" in _said(GUIDE)

    # a second handle serves beside the first: tests/test_review49a_handles.py

    async def twice() -> None:
        with troth.Node.open("agents") as node:
            async with node.serve():
                with pytest.raises(RuntimeError, match="already running in this process"):
                    async with node.serve():
                        pass

    asyncio.run(twice())


def test_the_delegation_example_shows_a_wider_grant_refused_as_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    runpy.run_path(str(ROOT / "examples" / "delegate.py"), run_name="__main__")
    shown = capsys.readouterr().out
    assert "refused (the sub-agent passes on write): delegation amplifies authority" in shown


def test_the_trace_log_of_a_node_the_api_opened_is_no_bare_error() -> None:
    from troth.trace import open_node_log

    with (
        troth.Node.open("agents") as node,
        pytest.raises(troth.ArgumentError, match=r"a troth\.node\.Node"),
    ):
        open_node_log(node, clock=SystemClock())  # type: ignore[arg-type]
