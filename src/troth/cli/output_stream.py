"""A `--json` result with one long list, made and printed one item at a time.

`Reporter.result` makes the whole JSON text at once; a result listing every record of a log
(`troth trace export --json` without --out) would hold every item, then the text of them all
(review 56f, exports 1). `json_chunks` makes the same text as `json_text` piece by piece; the
reporter spools it (`spooled_result`) and prints it only once every item is made, so that a
failure part-way prints only the error object, as `--json` promises.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from troth.cli.output import json_text, write_stdout_chunks
from troth.limits import TRACE_EXPORT_SPOOL_BYTES

_COPY_CHUNK = 64 * 1024


def _indented(value: Any, depth: int, *, first: bool) -> str:
    """`value` as `json_text` writes it `depth` levels down (its own lines one string: JSON
    escapes a newline in a string, so each line break is the layout's)."""
    pad = "  " * depth
    text = json_text(value).replace("\n", "\n" + pad)
    return pad + text if first else text


def json_chunks(data: dict[str, Any], key: str, items: Iterable[Any]) -> Iterator[str]:
    """The text `json_text({**data, key: list(items)})` would make, with `key` in its place in
    `data` (whose own value there is ignored), one item of `items` a chunk."""
    yield "{"
    for number, (name, value) in enumerate(data.items()):
        yield ("," if number else "") + "\n  " + json_text(name) + ": "
        if name != key:
            yield _indented(value, 1, first=False)
            continue
        count = 0
        for count, item in enumerate(items, 1):
            yield ("," if count > 1 else "[") + "\n" + _indented(item, 2, first=True)
        yield "\n  ]" if count else "[]"
    yield "\n}"


def spooled_result(chunks: Iterable[str], began: Callable[[], None] = lambda: None) -> None:
    """Print `chunks` and a newline on stdout once all are made: held in memory up to
    TRACE_EXPORT_SPOOL_BYTES, past that in a temporary file (OSError for one that cannot be
    written, exit 4; nothing printed). `began` is called as the printing starts."""
    with tempfile.SpooledTemporaryFile(
        max_size=TRACE_EXPORT_SPOOL_BYTES, mode="w+", encoding="utf-8"
    ) as spool:
        for chunk in chunks:
            spool.write(chunk)
        spool.write("\n")
        spool.seek(0)
        began()
        write_stdout_chunks(iter(lambda: spool.read(_COPY_CHUNK), ""))
