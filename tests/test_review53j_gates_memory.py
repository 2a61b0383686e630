"""Review 53j, gates 2: the memory an MCP gate's engine keeps per chain and server.

Review 53c (gates 1) decides a server's tool as `Tool::"<name>"` in `Server::"<server>"`: the
engine built, per chain and server, the chain's Cedar entities with EVERY tool of the bundle in
that server (`_entities_of`), and kept each in a cache of CACHE_ENTRIES (4,096) entries bounded
by count only. A member mints delegates for free, each a chain of its own; each delegate's one
call at a gate that names its server added a copy of all the bundle's tools: measured (cedarpy)
~53 KiB an entry for 50 tools of 12-character names (~210 MB at 4,096 chains), ~695 KiB for
MAX_TOOLS (512) names of 128 characters (~2.8 GB), per server, where the chain's entities
alone had been kept before (the caches of caveated chains are bounded by their text for this
reason: review 43b, caveats 1). Was a strict xfail until a decision added only the tool it
decides to the chain's entities (one entity; kept for SERVED_ENTRIES (chain, server, tool)),
and the previews built each tool in the server only while they evaluate (their answer is what
is kept).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.gates import T, make_world
from troth import limits
from troth.gates import ToolCall

POLICIES = """\
@id("scoped") permit(principal, action, resource in Server::"payments");
"""


def _rss() -> int:
    """This process's resident memory now (bytes; Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


def test_deciding_for_many_chains_keeps_no_copy_of_the_bundles_tools_each() -> None:
    world = make_world()
    names = [f"t{i:03d}" + "x" * (limits.MAX_TOOL_NAME - 4) for i in range(limits.MAX_TOOLS)]
    tools = {name: {"type": "object"} for name in names}
    point = world.point(world.store(world.bundle(policies=POLICIES, tools=tools)))
    callers = [world.member_credential(*world.new_member()) for _ in range(64)]
    call = ToolCall(names[0], {}, None, "payments")
    assert point.decide(callers[0], call, now=T + 10).allowed  # warmed: the engine built
    before = _rss()
    for caller in callers[1:]:
        assert point.decide(caller, call, now=T + 10).allowed
    grown = _rss() - before
    # 63 chains: ~58 MiB when each kept the 512 tools; now ~15: a chain's own entities (~100
    # KiB: they hold the schema's 512 actions; kept before review 53c too) and its copy with
    # the one tool decided (at most SERVED_ENTRIES of those)
    assert grown < 32 * 1024 * 1024, f"{grown / 2**20:.1f} MiB for 63 chains"
