"""Review 66n, relays: findings against review 66f's relay cut fixes (each test failed before
its fix).

Relays 1 (low: memory and CPU without bound). A connection a refusal left uncut, another name
still up over it (`RelayService._uncut`, review 66f, relays 4), kept the name of every relay
refused over it until it closed, those freed after the grace period too (a freed name is not
up, so it still wanted the cut): an owner whose node keeps a second identity's name up over
its connection, refused on purpose (no credential shown by an in-band refresh, then its
credential again) with a new batch of `MAX_RELAYS_PER_OWNER` names each grace period, grew
that entry by as many names every five minutes for as long as the connection stayed open,
and every channel closing on the node, every `create` and every maintenance round went
through all of them. A name freed is now kept as one mark that wants the cut whatever any
relay's state (as a connection pushed out of `Relay.earlier` is): an entry holds at most the
names the node holds, plus one.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import cast

from tests.test_review55a_refuted import Stranger, with_stranger
from tests.test_review66f_relays import _not_reached
from troth import limits
from troth.node.access import AccessRequest, Decision
from troth.node.channel_ends import ChannelEnd
from troth.node.services.relay import Relay


class _Gets(dict[str, Relay]):
    """The relay table, counting its look-ups by name."""

    gets = 0

    def get(self, key: str, default: Relay | None = None) -> Relay | None:  # type: ignore[override]
        _Gets.gets += 1
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        _Gets.gets += 1
        return super().__contains__(key)

    def __getitem__(self, key: str) -> Relay:
        _Gets.gets += 1
        return super().__getitem__(key)


def _close(net: Stranger, channel: str) -> None:
    """The hub's relay service hears that `channel` closed."""
    closed = cast(ChannelEnd, SimpleNamespace(id=channel, caller=None))
    for hook in net.hub.channels.closed_hooks:
        if getattr(hook, "__self__", None) is net.relay:
            hook(closed)


def test_names_refused_and_freed_over_a_connection_left_uncut_do_not_pile_up(
    tmp_path: Path,
) -> None:
    """Relays 1: d (another identity over b's connection) holds a name up; b has a new batch
    of names refused every grace period, 64 rounds. A maintenance round then looked up each
    of the 1,024 names freed since (now: a few); and once b's own name and d's go down, b's
    connection is still cut off (the names freed still want it)."""
    rounds, batch = 64, limits.MAX_RELAYS_PER_OWNER

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        to_b = (await net.receive()).return_route[0]
        b = net.relay.relays["b"]
        relays = _Gets(b=b, d=replace(b, channel="d-channel"))  # (d's channel not found: not
        # decided again, up)
        net.relay.relays = relays

        def decide(request: AccessRequest) -> Decision:
            return Decision(not str(request.arguments).startswith("x"), ("no credential",))

        net.relay.decide = decide
        now = net.relay.clock()
        for round_ in range(rounds):
            for number in range(batch):  # b's names, over b's channel
                relays[f"x{round_}-{number}"] = replace(b)
            await net.relay.maintain(now)  # refused; the last batch freed
            now += net.relay.grace
        await net.relay.maintain(now)
        assert len(relays) == 2
        _Gets.gets = 0
        await net.relay.maintain(now)
        assert _Gets.gets <= 4 * batch, _Gets.gets
        _close(net, b.channel)
        assert relays["b"].lost_at is not None
        _close(net, "d-channel")
        await _not_reached(net, to_b)

    with_stranger(tmp_path, test)
