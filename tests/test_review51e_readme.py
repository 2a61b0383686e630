"""Review 51e, readme 10: the README's Python program (and docs/python.md's) worked only
because of what it printed. `print(support.identity)` reads the node's own identity, which
creates it on first use; the next line, `support.identities.rotate("support-agent")`, names
it as text, and a reader who drops the print (it looks like output, nothing more) got
NotFound "no local identity 'support-agent'" (it now rotates `support.identity`). Each
program must run with every statement that only prints taken out."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.readme import blocks

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = {"README.md": ROOT / "README.md", "docs/python.md": ROOT / "docs" / "python.md"}


class _NoPrints(ast.NodeTransformer):
    """Each statement that is only a `print(...)` call becomes `pass`."""

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        value = node.value
        if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "print":
            return ast.copy_location(ast.Pass(), node)
        return node


def _without_prints(markdown: str) -> str:
    program = "\n".join(b.text for b in blocks(markdown) if b.language == "python")
    tree = _NoPrints().visit(ast.parse(program))
    return ast.unparse(ast.fix_missing_locations(tree))


def test_the_transform_takes_prints_out_and_nothing_else() -> None:
    text = _without_prints("```python\nprint(1)\nx = print\ny = [print(2)]\n```\n")
    assert text.splitlines() == ["pass", "x = print", "y = [print(2)]"]


@pytest.mark.parametrize("document", sorted(DOCUMENTS))
def test_the_python_program_runs_without_its_prints(document: str, tmp_path: Path) -> None:
    program = tmp_path / "story.py"
    program.write_text(_without_prints(DOCUMENTS[document].read_text()))
    env = {**os.environ, "TROTH_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT / "src")}
    for name in ("TROTH_NODE", "TROTH_VAULT_KEY"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, str(program)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
