"""Review 60z (the lead, from review 60j's left item): `Node.traces.verify(checkpoint=...)`
wrote its kept checkpoint wherever it was told, inside the home's node directories too, where
`troth trace verify --checkpoint` refuses (review 49g, cli 7: a file written there can replace
a node database or a vault key). Now both refuse through one check
(`troth.node.home.inside_nodes`)."""

from __future__ import annotations

from pathlib import Path

import pytest

import troth
from tests.test_review60g_api_traces import node  # noqa: F401 - a fixture


def test_a_kept_checkpoint_inside_the_node_directories_is_refused(
    node: troth.Node,  # noqa: F811
    troth_home: Path,
) -> None:
    node.traces.checkpoint()
    key = troth_home / "nodes" / "default" / "vault.key"
    before = key.read_bytes() if key.exists() else None
    for inside in (key, troth_home / "nodes" / "default" / "kept.note"):
        with pytest.raises(troth.ArgumentError, match="outside the home's node directories"):
            node.traces.verify(checkpoint=inside)
        assert not (troth_home / "nodes" / "default" / "kept.note").exists()
    assert (key.read_bytes() if key.exists() else None) == before
    kept = troth_home / "kept.note"  # the home itself holds nothing of troth's
    assert node.traces.verify(checkpoint=kept).kept_written


def test_a_huge_record_id_is_not_named_whole(node: troth.Node) -> None:  # noqa: F811
    """Review 60j's left item: `prove` of a 10 MB id answered a NotFound carrying the whole id
    (in the CLI's error and JSON too); an error names its first 64 characters and its length."""
    huge = "a" * 10_000_000
    with pytest.raises(troth.NotFound) as raised:
        node.traces.prove(huge)
    assert len(str(raised.value)) < 200
    assert "(10000000 characters)" in str(raised.value)
    with pytest.raises(troth.NotFound, match=r"no record 'nope' in the log"):
        node.traces.prove("nope")  # a short one still whole
