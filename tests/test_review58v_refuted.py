"""Review 58v, refuted: attacks on review 58t's result limit that did not work; each test fails
if the defence it names breaks.

1. A result over MAX_MCP_RESULT in a resource link's name (a block whose characters the gate's
   quick count leaves out): the gate measures the whole result's JSON and refuses it, recorded
   unanswered.
2. One over it in an embedded resource's blob: refused likewise.
3. A result whose upstream `_meta` alone is over a frame: the gate serves a result without the
   upstream's `_meta`, so it is measured without it and served whole, recorded allowed only.
"""

from __future__ import annotations

import mcp_types as types

from tests.test_review47m_mcp_cancel import outcomes
from tests.test_review58t_mcp import replying, slow_client
from tests.test_review58t_refuted import _refused_once
from troth import limits

BIG = "n" * limits.MAX_MCP_RESULT


def test_a_result_over_the_limit_in_a_resource_link_is_refused() -> None:
    link = types.ResourceLink(type="resource_link", uri="file:///orders/o1", name=BIG)
    _refused_once(replying(lambda: types.CallToolResult(content=[link])))


def test_a_result_over_the_limit_in_an_embedded_blob_is_refused() -> None:
    blob = types.BlobResourceContents(uri="file:///orders/o1", blob=BIG)
    held = types.EmbeddedResource(type="resource", resource=blob)
    _refused_once(replying(lambda: types.CallToolResult(content=[held])))


def test_an_upstream_meta_over_a_frame_is_not_served_nor_measured() -> None:
    said: list[types.ContentBlock] = [types.TextContent(type="text", text="o1: shipped")]
    meta = {"padding": "m" * limits.MAX_MCP_FRAME}
    seen = slow_client(replying(lambda: types.CallToolResult(content=said, _meta=meta)), 1)
    (answer,) = seen.answers().values()
    assert answer["result"]["content"][0]["text"] == "o1: shipped"
    assert "_meta" not in answer["result"]
    assert outcomes(seen.recorder) == [("lookup_order", "allowed")]
