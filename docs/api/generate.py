"""Regenerate the API reference in this directory from the docstrings of the public `troth`
module (pdoc, HTML, offline): `make docs`, or `python docs/api/generate.py [OUTPUT_DIR]`.

The reference covers what `troth.__all__` exports, the surface docs/python.md teaches; the
layers beneath (troth.identity, troth.credentials, ...) are described in docs/*.md. The HTML
is committed, and tests/test_api_docs.py fails when it differs from what this script writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pdoc
import pdoc.render

import troth

HERE = Path(__file__).resolve().parent


def generate(output: Path) -> list[Path]:
    """Write the reference into `output`; the files written, by name."""
    for name in troth.__all__:  # troth imports its public names on first use: pdoc reads
        getattr(troth, name)  # the module's namespace, so load them all first
    pdoc.render.configure(docformat="google", show_source=False, search=False)
    pdoc.pdoc("troth", "!troth\\..*", output_directory=output)
    return sorted(p for p in output.iterdir() if p.suffix in (".html", ".js"))


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    for path in generate(target):
        print(path)
