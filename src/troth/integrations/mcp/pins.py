"""What an MCP gate serves of an upstream's tool, pinned for the life of its connection to the
upstream (docs/policy.md, "What the gate serves of a tool"; review 52b, mcp 1 and 2).

A policy bundle pins a tool's name and its input schema's shape, nothing else: the rest of what
an upstream lists is its word alone.

- `served`: the tool as the gate lists it: its name, title, description, input schema and
  output schema. Its annotations (`readOnlyHint`, `destructiveHint`, `idempotentHint`,
  `openWorldHint`, their `title`), icons, `_meta` and `execution` are dropped: no bundle vouches
  for them, and a client without them takes MCP's cautious defaults (the tool may write and
  destroy, is not idempotent, reaches an open world), so an upstream cannot get a refund
  auto-approved as read-only (review 52b, mcp 1).
- `Pins`: what is served of each tool (its name and shape) as the gate first listed it. A later
  listing of the same name and shape that serves anything else (a new description, title,
  descriptions inside the input schema, output schema) is not offered: an upstream cannot
  change the text an agent's model reads of a tool after it was listed, a "rug pull" (review
  52b, mcp 2). Keyed by name and shape, so a tool whose shape changes with a new bundle is
  pinned anew, while the text of a shape once served never changes, through another shape and
  back included. At most MAX_MCP_PINNED_TOOLS: past it, a tool not pinned yet is not offered.
"""

from __future__ import annotations

import enum
import hashlib

import mcp_types as types

from troth import limits
from troth.gates.toolschema import canonical_json, check_depth

__all__ = ["Pin", "Pins", "served"]


def served(tool: types.Tool) -> types.Tool:
    """`tool` as an MCP gate lists it: without what no bundle vouches for and a client could
    act on unasked (annotations, icons, `_meta`, `execution`; review 52b, mcp 1)."""
    return types.Tool(
        name=tool.name,
        title=tool.title,
        description=tool.description,
        input_schema=tool.input_schema,
        output_schema=tool.output_schema,
    )


class Pin(enum.Enum):
    """What `Pins.check` found of a tool."""

    SAME = "same"  # as first listed (or pinned now: the first listing)
    CHANGED = "changed"  # listed otherwise before, under the same name and shape
    FULL = "full"  # not pinned yet, and MAX_MCP_PINNED_TOOLS are


class Pins:
    """What an MCP gate served of each tool (name and input-schema shape) when it first listed
    it (module docstring). Digests only: SHA-256 of the shape, and of the served tool's RFC 8785
    canonical JSON."""

    def __init__(self) -> None:
        self._pins: dict[tuple[str, bytes], bytes] = {}

    def __len__(self) -> int:
        return len(self._pins)

    def check(self, tool: types.Tool, shape: str) -> Pin:
        """Pin `tool` (as `served`) under its name and `shape` when not pinned yet; whether it
        is what was pinned. PolicyError when its output schema is not JSON the gate can
        compare, or nests deeper than MAX_UPSTREAM_SCHEMA_DEPTH (its input schema's shape was
        read already)."""
        check_depth(tool.output_schema, "output schema")
        text = canonical_json(
            [tool.name, tool.title, tool.description, tool.input_schema, tool.output_schema]
        )
        digest = hashlib.sha256(text.encode()).digest()
        key = (tool.name, hashlib.sha256(shape.encode()).digest())
        pinned = self._pins.get(key)
        if pinned is None:
            if len(self._pins) >= limits.MAX_MCP_PINNED_TOOLS:
                return Pin.FULL
            self._pins[key] = digest
            return Pin.SAME
        return Pin.SAME if pinned == digest else Pin.CHANGED
