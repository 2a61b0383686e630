"""Review 22b (files): hostile content in the files a node reads from its directory. Review 22b's
finding 7 (1: traces; 2-4: gates; 5-6: limits).

7. node.json is checked field by field for type (`_typed_as_declared`) but never for the one
   field without a default: a node.json without `name` makes `NodeConfig(**raw)` raise
   TypeError (a traceback from every command that opens the node: the CLI catches TrothError,
   ValueError and OSError), and `"name": null` passes (typed as `str | None` like the optional
   fields) into a node whose name is None.

The test asserts the correct behaviour (ConfigError); it was a strict xfail until its fix.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from troth.errors import ConfigError
from troth.node.config import NodeConfig


@pytest.mark.parametrize(
    "document", [b'{"version": 1}', b'{"name": null, "version": 1}'], ids=["missing", "null"]
)
def test_a_node_json_without_a_name_is_a_config_error(document: bytes) -> None:
    with pytest.raises(
        ConfigError, match=r"node\.json is not a valid node configuration: wrong fields"
    ):
        NodeConfig.from_json(document, Path("node.json"))


@pytest.mark.parametrize("name", ["", "../x", "A", "x/y"])
def test_a_node_json_whose_name_is_no_node_name_is_a_config_error(name: str) -> None:
    """The name names the node's directory: one that is no valid node name (review 22c)."""
    document = json.dumps({"name": name, "version": 1}).encode()
    with pytest.raises(ConfigError, match="node name"):
        NodeConfig.from_json(document, Path("node.json"))
